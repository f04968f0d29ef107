//! `bcn verify --repair`: heals damaged stored files from the live tables.

use std::collections::BTreeMap;

use super::{Problem, VerifyReport};
use crate::engine::EngineError;
use crate::engine::transfer;
use crate::repo::Repository;
use crate::repo::records::FileEntry;

/// Copies every damaged or missing stored file of `report` again from the live table, when
/// the live file still has exactly the recorded content (SHA-256 checked before anything is
/// replaced). File lists and stored metadata cannot be healed this way; a new backup stores
/// the table anew.
pub(super) async fn repair(
    repo: &Repository,
    catalog: &crate::plan::CatalogSpec,
    report: &mut VerifyReport,
    read_data: bool,
) -> Result<(), EngineError> {
    let live = crate::catalog::open(catalog, crate::catalog::OpenMode::Existing).await?;
    let damaged: BTreeMap<String, FileEntry> = std::mem::take(&mut report.damaged_files)
        .into_iter()
        .collect();
    for problem in &report.problems {
        let Some(key) = problem.key.as_deref() else {
            continue;
        };
        let Some(entry) = damaged.get(key) else {
            report.unrepaired.push(Problem {
                hint: "not a stored table file: a new backup stores the table anew (`bcn backup --full`); PITs that reference the damaged record stay damaged".into(),
                ..problem.clone()
            });
            continue;
        };
        let unrepaired = |why: String| Problem {
            problem: format!("{}; not repaired: {why}", problem.problem),
            ..problem.clone()
        };
        match transfer::hash_file(&live.file_io, &entry.path).await {
            Ok((sum, size)) if sum == entry.sha256 && size == entry.size => {}
            Ok(_) => {
                report.unrepaired.push(unrepaired(format!(
                    "the live file {} no longer has the recorded content",
                    entry.path
                )));
                continue;
            }
            Err(e) => {
                report.unrepaired.push(unrepaired(format!(
                    "the live file cannot be read ({})",
                    crate::error::error_chain(&e)
                )));
                continue;
            }
        }
        match transfer::file_to_store(&live.file_io, &entry.path, repo.store().as_ref(), key).await
        {
            Ok((size, sum)) if sum == entry.sha256 && size == entry.size => {
                repo.clear_damaged(key).await?;
                report.repaired.push(key.to_owned());
            }
            Ok(_) => report.unrepaired.push(unrepaired(
                "the live file changed while it was copied".into(),
            )),
            Err(e) => report
                .unrepaired
                .push(unrepaired(crate::error::error_chain(&e))),
        }
    }
    // Without --read-data only missing or truncated files were found: say so.
    if !read_data && report.problems.is_empty() {
        tracing::info!("nothing to repair; --read-data also finds damaged content");
    }
    Ok(())
}
