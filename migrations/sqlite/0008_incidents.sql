-- Incidents and failures (SPEC §3.6; K10, K16.4, K25, K26, K27, K33.1.6).
-- Times are Unix seconds. The timeline and the procedure versions are
-- append-only (triggers), like records: every entry is also a record.

CREATE TABLE incidents (
    id                INTEGER PRIMARY KEY,
    kind              TEXT NOT NULL,
    lost_item         TEXT NOT NULL DEFAULT '',
    title             TEXT NOT NULL,
    description       TEXT NOT NULL,
    noticed_at        INTEGER NOT NULL,
    system_code       TEXT NOT NULL DEFAULT '',
    reporter_id       INTEGER NOT NULL REFERENCES persons(id),
    reporter_unit_id  INTEGER REFERENCES org_units(id),
    outside_org       INTEGER NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,
    security          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL
);
CREATE INDEX incidents_reporter ON incidents(reporter_id);
CREATE INDEX incidents_unit ON incidents(reporter_unit_id);
CREATE INDEX incidents_created ON incidents(created_at);

CREATE TABLE incident_steps (
    id               INTEGER PRIMARY KEY,
    incident_id      INTEGER NOT NULL REFERENCES incidents(id),
    seq              INTEGER NOT NULL,
    role             TEXT NOT NULL,
    person_id        INTEGER REFERENCES persons(id),
    org_unit_id      INTEGER REFERENCES org_units(id),
    substitute       TEXT NOT NULL DEFAULT '',
    opened_at        INTEGER NOT NULL,
    due_at           INTEGER NOT NULL,
    acknowledged_at  INTEGER,
    completed_at     INTEGER,
    escalated_at     INTEGER,
    UNIQUE (incident_id, seq)
);
CREATE INDEX incident_steps_open ON incident_steps(completed_at, due_at);
CREATE INDEX incident_steps_person ON incident_steps(person_id);

CREATE TABLE incident_entries (
    id           INTEGER PRIMARY KEY,
    incident_id  INTEGER NOT NULL REFERENCES incidents(id),
    kind         TEXT NOT NULL,
    actor        TEXT NOT NULL,
    at           INTEGER NOT NULL,
    detail       TEXT NOT NULL DEFAULT '{}',
    record_id    INTEGER NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries(incident_id, id);
CREATE TRIGGER incident_entries_no_update BEFORE UPDATE ON incident_entries
BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;
CREATE TRIGGER incident_entries_no_delete BEFORE DELETE ON incident_entries
BEGIN SELECT RAISE(ABORT, 'the incident timeline is append-only'); END;

CREATE TABLE incident_attachments (
    id            INTEGER PRIMARY KEY,
    incident_id   INTEGER NOT NULL REFERENCES incidents(id),
    file_name     TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    uploaded_by   INTEGER REFERENCES persons(id),
    uploaded_at   INTEGER NOT NULL
);
CREATE INDEX incident_attachments_incident ON incident_attachments(incident_id);

CREATE TABLE incident_drafts (
    person_id  INTEGER PRIMARY KEY REFERENCES persons(id),
    body       TEXT NOT NULL,
    saved_at   INTEGER NOT NULL
);

CREATE TABLE failure_records (
    incident_id     INTEGER PRIMARY KEY REFERENCES incidents(id),
    system_code     TEXT NOT NULL,
    cause_category  TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    resolved_at     INTEGER,
    impact          TEXT NOT NULL,
    handling        TEXT NOT NULL DEFAULT '',
    recorded_by     INTEGER REFERENCES persons(id),
    recorded_at     INTEGER NOT NULL
);
CREATE INDEX failure_records_system ON failure_records(system_code, cause_category);

CREATE TABLE failure_procedures (
    id           INTEGER PRIMARY KEY,
    system_code  TEXT NOT NULL,
    version      INTEGER NOT NULL,
    title        TEXT NOT NULL,
    steps        TEXT NOT NULL,
    fallback     TEXT NOT NULL,
    created_by   INTEGER REFERENCES persons(id),
    created_at   INTEGER NOT NULL,
    UNIQUE (system_code, version)
);
CREATE TRIGGER failure_procedures_no_update BEFORE UPDATE ON failure_procedures
BEGIN SELECT RAISE(ABORT, 'procedure versions are kept as written'); END;
CREATE TRIGGER failure_procedures_no_delete BEFORE DELETE ON failure_procedures
BEGIN SELECT RAISE(ABORT, 'procedure versions are kept as written'); END;

CREATE TABLE failure_critical_systems (
    system_code  TEXT PRIMARY KEY,
    critical     INTEGER NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    set_by       INTEGER REFERENCES persons(id),
    set_at       INTEGER NOT NULL
);

CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES persons(id),
    incident_id  INTEGER REFERENCES incidents(id),
    message_key  TEXT NOT NULL,
    params       TEXT NOT NULL DEFAULT '{}',
    created_at   INTEGER NOT NULL,
    read_at      INTEGER
);
CREATE INDEX notifications_person ON notifications(person_id, read_at);

CREATE TABLE notification_addresses (
    person_id  INTEGER PRIMARY KEY REFERENCES persons(id),
    email      TEXT NOT NULL,
    set_at     INTEGER NOT NULL
);

CREATE TABLE mail_outbox (
    id               INTEGER PRIMARY KEY,
    to_addr          TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    sent_at          INTEGER,
    last_error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_due ON mail_outbox(sent_at, next_attempt_at);
