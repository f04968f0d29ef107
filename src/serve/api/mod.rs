//! The `/v1` routes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::auth::Caller;
use super::jobs::JobState;
use super::{ApiError, BODY_LIMIT, OPENAPI, State};
use crate::engine::{self, EngineError, Quiet, apply};
use crate::plan::RepositorySpec;
use crate::repo::{Repository, lock};
use crate::store::BackupStore;

mod entries;
mod job_routes;
mod repos;
mod restores;

use entries::{backup, entries, verify};
use job_routes::{cancel_job, job, jobs};
use repos::{forget_pit, gc, objects, pits, repositories};
use restores::restores;

type Shared = Arc<State>;

pub(super) fn router(state: Shared) -> axum::Router {
    axum::Router::new()
        .route("/v1/entries", get(entries))
        .route("/v1/entries/{entry}/backup", post(backup))
        .route("/v1/entries/{entry}/verify", post(verify))
        .route("/v1/repositories", get(repositories))
        .route("/v1/repositories/{repository}/pits", get(pits))
        .route(
            "/v1/repositories/{repository}/pits/{pit}",
            axum::routing::delete(forget_pit),
        )
        .route(
            "/v1/repositories/{repository}/pits/{pit}/objects",
            get(objects),
        )
        .route("/v1/repositories/{repository}/gc", post(gc))
        .route("/v1/restores", post(restores))
        .route("/v1/jobs", get(jobs))
        .route("/v1/jobs/{id}", get(job).delete(cancel_job))
        .route("/v1/openapi.json", get(openapi))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such route (see /v1/openapi.json)",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// A JSON body, or the 400/413 that says what is wrong with it (the field, for an unknown or
/// mistyped one).
fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    json.map(|Json(v)| v).map_err(|rejection| {
        // A body that is JSON but not the request (an unknown field, a wrong type) is a bad
        // request too; too large stays 413.
        let status = match rejection.status() {
            StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
            other => other,
        };
        ApiError::new(status, rejection.body_text())
    })
}

/// An optional JSON body: none at all is the default value.
fn optional_body<T: Default>(json: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match json {
        Err(JsonRejection::MissingJsonContentType(_)) => Ok(T::default()),
        other => body(other),
    }
}

fn caller(state: &State, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Caller::from_headers(&state.plan, headers)
}

fn repository(state: &State, caller: &Caller, name: &str) -> Result<Arc<RepositorySpec>, ApiError> {
    caller.scope(caller.may_repository(name), &format!("repository `{name}`"))?;
    state.plan.repository(name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("the plan has no repository `{name}`"),
        )
    })
}

fn open_store(spec: &RepositorySpec) -> Result<Arc<dyn BackupStore>, ApiError> {
    Ok(engine::open_repository_store(spec)?)
}

/// 423 when another run holds the repository's lock (and it does not look stale).
async fn refuse_if_locked(state: &State, store: &Arc<dyn BackupStore>) -> Result<(), ApiError> {
    let Ok(repo) = Repository::open(store.clone()).await else {
        return Ok(());
    };
    if let Some(holder) = lock::read_lock(&repo).await?
        && !holder.is_stale(state.ctx.now())
    {
        let mut error = ApiError::new(
            StatusCode::LOCKED,
            format!(
                "repository {} is locked by {} run {} on {} (pid {})",
                repo.url(),
                holder.command,
                holder.run_id,
                holder.host,
                holder.pid
            ),
        );
        error.details = Some(json!({ "holder": holder }));
        return Err(error);
    }
    Ok(())
}

/// What a job's work returns: its final state, report and error.
type Outcome = (JobState, Option<Value>, Option<String>);

/// What stopped an apply job's entry, as its error says it: "interrupted by …".
const CANCELLED_BY: &str = "a cancel of its `bcn serve` job";

/// How a job stops when it is cancelled (`DELETE /v1/jobs/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnCancel {
    /// Its work is dropped: copies stop, a held lock goes with its guard; a PIT commit or a
    /// catalog swap under way ends first. The report says, a line per step, what completed,
    /// and the end the work would have notified is a failure notification, `cancelled` (or
    /// `interrupted`, when the server stops).
    Drop,
    /// Its work is handed the cancel and stops itself, as `bcn apply` does on SIGTERM: the
    /// entry under way fails as interrupted, with its report, its notification and the
    /// metrics, and no other entry starts. The report is the run's, with the same lines.
    /// (Also a dry-run restore's, which is over at once and notifies nothing.)
    Stop,
}

/// Records a job and runs `work` in the background; answers 202 with the job. `work` gets the
/// job's cancel, which only an [`OnCancel::Stop`] job watches.
async fn spawn_job<F, Fut>(
    state: &Shared,
    caller: &Caller,
    kind: &str,
    target: &str,
    request: Value,
    on_cancel: OnCancel,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Shared, CancellationToken) -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + 'static,
{
    let (job, cancel) = state
        .jobs
        .create(kind, target, &caller.name, request, state.ctx.now())
        .await
        .map_err(|e| {
            let status = if state.jobs.is_stopping() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            ApiError::new(status, e)
        })?;
    tracing::info!(job = %job.id, kind, target, by = %caller.name, "job accepted");
    let id = job.id.clone();
    let kind = kind.to_owned();
    let shared = state.clone();
    // The engine's futures are driven on a thread of their own (they need not be `Send`), on
    // the server's runtime.
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let jobs = shared.jobs.clone();
            let ctx = shared.ctx.clone();
            let plan = shared.plan.clone();
            if let Err(e) = jobs.started(&id, ctx.now()).await {
                tracing::warn!(job = %id, error = %e, "could not record the job's start");
            }
            // A cancelled job's work is dropped (or stops itself): copies stop, a held lock
            // goes with its guard; a PIT commit or a catalog swap under way ends first, and
            // is said.
            let scope = crate::engine::finish::new_scope();
            let dropped = async {
                match on_cancel {
                    OnCancel::Drop => cancel.cancelled().await,
                    OnCancel::Stop => std::future::pending().await,
                }
            };
            let (state, report, error) = tokio::select! {
                outcome = crate::engine::finish::scoped(&scope, work(shared, cancel.clone())) => {
                    if cancel.is_cancelled() {
                        stopped(&scope, outcome, ending(&jobs)).await
                    } else {
                        outcome
                    }
                }
                () = dropped => {
                    let settled = crate::engine::finish::settle_scope(
                        &scope,
                        crate::engine::finish::LIMIT,
                    )
                    .await;
                    if !settled.unfinished.is_empty() {
                        // Said in the log when they end, and no longer held for anyone.
                        let (scope, id) = (scope.clone(), id.clone());
                        tokio::spawn(async move {
                            let late = crate::engine::finish::settle_scope(
                                &scope,
                                Duration::from_hours(24),
                            )
                            .await;
                            for done in &late.landed {
                                tracing::warn!(job = %id, step = %done, "a step of the cancelled job completed after the job was recorded");
                            }
                            for done in &late.unfinished {
                                tracing::warn!(job = %id, step = %done, "a step of the cancelled job has still not ended a day after the cancel");
                            }
                        });
                    }
                    let (ended, why) = ending(&jobs);
                    let said = format!("{why}; {}", settled.said());
                    // What did happen, a line per step: every PIT the job committed and every
                    // table it registered, before the cancel or as it stopped (each complete),
                    // and what was still under way when the server stopped waiting.
                    let report = json!({
                        "completed": settled.completed,
                        "unfinished": settled.unfinished,
                    });
                    // Its work (a restore, verify or gc) notified its start and can no longer
                    // notify its end: said as a failure, so that no one waits for an end that
                    // will not come.
                    let doc = json!({ "command": kind, "job": id, "error": said, "report": report });
                    crate::cli::notify_command(
                        Some(&plan),
                        &kind,
                        crate::plan::NotifyEvent::Failure,
                        ended.as_str(),
                        &doc,
                    )
                    .await;
                    (ended, Some(report), Some(said))
                }
            };
            tracing::info!(job = %id, state = ?state, "job ended");
            if let Err(e) = jobs
                .finished(&id, state, report.as_ref(), error.as_deref(), ctx.now())
                .await
            {
                tracing::warn!(job = %id, error = %e, "could not record the job's end");
            }
        });
    });
    let mut response = (StatusCode::ACCEPTED, Json(json!(job))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// How a cancelled job ends, and why in words: `cancelled` on request, `interrupted` when the
/// server stops.
fn ending(jobs: &crate::serve::jobs::Jobs) -> (JobState, &'static str) {
    if jobs.is_stopping() {
        (JobState::Interrupted, "the server stopped")
    } else {
        (JobState::Cancelled, "cancelled on request")
    }
}

/// The outcome of an [`OnCancel::Stop`] job that stopped on its cancel (see [`ending`]), with
/// its own report and the lines of what completed, as a dropped job's.
async fn stopped(
    scope: &crate::engine::finish::Scope,
    (_, report, error): Outcome,
    (ended, why): (JobState, &'static str),
) -> Outcome {
    // Its work waited for its own steps: nothing is left under way.
    let settled = crate::engine::finish::settle_scope(scope, crate::engine::finish::LIMIT).await;
    let mut report = match report {
        Some(Value::Object(map)) => map,
        Some(other) => serde_json::Map::from_iter([("report".to_owned(), other)]),
        None => serde_json::Map::new(),
    };
    report.insert("completed".to_owned(), json!(settled.completed));
    report.insert("unfinished".to_owned(), json!(settled.unfinished));
    // An apply's failures are its entries' errors.
    let error = error.or_else(|| {
        let errors: Vec<&str> = report
            .get("entries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.get("error").and_then(Value::as_str))
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    });
    let said = match (error, settled.completed.as_slice()) {
        (Some(error), _) => format!("{why}; {error}"),
        (None, []) => format!("{why}; nothing was under way, and nothing was committed"),
        (None, completed) => format!(
            "{why}; nothing was under way, and it had completed: {}",
            completed.join(", ")
        ),
    };
    (ended, Some(Value::Object(report)), Some(said))
}

fn failed(e: &EngineError) -> Outcome {
    (JobState::Failed, None, Some(engine::error_chain(e)))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Clears the scheduler's "a run is going" flag when its run ends, however it ends.
struct Running(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The built-in scheduler: every `every`, an `apply` of the due entries as a job; a tick that
/// comes while the previous run still goes is skipped.
pub(super) async fn scheduler(state: Shared, every: Duration, stop: CancellationToken) {
    let scheduler = Caller::system();
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if busy.swap(true, std::sync::atomic::Ordering::SeqCst) {
            tracing::info!("the previous scheduled run still goes; skipping this tick");
            continue;
        }
        let running = Running(busy.clone());
        let accepted = spawn_job(
            &state,
            &scheduler,
            "apply",
            "due entries",
            json!({ "due": true }),
            OnCancel::Stop,
            move |state, cancel| async move {
                let _running = running;
                let options = apply::ApplyOptions {
                    dry_run: false,
                    force: false,
                    only: Vec::new(),
                    cancel: Some(apply::Cancel {
                        token: cancel,
                        by: CANCELLED_BY,
                    }),
                };
                match apply::run(&state.plan, &options, &state.ctx, &Quiet).await {
                    Ok(report) => {
                        let ok = report.entries.iter().all(|e| {
                            !matches!(
                                e.status,
                                apply::EntryStatus::Failed | apply::EntryStatus::Locked
                            )
                        });
                        (
                            if ok {
                                JobState::Succeeded
                            } else {
                                JobState::Failed
                            },
                            Some(json!(report)),
                            None,
                        )
                    }
                    Err(e) => failed(&e),
                }
            },
        )
        .await;
        if let Err(e) = accepted {
            busy.store(false, std::sync::atomic::Ordering::SeqCst);
            tracing::warn!(error = %e.message, "the scheduler could not start a run");
        }
    }
}
