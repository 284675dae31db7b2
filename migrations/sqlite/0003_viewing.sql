-- Restricted viewing of staff records (K30): the reports designated viewers
-- (指名閲覧者) file with their security manager on each viewing session
-- (K30.3). The report itself is also a record; its summary's SHA-256 is in
-- that record, so a summary changed afterwards is detectable.
CREATE TABLE viewing_reports (
    id                INTEGER PRIMARY KEY,
    viewer_person_id  INTEGER NOT NULL REFERENCES persons(id),
    org_unit_id       INTEGER NOT NULL REFERENCES org_units(id),
    period_from       INTEGER NOT NULL,
    period_to         INTEGER NOT NULL,
    searches          INTEGER NOT NULL,
    summary           TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);
CREATE INDEX viewing_reports_unit ON viewing_reports(org_unit_id, created_at);
CREATE INDEX viewing_reports_viewer ON viewing_reports(viewer_person_id, period_to);
CREATE TRIGGER viewing_reports_no_update BEFORE UPDATE ON viewing_reports
BEGIN SELECT RAISE(ABORT, 'viewing reports are append-only'); END;
CREATE TRIGGER viewing_reports_no_delete BEFORE DELETE ON viewing_reports
BEGIN SELECT RAISE(ABORT, 'viewing reports are append-only'); END;

-- A viewer's own searches and views in a period, counted for the report.
CREATE INDEX records_actor_time ON records(actor, time_us);
