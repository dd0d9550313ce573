//! The integration tests, in one binary: the crate is linked once rather than once per
//! file, and the tests of every module run side by side. Each module is one area of the
//! service; `common` holds the helpers they share (and its macros, hence `macro_use`).
//!
//! Two test files stay binaries of their own, because they need a process to
//! themselves: `tests/cache_metrics.rs` (the metrics recorder is process-wide, and the
//! cache totals it reads are set from whichever app was scraped last) and
//! `tests/timing.rs` (its medians compare latencies, which tests running beside it
//! would skew).
//!
//! Snapshots (insta) are in `snapshots/` here, named after the module path
//! (`all__bodies__error_bodies.snap`).

#[macro_use]
mod common;

mod audit;
mod binary;
mod bodies;
mod browser;
mod client_policy;
mod connections;
mod credentials;
mod exchange;
mod federation;
mod hostile;
mod id_jag;
mod instances;
mod introspect;
mod keys;
mod layering;
mod malformed;
mod metadata;
mod metadata_documents;
mod oauth2_client;
mod observability;
mod openapi;
mod operator;
mod outage;
mod propagation;
mod registration;
mod shutdown;
mod signin;
mod store;
mod token;
mod upgrades;
mod users;
