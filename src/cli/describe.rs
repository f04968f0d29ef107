//! `bcn describe`.

use std::fmt::Write as _;

use super::{ExitStatus, Printer, RepoArgs};
use crate::engine::inspect::{self, Description};
use crate::repo::records::Status;
use crate::report::human_bytes;

/// Show a repository: granularity, scope, every PIT with its counts, deleted objects.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
}

pub(crate) async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    let description = inspect::describe(args.repo.open()?).await?;
    printer.result("describe", &description, || render(&description));
    Ok(ExitStatus::Success)
}

fn render(d: &Description) -> String {
    let m = &d.manifest;
    let mut out = format!(
        "repository {}\n  id:          {}\n  granularity: {}\n  scope:       {}\n  created:     {} by {}\n  encrypted:   {}\n  immutable:   {}\n\n",
        d.repository,
        m.repository_id,
        m.granularity,
        m.scope,
        m.created_at.to_rfc3339(),
        m.created_by,
        if d.protection.encrypted { "yes" } else { "no" },
        d.protection.object_lock.as_deref().unwrap_or("no"),
    );
    if d.incomplete.objects > 0 {
        let _ = writeln!(
            out,
            "{} temporary object(s) of interrupted runs hold {} (`bcn gc` reclaims them)\n",
            d.incomplete.objects,
            human_bytes(d.incomplete.bytes)
        );
    }
    for p in &d.damaged {
        let _ = writeln!(out, "DAMAGED PIT {}: {}", p.id, p.reason);
    }
    if !d.damaged.is_empty() {
        out.push('\n');
    }
    if d.pits.is_empty() {
        out.push_str(if d.damaged.is_empty() {
            "no PIT yet\n"
        } else {
            "no readable PIT\n"
        });
        return out;
    }
    let count = |map: &std::collections::BTreeMap<Status, u64>, s: Status| {
        map.get(&s).copied().unwrap_or(0)
    };
    let rows: Vec<Vec<String>> = d
        .pits
        .iter()
        .map(|p| {
            let t = &p.summary.tables;
            vec![
                p.seq.to_string(),
                p.id.clone(),
                p.started_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                p.mode.clone(),
                format!(
                    "{}/{}/{}/{}/{}",
                    count(t, Status::New),
                    count(t, Status::Changed) + count(t, Status::StructureOnly),
                    count(t, Status::Unchanged),
                    count(t, Status::Renamed),
                    count(t, Status::Deleted)
                ),
                format!("{}", p.summary.databases.values().sum::<u64>()),
                format!(
                    "{} / {}",
                    p.summary.files_added,
                    human_bytes(p.summary.bytes_added)
                ),
                format!(
                    "{} / {}",
                    p.summary.files_total,
                    human_bytes(p.summary.bytes_total)
                ),
            ]
        })
        .collect();
    out.push_str(&super::printer::table(
        &[
            "#",
            "PIT",
            "TIME (UTC)",
            "MODE",
            "TABLES N/C/U/R/D",
            "DBS",
            "ADDED FILES/BYTES",
            "TOTAL FILES/BYTES",
        ],
        &rows,
    ));
    if !d.deleted.is_empty() {
        out.push_str("\ndeleted objects:\n");
        for o in &d.deleted {
            let _ = writeln!(
                out,
                "  {} {} (noticed {}, last in PIT {})",
                o.kind,
                o.name,
                o.deleted_at.map_or("-".into(), |t| t.to_rfc3339()),
                o.last_pit.as_deref().unwrap_or("-")
            );
        }
    }
    out
}
