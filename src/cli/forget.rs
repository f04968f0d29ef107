//! `bcn forget`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs, open_repo};
use crate::context::Context;
use crate::engine::EngineError;
use crate::engine::maintenance::{self, ForgetReport};
use crate::plan::NotifyEvent;
use crate::plan::Retention;

/// Apply a retention policy: shows each PIT's keep/remove reason, and with --yes removes the
/// PITs no rule keeps (their files stay until `bcn gc`). Never removes the newest PIT.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Use the retention of this plan entry's strategy (needs --config).
    #[arg(long, value_name = "ENTRY")]
    entry: Option<String>,
    /// Keep the newest N PITs.
    #[arg(long)]
    keep_last: Option<u32>,
    /// Keep the newest PIT of each of the last N hours.
    #[arg(long)]
    keep_hourly: Option<u32>,
    /// Keep the newest PIT of each of the last N days.
    #[arg(long)]
    keep_daily: Option<u32>,
    /// Keep the newest PIT of each of the last N weeks.
    #[arg(long)]
    keep_weekly: Option<u32>,
    /// Keep the newest PIT of each of the last N months.
    #[arg(long)]
    keep_monthly: Option<u32>,
    /// Keep every PIT within this long of the newest (`7d`, `36h`).
    #[arg(long, value_name = "DURATION")]
    keep_within: Option<String>,
    /// Remove the PITs (without it, only show what would go).
    #[arg(long)]
    yes: bool,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let plan = args.repo.plan.load(&[args.repo.section()])?;
    let mut policy = match (&args.entry, &plan) {
        (Some(name), Some((plan, _))) => plan
            .backups()
            .iter()
            .find(|b| &b.name == name)
            .map(|b| b.strategy.retention.clone())
            .ok_or_else(|| EngineError::invalid(format!("the plan has no entry `{name}`")))?,
        (Some(_), None) => {
            return Err(EngineError::invalid("--entry needs --config PLAN").into());
        }
        (None, _) => Retention::default(),
    };
    let keep_within = args
        .keep_within
        .as_deref()
        .map(crate::plan::parse_duration)
        .transpose()
        .map_err(EngineError::invalid)?;
    policy.keep_last = args.keep_last.or(policy.keep_last);
    policy.keep_hourly = args.keep_hourly.or(policy.keep_hourly);
    policy.keep_daily = args.keep_daily.or(policy.keep_daily);
    policy.keep_weekly = args.keep_weekly.or(policy.keep_weekly);
    policy.keep_monthly = args.keep_monthly.or(policy.keep_monthly);
    policy.keep_within = keep_within.or(policy.keep_within);
    if policy.is_empty() {
        return Err(EngineError::invalid(
            "no retention policy: give --keep-last/--keep-daily/... or --entry with a strategy that has `retention:`",
        )
        .into());
    }
    let store = open_repo(
        &args.repo.repo,
        plan.as_ref().map(|(p, _)| p),
        args.repo.user_key()?,
    )?;
    // Notifications only for a run that changes the repository.
    let notify_plan = plan.as_ref().map(|(p, _)| p).filter(|_| args.yes);
    let start = serde_json::json!({ "command": "forget", "repository": args.repo.repo });
    super::notify_command(notify_plan, "forget", NotifyEvent::Start, "started", &start).await;
    let report = match maintenance::forget(store, &policy, args.yes, ctx).await {
        Ok(report) => {
            let doc = serde_json::json!({ "command": "forget", "report": &report });
            super::notify_command(
                notify_plan,
                "forget",
                NotifyEvent::Success,
                "succeeded",
                &doc,
            )
            .await;
            report
        }
        Err(e) => {
            let doc =
                serde_json::json!({ "command": "forget", "error": crate::engine::error_chain(&e) });
            super::notify_command(notify_plan, "forget", NotifyEvent::Failure, "failed", &doc)
                .await;
            return Err(e.into());
        }
    };
    printer.result("forget", &report, || render(&report));
    Ok(ExitStatus::Success)
}

fn render(report: &ForgetReport) -> String {
    let rows: Vec<Vec<String>> = report
        .decisions
        .iter()
        .map(|d| {
            vec![
                if d.keep {
                    "keep".into()
                } else if report.locked.iter().any(|l| l.key == d.pit) {
                    "locked".into()
                } else if report.applied {
                    "removed".into()
                } else {
                    "remove".into()
                },
                d.pit.clone(),
                d.time.format("%Y-%m-%d %H:%M:%S").to_string(),
                d.reasons.join(", "),
            ]
        })
        .collect();
    let mut out = super::printer::table(&["", "PIT", "TIME (UTC)", "WHY"], &rows);
    if report.applied {
        let n = report.forgotten.len();
        let _ = writeln!(
            out,
            "removed {n} PIT(s); run `bcn gc` to reclaim their files"
        );
    } else {
        let n = report.forgotten.len();
        let _ = writeln!(
            out,
            "{n} PIT(s) would be removed; nothing was changed (add --yes)"
        );
    }
    for l in &report.locked {
        let _ = writeln!(
            out,
            "PIT {} stays: S3 Object Lock retains its record until {} (a later forget removes it)",
            l.key,
            l.until.to_rfc3339()
        );
    }
    out
}
