//! `bcn unlock`.

use super::{ExitStatus, Printer, RepoArgs};
use crate::context::Context;
use crate::repo::{Repository, lock};

/// Remove a repository's writer lock, left behind by a run that died.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// Remove the lock only if its holder looks gone (dead process on this host, or no
    /// heartbeat within its TTL).
    #[arg(long)]
    stale_only: bool,
}

pub(crate) async fn run(args: Args, ctx: &Context, printer: Printer) -> anyhow::Result<ExitStatus> {
    let repo = Repository::open(args.repo.open()?).await?;
    let outcome = lock::unlock(&repo, ctx, args.stale_only).await?;
    printer.result("unlock", &outcome, || match &outcome.lock {
        None => format!("{} is not locked\n", repo.url()),
        Some(l) if outcome.removed => format!(
            "removed the {}lock of {} run {} on {} (pid {})\n",
            if outcome.stale { "stale " } else { "" },
            l.command,
            l.run_id,
            l.host,
            l.pid
        ),
        Some(l) => format!(
            "kept the lock of {} run {} on {} (pid {}): its holder looks alive; without --stale-only the lock is removed anyway\n",
            l.command, l.run_id, l.host, l.pid
        ),
    });
    Ok(ExitStatus::Success)
}
