-- Self-inspection (自己点検, K32.1, K29): campaigns ordered by the
-- セキュリティ統括者, one inspection per department addressed to its
-- セキュリティ管理者, questions snapshotted from the catalog's procedural
-- controls when the campaign opens, answers with evidence. Times are Unix
-- seconds; dates 'YYYY-MM-DD'.

CREATE TABLE inspection_campaigns (
    id            INTEGER PRIMARY KEY,
    title         TEXT NOT NULL,
    fiscal_year   INTEGER NOT NULL,
    starts_on     TEXT NOT NULL,
    due_on        TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    ordered_by    INTEGER REFERENCES persons(id),
    created_at    INTEGER NOT NULL,
    closed_at     INTEGER,
    closed_by     INTEGER REFERENCES persons(id)
);
CREATE INDEX inspection_campaigns_due ON inspection_campaigns(due_on);

CREATE TABLE inspection_questions (
    id            INTEGER PRIMARY KEY,
    campaign_id   INTEGER NOT NULL REFERENCES inspection_campaigns(id),
    seq           INTEGER NOT NULL,
    control_id    TEXT NOT NULL,
    clauses       TEXT NOT NULL,
    title_ja      TEXT NOT NULL,
    title_en      TEXT NOT NULL,
    question_ja   TEXT NOT NULL,
    question_en   TEXT NOT NULL,
    UNIQUE (campaign_id, seq),
    UNIQUE (campaign_id, control_id)
);
-- The questions are the campaign's snapshot of the catalog: never changed.
CREATE TRIGGER inspection_questions_no_update BEFORE UPDATE ON inspection_questions
BEGIN SELECT RAISE(ABORT, 'inspection questions are a snapshot'); END;

CREATE TABLE inspections (
    id             INTEGER PRIMARY KEY,
    campaign_id    INTEGER NOT NULL REFERENCES inspection_campaigns(id),
    org_unit_id    INTEGER NOT NULL REFERENCES org_units(id),
    manager_id     INTEGER REFERENCES persons(id),
    status         TEXT NOT NULL,
    checks         TEXT NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL,
    updated_by     INTEGER REFERENCES persons(id),
    submitted_at   INTEGER,
    submitted_by   INTEGER REFERENCES persons(id),
    returned_at    INTEGER,
    returned_by    INTEGER REFERENCES persons(id),
    return_reason  TEXT NOT NULL DEFAULT '',
    UNIQUE (campaign_id, org_unit_id)
);
CREATE INDEX inspections_unit ON inspections(org_unit_id);

CREATE TABLE inspection_answers (
    inspection_id  INTEGER NOT NULL REFERENCES inspections(id),
    question_id    INTEGER NOT NULL REFERENCES inspection_questions(id),
    answer         TEXT NOT NULL,
    comment        TEXT NOT NULL DEFAULT '',
    updated_at     INTEGER NOT NULL,
    updated_by     INTEGER REFERENCES persons(id),
    PRIMARY KEY (inspection_id, question_id)
);

CREATE TABLE inspection_evidence (
    id             INTEGER PRIMARY KEY,
    inspection_id  INTEGER NOT NULL REFERENCES inspections(id),
    question_id    INTEGER NOT NULL REFERENCES inspection_questions(id),
    file_name      TEXT NOT NULL,
    content_type   TEXT NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    uploaded_by    INTEGER REFERENCES persons(id),
    uploaded_at    INTEGER NOT NULL
);
CREATE INDEX inspection_evidence_inspection ON inspection_evidence(inspection_id, question_id);
