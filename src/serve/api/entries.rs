//! Backup entries: list them, back one up, verify a repository.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, State};
use super::{
    CANCELLED_BY, OnCancel, Shared, caller, failed, open_store, optional_body, refuse_if_locked,
    spawn_job,
};
use crate::engine::{self, Quiet, apply};
use crate::plan::{ApiRole, NotifyEvent};
use crate::serve::auth::Caller;
use crate::serve::jobs::JobState;

pub(super) async fn entries(
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

pub(super) fn entry<'p>(
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

pub(super) async fn backup(
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
        OnCancel::Stop,
        move |state, cancel| async move {
            let options = apply::ApplyOptions {
                dry_run: false,
                force: true,
                only: vec![name],
                cancel: Some(apply::Cancel {
                    token: cancel,
                    by: CANCELLED_BY,
                }),
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
pub(super) struct VerifyBody {
    /// Read stored files: `true` (all), or a subset (`"10%"`, `"2/7"`).
    #[serde(default)]
    read_data: Option<Value>,
    /// Restore the newest PIT into a scratch catalog and read it back.
    #[serde(default)]
    restore_test: bool,
}

pub(super) async fn verify(
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
    spawn_job(
        &state,
        &caller,
        "verify",
        &target,
        doc,
        OnCancel::Drop,
        move |state, _| async move {
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
        },
    )
    .await
}
