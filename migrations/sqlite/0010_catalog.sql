-- Policy reviews and the versions they produce (Y10, K34; SPEC §3.9).
-- The versions from the policy's own 付則 are data in mamori_policy::catalog
-- and not copied here; a review that amends the policy adds a version row.
-- Both tables are append-only (triggers): a review is evidence and every one
-- is also a record in the ledger. Dates are 'YYYY-MM-DD', times Unix seconds.

CREATE TABLE policy_reviews (
    id             INTEGER PRIMARY KEY,
    reviewed_on    TEXT NOT NULL,
    summary        TEXT NOT NULL,
    -- Clause ids the review changed or looked at, space separated (e.g. 'K17.4 K34').
    clauses        TEXT NOT NULL DEFAULT '',
    -- 'amended' (a new version) or 'unchanged' (reviewed, no change needed).
    outcome        TEXT NOT NULL,
    reviewer_id    INTEGER REFERENCES persons(id),
    reviewer_role  TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX policy_reviews_on ON policy_reviews(reviewed_on);

CREATE TABLE policy_versions (
    id            INTEGER PRIMARY KEY,
    label         TEXT NOT NULL UNIQUE,
    effective_on  TEXT NOT NULL,
    note          TEXT NOT NULL,
    -- 'Y', 'K', 'P' letters of the documents amended, e.g. 'YK'.
    documents     TEXT NOT NULL,
    review_id     INTEGER NOT NULL UNIQUE REFERENCES policy_reviews(id),
    created_at    INTEGER NOT NULL
);
CREATE INDEX policy_versions_effective ON policy_versions(effective_on);

CREATE TRIGGER policy_reviews_no_update BEFORE UPDATE ON policy_reviews
BEGIN SELECT RAISE(ABORT, 'policy reviews are kept as recorded'); END;
CREATE TRIGGER policy_reviews_no_delete BEFORE DELETE ON policy_reviews
BEGIN SELECT RAISE(ABORT, 'policy reviews are kept as recorded'); END;
CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
BEGIN SELECT RAISE(ABORT, 'policy versions are kept as recorded'); END;
CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
BEGIN SELECT RAISE(ABORT, 'policy versions are kept as recorded'); END;
