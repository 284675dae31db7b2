//! Mamori's application: the web UI, the JSON API, and the services and
//! stores behind them. See ARCHITECTURE.md for the map.

pub mod app;
pub mod assets;
pub mod audits;
pub mod auth;
pub mod cards;
pub mod catalog;
pub mod clock;
pub mod compliance;
pub mod config;
pub mod db;
pub mod demo;
pub mod identity;
pub mod ids;
pub mod incidents;
pub mod inspections;
pub mod ledger;
pub mod mail;
pub mod openapi;
pub mod org;
pub mod people;
pub mod records;
pub mod reports;
pub mod settings;
pub mod tokens;
pub mod training;
pub mod web;

pub use app::AppState;
pub use config::Config;
