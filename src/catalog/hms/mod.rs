//! Hive Metastore through iceberg-catalog-hms, completed where bcn needs more than it offers.
//!
//! [`HiveCatalog`] implements [`iceberg::Catalog`] by delegating to `HmsCatalog`, except:
//!
//! - `list_tables` keeps Iceberg tables only (`table_type=ICEBERG`): a metastore also holds
//!   plain Hive tables and views, which have no Iceberg metadata to back up.
//! - `register_table` (the crate has none) creates the Hive table directly: an
//!   `EXTERNAL_TABLE` with `table_type=ICEBERG`, `metadata_location` and `EXTERNAL=TRUE`, its
//!   storage descriptor at the table location with the columns of the current schema, as
//!   Iceberg's `HiveCatalog` does.
//! - `create_table` writes the first metadata file and registers it the same way (the crate
//!   refuses `timestamptz` columns; Hive 2 stores them as `timestamp`, as Java Iceberg does).
//! - `create_namespace` drops an owner type that comes without an owner (as databases read
//!   back from a metastore can have), which the crate refuses.
//! - a nested namespace is refused with a message that says why.
//! - views (which the crate does not know) are listed, registered and dropped as Java's
//!   `HiveCatalog` keeps them: `VIRTUAL_VIEW` tables with `table_type=ICEBERG-VIEW`.
//!
//! The metastore rewrites `file:///x` locations as `file:/x`; `metadata_location` is a table
//! parameter and is kept verbatim.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use hive_metastore::{
    ThriftHiveMetastoreClient, ThriftHiveMetastoreClientBuilder,
    ThriftHiveMetastoreCreateTableException,
};
use iceberg::io::{FileIO, StorageFactory};
use iceberg::spec::{TableMetadata, TableMetadataBuilder};
use iceberg::table::Table;
use iceberg::{
    Catalog, CatalogBuilder, Error, ErrorKind, MetadataLocation, Namespace, NamespaceIdent, Result,
    TableCommit, TableCreation, TableIdent,
};
use iceberg_catalog_hms::{HmsCatalog, HmsCatalogBuilder};
use pilota::FastStr;
use volo_thrift::MaybeException;

mod shape;

use shape::{ICEBERG_VIEW, hive_table, hive_view, is_iceberg};

use super::{CatalogError, OpenCatalog, base_props, file_io, unreachable};
use crate::plan::{CatalogSpec, HmsConfig};

pub(super) async fn open(
    spec: &CatalogSpec,
    config: &HmsConfig,
    factory: Arc<dyn StorageFactory>,
) -> std::result::Result<OpenCatalog, CatalogError> {
    let HmsConfig {
        address,
        warehouse,
        framed,
        properties,
        s3,
    } = config;
    let mut props = base_props(properties, s3.as_ref());
    let io = file_io(&props);
    props.insert("uri".into(), address.clone());
    props.insert("warehouse".into(), warehouse.clone());
    let transport = if *framed { "framed" } else { "buffered" };
    props.insert("thrift_transport".into(), transport.into());
    let inner = HmsCatalogBuilder::default()
        .with_storage_factory(factory)
        .load(spec.name.clone(), props)
        .await
        .map_err(|e| unreachable(spec, super::chain(&e)))?;
    // Resolved by tokio's resolver, off the async threads.
    let socket = tokio::net::lookup_host(address.as_str())
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| unreachable(spec, format!("cannot resolve `{address}`")))?;
    let builder = ThriftHiveMetastoreClientBuilder::new("hms").address(socket);
    let client = if *framed {
        builder
            .make_codec(volo_thrift::codec::default::DefaultMakeCodec::framed())
            .build()
    } else {
        builder
            .make_codec(volo_thrift::codec::default::DefaultMakeCodec::buffered())
            .build()
    };
    let hive = Arc::new(HiveCatalog {
        name: spec.name.clone(),
        inner,
        client,
        file_io: io.clone(),
        runtime: iceberg::Runtime::try_current()
            .map_err(|e| unreachable(spec, super::chain(&e)))?,
    });
    let mut opened = OpenCatalog::new(spec, hive.clone(), io);
    opened.hive = Some(hive);
    Ok(opened)
}

/// The database owner property of iceberg-catalog-hms.
const DB_OWNER: &str = "hive.metastore.database.owner";
/// Its owner type property, refused without [`DB_OWNER`].
const DB_OWNER_TYPE: &str = "hive.metastore.database.owner-type";

/// `HmsCatalog` with `register_table`, an Iceberg-only `list_tables`, and a `create_table`
/// that accepts every Iceberg type.
pub(crate) struct HiveCatalog {
    name: String,
    inner: HmsCatalog,
    client: ThriftHiveMetastoreClient,
    file_io: FileIO,
    /// What the tables it hands out spawn their work on (the one `inner` took).
    runtime: iceberg::Runtime,
}

impl std::fmt::Debug for HiveCatalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HiveCatalog")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl HiveCatalog {
    /// The table just created or registered from `metadata`, without reading its metadata
    /// again as `load_table` would.
    fn table(
        &self,
        ident: TableIdent,
        metadata: TableMetadata,
        metadata_location: String,
    ) -> Result<Table> {
        Table::builder()
            .file_io(self.file_io.clone())
            .identifier(ident)
            .metadata_location(metadata_location)
            .metadata(metadata)
            .runtime(self.runtime.clone())
            .build()
    }

    /// Every Hive table of `namespace` (Iceberg tables and views, plain Hive tables).
    async fn hive_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<hive_metastore::Table>> {
        let db = self.database(namespace)?;
        // The crate lists every Hive table of the database, whatever its type.
        let all = self.inner.list_tables(namespace).await?;
        if all.is_empty() {
            return Ok(Vec::new());
        }
        let names = all
            .iter()
            .map(|t| FastStr::from(t.name().to_owned()))
            .collect();
        match self
            .client
            .get_table_objects_by_name(db.clone().into(), names)
            .await
        {
            Ok(MaybeException::Ok(tables)) => Ok(tables),
            Ok(MaybeException::Exception(e)) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("reading the tables of database `{db}`: {e:?}"),
            )),
            Err(e) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("reading the tables of database `{db}`"),
            )
            .with_source(e)),
        }
    }

    /// The Iceberg views of `namespace` with their metadata locations, as Java's `HiveCatalog`
    /// marks them: `VIRTUAL_VIEW` tables with `table_type=ICEBERG-VIEW`.
    pub(super) async fn views(&self, namespace: &NamespaceIdent) -> Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = self
            .hive_tables(namespace)
            .await?
            .iter()
            .filter(|t| {
                t.table_type
                    .as_ref()
                    .is_some_and(|k| k.eq_ignore_ascii_case("VIRTUAL_VIEW"))
                    && t.parameters
                        .as_ref()
                        .and_then(|p| p.get("table_type"))
                        .is_some_and(|k| k.eq_ignore_ascii_case(ICEBERG_VIEW))
            })
            .filter_map(|t| {
                let location = t.parameters.as_ref()?.get("metadata_location")?;
                Some((t.table_name.as_ref()?.to_string(), location.to_string()))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    /// Registers view metadata as Java's `HiveCatalog` creates a view.
    pub(super) async fn register_view(
        &self,
        ident: &TableIdent,
        metadata_location: &str,
        metadata: &serde_json::Value,
    ) -> Result<()> {
        let db = self.database(ident.namespace())?;
        let table = hive_view(&db, ident.name(), metadata, metadata_location)?;
        self.create(ident, table).await
    }

    /// Drops a view's Hive table (never its files).
    pub(super) async fn drop_view(&self, ident: &TableIdent) -> Result<()> {
        let db = self.database(ident.namespace())?;
        match self
            .client
            .drop_table(db.into(), ident.name().to_owned().into(), false)
            .await
        {
            Ok(MaybeException::Ok(())) => Ok(()),
            Ok(MaybeException::Exception(e)) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("the metastore refused to drop view {ident}: {e:?}"),
            )),
            Err(e) => Err(
                Error::new(ErrorKind::Unexpected, format!("dropping view {ident}")).with_source(e),
            ),
        }
    }

    /// The Hive database of `ns`, which must be single-level.
    fn database(&self, ns: &NamespaceIdent) -> Result<String> {
        match ns.as_ref().as_slice() {
            [db] if !db.is_empty() => Ok(db.clone()),
            _ => Err(Error::new(
                ErrorKind::DataInvalid,
                format!(
                    "Hive Metastore databases are single-level: catalog `{}` cannot hold `{}`",
                    self.name,
                    ns.join(".")
                ),
            )),
        }
    }

    async fn create_hive_table(
        &self,
        ident: &TableIdent,
        metadata: &TableMetadata,
        metadata_location: &str,
    ) -> Result<()> {
        let db = self.database(ident.namespace())?;
        let table = hive_table(&db, ident.name(), metadata, metadata_location);
        self.create(ident, table).await
    }

    async fn create(&self, ident: &TableIdent, table: hive_metastore::Table) -> Result<()> {
        let db = self.database(ident.namespace())?;
        let answer = self.client.create_table(table).await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("creating Hive table {ident}"),
            )
            .with_source(e)
        })?;
        match answer {
            MaybeException::Ok(()) => Ok(()),
            MaybeException::Exception(ThriftHiveMetastoreCreateTableException::O1(_)) => {
                Err(Error::new(
                    ErrorKind::TableAlreadyExists,
                    format!("table {ident} already exists"),
                ))
            }
            MaybeException::Exception(ThriftHiveMetastoreCreateTableException::O4(_)) => {
                Err(Error::new(
                    ErrorKind::NamespaceNotFound,
                    format!("database `{db}` does not exist"),
                ))
            }
            MaybeException::Exception(e) => Err(Error::new(
                ErrorKind::Unexpected,
                format!("the metastore refused table {ident}: {e:?}"),
            )),
        }
    }
}

#[async_trait]
impl Catalog for HiveCatalog {
    async fn list_namespaces(
        &self,
        parent: Option<&NamespaceIdent>,
    ) -> Result<Vec<NamespaceIdent>> {
        self.inner.list_namespaces(parent).await
    }

    async fn create_namespace(
        &self,
        namespace: &NamespaceIdent,
        mut properties: HashMap<String, String>,
    ) -> Result<Namespace> {
        self.database(namespace)?;
        // A database read back from a metastore may carry an owner type without an owner
        // (pyiceberg creates them so); the crate refuses to create such a database.
        if !properties.contains_key(DB_OWNER) {
            properties.remove(DB_OWNER_TYPE);
        }
        self.inner.create_namespace(namespace, properties).await
    }

    async fn get_namespace(&self, namespace: &NamespaceIdent) -> Result<Namespace> {
        self.database(namespace)?;
        self.inner.get_namespace(namespace).await
    }

    async fn namespace_exists(&self, namespace: &NamespaceIdent) -> Result<bool> {
        self.database(namespace)?;
        self.inner.namespace_exists(namespace).await
    }

    async fn update_namespace(
        &self,
        namespace: &NamespaceIdent,
        properties: HashMap<String, String>,
    ) -> Result<()> {
        self.inner.update_namespace(namespace, properties).await
    }

    async fn drop_namespace(&self, namespace: &NamespaceIdent) -> Result<()> {
        self.inner.drop_namespace(namespace).await
    }

    async fn list_tables(&self, namespace: &NamespaceIdent) -> Result<Vec<TableIdent>> {
        let tables = self.hive_tables(namespace).await?;
        let mut out: Vec<TableIdent> = tables
            .iter()
            .filter(|t| is_iceberg(t.parameters.as_ref()))
            .filter_map(|t| t.table_name.as_ref())
            .map(|name| TableIdent::new(namespace.clone(), name.to_string()))
            .collect();
        out.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(out)
    }

    async fn create_table(
        &self,
        namespace: &NamespaceIdent,
        mut creation: TableCreation,
    ) -> Result<Table> {
        let db = self.database(namespace)?;
        let ident = TableIdent::new(namespace.clone(), creation.name.clone());
        let location = if let Some(l) = &creation.location {
            l.clone()
        } else {
            let ns = self.inner.get_namespace(namespace).await?;
            let base = ns.properties().get("location").cloned().ok_or_else(|| {
                Error::new(
                    ErrorKind::DataInvalid,
                    format!("database `{db}` has no location: give the table one"),
                )
            })?;
            let l = format!("{}/{}", base.trim_end_matches('/'), creation.name);
            creation.location = Some(l.clone());
            l
        };
        let metadata = TableMetadataBuilder::from_table_creation(creation)?
            .build()?
            .metadata;
        let metadata_location = MetadataLocation::new_with_metadata(location, &metadata);
        metadata.write_to(&self.file_io, &metadata_location).await?;
        let metadata_location = metadata_location.to_string();
        self.create_hive_table(&ident, &metadata, &metadata_location)
            .await?;
        self.table(ident, metadata, metadata_location)
    }

    async fn load_table(&self, table: &TableIdent) -> Result<Table> {
        self.database(table.namespace())?;
        self.inner.load_table(table).await
    }

    async fn drop_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.drop_table(table).await
    }

    async fn purge_table(&self, table: &TableIdent) -> Result<()> {
        self.inner.purge_table(table).await
    }

    async fn table_exists(&self, table: &TableIdent) -> Result<bool> {
        self.database(table.namespace())?;
        self.inner.table_exists(table).await
    }

    async fn rename_table(&self, src: &TableIdent, dest: &TableIdent) -> Result<()> {
        self.inner.rename_table(src, dest).await
    }

    async fn register_table(&self, table: &TableIdent, metadata_location: String) -> Result<Table> {
        self.database(table.namespace())?;
        let metadata = TableMetadata::read_from(&self.file_io, &metadata_location).await?;
        self.create_hive_table(table, &metadata, &metadata_location)
            .await?;
        self.table(table.clone(), metadata, metadata_location)
    }

    async fn update_table(&self, commit: TableCommit) -> Result<Table> {
        self.inner.update_table(commit).await
    }
}

#[cfg(test)]
mod tests;
