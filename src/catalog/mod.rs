//! Typed catalog configuration → `Arc<dyn iceberg::Catalog>`.
//!
//! bcn defines no catalog trait of its own: it talks to every catalog through
//! [`iceberg::Catalog`], opened by the iceberg crates' builders with an `OpenDAL` storage factory
//! (local files, S3). This module turns plan settings into builder properties, checks that the
//! catalog answers, and names the catalog in every error.
//!
//! | type | crate | registers restored tables with | views (which `iceberg::Catalog` lacks) |
//! |---|---|---|---|
//! | `sql` | iceberg-catalog-sql | `register_table` | `VIEW` rows of `iceberg_tables` |
//! | `rest` | iceberg-catalog-rest | `register_table` (`POST .../register`) | its `rest_http` module: view endpoints |
//! | `glue` | iceberg-catalog-glue | `register_table` (Glue `CreateTable`) | none |
//! | `hms` | iceberg-catalog-hms, completed by its `hms` module | a Hive `create_table` of its own | `ICEBERG-VIEW` tables |

#[cfg(feature = "catalog-glue")]
mod glue;
#[cfg(feature = "catalog-hms")]
pub(crate) mod hms;
#[cfg(feature = "catalog-rest")]
mod rest;
#[cfg(feature = "catalog-rest")]
pub(crate) mod rest_http;
#[cfg(feature = "catalog-sql")]
mod sql;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use iceberg::io::{FileIO, FileIOBuilder};
use iceberg::{Catalog, NamespaceIdent, TableIdent};
use iceberg_storage_opendal::OpenDalResolvingStorageFactory;

use crate::plan::{CatalogKind, CatalogS3, CatalogSpec, Properties, Secret};

/// How long opening a catalog may take before it counts as unreachable. Connecting to a closed
/// port fails at once; this bounds a server that accepts connections and never answers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// The catalog's `SQLite` file does not exist (a restore target may create it).
    #[error(
        "cannot open catalog `{catalog}`: SQLite database file {} does not exist (check `catalogs.{catalog}.uri` in the plan)",
        file.display()
    )]
    Missing {
        /// The plan's name for it.
        catalog: String,
        /// The database file.
        file: std::path::PathBuf,
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
    /// The catalog cannot do what was asked.
    #[error("catalog `{catalog}` ({kind}) cannot {what}")]
    Unsupported {
        /// The plan's name for it.
        catalog: String,
        /// Its `type`.
        kind: &'static str,
        /// What it cannot do, and what to do instead.
        what: String,
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

/// An opened catalog with the `FileIO` that reaches its warehouse. Its `Debug` shows neither
/// the catalog nor the `FileIO`: theirs print their properties, credentials included.
#[derive(Clone)]
pub struct OpenCatalog {
    /// The plan's name for it.
    pub name: String,
    /// The plan's `type` of it.
    pub kind: &'static str,
    /// The catalog.
    pub catalog: Arc<dyn Catalog>,
    /// `FileIO` built from the catalog's properties, for writing restored files.
    pub file_io: FileIO,
    /// Whether restored tables can be registered ([`OpenCatalog::register`]).
    pub can_register: bool,
    /// Whether namespaces are single-level (Glue, Hive).
    pub single_level: bool,
    /// For `SQLite` catalogs: the database URI and catalog name, read directly to find every
    /// namespace (see [`OpenCatalog::all_namespaces`]).
    pub namespaces_sql: Option<(String, String)>,
    /// For Hive catalogs: the metastore client behind `catalog`, for views.
    #[cfg(feature = "catalog-hms")]
    pub(crate) hive: Option<Arc<hms::HiveCatalog>>,
    /// For REST catalogs: the endpoints iceberg-catalog-rest lacks (views, staged creates).
    #[cfg(feature = "catalog-rest")]
    pub rest: Option<Arc<rest_http::RestHttp>>,
}

/// A view as its catalog records it.
#[derive(Debug, Clone)]
pub struct ViewEntry {
    /// Where its current metadata file is.
    pub metadata_location: String,
}

impl OpenCatalog {
    /// A catalog opened for `spec`, with what every type shares: registration possible, no
    /// Hive, REST or SQL side channel (each module adds its own).
    fn new(spec: &CatalogSpec, catalog: Arc<dyn Catalog>, file_io: FileIO) -> Self {
        Self {
            name: spec.name.clone(),
            kind: spec.kind.type_name(),
            catalog,
            file_io,
            can_register: true,
            single_level: spec.kind.single_level_namespaces(),
            namespaces_sql: None,
            #[cfg(feature = "catalog-hms")]
            hive: None,
            #[cfg(feature = "catalog-rest")]
            rest: None,
        }
    }
}

impl std::fmt::Debug for OpenCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenCatalog")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("can_register", &self.can_register)
            .field("single_level", &self.single_level)
            .finish_non_exhaustive()
    }
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

    /// Fails when `ns` cannot exist in this catalog (a nested namespace in Glue or Hive).
    pub fn check_namespace(&self, ns: &NamespaceIdent) -> Result<(), CatalogError> {
        if self.single_level && ns.len() != 1 {
            return Err(CatalogError::Unsupported {
                catalog: self.name.clone(),
                kind: self.kind,
                what: format!(
                    "hold the nested database `{}`: its databases are single-level (restore with --target-database NAME)",
                    ns.join(".")
                ),
            });
        }
        Ok(())
    }

    /// Registers the table metadata at `metadata_location` as `ident`: the last step of a
    /// restore, once every file has been written and checked.
    pub async fn register(
        &self,
        ident: &TableIdent,
        metadata_location: &str,
    ) -> Result<(), CatalogError> {
        self.check_namespace(ident.namespace())?;
        if !self.can_register {
            return Err(CatalogError::Unsupported {
                catalog: self.name.clone(),
                kind: self.kind,
                what: format!("register existing table metadata (restoring {ident})"),
            });
        }
        self.catalog
            .register_table(ident, metadata_location.to_owned())
            .await
            .map(drop)
            .map_err(self.err(format!("registering {ident} at {metadata_location}")))
    }

    /// Where a REST server would put a new table `name` of `namespace` (a staged create,
    /// which commits nothing); `None` for other catalogs or when the server cannot stage.
    #[cfg_attr(
        not(feature = "catalog-rest"),
        expect(clippy::unused_async, reason = "only REST catalogs are asked")
    )]
    pub async fn default_table_location(
        &self,
        namespace: &[String],
        name: &str,
    ) -> Result<Option<String>, CatalogError> {
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            return match rest.default_table_location(namespace, name).await {
                Ok(location) => Ok(location),
                Err(e) => {
                    tracing::debug!(catalog = %self.name, error = %e, "the server cannot stage a table; using the warehouse layout");
                    Ok(None)
                }
            };
        }
        let _ = (namespace, name);
        Ok(None)
    }

    /// The warehouse location a REST server's configuration gives its clients.
    #[cfg_attr(
        not(feature = "catalog-rest"),
        expect(clippy::unused_async, reason = "only REST catalogs are asked")
    )]
    pub async fn warehouse_location(&self) -> Result<Option<String>, CatalogError> {
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            return rest
                .warehouse_location()
                .await
                .map_err(|reason| self.view_error("reading the server's configuration", reason));
        }
        Ok(None)
    }

    fn view_error(&self, what: &str, reason: impl std::fmt::Display) -> CatalogError {
        CatalogError::Unreachable {
            catalog: self.name.clone(),
            reason: format!("{what}: {reason}"),
        }
    }

    /// The names of the Iceberg views of `ns`, sorted; none for a catalog whose views bcn
    /// cannot reach (Glue, Hive) or that has none.
    pub async fn list_views(&self, ns: &NamespaceIdent) -> Result<Vec<String>, CatalogError> {
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            if !rest
                .has_views()
                .await
                .map_err(|r| self.view_error("reading the server's configuration", r))?
            {
                return Ok(Vec::new());
            }
            return rest
                .list_views(ns)
                .await
                .map_err(|r| self.view_error(&format!("listing the views of `{ns}`"), r));
        }
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, catalog)) = &self.namespaces_sql {
            return sql::list_views(uri, catalog, ns)
                .await
                .map(|views| views.into_iter().map(|(name, _)| name).collect())
                .map_err(|r| self.view_error(&format!("listing the views of `{ns}`"), r));
        }
        #[cfg(feature = "catalog-hms")]
        if let Some(hive) = &self.hive {
            return hive
                .views(ns)
                .await
                .map(|views| views.into_iter().map(|(name, _)| name).collect())
                .map_err(self.err(format!("listing the views of `{ns}`")));
        }
        let _ = ns;
        Ok(Vec::new())
    }

    /// The view `ident`, or `None` when there is no such view.
    pub async fn load_view(&self, ident: &TableIdent) -> Result<Option<ViewEntry>, CatalogError> {
        let what = || format!("loading view `{ident}`");
        // Some catalogs fail to list a database that does not exist: it has no view.
        if !self
            .catalog
            .namespace_exists(ident.namespace())
            .await
            .map_err(self.err(what()))?
        {
            return Ok(None);
        }
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            return rest
                .load_view(ident.namespace(), ident.name())
                .await
                .map(|v| {
                    v.map(|v| ViewEntry {
                        metadata_location: v.metadata_location,
                    })
                })
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, catalog)) = &self.namespaces_sql {
            return sql::load_view(uri, catalog, ident)
                .await
                .map(|location| location.map(|metadata_location| ViewEntry { metadata_location }))
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-hms")]
        if let Some(hive) = &self.hive {
            return hive
                .views(ident.namespace())
                .await
                .map(|views| {
                    views
                        .into_iter()
                        .find(|(name, _)| name == ident.name())
                        .map(|(_, metadata_location)| ViewEntry { metadata_location })
                })
                .map_err(self.err(what()));
        }
        let _ = what;
        Ok(None)
    }

    /// Registers the view metadata file at `metadata_location` (holding `metadata`) as
    /// `ident`: the last step of a view's restore.
    pub async fn register_view(
        &self,
        ident: &TableIdent,
        metadata_location: &str,
        metadata: &serde_json::Value,
    ) -> Result<(), CatalogError> {
        let what = || format!("registering view {ident} at {metadata_location}");
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            return rest
                .register_view(ident.namespace(), ident.name(), metadata_location, metadata)
                .await
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, catalog)) = &self.namespaces_sql {
            return sql::register_view(uri, catalog, ident, metadata_location)
                .await
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-hms")]
        if let Some(hive) = &self.hive {
            return hive
                .register_view(ident, metadata_location, metadata)
                .await
                .map_err(self.err(what()));
        }
        let _ = (what, metadata);
        Err(CatalogError::Unsupported {
            catalog: self.name.clone(),
            kind: self.kind,
            what: format!(
                "hold Iceberg views through bcn (restoring view {ident}); restore it into a REST, SQL or Hive catalog"
            ),
        })
    }

    /// Drops the view `ident` from the catalog; its files stay.
    pub async fn drop_view(&self, ident: &TableIdent) -> Result<(), CatalogError> {
        let what = || format!("dropping view {ident}");
        #[cfg(feature = "catalog-rest")]
        if let Some(rest) = &self.rest {
            return rest
                .drop_view(ident.namespace(), ident.name())
                .await
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, catalog)) = &self.namespaces_sql {
            return sql::drop_view(uri, catalog, ident)
                .await
                .map_err(|r| self.view_error(&what(), r));
        }
        #[cfg(feature = "catalog-hms")]
        if let Some(hive) = &self.hive {
            return hive.drop_view(ident).await.map_err(self.err(what()));
        }
        Err(CatalogError::Unsupported {
            catalog: self.name.clone(),
            kind: self.kind,
            what: what(),
        })
    }

    /// The metadata location of every table, when the catalog tells them all at once without
    /// reading any metadata file (SQL catalogs: one query); `None` otherwise, or when that
    /// query fails (callers then load each table).
    pub async fn table_locations(&self) -> Option<HashMap<TableIdent, String>> {
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, catalog)) = &self.namespaces_sql {
            match sql::table_locations(uri, catalog).await {
                Ok(rows) => {
                    return Some(
                        rows.into_iter()
                            .filter_map(|(ns, name, location)| {
                                let ns = NamespaceIdent::from_strs(ns.split('.')).ok()?;
                                Some((TableIdent::new(ns, name), location))
                            })
                            .collect(),
                    );
                }
                Err(e) => {
                    tracing::debug!(catalog = %self.name, error = %e, "listing metadata locations; loading each table instead");
                }
            }
        }
        None
    }

    /// Every namespace of the catalog, nested ones included, sorted.
    pub async fn all_namespaces(&self) -> Result<Vec<NamespaceIdent>, CatalogError> {
        #[cfg(feature = "catalog-sql")]
        if let Some((uri, name)) = &self.namespaces_sql {
            let mut out =
                sql::namespaces(uri, name)
                    .await
                    .map_err(|reason| CatalogError::Unreachable {
                        catalog: self.name.clone(),
                        reason,
                    })?;
            out.sort();
            out.dedup();
            return Ok(out);
        }
        let mut out = Vec::new();
        let mut queue: Vec<Option<NamespaceIdent>> = vec![None];
        while let Some(parent) = queue.pop() {
            if parent.is_some() && self.single_level {
                continue;
            }
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

/// Opens the catalog described by `spec`, and checks that it answers.
pub async fn open(spec: &CatalogSpec, mode: OpenMode) -> Result<OpenCatalog, CatalogError> {
    let factory = Arc::new(OpenDalResolvingStorageFactory::new());
    // SQL catalogs connect when opened; the others are probed.
    let kind: &CatalogKind = &spec.kind;
    let opened: Result<(OpenCatalog, bool), CatalogError> = match kind {
        #[cfg(feature = "catalog-sql")]
        CatalogKind::Sql(config) => sql::open(spec, config, mode, factory)
            .await
            .map(|o| (o, true)),
        #[cfg(feature = "catalog-rest")]
        CatalogKind::Rest(config) => rest::open(spec, config, factory).await.map(|o| (o, false)),
        #[cfg(feature = "catalog-glue")]
        CatalogKind::Glue(config) => glue::open(spec, config, factory).await.map(|o| (o, false)),
        #[cfg(feature = "catalog-hms")]
        CatalogKind::Hms(config) => hms::open(spec, config, factory).await.map(|o| (o, false)),
        // `allow`, not `expect`: the arm is unreachable only when every catalog is built in.
        #[allow(
            unreachable_patterns,
            reason = "reached only in builds without some catalog"
        )]
        kind => {
            let _ = (mode, factory);
            Err(unreachable(
                spec,
                format!(
                    "this build of bcn has no `{}` catalog support (cargo feature catalog-{})",
                    kind.type_name(),
                    kind.type_name()
                ),
            ))
        }
    };
    let (opened, probed) = opened?;
    if !probed {
        probe(spec, &opened).await?;
    }
    Ok(opened)
}

/// REST, Glue and Hive clients connect lazily: one cheap call shows whether the catalog
/// answers, so that an unreachable catalog stops a run before anything is written.
async fn probe(spec: &CatalogSpec, opened: &OpenCatalog) -> Result<(), CatalogError> {
    let answer = tokio::time::timeout(PROBE_TIMEOUT, opened.catalog.list_namespaces(None)).await;
    let reason = match answer {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => chain(&e),
        Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
    };
    Err(unreachable(
        spec,
        format!(
            "{reason} (check that the {} catalog at {} is running and `catalogs.{}` in the plan)",
            spec.kind.type_name(),
            spec.kind.address(),
            spec.name
        ),
    ))
}

use crate::error::error_chain as chain;

fn unreachable(spec: &CatalogSpec, reason: String) -> CatalogError {
    CatalogError::Unreachable {
        catalog: spec.name.clone(),
        reason,
    }
}

/// The properties every catalog type starts from: the plan's `properties`, then the `s3.*`
/// `FileIO` properties of its `s3:` block; each type then adds its typed keys.
fn base_props(properties: &Properties, s3: Option<&CatalogS3>) -> HashMap<String, String> {
    let mut props = crate::plan::exposed(properties);
    put_s3_props(&mut props, s3);
    props
}

/// Adds the `s3.*` `FileIO` properties of a catalog's `s3:` block.
fn put_s3_props(props: &mut HashMap<String, String>, s3: Option<&CatalogS3>) {
    let Some(s3) = s3 else { return };
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            props.insert(key.to_owned(), v.to_owned());
        }
    };
    put("s3.endpoint", s3.endpoint.as_deref());
    put("s3.region", s3.region.as_deref());
    if let Some(c) = &s3.credentials {
        put("s3.access-key-id", Some(c.access_key_id.expose()));
        put("s3.secret-access-key", Some(c.secret_access_key.expose()));
        put(
            "s3.session-token",
            c.session_token.as_ref().map(Secret::expose),
        );
    }
    if let Some(path_style) = s3.path_style {
        props.insert("s3.path-style-access".into(), path_style.to_string());
    }
}

/// A `FileIO` for `props`, able to reach local files and S3.
pub fn file_io<S: std::hash::BuildHasher>(props: &HashMap<String, String, S>) -> FileIO {
    FileIOBuilder::new(Arc::new(OpenDalResolvingStorageFactory::new()))
        .with_props(props.iter())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AwsCredentials;

    #[test]
    fn the_s3_block_becomes_file_io_properties() {
        let s3 = CatalogS3 {
            endpoint: Some("http://127.0.0.1:9000".into()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            credentials: Some(AwsCredentials {
                access_key_id: "id".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            }),
        };
        let mut props = HashMap::new();
        put_s3_props(&mut props, Some(&s3));
        let mut keys: Vec<_> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "s3.access-key-id=id",
                "s3.endpoint=http://127.0.0.1:9000",
                "s3.path-style-access=true",
                "s3.region=us-east-1",
                "s3.secret-access-key=secret",
            ]
        );
    }
}
