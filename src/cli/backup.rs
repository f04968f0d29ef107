//! `bcn backup`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs, open_repo, parse_database};
use crate::context::Context;
use crate::engine::backup::{self, BackupOptions, BackupReport, BackupRequest};
use crate::engine::files::SnapshotSelection;
use crate::plan::BackupMode;
use crate::repo::records::{Status, ns_display};
use crate::report::human_bytes;

/// Back up a table, a database or a whole catalog into a repository.
///
/// The first backup creates the repository and fixes what it holds: the catalog, plus
/// --database for one database, plus --table for one table. Later backups need no scope;
/// a different one is refused.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The source catalog, as named in the plan.
    #[arg(long)]
    catalog: String,
    /// Back up only this database (namespace; `a.b` for a nested one).
    #[arg(long)]
    database: Option<String>,
    /// Back up only this table of --database.
    #[arg(long, requires = "database")]
    table: Option<String>,
    /// Copy and checksum every file again (a fresh base) instead of reusing stored files.
    #[arg(long)]
    full: bool,
    /// Keep only the current snapshot's files instead of every snapshot's.
    #[arg(long)]
    current_snapshot_only: bool,
    /// Tables backed up at once.
    #[arg(long, default_value_t = 4, env = "BCN_JOBS")]
    jobs: usize,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let uses = [format!("catalogs.{}", args.catalog), args.repo.section()];
    let (plan, plan_path) = args.repo.plan.require("backup", &uses)?;
    let catalog = plan.catalog(&args.catalog, plan_path)?;
    let database = args.database.as_deref().map(parse_database).transpose()?;
    if let Some(table) = &args.table {
        crate::names::check(table).map_err(crate::engine::EngineError::invalid)?;
    }
    let request = BackupRequest {
        catalog,
        database,
        table: args.table,
        store: open_repo(&args.repo.repo, Some(&plan), args.repo.user_key()?)?,
        categorizer: plan.categorizer().clone(),
        options: BackupOptions {
            snapshots: if args.current_snapshot_only {
                SnapshotSelection::Current
            } else {
                SnapshotSelection::All
            },
            mode: if args.full {
                BackupMode::Full
            } else {
                BackupMode::Incremental
            },
            table_concurrency: args.jobs,
            ..BackupOptions::default()
        },
    };
    let progress = super::progress::Progress::new(printer.is_quiet());
    let result = backup::run(request, ctx, &progress).await;
    progress.finish();
    let report = result?;
    printer.result("backup", &report, || render(&report));
    Ok(ExitStatus::Success)
}

fn render(report: &BackupReport) -> String {
    let pit = &report.pit;
    let mut out = format!(
        "PIT {} (#{}) committed to {}{}\n",
        pit.id,
        pit.seq,
        report.repository,
        if report.created_repository {
            " (new repository)"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = pit
        .tables
        .iter()
        .filter(|t| t.status != Status::Deleted || t.deleted_at == Some(pit.started_at))
        .map(|t| {
            let (files, bytes) = t
                .state
                .as_ref()
                .map_or((0, 0), |s| (s.files_added, s.bytes_added));
            let mut note = String::new();
            if let Some(old) = &t.previous_name {
                let _ = write!(note, "was {old}");
            }
            vec![
                t.status.to_string(),
                t.name.to_string(),
                t.state
                    .as_ref()
                    .and_then(|s| s.current_snapshot_id)
                    .map_or("-".into(), |s| s.to_string()),
                if files > 0 {
                    format!("{files} files, {}", human_bytes(bytes))
                } else {
                    "-".into()
                },
                note,
            ]
        })
        .collect();
    out.push_str(&super::printer::table(
        &["STATUS", "TABLE", "SNAPSHOT", "COPIED", ""],
        &rows,
    ));
    let dbs: Vec<String> = pit
        .databases
        .iter()
        .map(|d| format!("{} {}", ns_display(&d.name), d.status))
        .collect();
    let _ = writeln!(
        out,
        "databases: {}",
        if dbs.is_empty() {
            "none".into()
        } else {
            dbs.join(", ")
        }
    );
    let s = &pit.summary;
    let _ = writeln!(
        out,
        "copied {} files ({}); this PIT references {} files ({})",
        s.files_added,
        human_bytes(s.bytes_added),
        s.files_total,
        human_bytes(s.bytes_total)
    );
    out
}
