//! gocua: the backend of door-to-door canvassing campaigns.
//!
//! Data flows one way: `api -> sync | reports | retention | store -> db`, with `domain` (pure rules, no
//! I/O) used by all. The browser code that `api` serves lives beside it: the supervisors'
//! dashboard in `src/web/`, the canvassers' field app in `src/field/`.

pub mod accounts;
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
pub mod register;
pub mod reports;
pub mod retention;
pub mod rng;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod throttle;
pub mod write;
