//! Repository maintenance: `forget` (retention) and `gc` (space).
//!
//! `forget` removes PIT records only: the files they referenced stay until `gc`. `gc` deletes
//! the objects under `tables/` that no remaining PIT references, under the exclusive lock,
//! sparing objects younger than a grace period; it refuses to run when any PIT or file list
//! cannot be read, since it could not know what is referenced.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use super::EngineError;
use super::files::{PathDigest, path_digest};
use super::retention::{self, Decision};
use crate::context::Context;
use crate::plan::Retention;
use crate::repo::{Repository, layout, lock};
use crate::store::BackupStore;

/// What `forget` decided, and did.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetReport {
    /// The repository URL.
    pub repository: String,
    /// Whether PITs were actually removed.
    pub applied: bool,
    /// The policy.
    pub policy: Retention,
    /// Every PIT, newest first, with its decision and reasons.
    pub decisions: Vec<Decision>,
    /// PITs removed (or that would be).
    pub forgotten: Vec<String>,
    /// PITs whose record cannot be read: never decided on, never removed (deal with them by
    /// hand, see `bcn verify`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub damaged: Vec<String>,
    /// PITs retention would remove, kept because their record is still under S3 Object Lock
    /// retention; a later `forget` removes them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<Locked>,
}

/// An object kept because S3 Object Lock retains it.
#[derive(Debug, Clone, Serialize)]
pub struct Locked {
    /// Its key (for `forget`: the PIT id).
    pub key: String,
    /// Until when it cannot be deleted.
    pub until: chrono::DateTime<chrono::Utc>,
}

/// Splits `keys` into those that may be deleted now and those retained past `now`.
async fn split_retained(
    store: &dyn BackupStore,
    keys: impl IntoIterator<Item = (String, String)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Vec<String>, Vec<Locked>), EngineError> {
    let mut free = Vec::new();
    let mut locked = Vec::new();
    for (name, key) in keys {
        match store.retained_until(&key).await? {
            Some(until) if until > now => locked.push(Locked { key: name, until }),
            _ => free.push(name),
        }
    }
    Ok((free, locked))
}

/// Applies a retention policy to a repository's PITs; with `apply`, removes the PITs it
/// does not keep (under the exclusive lock).
pub async fn forget(
    store: Arc<dyn BackupStore>,
    policy: &Retention,
    apply: bool,
    ctx: &Context,
) -> Result<ForgetReport, EngineError> {
    let repo = Repository::open(store).await?;
    let guard = if apply {
        Some(lock::acquire(&repo, ctx, "forget", lock::DEFAULT_TTL_SECONDS).await?)
    } else {
        None
    };
    let result = forget_locked(&repo, policy, apply, ctx).await;
    if let Some(guard) = guard {
        guard.release().await?;
    }
    result
}

/// What retention would forget once `pit` (planned, not committed) exists: a dry run's
/// answer. `exists` is false for a repository the backup would create.
pub(crate) async fn forget_preview(
    repo: &Repository,
    exists: bool,
    pit: &crate::repo::records::PitRecord,
    policy: &Retention,
) -> Result<ForgetReport, EngineError> {
    let (mut times, damaged) = if exists {
        pit_times(repo).await?
    } else {
        (Vec::new(), Vec::new())
    };
    times.push((format!("{} (this run)", pit.id), pit.started_at));
    let decisions: Vec<Decision> = retention::decide(&times, policy);
    Ok(ForgetReport {
        repository: repo.url().to_owned(),
        applied: false,
        policy: policy.clone(),
        forgotten: decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| d.pit.clone())
            .collect(),
        decisions,
        damaged,
        locked: Vec::new(),
    })
}

/// [`forget`], for a caller that holds the repository's exclusive lock (or, without `apply`,
/// needs none).
pub(crate) async fn forget_locked(
    repo: &Repository,
    policy: &Retention,
    apply: bool,
    ctx: &Context,
) -> Result<ForgetReport, EngineError> {
    let (times, damaged) = pit_times(repo).await?;
    let decisions = retention::decide(&times, policy);
    let (forgotten, locked) = split_retained(
        repo.store().as_ref(),
        decisions
            .iter()
            .filter(|d| !d.keep)
            .map(|d| (d.pit.clone(), layout::pit(&d.pit))),
        ctx.now(),
    )
    .await?;
    for l in &locked {
        tracing::warn!(pit = %l.key, until = %l.until, "retention would forget this PIT, but S3 Object Lock keeps its record until then");
    }
    if apply {
        for pit in &forgotten {
            repo.store().delete(&layout::pit(pit)).await?;
        }
    }
    Ok(ForgetReport {
        repository: repo.url().to_owned(),
        applied: apply,
        policy: policy.clone(),
        decisions,
        forgotten,
        damaged,
        locked,
    })
}

/// What forgetting one PIT did.
#[derive(Debug, Clone, Serialize)]
pub struct ForgetOne {
    /// The PIT's id.
    pub pit: String,
    /// When S3 Object Lock retains its record: until when (it was not removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked: Option<chrono::DateTime<chrono::Utc>>,
}

/// Removes one PIT record (under the exclusive lock), unless S3 Object Lock retains it; its
/// files stay until `gc`.
pub async fn forget_one(
    store: Arc<dyn BackupStore>,
    pit: &str,
    ctx: &Context,
) -> Result<ForgetOne, EngineError> {
    let repo = Repository::open(store).await?;
    let record = repo
        .resolve_pit(&crate::repo::PitSelector::parse(pit))
        .await?;
    let guard = lock::acquire(&repo, ctx, "forget", lock::DEFAULT_TTL_SECONDS).await?;
    let key = layout::pit(&record.id);
    let result = async {
        match repo.store().retained_until(&key).await? {
            Some(until) if until > ctx.now() => Ok(ForgetOne {
                pit: record.id.clone(),
                locked: Some(until),
            }),
            _ => {
                repo.store().delete(&key).await?;
                Ok(ForgetOne {
                    pit: record.id.clone(),
                    locked: None,
                })
            }
        }
    }
    .await;
    guard.release().await?;
    result
}

/// The time of every readable PIT (what retention decides on), and the ids of damaged ones:
/// a damaged PIT does not block retention of the others, and is left alone.
pub(crate) async fn pit_times(
    repo: &Repository,
) -> Result<(Vec<(String, chrono::DateTime<chrono::Utc>)>, Vec<String>), EngineError> {
    let mut damaged = Vec::new();
    let mut times = Vec::new();
    for entry in repo.scan_pits().await? {
        match entry {
            crate::repo::PitEntry::Readable(p) => times.push((p.id, p.started_at)),
            crate::repo::PitEntry::Damaged { id, .. } => damaged.push(id),
        }
    }
    Ok((times, damaged))
}

/// An object `gc` removes (or would).
#[derive(Debug, Clone, Serialize)]
pub struct Unreferenced {
    /// Its key.
    pub key: String,
    /// Its size.
    pub size: u64,
}

/// What `gc` found, and did.
#[derive(Debug, Clone, Serialize)]
pub struct GcReport {
    /// The repository URL.
    pub repository: String,
    /// Whether objects were actually deleted.
    pub applied: bool,
    /// PITs whose references were loaded.
    pub pits: usize,
    /// Objects some PIT references.
    pub referenced: usize,
    /// Unreferenced objects older than the grace period: deleted (or to delete).
    pub unreferenced: Vec<Unreferenced>,
    /// Temporary objects of interrupted runs older than the grace period: deleted (or to
    /// delete).
    pub incomplete: Vec<Unreferenced>,
    /// Bytes of both.
    pub bytes: u64,
    /// Unreferenced objects spared because they are younger than the grace period.
    pub spared_young: usize,
    /// The grace period, in seconds.
    pub grace_seconds: i64,
    /// Unreferenced objects kept because S3 Object Lock still retains them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locked: Vec<Locked>,
}

/// Finds (and with `apply`, deletes) objects no PIT references.
pub async fn gc(
    store: Arc<dyn BackupStore>,
    grace: chrono::Duration,
    apply: bool,
    ctx: &Context,
) -> Result<GcReport, EngineError> {
    let repo = Repository::open(store).await?;
    let guard = if apply {
        Some(lock::acquire(&repo, ctx, "gc", lock::DEFAULT_TTL_SECONDS).await?)
    } else {
        None
    };
    let result = gc_locked(&repo, grace, apply, ctx).await;
    if let Some(guard) = guard {
        guard.release().await?;
    }
    result
}

async fn gc_locked(
    repo: &Repository,
    grace: chrono::Duration,
    apply: bool,
    ctx: &Context,
) -> Result<GcReport, EngineError> {
    let refuse = |what: String| {
        EngineError::Damaged(format!(
            "refusing to gc {}: {what}; nothing was deleted (gc cannot know what a damaged record references: `bcn forget` the damaged PIT, or repair the record, then run gc again)",
            repo.url()
        ))
    };
    let pits = repo
        .load_pits()
        .await
        .map_err(|e| refuse(super::error_chain(&e)))?;
    // Referenced objects by the digests of the names a listing gives them (their keys, but
    // in encrypted repositories): 16 bytes an object, and file lists read a part at a time.
    // Two names sharing a digest (a chance of ~10⁻²⁷ in a million) would spare an object,
    // never delete one.
    let names = repo.store().listed_names().await?;
    let name = |key: &str| path_digest(&names(key));
    let mut referenced: HashSet<PathDigest> = HashSet::new();
    let mut lists: HashSet<String> = HashSet::new();
    for pit in &pits {
        for table in &pit.tables {
            let Some(stored_in) = &table.stored_in else {
                continue;
            };
            let list_key = layout::filelist(&table.key, stored_in);
            if !lists.insert(list_key.clone()) {
                continue;
            }
            referenced.insert(name(&list_key));
            referenced.insert(name(&layout::table_metadata(&table.key, stored_in)));
            let filelist = repo
                .load_filelist_header(&table.key, stored_in)
                .await
                .map_err(|e| refuse(super::error_chain(&e)))?;
            referenced.extend(
                (0..filelist.parts.len())
                    .map(|n| name(&layout::filelist_part(&table.key, stored_in, n))),
            );
            let mut parts = std::pin::pin!(repo.filelist_parts(&table.key, stored_in, &filelist));
            while let Some(part) = parts.next().await {
                let part = part.map_err(|e| refuse(super::error_chain(&e)))?;
                referenced.extend(
                    part.iter()
                        .map(|f| name(&layout::table_file(&table.key, &f.rel))),
                );
            }
        }
    }
    let cutoff = ctx
        .now()
        .checked_sub_signed(grace)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    // An object of unknown age is spared unless there is no grace period at all.
    let young = |object: &crate::store::ObjectMeta| {
        object
            .modified
            .map_or(grace > chrono::Duration::zero(), |m| m > cutoff)
    };
    let mut unreferenced = Vec::new();
    let mut spared_young = 0;
    let mut pages = repo.store().list_pages(layout::TABLES_PREFIX);
    while let Some(page) = pages.try_next().await? {
        for object in page {
            if referenced.contains(&path_digest(&object.key)) {
                continue;
            }
            if young(&object) {
                spared_young += 1;
                continue;
            }
            unreferenced.push(Unreferenced {
                key: object.key,
                size: object.size,
            });
        }
    }
    drop(pages);
    unreferenced.sort_by(|a, b| a.key.cmp(&b.key));
    let (free, locked) = split_retained(
        repo.store().as_ref(),
        unreferenced.iter().map(|o| (o.key.clone(), o.key.clone())),
        ctx.now(),
    )
    .await?;
    unreferenced.retain(|o| free.contains(&o.key));
    if !locked.is_empty() {
        let until = locked.iter().map(|l| l.until).max().unwrap_or_default();
        tracing::warn!(objects = locked.len(), %until, "unreferenced objects stay: S3 Object Lock retains them (the last until the date shown)");
    }
    // Temporary objects of killed runs: a running backup may still be writing the young ones.
    let mut incomplete = Vec::new();
    for object in repo.store().list_incomplete("").await? {
        if young(&object) {
            spared_young += 1;
        } else {
            incomplete.push(Unreferenced {
                key: object.key,
                size: object.size,
            });
        }
    }
    if apply {
        for object in &unreferenced {
            repo.store().delete(&object.key).await?;
        }
        for object in &incomplete {
            repo.store().delete_incomplete(&object.key).await?;
        }
        // Damage markers of objects no PIT references any more have nothing left to warn of.
        for key in repo.damaged_objects().await? {
            if !referenced.contains(&name(&key)) {
                repo.clear_damaged(&key).await?;
            }
        }
    }
    Ok(GcReport {
        repository: repo.url().to_owned(),
        applied: apply,
        pits: pits.len(),
        referenced: referenced.len(),
        bytes: unreferenced.iter().chain(&incomplete).map(|o| o.size).sum(),
        unreferenced,
        incomplete,
        spared_young,
        grace_seconds: grace.num_seconds(),
        locked,
    })
}
