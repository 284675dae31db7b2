-- Information assets, classification and access rights (Y5, K3, K12.1.2,
-- K17, K18). Times are Unix seconds; flags 0/1.

-- Classification scales, one per axis (confidentiality, integrity,
-- availability). The ward's default levels are seeded here; each maps onto
-- the national guideline's levels (総務省ガイドライン) in two schemes:
-- `national` (機密性 3/2/1, 完全性 2/1, 可用性 2/1) and `national_r6`
-- (令和6年: 機密性 3A/3B/3C/2/1). A level may map onto several national
-- levels (space-separated, the first is the default); an asset then names
-- its own within that list.
CREATE TABLE classification_levels (
    axis         TEXT NOT NULL,
    code         TEXT NOT NULL,
    name         TEXT NOT NULL,
    name_en      TEXT NOT NULL DEFAULT '',
    rank         INTEGER NOT NULL,
    is_secret    INTEGER NOT NULL DEFAULT 0,
    national     TEXT NOT NULL,
    national_r6  TEXT NOT NULL,
    PRIMARY KEY (axis, code)
);
INSERT INTO classification_levels VALUES
 ('confidentiality', 'secret', '秘密情報', 'Secret information', 2, 1, '3', '3A 3B 3C'),
 ('confidentiality', 'general', '一般情報', 'General information', 1, 0, '2 1', '2 1'),
 ('integrity', 'high', '重要', 'High', 2, 0, '2', '2'),
 ('integrity', 'normal', '通常', 'Normal', 1, 0, '1', '1'),
 ('availability', 'high', '重要', 'High', 2, 0, '2', '2'),
 ('availability', 'normal', '通常', 'Normal', 1, 0, '1', '1');

-- Managed areas (管理区域, K4–K5) a terminal can stand in; grant conditions
-- name them.
CREATE TABLE managed_areas (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE assets (
    id                   INTEGER PRIMARY KEY,
    code                 TEXT NOT NULL UNIQUE,
    name                 TEXT NOT NULL,
    name_en              TEXT NOT NULL DEFAULT '',
    kind                 TEXT NOT NULL,
    parent_id            INTEGER REFERENCES assets(id),
    owner_org_unit_id    INTEGER NOT NULL REFERENCES org_units(id),
    security_manager_id  INTEGER REFERENCES persons(id),
    confidentiality      TEXT NOT NULL,
    secret_ground        TEXT,
    integrity            TEXT NOT NULL,
    availability         TEXT NOT NULL,
    national_c           TEXT NOT NULL DEFAULT '',
    national_c_r6        TEXT NOT NULL DEFAULT '',
    personal_info        INTEGER NOT NULL DEFAULT 0,
    zone                 TEXT NOT NULL,
    external_connection  INTEGER NOT NULL DEFAULT 0,
    description          TEXT NOT NULL DEFAULT '',
    retired_at           INTEGER,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX assets_owner ON assets(owner_org_unit_id);
CREATE INDEX assets_manager ON assets(security_manager_id);

-- 運用管理者 named to act for the security manager (K18).
CREATE TABLE asset_operators (
    id          INTEGER PRIMARY KEY,
    asset_id    INTEGER NOT NULL REFERENCES assets(id),
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    named_by    INTEGER REFERENCES persons(id),
    reason      TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    ended_at    INTEGER,
    ended_by    INTEGER REFERENCES persons(id)
);
CREATE INDEX asset_operators_asset ON asset_operators(asset_id);
CREATE INDEX asset_operators_person ON asset_operators(person_id);

-- Requests for access (K3.2.1): decided by the asset's security manager.
CREATE TABLE access_requests (
    id               INTEGER PRIMARY KEY,
    asset_id         INTEGER NOT NULL REFERENCES assets(id),
    subject_kind     TEXT NOT NULL,
    subject_id       INTEGER NOT NULL,
    actions          TEXT NOT NULL,
    valid_from       INTEGER,
    valid_until      INTEGER,
    conditions       TEXT NOT NULL DEFAULT '{}',
    unit_reason      TEXT,
    purpose          TEXT NOT NULL,
    requested_by     INTEGER REFERENCES persons(id),
    requested_at     INTEGER NOT NULL,
    status           TEXT NOT NULL,
    decided_by       INTEGER REFERENCES persons(id),
    decided_at       INTEGER,
    decision_reason  TEXT,
    grant_id         INTEGER
);
CREATE INDEX access_requests_asset ON access_requests(asset_id, status);

CREATE TABLE access_grants (
    id             INTEGER PRIMARY KEY,
    request_id     INTEGER REFERENCES access_requests(id),
    asset_id       INTEGER NOT NULL REFERENCES assets(id),
    subject_kind   TEXT NOT NULL,
    subject_id     INTEGER NOT NULL,
    actions        TEXT NOT NULL,
    valid_from     INTEGER,
    valid_until    INTEGER,
    conditions     TEXT NOT NULL DEFAULT '{}',
    unit_reason    TEXT,
    granted_by     INTEGER REFERENCES persons(id),
    created_at     INTEGER NOT NULL,
    ended_at       INTEGER,
    ended_reason   TEXT,
    ended_by       INTEGER REFERENCES persons(id)
);
CREATE INDEX access_grants_asset ON access_grants(asset_id);
CREATE INDEX access_grants_subject ON access_grants(subject_kind, subject_id);

-- Periodic access reviews (棚卸し): every grant of the asset at the start
-- is an item the manager confirms or removes.
CREATE TABLE access_reviews (
    id            INTEGER PRIMARY KEY,
    asset_id      INTEGER NOT NULL REFERENCES assets(id),
    started_by    INTEGER REFERENCES persons(id),
    started_at    INTEGER NOT NULL,
    completed_by  INTEGER REFERENCES persons(id),
    completed_at  INTEGER,
    record_index  INTEGER
);
CREATE INDEX access_reviews_asset ON access_reviews(asset_id);

CREATE TABLE access_review_items (
    review_id   INTEGER NOT NULL REFERENCES access_reviews(id),
    grant_id    INTEGER NOT NULL REFERENCES access_grants(id),
    decision    TEXT,
    note        TEXT NOT NULL DEFAULT '',
    decided_at  INTEGER,
    PRIMARY KEY (review_id, grant_id)
);

-- What changed for the access-decision engine. Triggers write a row for
-- every change that can alter a decision; each server tails this table
-- and reloads just those entities into its in-memory engine.
CREATE TABLE access_changes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    entity     TEXT NOT NULL,
    entity_id  INTEGER NOT NULL
);

CREATE TRIGGER ac_org_units_ins AFTER INSERT ON org_units
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('org_unit', NEW.id); END;
CREATE TRIGGER ac_org_units_upd AFTER UPDATE OF parent_id ON org_units
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('org_unit', NEW.id); END;
CREATE TRIGGER ac_persons_ins AFTER INSERT ON persons
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('person', NEW.id); END;
CREATE TRIGGER ac_persons_upd AFTER UPDATE OF status, org_unit_id ON persons
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('person', NEW.id); END;
CREATE TRIGGER ac_accounts_ins AFTER INSERT ON accounts WHEN NEW.person_id IS NOT NULL
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('person', NEW.person_id); END;
CREATE TRIGGER ac_accounts_upd AFTER UPDATE OF disabled, manual_lock, locked_until ON accounts WHEN NEW.person_id IS NOT NULL
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('person', NEW.person_id); END;
CREATE TRIGGER ac_assets_ins AFTER INSERT ON assets
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('asset', NEW.id); END;
CREATE TRIGGER ac_assets_upd AFTER UPDATE ON assets
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('asset', NEW.id); END;
CREATE TRIGGER ac_operators_ins AFTER INSERT ON asset_operators
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('asset', NEW.asset_id); END;
CREATE TRIGGER ac_operators_upd AFTER UPDATE ON asset_operators
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('asset', NEW.asset_id); END;
CREATE TRIGGER ac_grants_ins AFTER INSERT ON access_grants
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('grant', NEW.id); END;
CREATE TRIGGER ac_grants_upd AFTER UPDATE ON access_grants
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('grant', NEW.id); END;
CREATE TRIGGER ac_levels_upd AFTER UPDATE ON classification_levels
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('levels', 0); END;
CREATE TRIGGER ac_areas_ins AFTER INSERT ON managed_areas
BEGIN INSERT INTO access_changes (entity, entity_id) VALUES ('area', NEW.id); END;
