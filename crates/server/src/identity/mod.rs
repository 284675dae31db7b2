//! Accounts, passwords and login (SPEC §3.3; K11.1, K17.1–4). One account
//! per person; shared accounts only with a justification and an owner
//! (K17.2). Passwords follow the rules of `mamori_policy::password`, are
//! unique among active users (K11.1.2) and expire (K17.4).

pub mod api;
pub mod pages;
pub mod service;
pub mod store;
