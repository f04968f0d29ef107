//! Restores: planned, checked against the caller's role, run as a job.

use axum::Json;
use axum::extract::State as AxumState;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{
    ApiError, OnCancel, Shared, body, caller, failed, open_store, refuse_if_locked, repository,
    spawn_job,
};
use crate::engine::restore::{self, RestoreRequest};
use crate::engine::{self, Quiet};
use crate::location::Location;
use crate::plan::{ApiRole, NotifyEvent};
use crate::repo::PitSelector;
use crate::serve::jobs::JobState;

/// The body of `POST /v1/restores`: the options of `bcn restore`, in snake case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "the flags of `bcn restore`, one to one"
)]
pub(super) struct RestoreBody {
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

pub(super) async fn restores(
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
        // Relative to the plan's directory, like every path of the plan the server runs.
        target_location: body
            .target_location
            .as_deref()
            .map(|root| {
                Location::parse(root, state.plan.base()).map_err(|e| {
                    ApiError::new(StatusCode::BAD_REQUEST, format!("target_location: {e}"))
                })
            })
            .transpose()?,
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
        // Over at once, and it notifies nothing: a cancel that comes first ends it as a
        // cancelled job with nothing committed, and no end is notified without a start.
        return spawn_job(
            &state,
            &caller,
            "restore",
            &body.repository,
            doc,
            OnCancel::Stop,
            move |_, _| async move {
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
        OnCancel::Drop,
        move |state, _| async move {
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
