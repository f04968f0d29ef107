//! The job history: list, show, cancel.

use axum::Json;
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, State};
use super::{Shared, caller};
use crate::plan::ApiRole;
use crate::serve::auth::Caller;

/// `?limit=N` of `GET /v1/jobs`.
#[derive(Debug, Deserialize)]
pub(super) struct JobsQuery {
    #[serde(default)]
    limit: Option<u32>,
}

fn may_see_job(state: &State, caller: &Caller, job: &crate::serve::jobs::Job) -> bool {
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

pub(super) async fn jobs(
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

async fn find_job(
    state: &State,
    caller: &Caller,
    id: &str,
) -> Result<crate::serve::jobs::Job, ApiError> {
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

pub(super) async fn job(
    AxumState(state): AxumState<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller(&state, &headers)?;
    Ok(Json(json!(find_job(&state, &caller, &id).await?)))
}

pub(super) async fn cancel_job(
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
