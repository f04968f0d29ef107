//! bcn backs up and restores Apache Iceberg tables, databases and catalogs.
//!
//! # Architecture
//!
//! Dependencies point one way: `cli → serve → engine → {plan, catalog, repo → store}`.
//!
//! | module | role |
//! |---|---|
//! | `cli` (binary side) | the only layer that knows clap, prints, and picks exit codes |
//! | `serve` (feature `serve`) | the HTTP API: roles, jobs with a persistent history, a scheduler |
//! | [`engine`] | backup, restore, verify, apply, forget and gc; progress goes to an [`engine::Observer`] |
//! | `engine::apply` | one plan entry as a value (`EntryRun`): due → backup → retention → verification → reports → notifications |
//! | `engine::rewrite` | path rewriting inside metadata JSON, Avro manifests, position deletes and deletion vectors |
//! | `engine::transfer` | moving bytes between a table's `FileIO` and the repository, checksummed, bounded in memory |
//! | [`plan`] | the YAML plan: raw serde model, pure validation into [`plan::Plan`]; one config struct per catalog type |
//! | [`catalog`] | plan settings → `Arc<dyn iceberg::Catalog>`, plus views and registration where the crates lack them |
//! | [`repo`] | the repository format: layout, versioned records, the writer lock |
//! | [`store`] | the [`store::BackupStore`] seam and its backends: local (durable, write-behind), memory, S3, encrypted |
//! | [`report`] | the text and Markdown reports (Handlebars) |
//! | [`context`] | clock and ids, injectable for deterministic tests |
//! | [`names`] | the one gate for names and paths read from catalogs and repositories |
//! | [`location`] | [`location::Location`]: repositories, warehouses and restore roots, parsed once where they enter |
//! | [`secret`] | [`secret::Secret`] values and the redaction of everything written |
//!
//! Iceberg files are read and written only through iceberg's `FileIO`; repository objects only
//! through a [`store::BackupStore`]. Nothing here assumes a single table or a local filesystem.

// A bcn that can open no catalog can back nothing up: refuse to build it, rather than build one
// that fails on every plan. The smallest build is `--no-default-features --features
// catalog-sql`.
#[cfg(not(any(
    feature = "catalog-sql",
    feature = "catalog-rest",
    feature = "catalog-glue",
    feature = "catalog-hms"
)))]
compile_error!(
    "bcn needs at least one catalog: enable a feature among catalog-sql, catalog-rest, catalog-glue and catalog-hms"
);

pub mod catalog;
pub mod cli;
pub mod context;
pub mod engine;
pub mod error;
pub mod location;
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
