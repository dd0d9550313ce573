//! introspectd: OAuth 2.0 token introspection (RFC 7662) with authorization server
//! metadata (RFC 8414), a token endpoint, revocation (RFC 7009) and published keys, over
//! an embedded SQLite or a shared Postgres store.

pub mod admin;
pub mod allocator;
pub mod audit;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod documents;
pub mod error;
pub mod federation;
pub mod grant;
pub mod healthcheck;
pub mod http;
pub mod introspection;
pub mod limits;
pub mod metrics;
pub mod params;
pub mod policy;
pub mod private_files;
pub mod registration;
pub mod revocation;
pub mod secret;
pub mod service;
pub mod signed_response;
pub mod signin;
pub mod store;
pub mod telemetry;
pub mod token;
pub mod vocabulary;
