//! `bcn validate`.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{ExitStatus, Printer};
use crate::plan::{Diagnostic, Plan, Resolve};
use crate::repo::records::Category;

/// Check a plan: YAML syntax, unknown keys, types, references. Touches nothing.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The plan file (YAML).
    #[arg(value_name = "PLAN")]
    plan: PathBuf,
}

pub(crate) fn run(args: &Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    let plan = Plan::load(&args.plan, Resolve::SyntaxOnly)?;
    let catalogs: Vec<&str> = plan.catalogs().map(|c| c.name.as_str()).collect();
    let repositories: Vec<&str> = plan.repositories().map(|r| r.name.as_str()).collect();
    let warnings = warnings(&plan);
    let json = serde_json::json!({ "plan": args.plan, "valid": true, "catalogs": catalogs, "repositories": repositories, "warnings": warnings });
    printer.result("validate", &json, || {
        let mut out = String::new();
        for w in &warnings {
            let _ = writeln!(
                out,
                "warning: {}: {}\n  hint: {}",
                w.path, w.message, w.hint
            );
        }
        out + &format!(
            "{} is valid: {} catalog{} ({}), {} repositor{} ({})\n",
            args.plan.display(),
            catalogs.len(),
            if catalogs.len() == 1 { "" } else { "s" },
            catalogs.join(", "),
            repositories.len(),
            if repositories.len() == 1 { "y" } else { "ies" },
            repositories.join(", ")
        )
    });
    Ok(ExitStatus::Success)
}

/// What is allowed but probably not meant: `local` (sensitive) data going to a repository
/// that is not encrypted.
fn warnings(plan: &Plan) -> Vec<Diagnostic> {
    plan.backups()
        .iter()
        .filter(|e| e.categories.contains(&Category::Local) && e.repository.encryption.is_none())
        .map(|e| {
            Diagnostic::new(
                format!("backups.{}.categories", e.name),
                format!(
                    "entry `{}` takes `local` data into repository `{}`, which is not encrypted: anyone who can read the repository reads that data",
                    e.name, e.repository.name
                ),
                format!(
                    "add `encryption: {{ key: \"${{file:/run/secrets/bcn}}\" }}` to repository `{}` (a new repository), or `require_encryption: true` to make this an error",
                    e.repository.name
                ),
            )
        })
        .collect()
}
