//! The job history of `bcn serve`: an `SQLite` database (next to the plan by default) that
//! survives restarts, and the jobs running in this process.
//!
//! A job is `queued` when accepted, `running` once its work starts, then `succeeded`,
//! `failed`, `cancelled` (by `DELETE /v1/jobs/{id}`) or `interrupted` (the server stopped while
//! it ran: marked so when the server starts again).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tokio_util::sync::CancellationToken;

/// A job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted, not started.
    Queued,
    /// Working.
    Running,
    /// Done, and it worked.
    Succeeded,
    /// Done, and it failed (the report or error says why).
    Failed,
    /// The server stopped while it ran.
    Interrupted,
    /// Cancelled on request.
    Cancelled,
}

impl JobState {
    /// Its name, as the API and the history say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "cancelled" => Self::Cancelled,
            "interrupted" => Self::Interrupted,
            _ => Self::Failed,
        }
    }

    /// Whether the job is over.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }
}

/// One job, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// `backup`, `verify`, `restore`, `gc`, `apply`.
    pub kind: String,
    /// What it works on: an entry or a repository.
    pub target: String,
    /// Its state.
    pub state: JobState,
    /// The name of the token that asked for it.
    pub requested_by: String,
    /// The request, as given.
    pub request: serde_json::Value,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When its work started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The run's report (the JSON document the CLI prints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The job history and the jobs running here.
#[derive(Clone)]
pub struct Jobs {
    pool: SqlitePool,
    running: Arc<Mutex<HashMap<String, CancellationToken>>>,
    /// Set once the server stops: its running jobs are cancelled, and no job starts.
    stopping: Arc<AtomicBool>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    request TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    report TEXT,
    error TEXT
)";

fn db_error(what: &str) -> impl FnOnce(sqlx::Error) -> String + '_ {
    move |e| format!("job history: {what}: {e}")
}

impl Jobs {
    /// Opens (creating) the history at `path`; jobs left `queued` or `running` by a server
    /// that stopped are marked `interrupted`.
    pub async fn open(path: &Path, now: DateTime<Utc>) -> Result<Self, String> {
        if let Some(dir) = path.parent() {
            fs_err::create_dir_all(dir).map_err(|e| format!("job history: {e}"))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| format!("job history {}: {e}", path.display()))?;
        sqlx::query(SCHEMA)
            .execute(&pool)
            .await
            .map_err(db_error("creating the table"))?;
        let interrupted = sqlx::query(
            "UPDATE jobs SET state = 'interrupted', finished_at = ?1, error = 'the server stopped while the job ran' WHERE state IN ('queued', 'running')",
        )
        .bind(now.to_rfc3339())
        .execute(&pool)
        .await
        .map_err(db_error("marking interrupted jobs"))?;
        if interrupted.rows_affected() > 0 {
            tracing::warn!(
                jobs = interrupted.rows_affected(),
                "jobs of a previous server were interrupted"
            );
        }
        Ok(Self {
            pool,
            running: Arc::default(),
            stopping: Arc::default(),
        })
    }

    /// Records a new job, `queued`; returns it with the token that cancels it.
    pub async fn create(
        &self,
        kind: &str,
        target: &str,
        requested_by: &str,
        request: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(Job, CancellationToken), String> {
        if self.is_stopping() {
            return Err("the server is stopping: no job starts".to_owned());
        }
        let id = uuid::Uuid::now_v7().simple().to_string();
        sqlx::query(
            "INSERT INTO jobs (id, kind, target, state, requested_by, request, created_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6)",
        )
        .bind(&id)
        .bind(kind)
        .bind(target)
        .bind(requested_by)
        .bind(request.to_string())
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(db_error("recording a job"))?;
        let cancel = CancellationToken::new();
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), cancel.clone());
        let job = self
            .get(&id)
            .await?
            .ok_or("job history: the new job is gone")?;
        Ok((job, cancel))
    }

    /// Marks a job as started.
    pub async fn started(&self, id: &str, now: DateTime<Utc>) -> Result<(), String> {
        sqlx::query(
            "UPDATE jobs SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'queued'",
        )
        .bind(id)
        .bind(now.to_rfc3339())
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(db_error("starting a job"))
    }

    /// Records how a job ended.
    pub async fn finished(
        &self,
        id: &str,
        state: JobState,
        report: Option<&serde_json::Value>,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), String> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
        sqlx::query(
            "UPDATE jobs SET state = ?2, finished_at = ?3, report = ?4, error = ?5 WHERE id = ?1",
        )
        .bind(id)
        .bind(state.as_str())
        .bind(now.to_rfc3339())
        .bind(report.map(ToString::to_string))
        .bind(error)
        .execute(&self.pool)
        .await
        .map(drop)
        .map_err(db_error("finishing a job"))
    }

    /// Asks a running job to stop; false when it is not running here.
    pub fn cancel(&self, id: &str) -> bool {
        match self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
        {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// The server stops: cancels every running job (each stops as on `DELETE`, and ends as
    /// `interrupted`) and waits, at most `limit`, for them to record their end. Returns how
    /// many had not (the next server marks them `interrupted`).
    pub async fn stop_all(&self, limit: Duration) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        let running = || {
            let running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for token in running.values() {
                token.cancel();
            }
            running.len()
        };
        let started = Instant::now();
        loop {
            let left = running();
            if left == 0 || started.elapsed() >= limit {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the server is stopping: a job cancelled now was cancelled by that.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// One job.
    pub async fn get(&self, id: &str) -> Result<Option<Job>, String> {
        let row = sqlx::query("SELECT * FROM jobs WHERE id = ?1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_error("reading a job"))?;
        Ok(row.map(|r| job(&r)))
    }

    /// The newest jobs first, at most `limit`.
    pub async fn list(&self, limit: u32) -> Result<Vec<Job>, String> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?1")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db_error("listing jobs"))?;
        Ok(rows.iter().map(job).collect())
    }
}

fn job(row: &sqlx::sqlite::SqliteRow) -> Job {
    let text = |name: &str| row.try_get::<Option<String>, _>(name).ok().flatten();
    let time = |name: &str| {
        text(name)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    let json = |name: &str| text(name).and_then(|t| serde_json::from_str(&t).ok());
    Job {
        id: text("id").unwrap_or_default(),
        kind: text("kind").unwrap_or_default(),
        target: text("target").unwrap_or_default(),
        state: JobState::parse(&text("state").unwrap_or_default()),
        requested_by: text("requested_by").unwrap_or_default(),
        request: json("request").unwrap_or_default(),
        created_at: time("created_at").unwrap_or_default(),
        started_at: time("started_at"),
        finished_at: time("finished_at"),
        report: json("report"),
        error: text("error"),
    }
}
