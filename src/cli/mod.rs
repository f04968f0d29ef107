//! The command line: the only layer that knows clap, prints, and picks exit codes.
//!
//! Each subcommand module holds its `Args` (doc comments become `--help`) and a `run` that
//! turns them into engine options, calls the engine, and renders the outcome.

mod apply;
mod backup;
mod completions;
mod describe;
mod diff;
mod forget;
mod gc;
mod key;
mod list;
mod printer;
mod progress;
mod quickstart;
mod restore;
mod schema;
#[cfg(feature = "serve")]
mod serve;
mod unlock;
mod validate;
mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::engine::EngineError;
use crate::error::ErrorKind;
use crate::location::Location;
use crate::plan::{Plan, PlanError};
use crate::repo::RepoError;
use crate::store::BackupStore;
use crate::store::crypto::UserKey;
pub use printer::Printer;

/// Back up and restore Apache Iceberg tables, databases and catalogs.
#[derive(Debug, Parser)]
#[command(name = "bcn", version, about, max_term_width = 100)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format: human-readable text, or one versioned JSON document on stdout.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, env = "BCN_OUTPUT")]
    pub output: OutputFormat,
    /// More log output on stderr (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr: human-readable lines, or one JSON object per line (for journald
    /// and log shippers).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "BCN_LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Run as if the clock read this time (RFC 3339), advancing one second per reading: for
    /// tests of intervals and cadences.
    #[arg(long, global = true, hide = true, env = "BCN_NOW", value_name = "TIME")]
    pub now: Option<String>,
    /// Files of one table a backup holds in memory; the rest are sorted and merged through
    /// temporary files (TMPDIR). For tests of very large tables.
    #[arg(long, global = true, hide = true, env = "BCN_FILES_IN_MEMORY", value_name = "N", default_value_t = crate::context::FILES_IN_MEMORY)]
    pub files_in_memory: usize,
    /// Bytes of whole metadata files the process holds at once to decode or rewrite them
    /// (default 64 MiB); a file larger than that waits for all of it. For tests of the bound.
    #[arg(
        long,
        global = true,
        hide = true,
        env = "BCN_METADATA_BUDGET",
        value_name = "BYTES"
    )]
    pub metadata_budget: Option<u32>,
}

/// Log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Human-readable text.
    Text,
    /// A JSON document.
    Json,
}

#[derive(Debug, Subcommand)]
#[expect(clippy::doc_markdown, reason = "these doc comments are --help text")]
enum Command {
    /// Create a sample lakehouse (SQLite catalog, local warehouse) and back it up
    Quickstart(quickstart::Args),
    /// Run every due entry of a plan (backup, retention, reports, notifications)
    Apply(apply::Args),
    /// Back up a table, a database or a whole catalog into a repository
    Backup(backup::Args),
    /// Restore tables from a repository into a catalog
    Restore(restore::Args),
    /// Show a repository: scope, PITs, counts, deleted objects
    Describe(describe::Args),
    /// List the databases and tables of a PIT
    List(list::Args),
    /// Show what changed between two PITs
    Diff(diff::Args),
    /// Prove that a repository's PITs can be restored (structure; --read-data: checksums)
    Verify(verify::Args),
    /// Apply a retention policy to a repository's PITs
    Forget(forget::Args),
    /// Delete repository files no PIT references
    Gc(gc::Args),
    /// Remove a repository's writer lock
    Unlock(unlock::Args),
    /// List, add or remove the keys of an encrypted repository
    Key(key::Args),
    /// Serve backups and restores over an HTTP API, with tokens, roles and a job history
    #[cfg(feature = "serve")]
    Serve(serve::Args),
    /// Check a plan without touching anything
    Validate(validate::Args),
    /// Print the JSON Schema of the plan file
    Schema(schema::Args),
    /// Print a shell completion script (bash, zsh, fish, ...)
    Completions(completions::Args),
    /// Print the manual page (roff), of bcn or of one subcommand
    Man(completions::ManArgs),
}

impl Command {
    #[cfg_attr(
        not(feature = "serve"),
        expect(clippy::unused_self, reason = "only `serve` is a server")
    )]
    fn is_serve(&self) -> bool {
        #[cfg(feature = "serve")]
        if matches!(self, Self::Serve(_)) {
            return true;
        }
        false
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Quickstart(_) => "quickstart",
            Self::Apply(_) => "apply",
            Self::Backup(_) => "backup",
            Self::Restore(_) => "restore",
            Self::Describe(_) => "describe",
            Self::List(_) => "list",
            Self::Diff(_) => "diff",
            Self::Verify(_) => "verify",
            Self::Forget(_) => "forget",
            Self::Gc(_) => "gc",
            Self::Unlock(_) => "unlock",
            Self::Key(_) => "key",
            #[cfg(feature = "serve")]
            Self::Serve(_) => "serve",
            Self::Validate(_) => "validate",
            Self::Schema(_) => "schema",
            Self::Completions(_) => "completions",
            Self::Man(_) => "man",
        }
    }
}

/// Exit statuses, documented in the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything succeeded.
    Success = 0,
    /// The command failed.
    Failure = 1,
    /// Invalid invocation or plan.
    Usage = 2,
    /// Some tables or entries failed, others succeeded.
    Partial = 3,
    /// The repository is locked by another run; retry later.
    Locked = 75,
    /// Stopped by SIGINT (Ctrl-C).
    Interrupted = 130,
    /// Stopped by SIGTERM.
    Terminated = 143,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The status an error maps to.
    pub fn of(error: &anyhow::Error) -> Self {
        for cause in error.chain() {
            if let Some(e) = cause.downcast_ref::<EngineError>() {
                return Self::of_kind(e.kind());
            }
            if let Some(r) = cause.downcast_ref::<RepoError>() {
                return Self::of_kind(r.kind());
            }
            if cause.downcast_ref::<PlanError>().is_some() {
                return Self::Usage;
            }
        }
        Self::Failure
    }

    fn of_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::Invalid | ErrorKind::Conflict => Self::Usage,
            ErrorKind::Locked => Self::Locked,
            ErrorKind::Partial => Self::Partial,
            ErrorKind::NotFound | ErrorKind::Failure => Self::Failure,
        }
    }
}

/// Sets up logging on stderr.
pub fn init_tracing(global: &GlobalArgs) {
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,bcn=info",
        (false, 1) => "info,bcn=debug",
        (false, _) => "debug,bcn=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BCN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    crate::secret::register_environment();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::secret::RedactingStderr);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .try_init(),
    };
}

/// Threads the async runtime's blocking pool may hold at once, for every command but `serve`.
/// Local file work (copies, fsyncs, reads and writes of metadata) runs there, and tokio's
/// pool (up to 512) grows to as many threads as tables in flight do such work at once: a
/// restore of 1,000 small tables at `--jobs 64` peaked at 125 threads and 47 MiB of anonymous
/// memory (17 MiB at `--jobs 1`), mostly their stacks and allocator arenas; with this bound,
/// 61 threads and 37 MiB. 32 lets the process's copies (16 at once) and fsync tasks (16)
/// run side by side; the 1 GiB restore of the benchmark takes as long as with 512. `serve`
/// keeps tokio's default: each of its jobs drives its engine from a thread of the pool for as
/// long as it runs, so with a bound, jobs could hold every thread while their own file work
/// waits for one.
pub const BLOCKING_THREADS: usize = 32;

/// The async runtime `cli` runs on (see [`BLOCKING_THREADS`]).
///
/// # Errors
/// When the operating system refuses its threads or its event loop.
pub fn runtime(cli: &Cli) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if !cli.command.is_serve() {
        builder.max_blocking_threads(BLOCKING_THREADS);
    }
    builder.build()
}

/// Prints an error that happened before a command could run.
pub fn report_fatal(error: &anyhow::Error) {
    Printer::new(OutputFormat::Text, false).error("bcn", error, ExitStatus::Failure);
}

/// Runs the command and returns its exit status.
pub async fn run(cli: Cli) -> ExitStatus {
    let printer = Printer::new(cli.global.output, cli.global.quiet);
    let name = cli.command.name();
    let ctx = match cli
        .global
        .now
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        None => crate::context::Context::system(),
        Some(Ok(t)) => crate::context::Context::fixed(t.with_timezone(&chrono::Utc)),
        Some(Err(e)) => {
            let error = anyhow::anyhow!("--now / BCN_NOW: {e}");
            printer.error(name, &error, ExitStatus::Usage);
            return ExitStatus::Usage;
        }
    }
    .with_files_in_memory(cli.global.files_in_memory);
    if let Some(bytes) = cli.global.metadata_budget {
        crate::engine::set_metadata_budget(bytes);
    }
    // `apply` is told to stop and finishes its report; every other command is dropped.
    let graceful = matches!(cli.command, Command::Apply(_)) || cli.command.is_serve();
    let cancel = tokio_util::sync::CancellationToken::new();
    let work = async {
        match cli.command {
            Command::Quickstart(args) => quickstart::run(args, &ctx, printer).await,
            Command::Apply(args) => Box::pin(apply::run(args, &ctx, printer, &cancel)).await,
            Command::Backup(args) => backup::run(args, &ctx, printer).await,
            Command::Forget(args) => forget::run(args, &ctx, printer).await,
            Command::Gc(args) => gc::run(args, &ctx, printer).await,
            Command::Verify(args) => verify::run(args, &ctx, printer).await,
            Command::Restore(args) => restore::run(args, &ctx, printer).await,
            Command::Describe(args) => describe::run(args, printer).await,
            Command::List(args) => list::run(args, printer).await,
            Command::Diff(args) => diff::run(args, printer).await,
            Command::Unlock(args) => unlock::run(args, &ctx, printer).await,
            Command::Key(args) => key::run(args, printer).await,
            #[cfg(feature = "serve")]
            Command::Serve(args) => serve::run(args, &ctx, cancel.clone()).await,
            Command::Validate(args) => validate::run(&args, printer),
            Command::Schema(args) => schema::run(args, printer),
            Command::Completions(args) => completions::run(&args, printer),
            Command::Man(args) => completions::man(&args, printer),
        }
    };
    let mut work = Box::pin(work);
    let result = tokio::select! {
        result = &mut work => result,
        status = stop_signal() => {
            if graceful {
                // `apply` stops its running entry, reports it as interrupted (report,
                // notification, metrics) and starts no other; a second signal ends it at once.
                cancel.cancel();
                let _ = work.await;
                crate::repo::lock::settle(std::time::Duration::from_secs(5)).await;
                crate::engine::finish::settle(crate::engine::finish::LIMIT).await;
                return status;
            }
            // The work future is dropped: in-flight copies are cancelled (temporary files and
            // multipart uploads go with them) and a held lock is removed by its guard; one
            // being taken is removed once its creation lands. A PIT commit or a catalog swap
            // under way ends first, and is said.
            drop(work);
            let settled = crate::engine::finish::settle(crate::engine::finish::LIMIT).await;
            crate::repo::lock::settle(std::time::Duration::from_secs(5)).await;
            let error = anyhow::anyhow!(stopped_message(
                if status == ExitStatus::Interrupted { "SIGINT" } else { "SIGTERM" },
                &settled,
            ));
            printer.error(name, &error, status);
            return status;
        }
    };
    match result {
        Ok(status) => status,
        Err(error) => {
            let status = ExitStatus::of(&error);
            printer.error(name, &error, status);
            status
        }
    }
}

/// What a command stopped by `signal` says: what was committed or registered as it stopped
/// (a commit or a swap under way ends first), else that nothing was.
fn stopped_message(signal: &str, settled: &crate::engine::finish::Settled) -> String {
    format!(
        "stopped by {signal}; {}; the next run picks up from there",
        settled.said()
    )
}

/// Waits for SIGINT or SIGTERM and returns the matching exit status; from then on a second
/// signal ends the process at once.
async fn stop_signal() -> ExitStatus {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // No signal handling available: never resolve, the default behaviour stays.
        return std::future::pending().await;
    };
    let status = tokio::select! {
        _ = int.recv() => ExitStatus::Interrupted,
        _ = term.recv() => ExitStatus::Terminated,
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        std::process::exit(i32::from(status.code()));
    });
    status
}

/// The repository (and plan) options of every command that works on one repository.
#[derive(Debug, Args)]
pub(crate) struct RepoArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// The repository: a name from the plan (with --config), a path, or a `file://` or
    /// `s3://bucket/prefix` URL.
    #[arg(long, value_name = "REPO", env = "BCN_REPO")]
    pub repo: String,
    /// The key of an encrypted repository, read from a file (a passphrase, or `raw:` and the
    /// base64 of 32 bytes); default: the repository's `encryption.key` in the plan. Also
    /// taken from the environment variable `BCN_REPOSITORY_KEY` itself.
    #[arg(long, value_name = "FILE", env = "BCN_REPOSITORY_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The key itself, from the environment only (never on a command line, where `ps` shows it).
    #[arg(
        long = "repository-key",
        env = "BCN_REPOSITORY_KEY",
        hide = true,
        hide_env_values = true
    )]
    pub key: Option<String>,
}

impl RepoArgs {
    /// The plan section that declares this repository, when it is a plan name.
    pub(crate) fn section(&self) -> String {
        format!("repositories.{}", self.repo)
    }

    /// Opens the repository's store.
    pub(crate) fn open(&self) -> anyhow::Result<Arc<dyn BackupStore>> {
        let plan = self.plan.load(&[self.section()])?;
        open_repo(&self.repo, plan.as_ref().map(|(p, _)| p), self.user_key()?)
    }

    /// The repository key given on the command line or in the environment, if any.
    pub(crate) fn user_key(&self) -> anyhow::Result<Option<UserKey>> {
        let text = match (&self.key_file, &self.key) {
            (Some(path), _) => fs_err::read_to_string(path).context("reading --key-file")?,
            (None, Some(key)) => key.clone(),
            (None, None) => return Ok(None),
        };
        crate::secret::register(&text);
        Ok(Some(UserKey::new(&text).map_err(|e| {
            EngineError::invalid(format!(
                "the repository key (--key-file or BCN_REPOSITORY_KEY): {e}"
            ))
        })?))
    }
}

/// The plan option shared by commands that read a plan.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// The plan file (YAML).
    #[arg(long = "config", short = 'c', value_name = "PLAN", env = "BCN_CONFIG")]
    pub config: Option<PathBuf>,
}

impl PlanArgs {
    /// Loads the plan, if one was given, resolving `${...}` references only in the sections
    /// `uses` names (`catalogs.lake`, `repositories.main`; see [`Plan::load_for`]).
    pub(crate) fn load(&self, uses: &[String]) -> anyhow::Result<Option<(Plan, &Path)>> {
        match &self.config {
            Some(path) => Ok(Some((Plan::load_for(path, uses)?, path.as_path()))),
            None => Ok(None),
        }
    }

    /// Loads the plan, which this command needs (see [`PlanArgs::load`]).
    pub(crate) fn require(&self, command: &str, uses: &[String]) -> anyhow::Result<(Plan, &Path)> {
        self.load(uses)?.ok_or_else(|| {
            anyhow::Error::new(EngineError::invalid(format!(
                "`bcn {command}` needs a plan that declares its catalogs: pass --config PLAN"
            )))
        })
    }
}

/// Opens `--repo VALUE`: a repository named in the plan, else a path or URL; encrypted with
/// `key` when given (else with the plan's key of that repository).
pub(crate) fn open_repo(
    value: &str,
    plan: Option<&Plan>,
    key: Option<UserKey>,
) -> anyhow::Result<Arc<dyn BackupStore>> {
    if let Some(spec) = plan.and_then(|p| p.repository(value)) {
        return Ok(crate::engine::open_repository_store_with(&spec, key)?);
    }
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let location =
        Location::repository(value, &cwd).map_err(|e| EngineError::invalid(e.to_string()))?;
    let store = location
        .open()
        .map_err(|e| EngineError::invalid(e.to_string()))?;
    Ok(match key {
        Some(key) => Arc::new(crate::store::EncryptedStore::new(store, key)),
        None => store,
    })
}

/// Parses a `--database` value into namespace parts.
pub(crate) fn parse_database(value: &str) -> anyhow::Result<Vec<String>> {
    crate::names::parse_namespace(value).map_err(|e| EngineError::invalid(e).into())
}

/// Sends the plan's notifications for a command run outside `apply` (restore, forget, gc):
/// `BCN_ENTRY` / the report's `entry` is the command's name. Without a plan, nothing is sent.
pub(crate) async fn notify_command(
    plan: Option<&Plan>,
    command: &str,
    event: crate::plan::NotifyEvent,
    status: &str,
    doc: &serde_json::Value,
) {
    let Some(plan) = plan else {
        return;
    };
    let mut doc = doc.clone();
    if let Some(object) = doc.as_object_mut() {
        object.insert("entry".into(), command.into());
        object.insert("status".into(), status.into());
    }
    crate::engine::notify::send(plan.notifications(), event, command, status, &doc).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::TableFailure;

    /// Exit codes are the contract of `bcn` in scripts: each kind of error keeps its code,
    /// whatever wraps it.
    #[test]
    fn exit_statuses_follow_the_kind_of_error() {
        let status = |e: EngineError| ExitStatus::of(&anyhow::Error::new(e)).code();
        assert_eq!(status(EngineError::invalid("x")), 2);
        assert_eq!(status(EngineError::Conflict("x".into())), 2);
        assert_eq!(status(EngineError::NotFound("x".into())), 1);
        let not_a_repo = || RepoError::NotARepository { url: "repo".into() };
        assert_eq!(status(EngineError::Repo(not_a_repo())), 1);
        assert_eq!(
            status(EngineError::Io {
                what: "writing metrics".into(),
                source: std::io::Error::other("disk full"),
            }),
            1,
            "an I/O failure is not a usage error"
        );
        let failures = vec![TableFailure {
            table: "db.t".into(),
            kind: "io",
            reason: "x".into(),
        }];
        assert_eq!(
            status(EngineError::TablesFailed {
                failures: failures.clone(),
                committed: true,
            }),
            3
        );
        assert_eq!(
            status(EngineError::TablesFailed {
                failures,
                committed: false,
            }),
            1
        );
        let wrapped = anyhow::Error::new(not_a_repo()).context("opening the repository");
        assert_eq!(ExitStatus::of(&wrapped).code(), 1);
    }

    /// The most blocking tasks `cli`'s runtime runs at once, of 64 that each hold their
    /// thread a while.
    fn most_blocking_at_once(args: &[&str]) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let runtime = runtime(&Cli::parse_from(args)).unwrap();
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        runtime.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|_| {
                    let (now, most) = (now.clone(), most.clone());
                    tokio::task::spawn_blocking(move || {
                        most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(100));
                        now.fetch_sub(1, Ordering::SeqCst);
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        most.load(Ordering::SeqCst)
    }

    #[test]
    fn commands_hold_a_bounded_number_of_blocking_threads_and_serve_does_not() {
        let most = most_blocking_at_once(&["bcn", "schema"]);
        assert!(
            most <= BLOCKING_THREADS,
            "{most} blocking tasks at once, more than {BLOCKING_THREADS}"
        );
        #[cfg(feature = "serve")]
        {
            let most = most_blocking_at_once(&["bcn", "serve", "--config", "plan.yaml"]);
            assert!(
                most > BLOCKING_THREADS,
                "serve's jobs each hold a blocking thread: {most} at once"
            );
        }
    }
}
