-- The access-record ledger's state in the database. With the embedded
-- default, the Merkle log itself lives in files (<data>/ledger); with
-- PostgreSQL (or `ledger.store = "sql"`) it lives in ledger_entries and
-- ledger_hashes below.

-- Sender event ids: a resent event id answers its original index.
CREATE TABLE ledger_events (
    system    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    idx       BIGINT NOT NULL,
    PRIMARY KEY (system, event_id)
);

-- Search index over the records (K16.2.3), one row per record.
CREATE TABLE ledger_index (
    idx      BIGINT PRIMARY KEY,
    time_us  BIGINT NOT NULL,
    system   TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    asset    TEXT NOT NULL,
    result   TEXT NOT NULL
);
CREATE INDEX ledger_index_actor ON ledger_index(actor, time_us);
CREATE INDEX ledger_index_asset ON ledger_index(asset, time_us);
CREATE INDEX ledger_index_system ON ledger_index(system, time_us);
CREATE INDEX ledger_index_time ON ledger_index(time_us);

-- Every checkpoint signed, so a new one is never inconsistent with an old one.
CREATE TABLE ledger_checkpoints (
    size       BIGINT PRIMARY KEY,
    body       TEXT NOT NULL,
    signed_at  BIGINT NOT NULL
);

-- How far Mamori's own records (the records table) have moved into the ledger.
CREATE TABLE ledger_outbox (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    last_record_id  BIGINT NOT NULL
);
INSERT INTO ledger_outbox (id, last_record_id) VALUES (1, 0);

-- The SQL-backed Merkle log.
CREATE TABLE ledger_entries (
    idx   BIGINT PRIMARY KEY,
    data  BLOB
);
CREATE TABLE ledger_hashes (
    idx   BIGINT PRIMARY KEY,
    hash  BLOB NOT NULL
);
CREATE TABLE ledger_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    size  BIGINT NOT NULL
);
INSERT INTO ledger_head (id, size) VALUES (1, 0);

-- Bearer tokens of ward systems (SPEC §4), stored as SHA-256 digests.
CREATE TABLE api_tokens (
    id          INTEGER PRIMARY KEY,
    system_id   INTEGER NOT NULL REFERENCES systems(id),
    scopes      TEXT NOT NULL,
    digest      TEXT NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
