//! What an entry tells the world: reports, notifications, and the HTTP API's tokens.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Secret;

/// A report template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTemplate {
    /// The built-in text report.
    Text,
    /// The built-in Markdown report.
    Markdown,
    /// A Handlebars template file.
    File(PathBuf),
}

/// A report written after each entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportSpec {
    /// Its template.
    pub template: ReportTemplate,
    /// Its output path template, relative to the plan.
    pub output: String,
}

/// When a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// An entry starts.
    Start,
    /// An entry committed its PIT.
    Success,
    /// An entry failed.
    Failure,
    /// An entry's verification found damage.
    VerifyFailure,
}

/// Where a notification goes.
#[derive(Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// An HTTP POST of the JSON report.
    Webhook {
        /// URL (it may hold a key).
        url: Secret,
        /// Extra headers.
        headers: BTreeMap<String, Secret>,
        /// Timeout.
        timeout: std::time::Duration,
    },
    /// A program run with the JSON report on stdin.
    Command(Vec<String>),
}

impl std::fmt::Debug for NotifyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers may hold tokens and URLs may hold keys: never printed.
        match self {
            Self::Webhook { headers, .. } => write!(f, "Webhook({} headers)", headers.len()),
            Self::Command(argv) => {
                write!(f, "Command({})", argv.first().map_or("", String::as_str))
            }
        }
    }
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationSpec {
    /// When.
    pub on: Vec<NotifyEvent>,
    /// Where.
    pub target: NotifyTarget,
    /// Why it cannot be sent (a reference the command did not resolve), if so.
    pub unresolved: Option<String>,
}

/// The HTTP API settings of `bcn serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSpec {
    /// Who may call it.
    pub tokens: Vec<ApiToken>,
    /// The job history database, absolute.
    pub jobs_db: PathBuf,
}

/// One API token: its SHA-256 only, never the token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Who holds it.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// What it may do.
    pub role: ApiRole,
    /// Entries it may act on (globs); `None`: all.
    pub entries: Option<Vec<String>>,
    /// Repositories it may act on (globs); `None`: all.
    pub repositories: Option<Vec<String>>,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// What an API token may do; each role may do what the ones before it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiRole {
    /// Reads.
    Viewer,
    /// Reads, backs up, verifies.
    Operator,
    /// Everything: restores, forgets, gc.
    Admin,
}
