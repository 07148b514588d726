//! gocua: the backend of door-to-door canvassing campaigns.
//!
//! Data flows one way: `api -> store -> db`, with `domain` (pure rules) used by all.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod demo;
pub mod domain;
pub mod error;
pub mod importer;
pub mod reports;
pub mod store;
pub mod sync;
pub mod telemetry;
