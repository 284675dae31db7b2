//! The policy catalog in the product (SPEC §3.9; Y8, Y10, K34): every
//! clause of the preface, the 要綱 and the 基準 with its Japanese text, its
//! English gist and the controls that serve it (the data lives in
//! `mamori_policy::catalog`, parsed once from the policy text), the policy's
//! versions from its 付則, and the reviews that add versions.
//!
//! - [`service`]: the views (catalog on a date, one clause, the mapping) and
//!   recording a review with its ledger record in one transaction.
//! - [`store`]: the SQL for reviews and versions (append-only tables).
//! - [`api`] and [`pages`]: JSON routes and HTML pages.
//!
//! Everyone reads the catalog (auditors included); the セキュリティ統括者
//! and the CIO record reviews (`RecordPolicyReview`).

pub mod api;
pub mod pages;
pub mod service;
pub mod store;
