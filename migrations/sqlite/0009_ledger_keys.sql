-- Every key that has signed the ledger's checkpoints (K16.2.2), so that a
-- checkpoint signed before a key rotation stays verifiable. A retired key
-- leaves a handover: a checkpoint of the log at rotation signed by both the
-- retired key and its successor.
CREATE TABLE ledger_keys (
    key_id        TEXT PRIMARY KEY,
    verifier      TEXT NOT NULL UNIQUE,
    activated_at  BIGINT NOT NULL,
    retired_at    BIGINT,
    handover      TEXT
);
