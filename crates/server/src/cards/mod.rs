//! IC cards (K11.2) as FIDO2 security keys or passkeys through WebAuthn
//! (`webauthn-rs`), and the session rules that go with them (K12.1.5).
//!
//! - A card is registered to exactly one named person (K11.2.1): its
//!   credential id is unique, its label (serial), model (AAGUID; the ward
//!   may accept only listed models), who registered it and when are kept.
//!   The holder registers from my page after re-authenticating; the
//!   security manager registers one for a person in their scope.
//! - Login with card + PIN: the WebAuthn ceremony requires user
//!   verification, so the card proves possession and its PIN knowledge.
//!   Settings decide where a card is required (per role, per network zone
//!   of the terminal); administrators use password and card.
//! - A lost card (K11.2.2) is revoked at once, every session it opened
//!   ends, and a `card_loss_reports` row plus an `incident.card_lost`
//!   record open the incident for the manager (the incidents module takes
//!   open reports over). Suspend and reinstate too; each step is a record.
//! - K11.2.3 (a card is not left inserted): the card is used only for the
//!   moment of a ceremony and nothing lives on it afterwards; a session does
//!   not depend on the card staying in the reader, and unlocking a session
//!   that a card opened needs the card touched and its PIN entered again,
//!   so a card left in a reader gains nobody a session.

pub mod api;
pub mod pages;
pub mod service;
pub mod store;
