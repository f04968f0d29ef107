//! `bcn verify`: proves that a repository's PITs can be restored, without restoring them.
//!
//! Two layers, as restic's `check` and pgBackRest's `verify` separate them:
//!
//! 1. **Structure** (always). Every PIT record in scope reads and checks; for every table it
//!    references (each `(table, stored_in)` once, however many PITs share it): the file list
//!    and the stored metadata read, the metadata matches its recorded SHA-256, every file of
//!    the list exists in the store with its recorded size, and the stored Iceberg metadata
//!    itself is walked — every snapshot's manifest list, its manifests and their live entries,
//!    statistics files — so that a file list that lost an entry is caught too. Objects that
//!    no PIT references are reported as reclaimable by `gc`, not as damage.
//! 2. **Data** (`--read-data`). Every stored file is read once, however many PITs share it,
//!    and its SHA-256 compared with the file list's; `--subset` reads a random fraction or a
//!    fixed slice `K/T` (over T runs, every file exactly once).
//!
//! Verify only reads committed PITs and never takes the lock, so it may run beside a backup;
//! while one runs, unreferenced objects are not counted (they may be that backup's).

use std::sync::Arc;

use serde::Serialize;
use sha2::{Digest, Sha256};

mod repair;
mod restore_test;

pub use restore_test::{RestoreTestReport, TestedTable};

use super::EngineError;
use crate::context::Context;
use crate::repo::records::{FileEntry, PitRecord};
use crate::repo::{PitEntry, PitSelector, Repository, layout, lock};
use crate::store::BackupStore;

pub use crate::plan::Subset;

mod walk;

use walk::Walk;

impl Subset {
    /// Whether the stored file `key` is read; `salt` makes `Percent` draw anew each run.
    fn selects(self, key: &str, salt: &str) -> bool {
        let bucket = |salt: &str, modulus: u64| {
            let digest = Sha256::new()
                .chain_update(salt.as_bytes())
                .chain_update(key.as_bytes())
                .finalize();
            let mut head = [0u8; 8];
            head.copy_from_slice(&digest[..8]);
            u64::from_be_bytes(head) % modulus
        };
        match self {
            Self::All => true,
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "p is in (0, 100], so p * 100 fits"
            )]
            Self::Percent(p) => bucket(salt, 10_000) < (p * 100.0).round() as u64,
            Self::Slice { k, t } => bucket("", u64::from(t)) == u64::from(k - 1),
        }
    }
}

/// What to verify.
#[derive(Debug, Clone)]
pub struct VerifyRequest {
    /// The repository.
    pub store: Arc<dyn BackupStore>,
    /// One PIT, or every PIT (`None`).
    pub pit: Option<PitSelector>,
    /// Read stored files and compare their checksums.
    pub read_data: Option<Subset>,
    /// `--restore-test`: restore the PIT (the chosen one, else the newest) into a scratch
    /// catalog and read every ref back; only tables matching these globs (empty: all).
    pub restore_test: Option<Vec<String>>,
    /// Files read at once.
    pub concurrency: usize,
    /// `--repair`: copy damaged or missing stored files again from the live tables of this
    /// catalog, when their bytes still match what was recorded.
    pub repair: Option<Arc<crate::plan::CatalogSpec>>,
}

/// One thing that is wrong, and what to do about it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The PIT it affects (the first one found that references it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pit: Option<String>,
    /// The table, `database.table`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The repository object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// What is wrong.
    pub problem: String,
    /// What to do next.
    pub hint: String,
}

/// Objects no PIT references.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Reclaimable {
    /// How many.
    pub objects: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The outcome of `bcn verify`.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The repository URL.
    pub repository: String,
    /// PITs checked.
    pub pits: Vec<String>,
    /// Distinct table states checked (a table unchanged across PITs counts once).
    pub tables_checked: usize,
    /// Distinct stored files checked for presence and size.
    pub files_checked: usize,
    /// Their bytes.
    pub bytes_checked: u64,
    /// Manifests and manifest lists parsed while walking the stored metadata.
    pub manifests_read: usize,
    /// `--restore-test`: what was restored and read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<RestoreTestReport>,
    /// `--read-data`: the subset read, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_data: Option<String>,
    /// Files whose content was read and hashed.
    pub files_read: usize,
    /// Their bytes.
    pub bytes_read: u64,
    /// Unreferenced objects (`gc` reclaims them); `None` while a backup runs or when a
    /// damaged record hides what is referenced.
    pub reclaimable: Option<Reclaimable>,
    /// Everything found wrong.
    pub problems: Vec<Problem>,
    /// `--repair`: stored files copied again from the live tables.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    /// `--repair`: damaged objects that could not be healed, with why; the PITs that
    /// reference them stay damaged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unrepaired: Vec<Problem>,
    /// Wall time, seconds.
    pub seconds: f64,
    /// The file-list entries of damaged or missing stored files, for `--repair`.
    #[serde(skip)]
    damaged_files: Vec<(String, FileEntry)>,
}

impl VerifyReport {
    /// Whether nothing is wrong (or, with `--repair`, everything found was healed).
    pub fn is_clean(&self) -> bool {
        self.problems.len() == self.repaired.len() && self.unrepaired.is_empty()
    }
}

/// Where a stored file is referenced first, for messages.
#[derive(Debug, Clone)]
struct Origin {
    pit: String,
    table: String,
}

/// Verifies a repository (with `repair`, under the exclusive lock) and records the run in
/// the repository.
pub async fn verify(
    request: &VerifyRequest,
    ctx: &Context,
    observer: &dyn super::Observer,
) -> Result<VerifyReport, EngineError> {
    let repo = Repository::open(request.store.clone()).await?;
    let started_at = ctx.now();
    let report = verify_repo(&repo, request, ctx, observer).await?;
    let record = crate::repo::records::VerificationRecord {
        format_version: crate::repo::records::FORMAT_VERSION,
        id: ctx.new_pit_id(started_at, None),
        started_at,
        clean: report.is_clean(),
        problems: report.problems.len(),
        pits: report.pits.len(),
        read_data: report.read_data.clone(),
        restore_test: report.restore_test.is_some(),
        millis: u64::try_from(std::time::Duration::from_secs_f64(report.seconds).as_millis())
            .unwrap_or(u64::MAX),
    };
    if let Err(e) = repo.record_verification(&record).await {
        tracing::warn!(error = %crate::error::error_chain(&e), "could not record the verification");
    }
    Ok(report)
}

async fn verify_repo(
    repo: &Repository,
    request: &VerifyRequest,
    ctx: &Context,
    observer: &dyn super::Observer,
) -> Result<VerifyReport, EngineError> {
    let Some(catalog) = &request.repair else {
        return verify_open(repo, request, ctx, observer).await;
    };
    let guard = lock::acquire(repo, ctx, "verify --repair", lock::DEFAULT_TTL_SECONDS).await?;
    let result = async {
        let mut report = verify_open(repo, request, ctx, observer).await?;
        repair::repair(repo, catalog, &mut report, request.read_data.is_some()).await?;
        Ok::<_, EngineError>(report)
    }
    .await;
    let released = guard.release().await;
    let report = result?;
    released?;
    Ok(report)
}

async fn verify_open(
    repo: &Repository,
    request: &VerifyRequest,
    ctx: &Context,
    observer: &dyn super::Observer,
) -> Result<VerifyReport, EngineError> {
    let started = std::time::Instant::now();
    let mut problems = Vec::new();
    let pits = select_pits(repo, request.pit.as_ref(), &mut problems).await?;
    let objects = walk::Objects::list(repo.store().as_ref()).await?;
    let reading = request
        .read_data
        .map(|subset| walk::Reading::new(subset, ctx.new_run_id(), request.concurrency, observer));
    let mut walk = Walk::new(
        repo,
        objects,
        repo.store().listed_names().await?,
        problems,
        reading,
    );
    for pit in &pits {
        observer.event(&super::Event::TableStarted {
            table: &format!("PIT {}", pit.id),
        });
        for table in &pit.tables {
            walk.check_table(pit, table).await;
        }
    }
    walk.read_queued(true).await;
    let reclaimable = walk.reclaimable(request.pit.is_none()).await?;
    let (manifests_read, tables_checked) = (walk.manifests_read(), walk.tables_checked());
    let Walk {
        files_checked,
        bytes_checked,
        damaged,
        mut problems,
        reading,
        ..
    } = walk;
    let (files_read, bytes_read) = reading.map_or((0, 0), |r| (r.files, r.bytes));
    let restore_test = match (&request.restore_test, pits.last()) {
        (Some(tables), Some(pit)) => {
            Some(restore_test::run(repo, pit, tables, ctx, &mut problems).await?)
        }
        _ => None,
    };
    // Marked for backups, which then never reuse these objects but copy them again.
    for problem in &problems {
        if let Some(key) = problem
            .key
            .as_deref()
            .filter(|k| k.starts_with(layout::TABLES_PREFIX))
            && let Err(e) = repo.mark_damaged(key, &problem.problem, ctx.now()).await
        {
            tracing::warn!(key, error = %crate::error::error_chain(&e), "could not mark a damaged object");
        }
    }
    Ok(VerifyReport {
        damaged_files: damaged.into_iter().collect(),
        restore_test,
        repository: repo.url().to_owned(),
        pits: pits.iter().map(|p| p.id.clone()).collect(),
        tables_checked,
        files_checked,
        bytes_checked,
        manifests_read,
        read_data: request.read_data.map(|s| s.to_string()),
        files_read,
        bytes_read,
        reclaimable,
        problems,
        repaired: Vec::new(),
        unrepaired: Vec::new(),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The readable PITs in scope; damaged ones become problems.
async fn select_pits(
    repo: &Repository,
    selector: Option<&PitSelector>,
    problems: &mut Vec<Problem>,
) -> Result<Vec<PitRecord>, EngineError> {
    if let Some(selector) = selector {
        return Ok(vec![repo.resolve_pit(selector).await?]);
    }
    let mut pits = Vec::new();
    for entry in repo.scan_pits().await? {
        match entry {
            PitEntry::Readable(pit) => pits.push(*pit),
            PitEntry::Damaged { id, key, reason } => problems.push(Problem {
                pit: Some(id),
                table: None,
                key: Some(key.clone()),
                problem: reason,
                hint: format!(
                    "this PIT cannot be restored; put {key} back from a copy of the repository if there is one, else remove it (the other PITs are unaffected) and run `bcn gc`"
                ),
            }),
        }
    }
    Ok(pits)
}

#[cfg(test)]
mod tests;
