//! `bcn verify --restore-test`: a real restore into a scratch catalog, read back.
//!
//! 1. Restore the chosen PIT's tables (all, or those matching `--table`) into a scratch
//!    `SQLite` catalog and a temporary location, with paths rewritten as a real restore does.
//! 2. Read every row of the current snapshot and of every ref through iceberg-rust's own
//!    reader.
//! 3. Compare the current snapshot's row count with what its summary records, and the schema
//!    and partition spec with the stored metadata.
//! 4. Remove the scratch catalog and every file, also when a step fails.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::TryStreamExt;
use iceberg::TableIdent;
use iceberg::spec::TableMetadata;
use serde::Serialize;

use super::Problem;
use crate::catalog::{self, OpenMode};
use crate::context::Context;
use crate::engine::restore::{self, RestoreRequest};
use crate::engine::transfer::maybe_gunzip;
use crate::engine::{EngineError, Quiet};
use crate::plan::{CatalogKind, CatalogSpec, SqlConfig};
use crate::repo::records::{Category, ObjectKind, PitRecord, TableRecord};
use crate::repo::{PitSelector, Repository};

/// One table of a restore test.
#[derive(Debug, Clone, Serialize)]
pub struct TestedTable {
    /// `database.table`.
    pub table: String,
    /// Snapshots read (the current one and every ref's).
    pub snapshots_read: usize,
    /// Rows read over all of them.
    pub rows_read: u64,
    /// Rows of the current snapshot.
    pub current_rows: u64,
    /// Whether everything matched.
    pub ok: bool,
}

/// The outcome of `--restore-test`.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreTestReport {
    /// The PIT restored.
    pub pit: String,
    /// Per table.
    pub tables: Vec<TestedTable>,
    /// Rows read in all.
    pub rows_read: u64,
}

/// A scratch directory removed when dropped, whatever happened.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = fs_err::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove the restore test's scratch directory");
        }
    }
}

/// Restores `pit` (its tables matching `tables`) into a scratch catalog and reads them back.
pub(super) async fn run(
    repo: &Repository,
    pit: &PitRecord,
    tables: &[String],
    ctx: &Context,
    problems: &mut Vec<Problem>,
) -> Result<RestoreTestReport, EngineError> {
    let dir = std::env::temp_dir().join(format!("bcn-restore-test-{}", ctx.new_run_id()));
    let scratch = Scratch(dir.clone());
    fs_err::create_dir_all(dir.join("warehouse")).map_err(|source| EngineError::Io {
        what: format!("creating the scratch directory {}", dir.display()),
        source,
    })?;
    let warehouse = crate::location::Location::local(dir.join("warehouse"));
    let target = Arc::new(CatalogSpec {
        name: "bcn-restore-test".into(),
        kind: CatalogKind::Sql(SqlConfig {
            uri: format!("sqlite://{}", dir.join("catalog.db").display()),
            warehouse: Some(warehouse.as_str().to_owned()),
            catalog_name: "bcn_restore_test".into(),
            properties: BTreeMap::new(),
            s3: None,
        }),
    });
    let request = RestoreRequest {
        store: repo.store().clone(),
        pit: PitSelector::Id(pit.id.clone()),
        databases: Vec::new(),
        tables: tables.to_vec(),
        include_deleted: false,
        target: target.clone(),
        target_database: None,
        target_table: None,
        target_location: Some(warehouse),
        replace: false,
        original_location: false,
        concurrency: 2,
    };
    let plan = restore::prepare(&request).await?;
    let restored = restore::execute(plan, ctx, &Quiet).await?;
    let opened = catalog::open(&target, OpenMode::Existing).await?;
    let mut report = RestoreTestReport {
        pit: pit.id.clone(),
        tables: Vec::new(),
        rows_read: 0,
    };
    for outcome in restored.tables {
        let name = outcome.item.source.to_string();
        let problem = |what: String| {
            Problem {
            pit: Some(pit.id.clone()),
            table: Some(name.clone()),
            key: None,
            problem: format!("restore test: {what}"),
            hint: "this PIT does not restore this table as it was backed up; run `bcn verify --read-data` to find the damaged object".into(),
        }
        };
        if let Some(error) = outcome.error {
            problems.push(problem(format!("the restore failed: {error}")));
            report.tables.push(TestedTable {
                table: name,
                snapshots_read: 0,
                rows_read: 0,
                current_rows: 0,
                ok: false,
            });
            continue;
        }
        let record = pit
            .tables
            .iter()
            .find(|t| t.name == outcome.item.source && t.key == outcome.item.key);
        let ident = TableIdent::new(
            iceberg::NamespaceIdent::from_vec(outcome.item.target.database.clone())
                .map_err(|e| EngineError::invalid(e.to_string()))?,
            outcome.item.target.name.clone(),
        );
        let checked = if outcome.item.kind == ObjectKind::View {
            check_view(&opened, &ident).await
        } else {
            check_table(repo, &opened, &ident, record).await
        };
        let tested = match checked {
            Ok(tested) => tested,
            Err(what) => {
                problems.push(problem(what));
                TestedTable {
                    table: name.clone(),
                    snapshots_read: 0,
                    rows_read: 0,
                    current_rows: 0,
                    ok: false,
                }
            }
        };
        report.rows_read += tested.rows_read;
        report.tables.push(TestedTable {
            table: name,
            ..tested
        });
    }
    drop(opened);
    drop(scratch);
    Ok(report)
}

/// Loads a restored view from the scratch catalog and reads its metadata back.
async fn check_view(
    catalog: &catalog::OpenCatalog,
    ident: &TableIdent,
) -> Result<TestedTable, String> {
    let chain = |e: &(dyn std::error::Error + 'static)| crate::error::error_chain(e);
    let view = catalog
        .load_view(ident)
        .await
        .map_err(|e| format!("loading the restored view: {}", chain(&e)))?
        .ok_or("the restored view is not in the catalog")?;
    let raw = catalog
        .file_io
        .new_input(&view.metadata_location)
        .map_err(|e| chain(&e))?
        .read()
        .await
        .map_err(|e| format!("reading the restored view metadata: {}", chain(&e)))?;
    crate::engine::backup::view::ViewFacts::parse(&raw)
        .map_err(|e| format!("the restored view metadata: {e}"))?;
    Ok(TestedTable {
        table: String::new(),
        snapshots_read: 0,
        rows_read: 0,
        current_rows: 0,
        ok: true,
    })
}

/// Reads every ref of a restored table and compares it with what the backup recorded.
async fn check_table(
    repo: &Repository,
    catalog: &catalog::OpenCatalog,
    ident: &TableIdent,
    record: Option<&TableRecord>,
) -> Result<TestedTable, String> {
    let chain = |e: &(dyn std::error::Error + 'static)| crate::error::error_chain(e);
    let table = catalog
        .catalog
        .load_table(ident)
        .await
        .map_err(|e| format!("loading the restored table: {}", chain(&e)))?;
    let metadata = table.metadata();
    let ephemeral = record.is_some_and(|r| r.category == Category::Ephemeral);
    if let Some((record, stored_in)) =
        record.and_then(|r| r.stored_in.as_deref().map(|pit| (r, pit)))
        && !ephemeral
    {
        let raw = repo
            .load_table_metadata(&record.key, stored_in)
            .await
            .map_err(|e| chain(&e))?;
        let json = maybe_gunzip(&raw).map_err(|e| e.to_string())?;
        let stored: TableMetadata = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
        if stored.current_schema().as_struct() != metadata.current_schema().as_struct() {
            return Err("the restored schema differs from the stored metadata's".into());
        }
        if stored.default_partition_spec().fields() != metadata.default_partition_spec().fields() {
            return Err("the restored partition spec differs from the stored metadata's".into());
        }
    }
    let mut snapshots: Vec<i64> = metadata.current_snapshot_id().into_iter().collect();
    for id in ref_snapshots(&table).await? {
        if !snapshots.contains(&id) {
            snapshots.push(id);
        }
    }
    let mut tested = TestedTable {
        table: String::new(),
        snapshots_read: 0,
        rows_read: 0,
        current_rows: 0,
        ok: true,
    };
    for (i, snapshot) in snapshots.iter().enumerate() {
        let rows = count_rows(&table, *snapshot)
            .await
            .map_err(|e| format!("reading snapshot {snapshot}: {e}"))?;
        tested.snapshots_read += 1;
        tested.rows_read += rows;
        if i == 0 {
            tested.current_rows = rows;
            if let Some(expected) = expected_rows(metadata, *snapshot)
                && expected != rows
            {
                return Err(format!(
                    "the current snapshot {snapshot} reads {rows} rows, its summary records {expected}"
                ));
            }
        }
    }
    Ok(tested)
}

/// The snapshots of every branch and tag, from the table's metadata file (iceberg-rust
/// exposes one ref by name, not the list).
async fn ref_snapshots(table: &iceberg::table::Table) -> Result<Vec<i64>, String> {
    let Some(location) = table.metadata_location() else {
        return Ok(Vec::new());
    };
    let raw = table
        .file_io()
        .new_input(location)
        .map_err(|e| crate::error::error_chain(&e))?
        .read()
        .await
        .map_err(|e| crate::error::error_chain(&e))?;
    let json = maybe_gunzip(&raw).map_err(|e| e.to_string())?;
    let doc: serde_json::Value = serde_json::from_slice(&json).map_err(|e| e.to_string())?;
    Ok(doc
        .get("refs")
        .and_then(serde_json::Value::as_object)
        .map(|refs| {
            refs.values()
                .filter_map(|r| r.get("snapshot-id").and_then(serde_json::Value::as_i64))
                .collect()
        })
        .unwrap_or_default())
}

/// Every row of `snapshot`, counted through iceberg-rust's Arrow reader.
async fn count_rows(table: &iceberg::table::Table, snapshot: i64) -> Result<u64, String> {
    let chain = |e: &(dyn std::error::Error + 'static)| crate::error::error_chain(e);
    let scan = table
        .scan()
        .snapshot_id(snapshot)
        .select_all()
        .build()
        .map_err(|e| chain(&e))?;
    let batches = scan.to_arrow().await.map_err(|e| chain(&e))?;
    batches
        .try_fold(
            0u64,
            |n, batch| async move { Ok(n + batch.num_rows() as u64) },
        )
        .await
        .map_err(|e| chain(&e))
}

/// The live rows a snapshot's summary implies: `total-records` less `total-position-deletes`;
/// unknown (`None`) when equality deletes apply, whose effect only a read can tell.
fn expected_rows(metadata: &TableMetadata, snapshot: i64) -> Option<u64> {
    let summary = &metadata
        .snapshot_by_id(snapshot)?
        .summary()
        .additional_properties;
    let number = |key: &str| summary.get(key).and_then(|v| v.parse::<u64>().ok());
    if number("total-equality-deletes").unwrap_or(0) > 0 {
        return None;
    }
    Some(number("total-records")?.saturating_sub(number("total-position-deletes").unwrap_or(0)))
}
