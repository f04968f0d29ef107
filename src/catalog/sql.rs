//! SQL catalogs (`SQLite`, `PostgreSQL`) through iceberg-catalog-sql.

use std::path::Path;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg::io::StorageFactory;
use iceberg_catalog_sql::SqlCatalogBuilder;

use super::{CatalogError, OpenCatalog, OpenMode, base_props, file_io};
use crate::plan::{CatalogSpec, SqlConfig};

pub(super) async fn open(
    spec: &CatalogSpec,
    config: &SqlConfig,
    mode: OpenMode,
    factory: Arc<dyn StorageFactory>,
) -> Result<OpenCatalog, CatalogError> {
    let SqlConfig {
        uri,
        warehouse,
        catalog_name,
        properties,
        s3,
    } = config;
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
                return Err(CatalogError::Missing {
                    catalog: spec.name.clone(),
                    file: file.to_path_buf(),
                });
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
    let mut props = base_props(properties, s3.as_ref());
    props.insert("uri".into(), uri);
    if let Some(w) = warehouse {
        props.insert("warehouse".into(), w.clone());
    }
    let catalog = SqlCatalogBuilder::default()
        .with_storage_factory(factory)
        .load(catalog_name.clone(), props.clone())
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let mut opened = OpenCatalog::new(spec, Arc::new(catalog), file_io(&props));
    opened.namespaces_sql = Some((props["uri"].clone(), catalog_name.clone()));
    Ok(opened)
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
    let pool = connect(uri).await?;
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

/// Connects to the catalog database with the drivers iceberg-catalog-sql installs.
async fn connect(uri: &str) -> Result<sqlx::AnyPool, String> {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(uri)
        .await
        .map_err(|e| format!("opening the catalog database: {e}"))
}

/// Whether a database error says the `iceberg_type` column is missing: a catalog still on the
/// first JDBC schema (V0), which has no views.
fn lacks_type_column(e: &sqlx::Error) -> bool {
    e.to_string().contains("iceberg_type")
}

/// The views of `ns` with their metadata locations: the `iceberg_tables` rows whose
/// `iceberg_type` is `VIEW`, as Java's JDBC catalog writes them (iceberg-rust and pyiceberg
/// list only the others as tables).
pub(super) async fn list_views(
    uri: &str,
    catalog_name: &str,
    ns: &iceberg::NamespaceIdent,
) -> Result<Vec<(String, String)>, String> {
    const QUERY: &str = "SELECT table_name, metadata_location FROM iceberg_tables \
        WHERE catalog_name = $1 AND table_namespace = $2 AND iceberg_type = 'VIEW'";
    let pool = connect(uri).await?;
    let rows: Result<Vec<(String, Option<String>)>, _> = sqlx::query_as(QUERY)
        .bind(catalog_name)
        .bind(ns.join("."))
        .fetch_all(&pool)
        .await;
    pool.close().await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) if lacks_type_column(&e) => Vec::new(),
        Err(e) => return Err(format!("listing views: {e}")),
    };
    let mut out: Vec<(String, String)> = rows
        .into_iter()
        .filter_map(|(name, location)| location.map(|l| (name, l)))
        .collect();
    out.sort();
    Ok(out)
}

/// The metadata location of every table of the catalog, in one query: the `iceberg_tables`
/// rows that are not views (a catalog on the first JDBC schema has no `iceberg_type` and holds
/// tables only).
pub(super) async fn table_locations(
    uri: &str,
    catalog_name: &str,
) -> Result<Vec<(String, String, String)>, String> {
    const QUERY: &str = "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables \
        WHERE catalog_name = $1 AND (iceberg_type IS NULL OR iceberg_type <> 'VIEW')";
    const QUERY_V0: &str = "SELECT table_namespace, table_name, metadata_location \
        FROM iceberg_tables WHERE catalog_name = $1";
    let pool = connect(uri).await?;
    let mut rows: Result<Vec<(String, String, Option<String>)>, _> = sqlx::query_as(QUERY)
        .bind(catalog_name)
        .fetch_all(&pool)
        .await;
    if let Err(e) = &rows
        && lacks_type_column(e)
    {
        rows = sqlx::query_as(QUERY_V0)
            .bind(catalog_name)
            .fetch_all(&pool)
            .await;
    }
    pool.close().await;
    Ok(rows
        .map_err(|e| format!("listing tables: {e}"))?
        .into_iter()
        .filter_map(|(ns, name, location)| Some((ns, name, location?)))
        .collect())
}

/// The metadata location of view `ident`, if there is such a `VIEW` row.
pub(super) async fn load_view(
    uri: &str,
    catalog_name: &str,
    ident: &iceberg::TableIdent,
) -> Result<Option<String>, String> {
    const QUERY: &str = "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = $1 \
        AND table_namespace = $2 AND table_name = $3 AND iceberg_type = 'VIEW'";
    let pool = connect(uri).await?;
    let row: Result<Option<Option<String>>, _> = sqlx::query_scalar(QUERY)
        .bind(catalog_name)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .fetch_optional(&pool)
        .await;
    pool.close().await;
    match row {
        Ok(location) => Ok(location.flatten()),
        Err(e) if lacks_type_column(&e) => Ok(None),
        Err(e) => Err(format!("reading the view's row: {e}")),
    }
}

/// Registers a view as Java's JDBC catalog creates one: an `iceberg_tables` row of type `VIEW`.
pub(super) async fn register_view(
    uri: &str,
    catalog_name: &str,
    ident: &iceberg::TableIdent,
    metadata_location: &str,
) -> Result<(), String> {
    const INSERT: &str = "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, \
        metadata_location, previous_metadata_location, iceberg_type) VALUES ($1, $2, $3, $4, NULL, 'VIEW')";
    let pool = connect(uri).await?;
    let done = sqlx::query(INSERT)
        .bind(catalog_name)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .bind(metadata_location)
        .execute(&pool)
        .await;
    pool.close().await;
    match done {
        Ok(_) => Ok(()),
        Err(e) if lacks_type_column(&e) => Err(
            "the catalog database has no `iceberg_type` column (the first JDBC schema, V0), so it cannot hold views; open it once with Java's JdbcCatalog and `jdbc.schema-version=V1`, or restore the view into another catalog".into(),
        ),
        Err(e) => Err(format!("inserting the view's row: {e}")),
    }
}

/// Deletes a view's `iceberg_tables` row.
pub(super) async fn drop_view(
    uri: &str,
    catalog_name: &str,
    ident: &iceberg::TableIdent,
) -> Result<(), String> {
    const DELETE: &str = "DELETE FROM iceberg_tables WHERE catalog_name = $1 \
        AND table_namespace = $2 AND table_name = $3 AND iceberg_type = 'VIEW'";
    let pool = connect(uri).await?;
    let done = sqlx::query(DELETE)
        .bind(catalog_name)
        .bind(ident.namespace().join("."))
        .bind(ident.name())
        .execute(&pool)
        .await;
    pool.close().await;
    done.map(drop)
        .map_err(|e| format!("deleting the view's row: {e}"))
}

/// The database file of a `sqlite://` URI.
fn sqlite_file(uri: &str) -> Option<&Path> {
    let rest = uri.strip_prefix("sqlite://")?;
    let file = rest.split('?').next().unwrap_or(rest);
    Some(Path::new(file))
}
