//! Reports, notifications and the HTTP API's tokens.

use std::path::Path;

use crate::plan::raw::{RawEvent, RawNotification, RawReport};
use crate::plan::{
    ApiRole, ApiSpec, ApiToken, Diagnostic, NotificationSpec, NotifyEvent, NotifyTarget,
    ReportSpec, ReportTemplate,
};

pub(super) fn api(
    raw: crate::plan::raw::RawApi,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> ApiSpec {
    use sha2::Digest as _;
    let mut tokens = Vec::new();
    for (i, t) in raw.tokens.into_iter().enumerate() {
        let path = format!("api.tokens[{i}]");
        let sha256 = match (&t.token, &t.token_sha256) {
            (Some(token), None) => {
                let token = token.expose();
                crate::secret::register(token);
                // An unresolved reference (a command that does not serve) is not checked.
                if token.len() < 16 && !token.contains("${") {
                    diags.push(Diagnostic::new(
                        format!("{path}.token"),
                        "a token must have at least 16 characters",
                        "generate one, e.g. `openssl rand -hex 32`, and give it by reference",
                    ));
                }
                Some(sha2::Sha256::digest(token.as_bytes()).into())
            }
            (None, Some(hex_digest)) => {
                let bytes = hex::decode(hex_digest)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok());
                if bytes.is_none() {
                    diags.push(Diagnostic::new(
                        format!("{path}.token_sha256"),
                        "not the hex of a SHA-256 (64 hex digits)",
                        "give `printf %s TOKEN | sha256sum`",
                    ));
                }
                bytes
            }
            _ => {
                diags.push(Diagnostic::new(
                    path.clone(),
                    "give exactly one of `token` and `token_sha256`",
                    "`token: ${API_TOKEN}` or `token_sha256: <hex>`",
                ));
                None
            }
        };
        if tokens.iter().any(|o: &ApiToken| o.name == t.name) {
            diags.push(Diagnostic::new(
                format!("{path}.name"),
                format!("two tokens are named `{}`", t.name),
                "name each token once",
            ));
        }
        if let Some(sha256) = sha256 {
            tokens.push(ApiToken {
                name: t.name,
                sha256,
                role: match t.role {
                    crate::plan::raw::RawRole::Viewer => ApiRole::Viewer,
                    crate::plan::raw::RawRole::Operator => ApiRole::Operator,
                    crate::plan::raw::RawRole::Admin => ApiRole::Admin,
                },
                entries: t.entries,
                repositories: t.repositories,
            });
        }
    }
    ApiSpec {
        tokens,
        jobs_db: base.join(raw.jobs_db.as_deref().unwrap_or("bcn-jobs.db")),
    }
}

pub(super) fn report(
    path: &str,
    raw: RawReport,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<ReportSpec> {
    let template = match raw.template.as_str() {
        "text" => ReportTemplate::Text,
        "markdown" => ReportTemplate::Markdown,
        file => ReportTemplate::File(base.join(file)),
    };
    if raw.output.trim().is_empty() {
        let hint = "e.g. `reports/{{entry}}-{{date}}.md`";
        diags.push(Diagnostic::new(
            format!("{path}.output"),
            "empty output path",
            hint,
        ));
        return None;
    }
    Some(ReportSpec {
        template,
        output: raw.output,
    })
}

pub(super) fn notification(
    path: &str,
    raw: RawNotification,
    diags: &mut Vec<Diagnostic>,
) -> Option<NotificationSpec> {
    let on: Vec<NotifyEvent> = raw
        .on
        .iter()
        .map(|e| match e {
            RawEvent::Start => NotifyEvent::Start,
            RawEvent::Success => NotifyEvent::Success,
            RawEvent::Failure => NotifyEvent::Failure,
            RawEvent::VerifyFailure => NotifyEvent::VerifyFailure,
        })
        .collect();
    if on.is_empty() {
        let hint = "list any of start, success, failure";
        diags.push(Diagnostic::new(format!("{path}.on"), "no event", hint));
    }
    let target = match (raw.webhook, raw.command) {
        (Some(hook), None) => {
            let url = hook.url.expose();
            if !(url.starts_with("http://") || url.starts_with("https://") || url.contains("${")) {
                let hint = "write `https://host/path`";
                diags.push(Diagnostic::new(
                    format!("{path}.webhook.url"),
                    "not an http(s) URL",
                    hint,
                ));
            }
            NotifyTarget::Webhook {
                url: hook.url,
                headers: hook.headers,
                timeout: std::time::Duration::from_secs(hook.timeout_seconds.unwrap_or(10)),
            }
        }
        (None, Some(argv)) if !argv.is_empty() => NotifyTarget::Command(argv),
        (None, Some(_)) => {
            let hint = "give the program and its arguments";
            diags.push(Diagnostic::new(
                format!("{path}.command"),
                "empty command",
                hint,
            ));
            return None;
        }
        _ => {
            let message = "a notification needs exactly one of `webhook` or `command`";
            diags.push(Diagnostic::new(path, message, "keep one of them"));
            return None;
        }
    };
    Some(NotificationSpec {
        on,
        target,
        unresolved: None,
    })
}
