//! `bcn schema`.

use super::{ExitStatus, Printer};

/// Print the JSON Schema of the plan file (the same text as schema/plan.schema.json).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {}

#[expect(clippy::unnecessary_wraps, reason = "every command returns a Result")]
pub(crate) fn run(_: Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    // The schema is itself the document in both formats: no envelope, so editors and
    // validators can use the output directly.
    printer.raw(&crate::plan::json_schema());
    Ok(ExitStatus::Success)
}
