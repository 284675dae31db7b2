-- IC cards (K11.2) as FIDO2 security keys / passkeys through WebAuthn, and
-- the session rules of K12.1.5 (lock, secret information, re-authentication).

CREATE TABLE cards (
    id              INTEGER PRIMARY KEY,
    -- K11.2.1: every card has exactly one named holder.
    person_id       INTEGER NOT NULL REFERENCES persons(id),
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    -- base64url of the WebAuthn credential id; one card, one holder.
    credential_id   TEXT NOT NULL UNIQUE,
    -- The verifier's view of the credential (public key, counter), as JSON.
    passkey         TEXT NOT NULL,
    label           TEXT NOT NULL,
    -- The model: the authenticator's AAGUID (all zeros when it gives none).
    aaguid          TEXT NOT NULL,
    registered_by   TEXT NOT NULL,
    registered_at   INTEGER NOT NULL,
    -- active | suspended | revoked (lost; never active again).
    status          TEXT NOT NULL DEFAULT 'active',
    status_at       INTEGER NOT NULL,
    last_used_at    INTEGER
);
CREATE INDEX cards_account ON cards(account_id);
CREATE INDEX cards_person ON cards(person_id);

-- A WebAuthn ceremony in progress: the challenge state, used once.
CREATE TABLE card_ceremonies (
    id_hash      TEXT PRIMARY KEY,
    purpose      TEXT NOT NULL,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    session_hash TEXT,
    label        TEXT NOT NULL DEFAULT '',
    started_by   TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

-- K11.2.2: a lost card is reported; the incident module takes the open
-- reports over as incidents (kind lost card).
CREATE TABLE card_loss_reports (
    id              INTEGER PRIMARY KEY,
    card_id         INTEGER NOT NULL REFERENCES cards(id),
    person_id       INTEGER NOT NULL REFERENCES persons(id),
    reported_by     TEXT NOT NULL,
    reported_at     INTEGER NOT NULL,
    sessions_ended  INTEGER NOT NULL,
    note            TEXT NOT NULL DEFAULT '',
    status          TEXT NOT NULL DEFAULT 'open'
);

-- Sessions: how they were opened and what they have touched (K12.1.5).
ALTER TABLE sessions ADD COLUMN card_id INTEGER;
ALTER TABLE sessions ADD COLUMN factors TEXT NOT NULL DEFAULT 'password';
-- 'full', or 'card' while the second factor (a card) is still due.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE sessions ADD COLUMN auth_at INTEGER;
ALTER TABLE sessions ADD COLUMN secret_at INTEGER;
ALTER TABLE sessions ADD COLUMN locked_at INTEGER;
ALTER TABLE sessions ADD COLUMN unlock_failures INTEGER NOT NULL DEFAULT 0;
CREATE INDEX sessions_card ON sessions(card_id);
