//! The work of bcn, independent of the command line: it never prints and never exits.
//!
//! Each operation is split into `prepare` (read catalogs and the repository, decide what to
//! do, write nothing) and `execute` (do it). `--dry-run` renders the prepared plan and stops,
//! so a dry run and a real run cannot disagree about what they would do. Progress goes to an
//! [`Observer`]; outcomes come back as report values in [`crate::report`].

pub mod apply;
pub mod backup;
pub(crate) mod files;
pub mod finish;
mod hooks;
pub mod inspect;
pub mod maintenance;
pub(crate) mod metrics;
pub(crate) mod notify;
pub mod restore;
pub(crate) mod retention;
pub(crate) mod rewrite;
pub(crate) mod sample;
mod transfer;
pub mod verify;

pub(crate) use transfer::set_metadata_budget;

use crate::catalog::CatalogError;
use crate::plan::PlanError;
use crate::repo::RepoError;
use crate::store::{StoreError, StoreErrorKind};

/// Progress events, for progress bars and log lines. The engine emits them; it does not
/// render them.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A table's backup or restore started.
    TableStarted {
        /// `database.table`.
        table: &'a str,
    },
    /// A file was copied.
    FileCopied {
        /// `database.table`.
        table: &'a str,
        /// Its size.
        bytes: u64,
    },
    /// A table finished.
    TableFinished {
        /// `database.table`.
        table: &'a str,
        /// What happened, in one word (`NEW`, `restored`, ...).
        outcome: &'a str,
    },
}

/// Receives progress events.
pub trait Observer: Send + Sync {
    /// Called for each event, from any task.
    fn event(&self, event: &Event<'_>);
}

/// An observer that ignores everything.
#[derive(Debug, Default)]
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _: &Event<'_>) {}
}

/// One table that failed, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableFailure {
    /// `database.table`.
    pub table: String,
    /// What kind of failure it was ([`TableError::kind`]).
    pub kind: &'static str,
    /// The error chain, in one line.
    pub reason: String,
}

impl TableFailure {
    /// The failure of `table`, its name and reason with control characters escaped.
    pub(crate) fn new(table: &str, error: &TableError) -> Self {
        Self {
            table: crate::names::escape_control(table).into_owned(),
            kind: error.kind(),
            reason: crate::names::escape_control(error.message()).into_owned(),
        }
    }
}

/// Why one table's (or view's) backup or restore failed. A table that fails never stops the
/// others; the kind decides whether the table is read again ([`TableError::Moved`]) and is
/// reported with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// The table changed while it was read (a commit or an expiry removed a file): worth
    /// another attempt from fresh metadata.
    #[error("{0}")]
    Moved(String),
    /// What was to be copied is damaged: a stored object that does not match its checksum,
    /// a table file removed outside Iceberg, metadata that does not parse.
    #[error("{0}")]
    Damaged(String),
    /// Going on would overwrite something different (a file at the restore target).
    #[error("{0}")]
    Conflict(String),
    /// The catalog failed or refused.
    #[error("{0}")]
    Catalog(String),
    /// Reading or writing files failed: the table's storage, the repository's or the
    /// restore target's.
    #[error("{0}")]
    Io(String),
    /// The table cannot be handled as it is; the message says what to do.
    #[error("{0}")]
    Unsupported(String),
}

impl TableError {
    /// The kind, in one word: `moved`, `damaged`, `conflict`, `catalog`, `io`, `unsupported`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Moved(_) => "moved",
            Self::Damaged(_) => "damaged",
            Self::Conflict(_) => "conflict",
            Self::Catalog(_) => "catalog",
            Self::Io(_) => "io",
            Self::Unsupported(_) => "unsupported",
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Self::Moved(m)
            | Self::Damaged(m)
            | Self::Conflict(m)
            | Self::Catalog(m)
            | Self::Io(m)
            | Self::Unsupported(m) => m,
        }
    }

    /// An I/O failure, with the error's chain of causes.
    pub(crate) fn io(e: &(dyn std::error::Error + 'static)) -> Self {
        Self::Io(error_chain(e))
    }

    /// A catalog failure, with the error's chain of causes.
    pub(crate) fn catalog(e: &(dyn std::error::Error + 'static)) -> Self {
        Self::Catalog(error_chain(e))
    }

    /// A repository failure: a record that does not decode, or one missing that a PIT
    /// references, is damage; anything else I/O.
    pub(crate) fn repo(e: &RepoError) -> Self {
        match e {
            RepoError::Decode(_) => Self::Damaged(error_chain(e)),
            RepoError::Store(s) if s.kind() == StoreErrorKind::NotFound => {
                Self::Damaged(error_chain(e))
            }
            _ => Self::io(e),
        }
    }

    /// A failed copy: content that does not match its size or checksum, or a stored object
    /// missing, is damage; anything else I/O.
    pub(crate) fn transfer(e: &transfer::TransferError) -> Self {
        use transfer::TransferError as T;
        match e {
            T::SizeMismatch { .. } | T::ChecksumMismatch { .. } => Self::Damaged(error_chain(e)),
            T::Store(s) if s.kind() == StoreErrorKind::NotFound => Self::Damaged(error_chain(e)),
            _ => Self::io(e),
        }
    }

    /// The same kind of error with its message rewritten by `f`.
    pub(crate) fn map(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::Moved(m) => Self::Moved(f(m)),
            Self::Damaged(m) => Self::Damaged(f(m)),
            Self::Conflict(m) => Self::Conflict(f(m)),
            Self::Catalog(m) => Self::Catalog(f(m)),
            Self::Io(m) => Self::Io(f(m)),
            Self::Unsupported(m) => Self::Unsupported(f(m)),
        }
    }

    /// The same kind of error, its message prefixed with what was being done.
    pub(crate) fn context(self, what: impl std::fmt::Display) -> Self {
        self.map(|m| format!("{what}: {m}"))
    }
}

/// Errors of engine operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The plan is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The repository failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The repository storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request does not make sense: what is wrong, and how to fix it.
    #[error("{message}{}", hint.as_ref().map(|h| format!("; {h}")).unwrap_or_default())]
    Invalid {
        /// What is wrong, and where.
        message: String,
        /// How to fix it.
        hint: Option<String>,
    },
    /// The request would overwrite what exists (a restore onto existing tables without
    /// `--replace`); the message names it and how to go on.
    #[error("{0}")]
    Conflict(String),
    /// The repository holds a record that cannot be read, so the operation would not be
    /// safe; the message names it and what to do.
    #[error("{0}")]
    Damaged(String),
    /// A table named on the command line does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Some tables failed; nothing was committed (backup) or they were left unregistered
    /// (restore).
    #[error("{count} table{s} failed{committed}:\n{list}",
        count = failures.len(), s = if failures.len() == 1 { "" } else { "s" },
        committed = if *committed { "" } else { "; no PIT was committed" },
        list = failures.iter().map(|f| format!("  - {}: {}", f.table, f.reason)).collect::<Vec<_>>().join("\n"))]
    TablesFailed {
        /// Each failed table.
        failures: Vec<TableFailure>,
        /// Whether the rest was committed anyway.
        committed: bool,
    },
    /// Some tables of a restore failed: each was left unregistered and the files written for
    /// it were removed; the others were restored.
    #[error("{count} table{s} failed to restore{rest}; nothing was registered for {them} and the files written for {them} were removed:\n{list}",
        count = failures.len(), s = if failures.len() == 1 { "" } else { "s" },
        them = if failures.len() == 1 { "it" } else { "them" },
        rest = if *restored == 0 { String::new() } else { format!(" ({restored} other{} restored)", if *restored == 1 { " was" } else { "s were" }) },
        list = failures.iter().map(|f| format!("  - {}: {}", f.table, f.reason)).collect::<Vec<_>>().join("\n"))]
    RestoreFailed {
        /// Each failed table.
        failures: Vec<TableFailure>,
        /// How many tables were restored.
        restored: usize,
    },
    /// Stopped by a signal, a cancelled job or its timeout: the running work was cancelled; a
    /// PIT commit under way ended first, and the message says whether it landed.
    #[error(
        "interrupted by {by}: the backup was stopped; {said}; the lock was released and the next run reuses what was copied"
    )]
    Interrupted {
        /// What stopped it ("a signal").
        by: String,
        /// What was committed as it stopped, if anything.
        said: String,
    },
    /// Stopped by a signal, a cancelled job or its timeout before its backup started: reading
    /// the repository's records, or a `before` hook (killed).
    #[error("interrupted by {by} before its backup started: nothing was copied or committed")]
    InterruptedBeforeBackup {
        /// What stopped it ("a signal").
        by: String,
    },
    /// The backup lost its repository lock while running; nothing was committed.
    #[error("the repository lock of {0} was removed while the backup ran; no PIT was committed")]
    LockLost(String),
    /// A local file bcn writes for itself (metrics, a scratch directory) could not be written.
    #[error("{what}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl EngineError {
    /// An invalid request whose message says all there is to say.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            hint: None,
        }
    }

    /// An invalid request: what is wrong, and how to fix it.
    pub fn invalid_hint(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    /// How to fix the error, when it says so apart from its message.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Self::Invalid { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }

    /// What kind of failure this is: exit statuses, HTTP statuses and entry statuses are
    /// derived from it.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::Plan(_) | Self::Invalid { .. } => ErrorKind::Invalid,
            Self::Conflict(_) => ErrorKind::Conflict,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Repo(r) => r.kind(),
            Self::TablesFailed {
                committed: true, ..
            } => ErrorKind::Partial,
            _ => ErrorKind::Failure,
        }
    }
}

pub use crate::error::error_chain;

/// Opens the store of a plan repository, with its S3 settings.
pub fn open_repository_store(
    spec: &crate::plan::RepositorySpec,
) -> Result<std::sync::Arc<dyn crate::store::BackupStore>, EngineError> {
    open_repository_store_with(spec, None)
}

/// As [`open_repository_store`], with a key that takes precedence over the plan's.
pub fn open_repository_store_with(
    spec: &crate::plan::RepositorySpec,
    key: Option<crate::store::crypto::UserKey>,
) -> Result<std::sync::Arc<dyn crate::store::BackupStore>, EngineError> {
    let s3 = spec.s3.clone().unwrap_or_default();
    let store = spec
        .location
        .open_with(&s3)
        .map_err(|e| EngineError::invalid(format!("repository `{}`: {e}", spec.name)))?;
    Ok(match key.or_else(|| spec.encryption.clone()) {
        Some(key) => std::sync::Arc::new(crate::store::EncryptedStore::new(store, key)),
        None => store,
    })
}
