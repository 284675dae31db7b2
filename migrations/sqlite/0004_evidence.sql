-- Evidence bundles (K27.1.3, K25.3): records frozen with their inclusion
-- proofs and a signed checkpoint. `body` is the bundle file exactly as it
-- is downloaded (format: crates/ledger/src/bundle.rs). A bundle is
-- evidence: triggers refuse UPDATE and DELETE, as for records.
CREATE TABLE evidence_bundles (
    id               INTEGER PRIMARY KEY,
    created_by       TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    record_count     INTEGER NOT NULL,
    checkpoint_size  INTEGER NOT NULL,
    body             TEXT NOT NULL
);
CREATE TRIGGER evidence_bundles_no_update BEFORE UPDATE ON evidence_bundles
BEGIN SELECT RAISE(ABORT, 'evidence bundles are kept as frozen'); END;
CREATE TRIGGER evidence_bundles_no_delete BEFORE DELETE ON evidence_bundles
BEGIN SELECT RAISE(ABORT, 'evidence bundles are kept as frozen'); END;
