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
        single_level: false,
    })
}

/// The database file of a `sqlite://` URI.
fn sqlite_file(uri: &str) -> Option<&Path> {
    let rest = uri.strip_prefix("sqlite://")?;
    let file = rest.split('?').next().unwrap_or(rest);
    Some(Path::new(file))
}
