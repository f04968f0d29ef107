//! `bcn verify`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs};
use crate::context::Context;
use crate::engine::EngineError;
use crate::engine::verify::{self, Subset, VerifyReport, VerifyRequest};
use crate::repo::PitSelector;
use crate::report::human_bytes;

/// Prove that a repository's PITs can be restored: every record, every stored file's presence
/// and size, and the stored Iceberg metadata walked down to every data file; with
/// `--read-data`, every stored file's SHA-256. Never takes the lock. Exit 0 when clean, 1 when
/// anything is damaged.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The PIT: `all` (default), `latest`, an id (or unique prefix), or a time.
    #[arg(long, default_value = "all")]
    pit: String,
    /// Also read every stored file (each once) and compare its SHA-256.
    #[arg(long)]
    read_data: bool,
    /// With --read-data: `all`, a random percentage (`10%`), or slice K of T (`3/7`: over
    /// seven runs with 1/7 … 7/7, every file is read exactly once).
    #[arg(long, requires = "read_data", value_name = "SUBSET")]
    subset: Option<String>,
    /// Also restore the PIT (`--pit`, else the newest) into a scratch `SQLite` catalog and a
    /// temporary location, read every row of every ref through iceberg-rust, compare row
    /// counts, schemas and partition specs with the backup; then remove it all.
    #[arg(long)]
    restore_test: bool,
    /// With --restore-test: only these tables (`DB.TABLE` or globs; repeatable).
    #[arg(long = "table", requires = "restore_test", value_name = "GLOB")]
    tables: Vec<String>,
    /// Copy damaged or missing stored files again from the live tables (of the repository's
    /// catalog in the plan: needs --config) when their bytes still match what was recorded.
    /// Takes the repository's exclusive lock.
    #[arg(long)]
    repair: bool,
    /// Files read at once.
    #[arg(long, default_value_t = 4, env = "BCN_JOBS")]
    jobs: usize,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let read_data = if args.read_data {
        Some(
            args.subset
                .as_deref()
                .map_or(Ok(Subset::All), Subset::parse)
                .map_err(EngineError::invalid)?,
        )
    } else {
        None
    };
    let store = args.repo.open()?;
    let repair = if args.repair {
        // The live catalog is the one the repository backs up, by its plan name.
        let catalog = crate::repo::Repository::open(store.clone())
            .await?
            .scope()
            .catalog
            .clone();
        let uses = [format!("catalogs.{catalog}"), args.repo.section()];
        let (plan, plan_path) = args.repo.plan.require("verify --repair", &uses)?;
        Some(plan.catalog(&catalog, plan_path)?)
    } else {
        None
    };
    let request = VerifyRequest {
        store,
        pit: (!args.pit.eq_ignore_ascii_case("all")).then(|| PitSelector::parse(&args.pit)),
        read_data,
        restore_test: args.restore_test.then_some(args.tables),
        concurrency: args.jobs,
        repair,
    };
    let report = {
        let progress = super::progress::Progress::counting(printer.is_quiet(), "checked");
        let result = verify::verify(&request, ctx, &progress).await;
        progress.finish();
        result?
    };
    printer.result("verify", &report, || render(&report));
    if report.is_clean() {
        Ok(ExitStatus::Success)
    } else {
        printer.error_text(&anyhow::anyhow!(
            "{} problem{} found in {}",
            report.problems.len(),
            if report.problems.len() == 1 { "" } else { "s" },
            report.repository
        ));
        Ok(ExitStatus::Failure)
    }
}

fn render(r: &VerifyReport) -> String {
    let mut out = format!(
        "verified {} PIT(s) of {}: {} table state(s), {} stored file(s) ({}) present with their sizes, {} manifest file(s) walked",
        r.pits.len(),
        r.repository,
        r.tables_checked,
        r.files_checked,
        human_bytes(r.bytes_checked),
        r.manifests_read,
    );
    if let Some(subset) = &r.read_data {
        let _ = write!(
            out,
            "; read {} file(s) ({}, subset {subset}) and checked their SHA-256",
            r.files_read,
            human_bytes(r.bytes_read)
        );
    }
    let _ = writeln!(out, " in {:.1} s", r.seconds);
    if let Some(test) = &r.restore_test {
        let _ = writeln!(
            out,
            "restore test of PIT {}: {} table(s) restored into a scratch catalog, {} row(s) read back",
            test.pit,
            test.tables.len(),
            test.rows_read
        );
        for t in &test.tables {
            let _ = writeln!(
                out,
                "  {} {}: {} snapshot(s), {} row(s) now",
                if t.ok { "ok    " } else { "FAILED" },
                t.table,
                t.snapshots_read,
                t.current_rows
            );
        }
    }
    if let Some(reclaimable) = r.reclaimable
        && reclaimable.objects > 0
    {
        let _ = writeln!(
            out,
            "{} unreferenced object(s), {}: not damage, `bcn gc` reclaims them",
            reclaimable.objects,
            human_bytes(reclaimable.bytes)
        );
    }
    if r.problems.is_empty() {
        out.push_str("no problem found\n");
    }
    for key in &r.repaired {
        let _ = writeln!(out, "REPAIRED {key}: copied again from the live table");
    }
    for p in &r.unrepaired {
        let _ = writeln!(
            out,
            "NOT REPAIRED {}: {}",
            p.key.as_deref().unwrap_or("-"),
            p.problem
        );
    }
    for p in &r.problems {
        let _ = writeln!(
            out,
            "PROBLEM{}{}: {}\n  hint: {}",
            p.pit
                .as_ref()
                .map(|id| format!(" PIT {id}"))
                .unwrap_or_default(),
            p.table
                .as_ref()
                .map(|t| format!(" table {t}"))
                .unwrap_or_default(),
            p.problem,
            p.hint
        );
    }
    out
}
