-- External audits (K32.2): the audit the セキュリティ統括者 orders, its auditor
-- accounts (read-only, time-limited: they stop working after the audit's
-- last day) and its findings with their follow-up to closure.
-- Times are Unix seconds; dates 'YYYY-MM-DD'. Follow-up entries are
-- append-only (triggers), and every one is also a record.

CREATE TABLE audits (
    id              INTEGER PRIMARY KEY,
    title           TEXT NOT NULL,
    scope           TEXT NOT NULL,
    auditor_org     TEXT NOT NULL,
    starts_on       TEXT NOT NULL,
    ends_on         TEXT NOT NULL,
    status          TEXT NOT NULL,
    ordered_by      INTEGER REFERENCES persons(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE TABLE audit_auditors (
    id              INTEGER PRIMARY KEY,
    audit_id        INTEGER NOT NULL REFERENCES audits(id),
    person_id       INTEGER NOT NULL REFERENCES persons(id),
    account_id      INTEGER NOT NULL UNIQUE REFERENCES accounts(id),
    assignment_id   INTEGER NOT NULL REFERENCES role_assignments(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX audit_auditors_audit ON audit_auditors(audit_id);

CREATE TABLE audit_findings (
    id              INTEGER PRIMARY KEY,
    audit_id        INTEGER NOT NULL REFERENCES audits(id),
    title           TEXT NOT NULL,
    description     TEXT NOT NULL,
    severity        TEXT NOT NULL,
    clauses         TEXT NOT NULL,
    owner_id        INTEGER NOT NULL REFERENCES persons(id),
    due_on          TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_by      INTEGER REFERENCES persons(id),
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    closed_at       INTEGER
);
CREATE INDEX audit_findings_audit ON audit_findings(audit_id);
CREATE INDEX audit_findings_owner ON audit_findings(owner_id);
CREATE INDEX audit_findings_open ON audit_findings(status, due_on);

CREATE TABLE audit_finding_entries (
    id              INTEGER PRIMARY KEY,
    finding_id      INTEGER NOT NULL REFERENCES audit_findings(id),
    kind            TEXT NOT NULL,
    note            TEXT NOT NULL,
    actor           TEXT NOT NULL,
    at              INTEGER NOT NULL,
    record_id       INTEGER NOT NULL
);
CREATE INDEX audit_finding_entries_finding ON audit_finding_entries(finding_id);
CREATE TRIGGER audit_finding_entries_no_update BEFORE UPDATE ON audit_finding_entries
BEGIN SELECT RAISE(ABORT, 'finding entries are append-only'); END;
CREATE TRIGGER audit_finding_entries_no_delete BEFORE DELETE ON audit_finding_entries
BEGIN SELECT RAISE(ABORT, 'finding entries are append-only'); END;
