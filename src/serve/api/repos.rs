//! Repositories: their PITs and objects, forgetting a PIT, gc.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ApiError, OnCancel, Shared, caller, failed, open_store, optional_body, refuse_if_locked,
    repository, spawn_job,
};
use crate::engine::{self, inspect, maintenance};
use crate::plan::{ApiRole, NotifyEvent};
use crate::repo::PitSelector;
use crate::serve::jobs::JobState;

pub(super) async fn repositories(
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

pub(super) async fn pits(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let spec = repository(&state, &caller, &name)?;
    let description = inspect::describe(open_store(&spec)?).await?;
    Ok(Json(json!(description)))
}

pub(super) async fn objects(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path((name, pit)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    let spec = repository(&state, &caller, &name)?;
    let listing = inspect::list(open_store(&spec)?, &PitSelector::parse(&pit), None).await?;
    Ok(Json(json!(listing)))
}

pub(super) async fn forget_pit(
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
pub(super) struct GcBody {
    /// Spare unreferenced files younger than this (default `1d`).
    #[serde(default)]
    grace: Option<String>,
}

pub(super) async fn gc(
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
        OnCancel::Drop,
        move |state, _| async move {
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
