//! `bcn quickstart`: the main job on the embedded default, with nothing to set up.

use std::path::PathBuf;

use std::fmt::Write as _;

use anyhow::Context as _;

use super::{ExitStatus, Printer};
use crate::catalog::{self, OpenMode};
use crate::context::Context;
use crate::engine::backup::{self, BackupOptions, BackupRequest};
use crate::engine::{inspect, sample};
use crate::plan::Plan;
use crate::report::human_bytes;

const PLAN: &str = "\
# bcn quickstart plan: a SQLite catalog with a local warehouse, and a local repository.
# Paths are relative to this file.
catalogs:
  lake:
    type: sql
    uri: sqlite://lake/catalog.db
    warehouse: lake/warehouse
repositories:
  local:
    location: backups/lake
";

#[expect(clippy::doc_markdown, reason = "--help text")]
/// Create a sample lakehouse (SQLite catalog + local warehouse, written with iceberg-rust)
/// if absent, back up the whole catalog into a local repository, and show the result.
/// Run it again to see an incremental backup.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Directory for the plan, the lakehouse and the repository.
    #[arg(long, default_value = "bcn-quickstart")]
    dir: PathBuf,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    fs_err::create_dir_all(&args.dir)?;
    let plan_path = args.dir.join("plan.yaml");
    if !plan_path.exists() {
        fs_err::write(&plan_path, PLAN)?;
    }
    let plan = Plan::load(&plan_path, crate::plan::Resolve::Strict)?;
    let spec = plan
        .catalog("lake", &plan_path)
        .context("the quickstart plan needs its catalog `lake`")?;
    let lake = catalog::open(&spec, OpenMode::CreateIfMissing).await?;
    let created = sample::create_sample(lake.catalog.as_ref())
        .await
        .context("creating the sample tables")?;
    let repo = plan
        .repository("local")
        .context("the quickstart plan needs its repository `local`")?;
    let store = repo.location.open()?;
    let request = BackupRequest {
        catalog: spec,
        database: None,
        table: None,
        store: store.clone(),
        categorizer: plan.categorizer().clone(),
        options: BackupOptions::default(),
    };
    let progress = super::progress::Progress::new(printer.is_quiet());
    let result = backup::run(request, ctx, &progress).await;
    progress.finish();
    let report = result?;
    let description = inspect::describe(store).await?;
    let json = serde_json::json!({ "plan": plan_path, "sample_tables_created": created, "backup": &report, "repository": &description });
    printer.result("quickstart", &json, || {
        let mut out = String::new();
        if created.is_empty() {
            let _ = writeln!(out, "sample lakehouse already in {}", args.dir.display());
        } else {
            let _ = writeln!(out, "created sample tables {} in {}", created.join(", "), args.dir.display());
        }
        let s = &report.pit.summary;
        let _ = write!(
            out,
            "backed up catalog `lake` into {}: PIT {} (#{}), {} files copied ({})\n\n",
            report.repository, report.pit.id, report.pit.seq, s.files_added, human_bytes(s.bytes_added)
        );
        for t in &report.pit.tables {
            let _ = writeln!(out, "  {:<10} {}", t.status.to_string(), t.name);
        }
        let _ = write!(
            out,
            "\nthe repository holds {} PIT{}. Next:\n  bcn describe --repo {repo}\n  bcn list --repo {repo}\n  bcn restore --config {plan} --repo {repo} --target-catalog lake --target-database restored\n",
            description.pits.len(),
            if description.pits.len() == 1 { "" } else { "s" },
            repo = repo.location,
            plan = plan_path.display()
        );
        out
    });
    Ok(ExitStatus::Success)
}
