//! introspectd: OAuth 2.0 token introspection (RFC 7662) with authorization server
//! metadata (RFC 8414), over an embedded SQLite or a shared Postgres store.

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod introspection;
pub mod metrics;
pub mod probe;
pub mod secret;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod token;
