//! The `/v1` routes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::auth::Caller;
use super::jobs::JobState;
use super::{ApiError, BODY_LIMIT, OPENAPI, State};
use crate::engine::restore::{self, RestoreRequest};
use crate::engine::{self, EngineError, Quiet, apply, inspect, maintenance};
use crate::plan::{ApiRole, NotifyEvent, RepositorySpec};
use crate::repo::{PitSelector, Repository, lock};
use crate::store::BackupStore;

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

/// Records a job and runs `work` in the background; answers 202 with the job.
async fn spawn_job<F, Fut>(
    state: &Shared,
    caller: &Caller,
    kind: &str,
    target: &str,
    request: Value,
    work: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(Shared) -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + 'static,
{
    let (job, cancel) = state
        .jobs
        .create(kind, target, &caller.name, request, state.ctx.now())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    tracing::info!(job = %job.id, kind, target, by = %caller.name, "job accepted");
    let id = job.id.clone();
    let shared = state.clone();
    // The engine's futures are driven on a thread of their own (they need not be `Send`), on
    // the server's runtime.
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        runtime.block_on(async move {
            let jobs = shared.jobs.clone();
            let ctx = shared.ctx.clone();
            if let Err(e) = jobs.started(&id, ctx.now()).await {
                tracing::warn!(job = %id, error = %e, "could not record the job's start");
            }
            // A cancelled job's work is dropped: copies stop, a held lock goes with its guard.
            let (state, report, error) = tokio::select! {
                outcome = work(shared) => outcome,
                () = cancel.cancelled() => (JobState::Cancelled, None, Some("cancelled on request".to_owned())),
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

fn failed(e: &EngineError) -> Outcome {
    (JobState::Failed, None, Some(engine::error_chain(e)))
}

async fn entries(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let list: Vec<Value> = state
        .plan
        .backups()
        .iter()
        .filter(|e| caller.may_entry(&e.name))
        .map(|e| {
            json!({
                "name": e.name,
                "catalog": e.catalog.name,
                "database": e.database.as_ref().map(|d| d.join(".")),
                "table": e.table,
                "repository": e.repository.name,
                "strategy": e.strategy.name,
                "categories": e.categories,
            })
        })
        .collect();
    Ok(Json(json!({ "entries": list })))
}

fn entry<'p>(
    state: &'p State,
    caller: &Caller,
    name: &str,
) -> Result<&'p crate::plan::BackupEntry, ApiError> {
    caller.scope(caller.may_entry(name), &format!("entry `{name}`"))?;
    let entry = state
        .plan
        .backups()
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                format!("the plan has no entry `{name}`"),
            )
        })?;
    caller.scope(
        caller.may_repository(&entry.repository.name),
        &format!("repository `{}`", entry.repository.name),
    )?;
    Ok(entry)
}

async fn backup(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers)?;
    caller.require(ApiRole::Operator, "back up")?;
    let entry = entry(&state, &caller, &name)?;
    refuse_if_locked(&state, &open_store(&entry.repository)?).await?;
    let request = json!({ "entry": name });
    let target = name.clone();
    spawn_job(
        &state,
        &caller,
        "backup",
        &target,
        request,
        move |state| async move {
            let options = apply::ApplyOptions {
                dry_run: false,
                force: true,
                only: vec![name],
                cancel: None,
            };
            match apply::run(&state.plan, &options, &state.ctx, &Quiet).await {
                Ok(report) => {
                    let ok = report.entries.iter().all(|e| {
                        matches!(
                            e.status,
                            apply::EntryStatus::Succeeded | apply::EntryStatus::Partial
                        )
                    });
                    let error = (!ok).then(|| {
                        report
                            .entries
                            .iter()
                            .filter_map(|e| e.error.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                    let state = if ok {
                        JobState::Succeeded
                    } else {
                        JobState::Failed
                    };
                    (state, Some(json!(report)), error)
                }
                Err(e) => failed(&e),
            }
        },
    )
    .await
}

/// The body of `POST /v1/entries/{entry}/verify`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    /// Read stored files: `true` (all), or a subset (`"10%"`, `"2/7"`).
    #[serde(default)]
    read_data: Option<Value>,
    /// Restore the newest PIT into a scratch catalog and read it back.
    #[serde(default)]
    restore_test: bool,
}

async fn verify(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    json: Result<Json<VerifyBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers)?;
    caller.require(ApiRole::Operator, "verify")?;
    let request = optional_body(json)?;
    let entry = entry(&state, &caller, &name)?;
    let read_data = match &request.read_data {
        None | Some(Value::Bool(false)) => None,
        Some(Value::Bool(true)) => Some(crate::plan::Subset::All),
        Some(Value::String(s)) => Some(
            crate::plan::Subset::parse(s)
                .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("read_data: {e}")))?,
        ),
        Some(_) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "read_data: true, false, or a subset such as \"10%\" or \"2/7\"",
            ));
        }
    };
    let verify_request = engine::verify::VerifyRequest {
        store: open_store(&entry.repository)?,
        pit: None,
        read_data,
        restore_test: request.restore_test.then(Vec::new),
        concurrency: 4,
        repair: None,
    };
    let doc = json!({ "entry": name, "read_data": request.read_data, "restore_test": request.restore_test });
    let target = name.clone();
    spawn_job(&state, &caller, "verify", &target, doc, move |state| async move {
        let plan = Some(state.plan.as_ref());
        let start = json!({ "command": "verify", "entry": name });
        crate::cli::notify_command(plan, "verify", NotifyEvent::Start, "started", &start).await;
        match engine::verify::verify(&verify_request, &state.ctx, &Quiet).await {
            Ok(report) => {
                let clean = report.is_clean();
                let doc = json!({ "command": "verify", "entry": name, "report": &report });
                let (event, status) = if clean {
                    (NotifyEvent::Success, "succeeded")
                } else {
                    (NotifyEvent::VerifyFailure, "damage found")
                };
                crate::cli::notify_command(plan, "verify", event, status, &doc).await;
                let error = (!clean).then(|| format!("{} problem(s) found", report.problems.len()));
                let s = if clean { JobState::Succeeded } else { JobState::Failed };
                (s, Some(json!(report)), error)
            }
            Err(e) => {
                let doc = json!({ "command": "verify", "entry": name, "error": engine::error_chain(&e) });
                crate::cli::notify_command(plan, "verify", NotifyEvent::Failure, "failed", &doc).await;
                failed(&e)
            }
        }
    })
    .await
}

async fn repositories(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let list: Vec<Value> = state
        .plan
        .repositories()
        .filter(|r| caller.may_repository(&r.name))
        .map(|r| {
            json!({
                "name": r.name,
                "location": r.location.to_string(),
                "description": r.description,
                "encrypted": r.encryption.is_some(),
            })
        })
        .collect();
    Ok(Json(json!({ "repositories": list })))
}

async fn pits(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let spec = repository(&state, &caller, &name)?;
    let description = inspect::describe(open_store(&spec)?).await?;
    Ok(Json(json!(description)))
}

async fn objects(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path((name, pit)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let spec = repository(&state, &caller, &name)?;
    let listing = inspect::list(open_store(&spec)?, &PitSelector::parse(&pit), None).await?;
    Ok(Json(json!(listing)))
}

async fn forget_pit(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path((name, pit)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    caller.require(ApiRole::Admin, "forget PITs")?;
    let spec = repository(&state, &caller, &name)?;
    let store = open_store(&spec)?;
    refuse_if_locked(&state, &store).await?;
    let report = maintenance::forget_one(store, &pit, &state.ctx).await?;
    if let Some(locked) = &report.locked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "PIT {} stays: S3 Object Lock retains its record until {}",
                report.pit,
                locked.to_rfc3339()
            ),
        ));
    }
    crate::cli::notify_command(
        Some(&state.plan),
        "forget",
        NotifyEvent::Success,
        "succeeded",
        &json!({ "command": "forget", "repository": name, "forgotten": [report.pit.clone()] }),
    )
    .await;
    Ok(Json(json!({ "repository": name, "forgotten": report.pit })))
}

/// The body of `POST /v1/repositories/{repository}/gc`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GcBody {
    /// Spare unreferenced files younger than this (default `1d`).
    #[serde(default)]
    grace: Option<String>,
}

async fn gc(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
    json: Result<Json<GcBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers)?;
    caller.require(ApiRole::Admin, "run gc")?;
    let request = optional_body(json)?;
    let grace = crate::plan::parse_duration(request.grace.as_deref().unwrap_or("1d"))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("grace: {e}")))?;
    let spec = repository(&state, &caller, &name)?;
    let store = open_store(&spec)?;
    refuse_if_locked(&state, &store).await?;
    let doc = json!({ "repository": name, "grace": request.grace });
    let target = name.clone();
    spawn_job(
        &state,
        &caller,
        "gc",
        &target,
        doc,
        move |state| async move {
            let plan = Some(state.plan.as_ref());
            let start = json!({ "command": "gc", "repository": name });
            crate::cli::notify_command(plan, "gc", NotifyEvent::Start, "started", &start).await;
            match maintenance::gc(store, grace, true, &state.ctx).await {
                Ok(report) => {
                    let doc = json!({ "command": "gc", "report": &report });
                    crate::cli::notify_command(plan, "gc", NotifyEvent::Success, "succeeded", &doc)
                        .await;
                    (JobState::Succeeded, Some(json!(report)), None)
                }
                Err(e) => {
                    let doc = json!({ "command": "gc", "error": engine::error_chain(&e) });
                    crate::cli::notify_command(plan, "gc", NotifyEvent::Failure, "failed", &doc)
                        .await;
                    failed(&e)
                }
            }
        },
    )
    .await
}

/// The body of `POST /v1/restores`: the options of `bcn restore`, in snake case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the flags of `bcn restore`, one to one"
)]
struct RestoreBody {
    repository: String,
    #[serde(default)]
    pit: Option<String>,
    #[serde(default)]
    database: Vec<String>,
    #[serde(default)]
    table: Vec<String>,
    #[serde(default)]
    include_deleted: bool,
    target_catalog: String,
    #[serde(default)]
    target_database: Option<String>,
    #[serde(default)]
    target_table: Option<String>,
    #[serde(default)]
    target_location: Option<String>,
    #[serde(default)]
    original_location: bool,
    #[serde(default)]
    replace: bool,
    #[serde(default)]
    dry_run: bool,
}

fn namespace(value: &str, field: &str) -> Result<Vec<String>, ApiError> {
    crate::names::parse_namespace(value)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("{field}: {e}")))
}

async fn restores(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    json: Result<Json<RestoreBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers)?;
    let body = body(json)?;
    if !body.dry_run {
        caller.require(ApiRole::Admin, "restore")?;
    }
    let spec = repository(&state, &caller, &body.repository)?;
    let target = state
        .plan
        .catalog(&body.target_catalog, &state.plan_path)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("target_catalog: {e}")))?;
    if body.original_location
        && (body.target_location.is_some()
            || body.target_database.is_some()
            || body.target_table.is_some())
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "original_location cannot go with target_location, target_database or target_table",
        ));
    }
    let request = RestoreRequest {
        store: open_store(&spec)?,
        pit: PitSelector::parse(body.pit.as_deref().unwrap_or("latest")),
        databases: body
            .database
            .iter()
            .map(|d| namespace(d, "database"))
            .collect::<Result<_, _>>()?,
        tables: body.table.clone(),
        include_deleted: body.include_deleted,
        target,
        target_database: body
            .target_database
            .as_deref()
            .map(|d| namespace(d, "target_database"))
            .transpose()?,
        target_table: body.target_table.clone(),
        target_location: body.target_location.clone(),
        replace: body.replace,
        original_location: body.original_location,
        concurrency: 2,
    };
    // Conflicts (409), unknown tables (404) and bad requests (400) answer at once.
    let prepared = restore::prepare(&request).await?;
    let doc = json!({
        "repository": body.repository, "pit": body.pit, "database": body.database,
        "table": body.table, "include_deleted": body.include_deleted,
        "target_catalog": body.target_catalog, "target_database": body.target_database,
        "target_table": body.target_table, "target_location": body.target_location,
        "original_location": body.original_location, "replace": body.replace, "dry_run": body.dry_run,
    });
    if body.dry_run {
        return spawn_job(
            &state,
            &caller,
            "restore",
            &body.repository,
            doc,
            move |_| async move {
                (
                    JobState::Succeeded,
                    Some(json!({ "dry_run": true, "plan": prepared })),
                    None,
                )
            },
        )
        .await;
    }
    refuse_if_locked(&state, &request.store).await?;
    spawn_job(
        &state,
        &caller,
        "restore",
        &body.repository,
        doc,
        move |state| async move {
            let plan = &state.plan;
            let start = json!({ "command": "restore", "plan": &prepared });
            crate::cli::notify_command(
                Some(plan),
                "restore",
                NotifyEvent::Start,
                "started",
                &start,
            )
            .await;
            match restore::execute(prepared, &state.ctx, &Quiet).await {
                Ok(report) => {
                    let failures = report.failures();
                    let doc = json!({ "command": "restore", "report": &report });
                    let (event, status) = if failures.is_empty() {
                        (NotifyEvent::Success, "succeeded")
                    } else {
                        (NotifyEvent::Failure, "failed")
                    };
                    crate::cli::notify_command(Some(plan), "restore", event, status, &doc).await;
                    if failures.is_empty() {
                        (
                            JobState::Succeeded,
                            Some(json!({ "dry_run": false, "report": report })),
                            None,
                        )
                    } else {
                        let error = failures
                            .iter()
                            .map(|f| format!("{}: {}", f.table, f.reason))
                            .collect::<Vec<_>>()
                            .join("; ");
                        (
                            JobState::Failed,
                            Some(json!({ "dry_run": false, "report": report })),
                            Some(error),
                        )
                    }
                }
                Err(e) => {
                    let doc = json!({ "command": "restore", "error": engine::error_chain(&e) });
                    crate::cli::notify_command(
                        Some(plan),
                        "restore",
                        NotifyEvent::Failure,
                        "failed",
                        &doc,
                    )
                    .await;
                    failed(&e)
                }
            }
        },
    )
    .await
}

/// `?limit=N` of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
struct JobsQuery {
    #[serde(default)]
    limit: Option<u32>,
}

fn may_see_job(state: &State, caller: &Caller, job: &super::jobs::Job) -> bool {
    match job.kind.as_str() {
        "backup" | "verify" => {
            caller.may_entry(&job.target)
                && state
                    .plan
                    .backups()
                    .iter()
                    .find(|e| e.name == job.target)
                    .is_none_or(|e| caller.may_repository(&e.repository.name))
        }
        "apply" => true,
        _ => caller.may_repository(&job.target),
    }
}

async fn jobs(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Query(query): Query<JobsQuery>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let list = state
        .jobs
        .list(query.limit.unwrap_or(100).min(1000))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let visible: Vec<_> = list
        .into_iter()
        .filter(|j| may_see_job(&state, &caller, j))
        .collect();
    Ok(Json(json!({ "jobs": visible })))
}

async fn find_job(state: &State, caller: &Caller, id: &str) -> Result<super::jobs::Job, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no job `{id}`"));
    let job = state
        .jobs
        .get(id)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
        .ok_or_else(not_found)?;
    if may_see_job(state, caller, &job) {
        Ok(job)
    } else {
        Err(not_found())
    }
}

async fn job(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    Ok(Json(json!(find_job(&state, &caller, &id).await?)))
}

async fn cancel_job(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers)?;
    let job = find_job(&state, &caller, &id).await?;
    let role = match job.kind.as_str() {
        "backup" | "verify" => ApiRole::Operator,
        _ => ApiRole::Admin,
    };
    caller.require(role, &format!("cancel a {} job", job.kind))?;
    if job.state.is_final() || !state.jobs.cancel(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("job {id} is not running here (state {:?})", job.state),
        ));
    }
    // The job records its end itself; answer with what is known now.
    Ok((StatusCode::ACCEPTED, Json(json!(job))).into_response())
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
            move |state| async move {
                let _running = running;
                let options = apply::ApplyOptions {
                    dry_run: false,
                    force: false,
                    only: Vec::new(),
                    cancel: None,
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
