//! Integration tests: one binary, real components. Source tables are written by pyiceberg,
//! restored tables are read back by pyiceberg and compared row for row.
//!
//! Run with `cargo nextest run` (or `cargo test`); the first run installs the pinned Python
//! venv through `scripts/test-env.sh`.

#![allow(
    clippy::unwrap_used,
    clippy::missing_panics_doc,
    clippy::case_sensitive_file_extension_comparisons,
    reason = "test code: a panic is a failed test"
)]

mod apply;
mod catalog_suite;
mod cross_stack;
mod edge_cases;
mod encryption;
mod failures;
mod granularity;
mod hostile;
mod postgres;
mod repo_compat;
mod round_trip;
mod s3_repository;
mod secrets;
mod serve;
mod signals;
mod store_suite;
mod support;
mod unattended;
mod verify;
mod views;
