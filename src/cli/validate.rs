//! `bcn validate`.

use std::path::PathBuf;

use super::{ExitStatus, Printer};
use crate::plan::{Plan, Resolve};

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
    let json = serde_json::json!({ "plan": args.plan, "valid": true, "catalogs": catalogs, "repositories": repositories });
    printer.result("validate", &json, || {
        format!(
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
