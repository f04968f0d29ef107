//! `bcn schema`.

use super::{ExitStatus, Printer};

/// Print the JSON Schema of the plan file (the same text as schema/plan.schema.json).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

/// The plan's JSON Schema, pretty-printed with a final newline.
pub fn plan_schema() -> String {
    let schema = schemars::schema_for!(crate::plan::raw::RawPlan);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

pub(crate) fn run(_: &Args, printer: &Printer) -> anyhow::Result<ExitStatus> {
    // The schema is itself the document in both formats: no envelope, so editors and
    // validators can use the output directly.
    printer.raw(&plan_schema());
    Ok(ExitStatus::Success)
}
