//! `bcn serve`: the engine behind a versioned JSON API (axum), with bearer tokens and roles
//! from the plan, and a job history in `SQLite`.
//!
//! Reads answer at once; work (backups, verifications, restores, gc) runs as jobs: `202
//! Accepted` with the job's URL in `Location` and the job document in the body. The API is
//! described by `openapi.json` (served at `/v1/openapi.json`).

mod api;
mod auth;
pub mod jobs;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::plan::{Plan, Resolve};

/// The `OpenAPI` document of the API (kept by hand; a test checks it against [`ROUTES`]).
pub const OPENAPI: &str = include_str!("openapi.json");

/// Every route of the API, as `METHOD /path` in `OpenAPI`'s notation.
pub const ROUTES: [(&str, &str); 13] = [
    ("get", "/v1/entries"),
    ("post", "/v1/entries/{entry}/backup"),
    ("post", "/v1/entries/{entry}/verify"),
    ("get", "/v1/repositories"),
    ("get", "/v1/repositories/{repository}/pits"),
    ("get", "/v1/repositories/{repository}/pits/{pit}/objects"),
    ("delete", "/v1/repositories/{repository}/pits/{pit}"),
    ("post", "/v1/repositories/{repository}/gc"),
    ("post", "/v1/restores"),
    ("get", "/v1/jobs"),
    ("get", "/v1/jobs/{id}"),
    ("delete", "/v1/jobs/{id}"),
    ("get", "/v1/openapi.json"),
];

/// Request bodies larger than this are refused (413).
pub const BODY_LIMIT: usize = 64 * 1024;

/// How `bcn serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The plan file.
    pub plan: PathBuf,
    /// Where to listen.
    pub listen: SocketAddr,
    /// Run `apply`'s due entries this often (the built-in scheduler), if given.
    pub schedule: Option<Duration>,
    /// HTTPS: the certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What every request handler shares.
pub(crate) struct State {
    pub(crate) plan: Arc<Plan>,
    pub(crate) plan_path: PathBuf,
    pub(crate) jobs: jobs::Jobs,
    pub(crate) ctx: Context,
}

/// An API error: a status and a message, as `{"error": {"status", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) details: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            details: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({
            "error": { "status": self.status.as_u16(), "message": crate::secret::redact(&self.message) }
        });
        if let Some(details) = self.details {
            body["error"]["details"] = details;
        }
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(e: crate::engine::EngineError) -> Self {
        use crate::error::ErrorKind;
        let status = match e.kind() {
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Locked => StatusCode::LOCKED,
            ErrorKind::Partial | ErrorKind::Failure => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut error = Self::new(status, crate::error::error_chain(&e));
        if let Some(hint) = e.hint() {
            error.details = Some(serde_json::json!({ "hint": hint }));
        }
        error
    }
}

impl From<crate::repo::RepoError> for ApiError {
    fn from(e: crate::repo::RepoError) -> Self {
        crate::engine::EngineError::from(e).into()
    }
}

/// Runs the server until `stop` is cancelled.
///
/// # Errors
///
/// When the plan cannot be read, has no `api:` tokens, the job history cannot be opened or
/// the address cannot be bound.
pub async fn serve(
    options: ServeOptions,
    ctx: Context,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let plan = Plan::load(&options.plan, Resolve::Lenient)?;
    let api = plan.api().ok_or_else(|| {
        crate::engine::EngineError::invalid(format!(
            "{} has no `api:` section: `bcn serve` needs `api: {{ tokens: [...] }}` to know who may call it",
            options.plan.display()
        ))
    })?;
    if api.tokens.is_empty() {
        return Err(crate::engine::EngineError::invalid(
            "`api.tokens` is empty: nobody could call the API",
        )
        .into());
    }
    let jobs = jobs::Jobs::open(&api.jobs_db, ctx.now())
        .await
        .map_err(crate::engine::EngineError::invalid)?;
    let state = Arc::new(State {
        plan: Arc::new(plan),
        plan_path: options.plan.clone(),
        jobs,
        ctx,
    });
    let acceptor = match &options.tls {
        Some((cert, key)) => {
            Some(tls::acceptor(cert, key).map_err(crate::engine::EngineError::invalid)?)
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", options.listen))?;
    let address = listener.local_addr()?;
    #[expect(
        clippy::print_stderr,
        reason = "the one line that says where the server is"
    )]
    {
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        eprintln!("bcn serve: listening on {scheme}://{address}");
    }
    if let Some(every) = options.schedule {
        tokio::spawn(api::scheduler(state.clone(), every, stop.clone()));
    }
    let jobs = state.jobs.clone();
    let router = api::router(state);
    let shutdown = async move { stop.cancelled().await };
    match acceptor {
        Some(acceptor) => {
            let listener = tls::TlsListener {
                tcp: listener,
                acceptor,
            };
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
        None => {
            axum::serve(listener, router)
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    // Stopping: every running job stops as on `DELETE` (a backup's entry fails as
    // interrupted, with its notification; a restore, verify or gc is dropped after its commit
    // or swap under way) and records its end, `interrupted`, before the process ends.
    let left = jobs.stop_all(STOP_WAIT).await;
    if left > 0 {
        tracing::warn!(
            jobs = left,
            "jobs still running when the server stopped waiting; the next server marks them interrupted"
        );
    }
    Ok(())
}

/// How long a stopping server waits for its running jobs to stop and record their end: a
/// PIT commit or catalog swap under way ([`crate::engine::finish::LIMIT`]), then the entry's
/// `after` hooks and notifications.
const STOP_WAIT: Duration = Duration::from_mins(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_openapi_document_describes_every_route_and_no_other() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut described: Vec<(String, String)> = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, ops)| {
                ops.as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| ["get", "post", "delete", "put", "patch"].contains(&k.as_str()))
                    .map(move |m| (m.clone(), path.clone()))
            })
            .collect();
        described.sort();
        let mut routes: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        routes.sort();
        assert_eq!(described, routes);
    }
}
