//! The plan's reports of an entry, rendered with Handlebars and written beside the plan.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::EntryReport;
use crate::plan::{ReportSpec, ReportTemplate};
use crate::report::render;

/// Renders `specs` for this entry (output paths relative to `base`); failures become notes.
/// Blocking: call it off the async threads.
pub(super) fn write(specs: &[ReportSpec], base: &Path, report: &mut EntryReport) {
    let data = serde_json::to_value(&*report).unwrap_or(Value::Null);
    let pit = report
        .backup
        .as_ref()
        .map_or("none".to_owned(), |b| b.pit.id.clone());
    let vars = serde_json::json!({
        "entry": report.entry,
        "pit": pit,
        "date": report.started_at.format("%Y-%m-%d").to_string(),
        "time": report.started_at.format("%H%M%S").to_string(),
        "status": serde_json::to_value(report.status).unwrap_or(Value::Null),
    });
    for spec in specs {
        match write_one(spec, base, &vars, &data) {
            Ok(path) => report.reports.push(path),
            Err(e) => report.notes.push(format!("report not written: {e}")),
        }
    }
}

fn write_one(
    spec: &ReportSpec,
    base: &Path,
    vars: &Value,
    data: &Value,
) -> Result<PathBuf, String> {
    let template = match &spec.template {
        ReportTemplate::Text => render::TEXT.to_owned(),
        ReportTemplate::Markdown => render::MARKDOWN.to_owned(),
        ReportTemplate::File(path) => fs_err::read_to_string(path).map_err(|e| e.to_string())?,
    };
    let rel = render::render("output path", &spec.output, vars).map_err(|e| e.to_string())?;
    let path = base.join(rel.trim());
    let text = render::render(&format!("{:?}", spec.template), &template, data)
        .map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    fs_err::write(&path, text).map_err(|e| e.to_string())?;
    Ok(path)
}
