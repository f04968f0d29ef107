//! The exclusive writer lock: one backup (or gc) per repository at a time.
//!
//! The lock is the object `locks/exclusive.json`, created with create-if-absent, so exactly one
//! writer wins. Its holder refreshes `heartbeat_at` every third of the TTL. Readers (describe,
//! list, restore) never take it: they only read committed PITs, which are immutable.
//!
//! A lock is *stale* when its heartbeat is older than its TTL, or when it was taken on this host
//! by a process that no longer runs (killed, crashed). The next writer takes a stale lock over
//! by itself, saying whose it was, so that unattended runs never stall on a dead holder;
//! `bcn unlock` stays for people. A live holder is never displaced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::layout::EXCLUSIVE_LOCK;
use super::records::{FORMAT_VERSION, LockRecord, decode, encode};
use super::{RepoError, Repository};
use crate::context::{Context, hostname};
use crate::store::{StoreError, StoreErrorKind};

/// Default seconds after the last heartbeat at which a lock is stale.
pub const DEFAULT_TTL_SECONDS: u64 = 300;

/// The repository is locked by another run.
#[derive(Debug, thiserror::Error)]
#[error(
    "repository {url} is locked by {command} run {run_id} on {host} (pid {pid}), started {created_at}, last heartbeat {heartbeat_at}{stale}",
    run_id = holder.run_id, host = holder.host, pid = holder.pid, command = holder.command,
    created_at = holder.created_at.to_rfc3339(), heartbeat_at = holder.heartbeat_at.to_rfc3339(),
    stale = if *stale { "; the lock looks stale: remove it with `bcn unlock --stale-only`" } else { "" }
)]
pub struct LockedError {
    /// The repository URL.
    pub url: String,
    /// Who holds it.
    pub holder: LockRecord,
    /// Whether the holder looks gone.
    pub stale: bool,
}

impl LockRecord {
    /// True when the holder looks gone at `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        let expired = now.signed_duration_since(self.heartbeat_at).num_seconds()
            > i64::try_from(self.ttl_seconds).unwrap_or(i64::MAX);
        expired || (self.host == hostname() && !process_alive(self.pid))
    }
}

/// Whether `pid` runs on this host. Without `/proc` we cannot tell and assume it does.
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// A held lock. Dropping it stops the heartbeat; call [`LockGuard::release`] to remove it.
#[derive(Debug)]
pub struct LockGuard {
    repo: Repository,
    run_id: String,
    cancel: CancellationToken,
    lost: Arc<AtomicBool>,
    released: bool,
}

impl LockGuard {
    /// True when another process removed or replaced the lock while it was held; the holder
    /// must then not commit anything.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Reads the lock now and tells whether it is still ours (a commit point checks this
    /// rather than waiting for the next heartbeat).
    pub async fn still_held(&self) -> Result<bool, RepoError> {
        if self.is_lost() {
            return Ok(false);
        }
        Ok(read_lock(&self.repo)
            .await?
            .is_some_and(|current| current.run_id == self.run_id))
    }

    /// Stops the heartbeat and removes the lock, if it is still ours.
    pub async fn release(mut self) -> Result<(), RepoError> {
        self.released = true;
        self.cancel.cancel();
        remove_if_ours(&self.repo, &self.run_id).await
    }
}

/// Removes the lock if it is the one run `run_id` took.
async fn remove_if_ours(repo: &Repository, run_id: &str) -> Result<(), RepoError> {
    if let Some(current) = read_lock(repo).await?
        && current.run_id == run_id
    {
        repo.store().delete(EXCLUSIVE_LOCK).await?;
    }
    Ok(())
}

/// Lock creations in flight, each in a task of its own: when its caller is gone by the time
/// the creation lands (a run stopped by a signal, or a job cancelled, while it took the
/// lock), the task removes the lock again, since nobody holds it (see [`Waiting`] for a run
/// dropped after the result was sent). Without that, the lock of a stopped run stayed until
/// it was judged stale: at once for a command on the same host (its process is gone), after
/// the TTL in `bcn serve` (its process lives on) or from another host.
pub(super) static CREATIONS: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Creates `record` as the lock if there is none (see [`CREATIONS`]).
async fn create(repo: &Repository, record: &LockRecord) -> Result<(), StoreError> {
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let (owned, run_id) = (repo.clone(), record.run_id.clone());
    let bytes = encode(record);
    CREATIONS.spawn(async move {
        let created = owned.store().put_if_absent(EXCLUSIVE_LOCK, bytes).await;
        if let Err(Ok(())) = sender.send(created) {
            remove_unheld(&owned, &run_id).await;
        }
    });
    let mut waiting = Waiting {
        receiver: Some(receiver),
        repo: repo.clone(),
        run_id: record.run_id.clone(),
    };
    let result = waiting
        .receiver
        .as_mut()
        .expect("taken only here and on drop")
        .await;
    // Received: the caller has the result (nothing awaits between here and its guard).
    waiting.receiver = None;
    result.unwrap_or_else(|_| {
        Err(StoreError::new(
            StoreErrorKind::Other,
            "creating the lock",
            EXCLUSIVE_LOCK,
            repo.url(),
            Some("the task creating it failed".into()),
        ))
    })
}

/// Removes the lock a stopped run took, which nobody holds.
async fn remove_unheld(repo: &Repository, run_id: &str) {
    tracing::debug!(repo = repo.url(), "removing a lock its stopped run took");
    if let Err(e) = remove_if_ours(repo, run_id).await {
        tracing::warn!(
            repo = repo.url(),
            error = %crate::error::error_chain(&e),
            "could not remove the lock of a stopped run; the next run takes it over"
        );
    }
}

/// The caller's end of a lock creation. Dropped before it received the result (its run
/// stopped), it closes the channel: a creation that lands later finds nobody to send to and
/// removes the lock itself, and one that landed meanwhile (sent, but not received: the
/// caller was woken, then dropped before it ran) is removed from here. Exactly one of the
/// two, whatever the order.
struct Waiting {
    receiver: Option<tokio::sync::oneshot::Receiver<Result<(), StoreError>>>,
    repo: Repository,
    run_id: String,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let Some(mut receiver) = self.receiver.take() else {
            return;
        };
        receiver.close();
        if let Ok(Ok(())) = receiver.try_recv()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (repo, run_id) = (self.repo.clone(), std::mem::take(&mut self.run_id));
            CREATIONS.spawn_on(async move { remove_unheld(&repo, &run_id).await }, &runtime);
        }
    }
}

/// Waits, at most `limit`, for lock creations in flight to settle (each runs in a task of its
/// own, which removes the lock again if its caller is gone): a command stopped by a signal
/// calls it before its process ends, so that a lock its run was taking is removed rather than
/// left for the next run to take over.
pub async fn settle(limit: Duration) {
    CREATIONS.close();
    if tokio::time::timeout(limit, CREATIONS.wait()).await.is_err() {
        tracing::warn!(
            "a lock being taken when the run stopped may be left; the next run takes it over"
        );
    }
}

impl Drop for LockGuard {
    /// A guard dropped without [`LockGuard::release`] (an early return, a panic unwinding
    /// through the run) still tries to remove its lock, from a helper thread with its own
    /// runtime (Drop cannot await) and a short time limit; if that fails, the next writer
    /// takes the stale lock over.
    fn drop(&mut self) {
        self.cancel.cancel();
        if self.released {
            return;
        }
        let (repo, run_id) = (self.repo.clone(), self.run_id.clone());
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let remove = remove_if_ours(&repo, &run_id);
                let _ = tokio::time::timeout(Duration::from_secs(5), remove).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Reads the current lock, if any.
pub async fn read_lock(repo: &Repository) -> Result<Option<LockRecord>, RepoError> {
    match repo.store().get(EXCLUSIVE_LOCK).await {
        Ok(bytes) => Ok(Some(decode("lock", EXCLUSIVE_LOCK, &bytes)?)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Takes the exclusive lock for `command`, or fails at once with [`LockedError`].
pub async fn acquire(
    repo: &Repository,
    ctx: &Context,
    command: &str,
    ttl_seconds: u64,
) -> Result<LockGuard, RepoError> {
    let now = ctx.now();
    let record = LockRecord {
        format_version: FORMAT_VERSION,
        run_id: ctx.new_run_id(),
        host: hostname(),
        pid: std::process::id(),
        command: command.to_owned(),
        created_at: now,
        heartbeat_at: now,
        ttl_seconds,
    };
    match create(repo, &record).await {
        Ok(()) => {}
        Err(e) if e.kind() == StoreErrorKind::AlreadyExists => {
            let holder = read_lock(repo).await?;
            // It vanished between our attempt and the read: the holder just released; retry.
            let Some(holder) = holder else {
                return Box::pin(acquire(repo, ctx, command, ttl_seconds)).await;
            };
            if !holder.is_stale(ctx.now()) || !take_over(repo, &holder, &record).await? {
                let stale = holder.is_stale(ctx.now());
                let locked = LockedError {
                    url: repo.url().to_owned(),
                    holder,
                    stale,
                };
                return Err(Box::new(locked).into());
            }
        }
        Err(e) => return Err(e.into()),
    }
    let guard = LockGuard {
        repo: repo.clone(),
        run_id: record.run_id.clone(),
        cancel: CancellationToken::new(),
        lost: Arc::new(AtomicBool::new(false)),
        released: false,
    };
    tokio::spawn(heartbeat(
        repo.clone(),
        ctx.clone(),
        record,
        guard.cancel.clone(),
        guard.lost.clone(),
    ));
    Ok(guard)
}

/// Replaces the stale lock of `holder` with `record`. Returns false when another writer got
/// there first. Two writers taking over the same stale lock at once are told apart by the
/// create-if-absent that follows the removal, and a writer whose lock is later replaced
/// notices it at its next heartbeat and commits nothing ([`LockGuard::is_lost`]).
async fn take_over(
    repo: &Repository,
    holder: &LockRecord,
    record: &LockRecord,
) -> Result<bool, RepoError> {
    // Remove only the lock we judged stale, not one another writer just took.
    match read_lock(repo).await? {
        Some(current) if current.run_id == holder.run_id => {}
        _ => return Ok(false),
    }
    tracing::warn!(
        repo = repo.url(),
        holder_run = %holder.run_id,
        holder_host = %holder.host,
        holder_pid = holder.pid,
        holder_command = %holder.command,
        last_heartbeat = %holder.heartbeat_at.to_rfc3339(),
        "taking over a stale repository lock (its holder is gone)"
    );
    repo.store().delete(EXCLUSIVE_LOCK).await?;
    match create(repo, record).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == StoreErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e.into()),
    }
}

async fn heartbeat(
    repo: Repository,
    ctx: Context,
    mut record: LockRecord,
    cancel: CancellationToken,
    lost: Arc<AtomicBool>,
) {
    let period = Duration::from_secs((record.ttl_seconds / 3).max(1));
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(period) => {}
        }
        match read_lock(&repo).await {
            Ok(Some(current)) if current.run_id == record.run_id => {}
            Ok(_) => {
                tracing::error!(
                    repo = repo.url(),
                    "the repository lock was removed by someone else"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(repo = repo.url(), error = %e, "could not check the repository lock");
                continue;
            }
        }
        record.heartbeat_at = ctx.now();
        if let Err(e) = repo.store().put(EXCLUSIVE_LOCK, encode(&record)).await {
            tracing::warn!(repo = repo.url(), error = %e, "could not refresh the repository lock");
        }
    }
}

/// What `unlock` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnlockOutcome {
    /// The lock found, if any.
    pub lock: Option<LockRecord>,
    /// Whether it looked stale.
    pub stale: bool,
    /// Whether it was removed.
    pub removed: bool,
}

/// Removes the lock; with `stale_only`, only when its holder looks gone.
pub async fn unlock(
    repo: &Repository,
    ctx: &Context,
    stale_only: bool,
) -> Result<UnlockOutcome, RepoError> {
    let Some(lock) = read_lock(repo).await? else {
        return Ok(UnlockOutcome {
            lock: None,
            stale: false,
            removed: false,
        });
    };
    let stale = lock.is_stale(ctx.now());
    let removed = stale || !stale_only;
    if removed {
        repo.store().delete(EXCLUSIVE_LOCK).await?;
    }
    Ok(UnlockOutcome {
        lock: Some(lock),
        stale,
        removed,
    })
}
