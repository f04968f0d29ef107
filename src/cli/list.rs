//! `bcn list`.

use super::{ExitStatus, Printer, RepoArgs, parse_database};
use crate::engine::inspect::{self, Listing};
use crate::repo::PitSelector;
use crate::repo::records::{ObjectKind, ns_display};
use crate::report::human_bytes;

/// List the databases and tables of a PIT with their status.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The PIT: id (or unique prefix), `latest`, or a time.
    #[arg(long, default_value = "latest")]
    pit: String,
    /// Only this database.
    #[arg(long)]
    database: Option<String>,
}

pub(crate) async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    let database = args.database.as_deref().map(parse_database).transpose()?;
    let listing = inspect::list(
        args.repo.open()?,
        &PitSelector::parse(&args.pit),
        database.as_ref(),
    )
    .await?;
    printer.result("list", &listing, || render(&listing));
    Ok(ExitStatus::Success)
}

fn render(l: &Listing) -> String {
    let mut out = format!(
        "PIT {} ({}) of {}\n",
        l.pit,
        l.pit_time.to_rfc3339(),
        l.repository
    );
    let dbs: Vec<Vec<String>> = l
        .databases
        .iter()
        .map(|d| {
            vec![
                d.status.to_string(),
                ns_display(&d.name),
                d.properties.len().to_string(),
            ]
        })
        .collect();
    out.push_str(&super::printer::table(
        &["STATUS", "DATABASE", "PROPERTIES"],
        &dbs,
    ));
    let tables: Vec<Vec<String>> = l
        .tables
        .iter()
        .map(|t| {
            let s = t.state.as_ref();
            if t.kind == ObjectKind::View {
                return vec![
                    t.status.to_string(),
                    format!("{} (view)", t.name),
                    t.category.to_string(),
                    "-".into(),
                    s.map_or("-".into(), |s| s.schema_id.to_string()),
                    "-".into(),
                    s.map_or("-".into(), |s| format!("{} versions", s.snapshots)),
                ];
            }
            vec![
                t.status.to_string(),
                t.name.to_string(),
                t.category.to_string(),
                s.and_then(|s| s.current_snapshot_id)
                    .map_or("-".into(), |v| v.to_string()),
                s.map_or("-".into(), |s| s.schema_id.to_string()),
                s.and_then(|s| s.records)
                    .map_or("-".into(), |v| v.to_string()),
                s.map_or("-".into(), |s| {
                    format!("{} files, {}", s.files, human_bytes(s.bytes))
                }),
            ]
        })
        .collect();
    out.push('\n');
    out.push_str(&super::printer::table(
        &[
            "STATUS", "TABLE", "CATEGORY", "SNAPSHOT", "SCHEMA", "RECORDS", "SIZE",
        ],
        &tables,
    ));
    out
}
