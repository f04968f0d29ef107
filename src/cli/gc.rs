//! `bcn gc`.

use super::{ExitStatus, Printer, RepoArgs};
use crate::context::Context;
use crate::engine::EngineError;
use crate::engine::maintenance::{self, GcReport};
use crate::plan::NotifyEvent;
use crate::report::human_bytes;

/// Reclaim space: delete repository files that no PIT references, under the exclusive lock.
/// Files younger than the grace period are spared. Refuses to run when any PIT or file list
/// cannot be read.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Spare unreferenced files younger than this (`1d`, `6h`, `0s`).
    #[arg(long, default_value = "1d", value_name = "DURATION")]
    grace: String,
    /// Delete (without it, only show what would go).
    #[arg(long)]
    yes: bool,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let grace = crate::plan::parse_duration(&args.grace).map_err(EngineError::invalid)?;
    let plan = args.repo.plan.load(&[args.repo.section()])?;
    let plan = plan.as_ref().map(|(p, _)| p);
    let store = super::open_repo(&args.repo.repo, plan, args.repo.user_key()?)?;
    // Notifications only for a run that changes the repository.
    let notify_plan = plan.filter(|_| args.yes);
    let start = serde_json::json!({ "command": "gc", "repository": args.repo.repo });
    super::notify_command(notify_plan, "gc", NotifyEvent::Start, "started", &start).await;
    let report = match maintenance::gc(store, grace, args.yes, ctx).await {
        Ok(report) => {
            let doc = serde_json::json!({ "command": "gc", "report": &report });
            super::notify_command(notify_plan, "gc", NotifyEvent::Success, "succeeded", &doc).await;
            report
        }
        Err(e) => {
            let doc =
                serde_json::json!({ "command": "gc", "error": crate::engine::error_chain(&e) });
            super::notify_command(notify_plan, "gc", NotifyEvent::Failure, "failed", &doc).await;
            return Err(e.into());
        }
    };
    printer.result("gc", &report, || render(&report));
    Ok(ExitStatus::Success)
}

fn render(r: &GcReport) -> String {
    let locked = match r.locked.iter().map(|l| l.until).max() {
        Some(until) => format!(
            "; {} unreferenced object(s) stay, retained by S3 Object Lock until {} at the latest\n",
            r.locked.len(),
            until.to_rfc3339()
        ),
        None => String::new(),
    };
    let summary = format!(
        "{} PIT(s) reference {} objects; {} unreferenced object(s) and {} temporary object(s) of interrupted runs, {}, {}; {} younger than the grace period spared\n",
        r.pits,
        r.referenced,
        r.unreferenced.len(),
        r.incomplete.len(),
        human_bytes(r.bytes),
        if r.applied {
            "deleted"
        } else {
            "would be deleted (add --yes)"
        },
        r.spared_young
    );
    summary + &locked
}
