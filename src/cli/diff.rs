//! `bcn diff`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs};
use crate::engine::inspect::{self, PitDiff, TableChange};
use crate::repo::PitSelector;
use crate::repo::records::ObjectKind;

/// Show what was added, changed, renamed and deleted between two PITs.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The earlier PIT: id, unique prefix, `latest` or a time.
    pit_a: String,
    /// The later PIT (default: latest).
    #[arg(default_value = "latest")]
    pit_b: String,
}

pub(crate) async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    let diff = inspect::diff(
        args.repo.open()?,
        &PitSelector::parse(&args.pit_a),
        &PitSelector::parse(&args.pit_b),
    )
    .await?;
    printer.result("diff", &diff, || render(&diff));
    Ok(ExitStatus::Success)
}

fn render(d: &PitDiff) -> String {
    let mut out = format!("from PIT {} to PIT {}\n", d.from, d.to);
    for db in &d.databases_added {
        let _ = writeln!(out, "  + database {db}");
    }
    for db in &d.databases_deleted {
        let _ = writeln!(out, "  - database {db}");
    }
    let snap = |s: Option<i64>| s.map_or("-".to_owned(), |s| s.to_string());
    let name = |t: &TableChange| match t.kind {
        ObjectKind::Table => t.table.clone(),
        ObjectKind::View => format!("view {}", t.table),
    };
    for t in &d.added {
        match t.kind {
            ObjectKind::Table => {
                let _ = writeln!(out, "  + {} (snapshot {})", t.table, snap(t.snapshot_after));
            }
            ObjectKind::View => {
                let _ = writeln!(out, "  + {}", name(t));
            }
        }
    }
    for t in &d.changed {
        match t.kind {
            ObjectKind::Table => {
                let _ = writeln!(
                    out,
                    "  ~ {} (snapshot {} -> {})",
                    t.table,
                    snap(t.snapshot_before),
                    snap(t.snapshot_after)
                );
            }
            ObjectKind::View => {
                let _ = writeln!(out, "  ~ {} (new version)", name(t));
            }
        }
    }
    for t in &d.renamed {
        let _ = writeln!(
            out,
            "  > {} (was {})",
            name(t),
            t.from.as_deref().unwrap_or("?")
        );
    }
    for t in &d.deleted {
        let _ = writeln!(out, "  - {}", name(t));
    }
    let _ = writeln!(
        out,
        "{} added, {} changed, {} renamed, {} deleted, {} unchanged",
        d.added.len(),
        d.changed.len(),
        d.renamed.len(),
        d.deleted.len(),
        d.unchanged
    );
    out
}
