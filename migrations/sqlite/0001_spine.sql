-- The spine: organisation, people, accounts, sessions, records.
-- Times are Unix seconds (UTC) in INTEGER columns; calendar dates are
-- 'YYYY-MM-DD' text, which sorts and compares correctly. Flags are 0/1.

CREATE TABLE org_units (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    name_en     TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    parent_id   INTEGER REFERENCES org_units(id),
    valid_from  TEXT NOT NULL,
    valid_to    TEXT,
    created_at  INTEGER NOT NULL
);
CREATE INDEX org_units_parent ON org_units(parent_id);

CREATE TABLE systems (
    id                 INTEGER PRIMARY KEY,
    code               TEXT NOT NULL UNIQUE,
    name               TEXT NOT NULL,
    owner_org_unit_id  INTEGER NOT NULL REFERENCES org_units(id),
    created_at         INTEGER NOT NULL
);

CREATE TABLE persons (
    id               INTEGER PRIMARY KEY,
    employee_number  TEXT NOT NULL UNIQUE,
    name_kanji       TEXT NOT NULL,
    name_kana        TEXT NOT NULL,
    name_romaji      TEXT NOT NULL DEFAULT '',
    birth_date       TEXT,
    employment       TEXT NOT NULL,
    org_unit_id      INTEGER REFERENCES org_units(id),
    title            TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    hired_on         TEXT,
    left_on          TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX persons_org_unit ON persons(org_unit_id);

CREATE TABLE role_assignments (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES persons(id),
    role         TEXT NOT NULL,
    org_unit_id  INTEGER REFERENCES org_units(id),
    system_id    INTEGER REFERENCES systems(id),
    valid_from   TEXT NOT NULL,
    valid_to     TEXT,
    created_by   INTEGER REFERENCES persons(id),
    created_at   INTEGER NOT NULL
);
CREATE INDEX role_assignments_person ON role_assignments(person_id);
CREATE INDEX role_assignments_unit ON role_assignments(org_unit_id, role);

CREATE TABLE accounts (
    id                    INTEGER PRIMARY KEY,
    login                 TEXT NOT NULL UNIQUE,
    person_id             INTEGER UNIQUE REFERENCES persons(id),
    kind                  TEXT NOT NULL,
    shared_justification  TEXT,
    shared_owner_id       INTEGER REFERENCES persons(id),
    shared_org_unit_id    INTEGER REFERENCES org_units(id),
    password_hash         TEXT,
    password_fp           INTEGER,
    password_changed_at   INTEGER,
    must_change           INTEGER NOT NULL DEFAULT 0,
    must_change_reason    TEXT,
    disabled              INTEGER NOT NULL DEFAULT 0,
    disabled_reason       TEXT,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          INTEGER,
    manual_lock           INTEGER NOT NULL DEFAULT 0,
    last_login_at         INTEGER,
    created_at            INTEGER NOT NULL
);
CREATE INDEX accounts_fp ON accounts(password_fp);

CREATE TABLE password_history (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    hash        TEXT NOT NULL,
    changed_at  INTEGER NOT NULL
);
CREATE INDEX password_history_account ON password_history(account_id);

CREATE TABLE source_throttle (
    source          TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    locked_until    INTEGER,
    last_failure_at INTEGER NOT NULL
);

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    account_id    INTEGER REFERENCES accounts(id),
    csrf          TEXT NOT NULL,
    lang          TEXT NOT NULL DEFAULT 'ja',
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,
    source_ip     TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    ended_at      INTEGER,
    ended_reason  TEXT
);
CREATE INDEX sessions_account ON sessions(account_id);

CREATE TABLE personnel_events (
    id               INTEGER PRIMARY KEY,
    employee_number  TEXT NOT NULL,
    kind             TEXT NOT NULL,
    effective_date   TEXT NOT NULL,
    payload          TEXT NOT NULL,
    status           TEXT NOT NULL,
    source           TEXT NOT NULL,
    error            TEXT,
    created_by       INTEGER REFERENCES persons(id),
    created_at       INTEGER NOT NULL,
    applied_at       INTEGER
);
CREATE INDEX personnel_events_due ON personnel_events(status, effective_date);

CREATE TABLE settings (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    set_by  INTEGER REFERENCES persons(id),
    set_at  INTEGER NOT NULL
);

-- Append-only record of every state change until the Merkle ledger takes
-- over this interface. Triggers refuse UPDATE and DELETE.
CREATE TABLE records (
    id          INTEGER PRIMARY KEY,
    time_us     INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    target      TEXT NOT NULL,
    result      TEXT NOT NULL,
    clause      TEXT NOT NULL DEFAULT '',
    source_ip   TEXT NOT NULL DEFAULT '',
    detail      TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'records are append-only'); END;
