//! Notifications: a webhook (HTTP POST of the entry's JSON report) or a command (the report
//! on stdin). A notification that fails is logged as a warning: it never changes the outcome
//! of the backup it reports on. Secrets in URLs and headers are never logged.

use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::plan::{NotificationSpec, NotifyEvent, NotifyTarget, Secret};

/// Sends every notification subscribed to `event`; returns one line per failure.
pub(crate) async fn send(
    specs: &[NotificationSpec],
    event: NotifyEvent,
    entry: &str,
    status: &str,
    report: &Value,
) -> Vec<String> {
    let mut failures = Vec::new();
    for spec in specs.iter().filter(|s| s.on.contains(&event)) {
        if let Some(why) = &spec.unresolved {
            let e = format!("notification not sent: {why}");
            tracing::warn!(entry, error = %e, "notification failed");
            failures.push(e);
            continue;
        }
        let result = match &spec.target {
            NotifyTarget::Webhook {
                url,
                headers,
                timeout,
            } => webhook(url, headers, *timeout, report).await,
            NotifyTarget::Command(argv) => command(argv, event, entry, status, report).await,
        };
        if let Err(e) = result {
            tracing::warn!(entry, error = %e, "notification failed");
            failures.push(e);
        }
    }
    failures
}

async fn webhook(
    url: &Secret,
    headers: &std::collections::BTreeMap<String, Secret>,
    timeout: std::time::Duration,
    report: &Value,
) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| format!("webhook: {e}"))?;
    let body = crate::secret::redact(&report.to_string()).into_owned();
    let mut request = client
        .post(url.expose())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value.expose());
    }
    // reqwest's errors name the URL, which may hold a key: report only what went wrong.
    let response = request
        .send()
        .await
        .map_err(|e| format!("webhook: {}", describe(&e)))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "webhook: the server answered {}",
            response.status()
        ))
    }
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    }
}

async fn command(
    argv: &[String],
    event: NotifyEvent,
    entry: &str,
    status: &str,
    report: &Value,
) -> Result<(), String> {
    let (program, arguments) = argv.split_first().ok_or("empty command")?;
    let event_name = serde_json::to_value(event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut child = tokio::process::Command::new(program)
        .args(arguments)
        .env("BCN_EVENT", &event_name)
        .env("BCN_ENTRY", entry)
        .env("BCN_STATUS", status)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("command {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let body = crate::secret::redact(&report.to_string()).into_owned();
        // A command that does not read its input is fine.
        let _ = stdin.write_all(body.as_bytes()).await;
    }
    let status = child
        .wait()
        .await
        .map_err(|e| format!("command {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("command {program} exited with {status}"))
    }
}
