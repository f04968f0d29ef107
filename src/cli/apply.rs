//! `bcn apply`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{ExitStatus, Printer};
use crate::context::Context;
use crate::engine::apply::{self, ApplyOptions, ApplyReport, EntryStatus};
use crate::plan::{Plan, Resolve};
use crate::report::render;

/// Reconcile every entry of a plan: back up what is due, apply retention, write reports,
/// send notifications. Run it from cron or a systemd timer; review `--dry-run` in merge
/// requests.
///
/// Exit codes: 0 every entry done or not due, 3 some entries failed, 75 a repository was
/// locked (and nothing failed), 2 invalid plan.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plan file (YAML).
    #[arg(value_name = "PLAN", env = "BCN_CONFIG")]
    plan: PathBuf,
    /// Show what each entry would do, table by table; write and send nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run entries that are not due yet.
    #[arg(long)]
    force: bool,
    /// Only this entry (repeatable).
    #[arg(long = "only", value_name = "ENTRY")]
    only: Vec<String>,
}

pub(crate) async fn run(
    args: Args,
    ctx: &Context,
    printer: Printer,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<ExitStatus> {
    let plan = Plan::load(&args.plan, Resolve::Strict)?;
    let options = ApplyOptions {
        dry_run: args.dry_run,
        force: args.force,
        only: args.only,
        cancel: Some(apply::Cancel {
            token: cancel.clone(),
            by: "a signal",
        }),
    };
    let progress = super::progress::Progress::new(printer.is_quiet());
    let result = Box::pin(apply::run(&plan, &options, ctx, &progress)).await;
    progress.finish();
    let report = result?;
    printer.result("apply", &report, || render_text(&report));
    for entry in &report.entries {
        if let Some(error) = &entry.error {
            printer.error_text(&anyhow::anyhow!("entry `{}`: {error}", entry.entry));
        }
    }
    Ok(exit_status(&report))
}

fn exit_status(report: &ApplyReport) -> ExitStatus {
    let any = |s: EntryStatus| report.entries.iter().any(|e| e.status == s);
    let verification_failed = report.entries.iter().any(|e| e.verification_failed);
    if any(EntryStatus::Failed) || any(EntryStatus::Partial) || verification_failed {
        ExitStatus::Partial
    } else if any(EntryStatus::Locked) {
        ExitStatus::Locked
    } else {
        ExitStatus::Success
    }
}

fn render_text(report: &ApplyReport) -> String {
    let mut out = String::new();
    if report.dry_run {
        out.push_str("dry run: nothing is written, nothing is sent\n\n");
    }
    for entry in &report.entries {
        let data = serde_json::to_value(entry).unwrap_or_default();
        let due = if entry.due { "due" } else { "not due" };
        let _ = writeln!(out, "{due}: {}", entry.due_reason);
        if let Some(reason) = &entry.verify_due {
            let _ = writeln!(out, "verification: {reason}");
        }
        if let Some(v) = &entry.verification {
            let _ = writeln!(
                out,
                "verification: {} PIT(s), {} file(s) checked, {} read, {} problem(s)",
                v.pits.len(),
                v.files_checked,
                v.files_read,
                v.problems.len()
            );
            for p in &v.problems {
                let _ = writeln!(
                    out,
                    "  PROBLEM {}: {}",
                    p.key.as_deref().unwrap_or("-"),
                    p.problem
                );
            }
        }
        match render::render("text", render::TEXT, &data) {
            Ok(text) => out.push_str(&text),
            Err(e) => {
                let _ = writeln!(out, "{e}");
            }
        }
        if let Some(retention) = &entry.retention {
            let verb = if retention.applied {
                "forgot"
            } else {
                "would forget"
            };
            for d in retention.decisions.iter().filter(|d| !d.keep) {
                let _ = writeln!(
                    out,
                    "retention {verb} PIT {}: {}",
                    d.pit,
                    d.reasons.join(", ")
                );
            }
        }
        out.push('\n');
    }
    out
}
