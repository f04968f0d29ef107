//! bcn backs up and restores Apache Iceberg tables, databases and catalogs.
//!
//! # Architecture
//!
//! Dependencies point one way: `cli → engine → {plan, catalog, repo → store}`.
//!
//! | module | role |
//! |---|---|
//! | `cli` (binary side) | the only layer that knows clap, prints, and picks exit codes |
//! | [`engine`] | backup and restore, as `prepare` then `execute`; reports progress to an [`engine::Observer`] |
//! | [`plan`] | the YAML plan: raw serde model, pure validation into [`plan::Plan`] |
//! | [`catalog`] | plan settings → `Arc<dyn iceberg::Catalog>` (no catalog trait of our own) |
//! | [`repo`] | the repository format: layout, versioned records, the writer lock |
//! | [`store`] | the [`store::BackupStore`] seam and its backends (local, memory) |
//! | [`context`] | clock and ids, injectable for deterministic tests |
//! | [`names`] | the one gate for names and paths read from catalogs and repositories |
//! | [`secret`] | secret values, redacted from logs, output and reports |
//!
//! Iceberg files are read and written only through iceberg's `FileIO`; repository objects only
//! through a [`store::BackupStore`]. Nothing here assumes a single table or a local filesystem.

pub mod catalog;
pub mod cli;
pub mod context;
pub mod engine;
pub mod error;
pub mod names;
pub mod plan;
pub mod repo;
pub mod report;
pub mod secret;
#[cfg(feature = "serve")]
pub mod serve;
pub mod store;

/// `bcn <version>`, recorded in everything bcn writes.
pub const VERSION_STRING: &str = concat!("bcn ", env!("CARGO_PKG_VERSION"));
