-- Automatic compliance checks (issue 7 point 3) and training (K9).
-- Times are Unix seconds; dates 'YYYY-MM-DD' text; flags 0/1.

-- One run of every check, on schedule or on demand; its record is a
-- `compliance.run` record (`record_id` = the records row).
CREATE TABLE compliance_runs (
    id            INTEGER PRIMARY KEY,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    trigger_kind  TEXT NOT NULL,
    requested_by  INTEGER REFERENCES persons(id),
    passed        INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    record_id     INTEGER
);
CREATE INDEX compliance_runs_started ON compliance_runs(started_at);

-- Each check's result in a run; `since` is the start of the current failing
-- streak (NULL when passed); `items` the offending items as JSON.
CREATE TABLE compliance_results (
    run_id      INTEGER NOT NULL REFERENCES compliance_runs(id),
    check_id    TEXT NOT NULL,
    passed      INTEGER NOT NULL,
    item_count  INTEGER NOT NULL,
    since       INTEGER,
    items       TEXT NOT NULL DEFAULT '[]',
    error       TEXT,
    PRIMARY KEY (run_id, check_id)
);
CREATE INDEX compliance_results_check ON compliance_results(check_id, run_id);

-- K9.1: 説明会・研修. `audience` is all | units | roles; the chosen units or
-- roles are in training_audience. `org_unit_id` is the organiser's scope
-- (NULL: ward-wide).
CREATE TABLE training_sessions (
    id            INTEGER PRIMARY KEY,
    title         TEXT NOT NULL,
    held_on       TEXT NOT NULL,
    description   TEXT NOT NULL DEFAULT '',
    audience      TEXT NOT NULL,
    required      INTEGER NOT NULL DEFAULT 1,
    organiser_id  INTEGER REFERENCES persons(id),
    org_unit_id   INTEGER REFERENCES org_units(id),
    created_at    INTEGER NOT NULL,
    cancelled_at  INTEGER
);
CREATE INDEX training_sessions_held ON training_sessions(held_on);

CREATE TABLE training_audience (
    session_id   INTEGER NOT NULL REFERENCES training_sessions(id),
    kind         TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (session_id, kind, value)
);

-- K9.3: who attended; `source` organiser (marked by the organiser or a
-- manager) or self (the person's own report).
CREATE TABLE training_attendance (
    session_id  INTEGER NOT NULL REFERENCES training_sessions(id),
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    source      TEXT NOT NULL,
    marked_by   INTEGER REFERENCES persons(id),
    marked_at   INTEGER NOT NULL,
    PRIMARY KEY (session_id, person_id)
);
CREATE INDEX training_attendance_person ON training_attendance(person_id);

-- K9.2: the security manager's instructions to a 情報化推進リーダー.
CREATE TABLE training_instructions (
    id               INTEGER PRIMARY KEY,
    org_unit_id      INTEGER NOT NULL REFERENCES org_units(id),
    from_person_id   INTEGER NOT NULL REFERENCES persons(id),
    to_person_id     INTEGER NOT NULL REFERENCES persons(id),
    body             TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    acknowledged_at  INTEGER
);
CREATE INDEX training_instructions_to ON training_instructions(to_person_id);
