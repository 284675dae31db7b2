-- Retention of the access-record ledger (K16.2.1 「一定の期間保存」).
-- After its retention period a record's content is pruned (its leaf hash
-- stays, so the tree and every proof still verify); the periods are the
-- settings ledger.retention_days.secret and ledger.retention_days.general.

-- Interim classification of ward systems, until the asset register (SPEC
-- §3.4) classifies systems and data sets. A system without a row here is
-- treated as secret (秘密情報): keeping records longer is the safe side.
-- Mamori's own records (system `mamori`, not a row of `systems`) are
-- general (一般情報).
CREATE TABLE system_classification (
    system_id       INTEGER PRIMARY KEY REFERENCES systems(id),
    classification  TEXT NOT NULL DEFAULT 'secret'
                    CHECK (classification IN ('secret', 'general'))
);

-- How far pruning has gone, per classification: every record of that
-- classification with idx < bound_idx and time_us <= cutoff_us has been
-- pruned, so each run looks only at what became due since the last one.
CREATE TABLE ledger_retention (
    classification  TEXT PRIMARY KEY CHECK (classification IN ('secret', 'general')),
    bound_idx       BIGINT NOT NULL,
    cutoff_us       BIGINT NOT NULL
);
INSERT INTO ledger_retention (classification, bound_idx, cutoff_us) VALUES
    ('secret', 0, -9223372036854775807),
    ('general', 0, -9223372036854775807);
