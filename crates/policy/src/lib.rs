//! The Edogawa ward's information security policy as data and logic.
//!
//! Nothing here does IO: the server feeds it facts and acts on its answers.
//! Every rule cites the clause it serves with the id scheme of SPEC §2
//! (`K16.2.1` = 基準 第16条 第2項 第1号).

pub mod access;
pub mod catalog;
pub mod clause;
pub mod password;
pub mod permission;
pub mod role;
pub mod wareki;

pub use clause::ClauseId;
pub use role::Role;
