//! SQL catalogs (`SQLite`, `PostgreSQL`) through iceberg-catalog-sql.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg::io::StorageFactory;
use iceberg_catalog_sql::SqlCatalogBuilder;

use super::{CatalogError, OpenCatalog, OpenMode, file_io, put_s3_props};
use crate::plan::{CatalogKind, CatalogSpec};

pub(super) async fn open(
    spec: &CatalogSpec,
    mode: OpenMode,
    factory: Arc<dyn StorageFactory>,
) -> Result<OpenCatalog, CatalogError> {
    let CatalogKind::Sql {
        uri,
        warehouse,
        catalog_name,
        properties,
        s3,
    } = &spec.kind
    else {
        unreachable!("sql::open is called for SQL catalogs only");
    };
    let unreachable = |reason: String| CatalogError::Unreachable {
        catalog: spec.name.clone(),
        reason,
    };
    let mut uri = uri.clone();
    if let Some(file) = sqlite_file(&uri)
        && !file.exists()
    {
        match mode {
            OpenMode::Existing => {
                return Err(unreachable(format!(
                    "SQLite database file {} does not exist (check `catalogs.{}.uri` in the plan)",
                    file.display(),
                    spec.name
                )));
            }
            OpenMode::CreateIfMissing => {
                if let Some(dir) = file.parent() {
                    fs_err::create_dir_all(dir).map_err(|e| unreachable(e.to_string()))?;
                }
                uri.push_str(if uri.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
    }
    let mut props: HashMap<String, String> = properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    put_s3_props(&mut props, s3.as_ref());
    props.insert("uri".into(), uri);
    if let Some(w) = warehouse {
        props.insert("warehouse".into(), w.clone());
    }
    let catalog = SqlCatalogBuilder::default()
        .with_storage_factory(factory)
        .load(catalog_name.clone(), props.clone())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    Ok(OpenCatalog {
        name: spec.name.clone(),
        kind: "sql",
        catalog: Arc::new(catalog),
        file_io: file_io(&props),
        can_register: true,
        namespaces_sql: Some((props["uri"].clone(), catalog_name.clone())),
        single_level: false,
    })
}

/// Every namespace of a SQL catalog (`SQLite` or `PostgreSQL`), read from its two tables (the
/// JDBC schema that Java, pyiceberg and iceberg-rust share): a namespace with a properties
/// row, or with tables. The catalog API cannot list `a.b` when `a` has no row of its own,
/// which pyiceberg allows.
pub(super) async fn namespaces(
    uri: &str,
    catalog_name: &str,
) -> Result<Vec<iceberg::NamespaceIdent>, String> {
    const QUERY: &str = "SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = $1 \
        UNION SELECT table_namespace FROM iceberg_tables WHERE catalog_name = $1";
    // The same drivers iceberg-catalog-sql installs for its own `AnyPool`.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(uri)
        .await
        .map_err(|e| format!("opening the catalog database: {e}"))?;
    let names: Vec<String> = sqlx::query_scalar(QUERY)
        .bind(catalog_name)
        .fetch_all(&pool)
        .await
        .map_err(|e| format!("listing namespaces: {e}"))?;
    pool.close().await;
    let mut out = Vec::new();
    for name in names {
        let ns = iceberg::NamespaceIdent::from_strs(name.split('.'))
            .map_err(|e| format!("namespace `{name}`: {e}"))?;
        out.push(ns);
    }
    Ok(out)
}

/// The database file of a `sqlite://` URI.
fn sqlite_file(uri: &str) -> Option<&Path> {
    let rest = uri.strip_prefix("sqlite://")?;
    let file = rest.split('?').next().unwrap_or(rest);
    Some(Path::new(file))
}
