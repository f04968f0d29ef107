//! Typed catalog configuration → `Arc<dyn iceberg::Catalog>`.
//!
//! bcn defines no catalog trait of its own: it talks to every catalog through
//! [`iceberg::Catalog`], opened by the iceberg crates' builders with an `OpenDAL` storage factory
//! (local files, S3). This module only turns plan settings into builder properties and names
//! the catalog in every error.

#[cfg(feature = "catalog-sql")]
mod sql;

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::{Catalog, NamespaceIdent};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;

use crate::plan::{CatalogKind, CatalogSpec};

/// Errors reaching a catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The catalog could not be opened.
    #[error("cannot open catalog `{catalog}`: {reason}")]
    Unreachable {
        /// The plan's name for it.
        catalog: String,
        /// Why, in words a user can act on.
        reason: String,
    },
    /// The catalog answered with an error.
    #[error("catalog `{catalog}`: {what}")]
    Iceberg {
        /// The plan's name for it.
        catalog: String,
        /// What was being done.
        what: String,
        /// iceberg's error.
        #[source]
        source: Box<iceberg::Error>,
    },
}

/// Whether opening may create what is missing (a restore target may be a new `SQLite` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The catalog must exist (backup sources).
    Existing,
    /// A missing `SQLite` database file is created (restore targets).
    CreateIfMissing,
}

/// An opened catalog with the `FileIO` that reaches its warehouse.
#[derive(Debug, Clone)]
pub struct OpenCatalog {
    /// The plan's name for it.
    pub name: String,
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// `FileIO` built from the catalog's properties, for writing restored files.
    pub file_io: FileIO,
    /// Whether the catalog implements `register_table`.
    pub can_register: bool,
}

impl OpenCatalog {
    /// Wraps an iceberg error with the catalog name and what was being done.
    pub fn err(&self, what: impl Into<String>) -> impl FnOnce(iceberg::Error) -> CatalogError + '_ {
        let what = what.into();
        move |source| CatalogError::Iceberg {
            catalog: self.name.clone(),
            what,
            source: Box::new(source),
        }
    }

    /// Every namespace of the catalog, nested ones included, sorted.
    pub async fn all_namespaces(&self) -> Result<Vec<NamespaceIdent>, CatalogError> {
        let mut out = Vec::new();
        let mut queue: Vec<Option<NamespaceIdent>> = vec![None];
        while let Some(parent) = queue.pop() {
            let children = self
                .catalog
                .list_namespaces(parent.as_ref())
                .await
                .map_err(self.err("listing namespaces"))?;
            for child in children {
                // Some catalogs match the parent by prefix (`db1` also returns `db1x`), and some
                // return the parent itself: keep only true children.
                let is_child = match &parent {
                    None => true,
                    Some(p) => {
                        child.len() == p.len() + 1
                            && child.iter().zip(p.iter()).all(|(a, b)| a == b)
                    }
                };
                if is_child && !out.contains(&child) {
                    queue.push(Some(child.clone()));
                    out.push(child);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Opens the catalog described by `spec`.
pub async fn open(spec: &CatalogSpec, mode: OpenMode) -> Result<OpenCatalog, CatalogError> {
    let factory = Arc::new(OpenDalResolvingStorageFactory::new());
    match &spec.kind {
        #[cfg(feature = "catalog-sql")]
        CatalogKind::Sql { .. } => sql::open(spec, mode, factory).await,
        #[cfg(not(feature = "catalog-sql"))]
        CatalogKind::Sql { .. } => {
            let _ = (mode, factory);
            Err(CatalogError::Unreachable {
                catalog: spec.name.clone(),
                reason: "this build of bcn has no SQL catalog support (feature catalog-sql)".into(),
            })
        }
    }
}

/// A `FileIO` for `props`, able to reach local files and S3.
pub fn file_io<S: std::hash::BuildHasher>(props: &HashMap<String, String, S>) -> FileIO {
    FileIOBuilder::new(Arc::new(OpenDalResolvingStorageFactory::new()))
        .with_props(props.iter())
        .build()
}
