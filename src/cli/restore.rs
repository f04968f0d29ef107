//! `bcn restore`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs, open_repo, parse_database};
use crate::context::Context;
use crate::engine::EngineError;
use crate::engine::restore::{self, RestorePlan, RestoreReport, RestoreRequest};
use crate::location::Location;
use crate::plan::NotifyEvent;
use crate::repo::PitSelector;
use crate::repo::records::ObjectKind;
use crate::report::human_bytes;
use anyhow::Context as _;

/// Restore tables from a repository into a catalog.
///
/// Every file is written and checked at the target location before the table is registered;
/// an existing table is never overwritten without --replace.
#[derive(Debug, clap::Args)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "each bool is one independent command-line flag"
)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The PIT: its id (or a unique prefix), `latest`, or a time (RFC 3339 or
    /// `YYYY-MM-DD[ HH:MM[:SS]]`, UTC) meaning the newest PIT at or before it.
    #[arg(long, default_value = "latest")]
    pit: String,
    /// Restore only this database (repeatable).
    #[arg(long = "database", value_name = "DB")]
    databases: Vec<String>,
    /// Restore only tables matching `DB.TABLE` or a glob such as `sales.*` (repeatable).
    #[arg(long = "table", value_name = "DB.TBL|GLOB")]
    tables: Vec<String>,
    /// Restore tables deleted before the PIT too.
    #[arg(long)]
    include_deleted: bool,
    /// The catalog to restore into, as named in the plan.
    #[arg(long)]
    target_catalog: String,
    /// Put the restored tables into this database (one source database only).
    #[arg(long)]
    target_database: Option<String>,
    /// Give the restored table this name (one table only).
    #[arg(long)]
    target_table: Option<String>,
    /// Root of the restored tables' locations: each goes to `<root>/<database>/<table>`.
    /// Default: the target catalog's warehouse.
    #[arg(long, value_name = "URL")]
    target_location: Option<String>,
    /// Replace tables that already exist in the target catalog (with --original-location,
    /// also files that differ at their original paths).
    #[arg(long)]
    replace: bool,
    /// Restore every table where it was at the PIT — its own location, every file at its own
    /// path, nothing rewritten — under its own name and UUID: disaster recovery after a lost
    /// bucket, warehouse or catalog database. Files already there are kept when their
    /// checksum matches; a different file stops that table (unless --replace).
    #[arg(long, conflicts_with_all = ["target_location", "target_database", "target_table"])]
    original_location: bool,
    /// Print what would be restored where, and write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Tables restored at once.
    #[arg(long, default_value_t = 2, env = "BCN_JOBS")]
    jobs: usize,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let uses = [
        format!("catalogs.{}", args.target_catalog),
        args.repo.section(),
    ];
    let (plan, plan_path) = args.repo.plan.require("restore", &uses)?;
    let request = RestoreRequest {
        store: open_repo(&args.repo.repo, Some(&plan), args.repo.user_key()?)?,
        pit: PitSelector::parse(&args.pit),
        databases: args
            .databases
            .iter()
            .map(|d| parse_database(d))
            .collect::<anyhow::Result<_>>()?,
        tables: args.tables,
        include_deleted: args.include_deleted,
        target: plan.catalog(&args.target_catalog, plan_path)?,
        target_database: args
            .target_database
            .as_deref()
            .map(parse_database)
            .transpose()?,
        target_table: args.target_table,
        // Relative to the working directory: resolved here, where the value enters.
        target_location: match args.target_location.as_deref() {
            Some(root) => {
                let cwd = std::env::current_dir().context("reading the working directory")?;
                Some(
                    Location::parse(root, &cwd)
                        .map_err(|e| EngineError::invalid(format!("--target-location: {e}")))?,
                )
            }
            None => None,
        },
        replace: args.replace,
        original_location: args.original_location,
        concurrency: args.jobs,
    };
    let prepared = restore::prepare(&request).await?;
    if args.dry_run {
        printer.result(
            "restore",
            &serde_json::json!({ "dry_run": true, "plan": &prepared }),
            || render_plan(&prepared),
        );
        return Ok(ExitStatus::Success);
    }
    let start = serde_json::json!({ "command": "restore", "plan": &prepared });
    super::notify_command(
        Some(&plan),
        "restore",
        NotifyEvent::Start,
        "started",
        &start,
    )
    .await;
    let report = {
        let progress = super::progress::Progress::new(printer.is_quiet());
        let result = restore::execute(prepared, ctx, &progress).await;
        progress.finish();
        match result {
            Ok(report) => report,
            Err(e) => {
                let doc = serde_json::json!({ "command": "restore", "error": crate::engine::error_chain(&e) });
                super::notify_command(Some(&plan), "restore", NotifyEvent::Failure, "failed", &doc)
                    .await;
                return Err(e.into());
            }
        }
    };
    let failed = !report.failures().is_empty();
    let doc = serde_json::json!({ "command": "restore", "report": &report });
    let (event, status) = if failed {
        (NotifyEvent::Failure, "failed")
    } else {
        (NotifyEvent::Success, "succeeded")
    };
    super::notify_command(Some(&plan), "restore", event, status, &doc).await;
    printer.result(
        "restore",
        &serde_json::json!({ "dry_run": false, "report": &report }),
        || render_report(&report),
    );
    let failures = report.failures();
    if failures.is_empty() {
        return Ok(ExitStatus::Success);
    }
    // The report above already holds each table's outcome; the failures go to stderr too.
    let restored = report.tables.len() - failures.len();
    let all_failed = restored == 0;
    let error = anyhow::Error::new(EngineError::RestoreFailed { failures, restored });
    printer.error_text(&error);
    Ok(if all_failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Partial
    })
}

fn render_plan(plan: &RestorePlan) -> String {
    let mut out = format!(
        "dry run: would restore {} table{} of PIT {} ({}) from {} into catalog `{}`\n",
        plan.tables.len(),
        if plan.tables.len() == 1 { "" } else { "s" },
        plan.pit,
        plan.pit_time.to_rfc3339(),
        plan.repository,
        plan.target_catalog
    );
    for (db, _) in &plan.create_databases {
        let _ = writeln!(out, "  create database {db}");
    }
    let rows: Vec<Vec<String>> = plan
        .tables
        .iter()
        .map(|t| {
            vec![
                t.action.to_owned(),
                match t.kind {
                    ObjectKind::Table => t.source.to_string(),
                    ObjectKind::View => format!("{} (view)", t.source),
                },
                t.target.to_string(),
                t.location.clone(),
                match t.kind {
                    ObjectKind::Table => format!("{} files, {}", t.files, human_bytes(t.bytes)),
                    ObjectKind::View => "metadata".into(),
                },
            ]
        })
        .collect();
    out.push_str(&super::printer::table(
        &["ACTION", "FROM", "TO", "LOCATION", "SIZE"],
        &rows,
    ));
    for t in plan.tables.iter().filter(|t| !t.external_roots.is_empty()) {
        let _ = writeln!(out, "files of {} outside its location:", t.source);
        for root in &t.external_roots {
            let _ = writeln!(out, "  {} -> {}", root.from, root.to);
        }
    }
    for warning in plan.tables.iter().flat_map(|t| &t.warnings) {
        let _ = writeln!(out, "warning: {warning}");
    }
    out.push_str("nothing was written\n");
    out
}

fn render_report(report: &RestoreReport) -> String {
    let mut out = format!(
        "restored from PIT {} of {} into catalog `{}`\n",
        report.pit, report.repository, report.target_catalog
    );
    let rows: Vec<Vec<String>> = report
        .tables
        .iter()
        .map(|t| {
            vec![
                t.outcome.to_owned(),
                t.item.source.to_string(),
                t.item.target.to_string(),
                t.metadata_location
                    .clone()
                    .or_else(|| t.error.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    out.push_str(&super::printer::table(
        &["OUTCOME", "FROM", "TO", "METADATA / ERROR"],
        &rows,
    ));
    out
}
