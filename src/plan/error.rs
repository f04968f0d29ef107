//! What can be wrong with a plan: one [`Diagnostic`] per problem, [`PlanError`] for the file.

use std::fmt;
use std::path::PathBuf;

use super::ENV_OVERRIDE_PREFIX;

/// One problem found in a plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// YAML path, e.g. `catalogs.lake.uri`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Diagnostic {
    /// A diagnostic at `path`.
    pub fn new(
        path: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (hint: {})", self.path, self.message, self.hint)
    }
}

/// Why a plan could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The file could not be read.
    #[error("reading plan {path}")]
    Read {
        /// The plan file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Not valid YAML, or not the shape of a plan.
    #[error("plan {path} is not a valid plan: {message}")]
    Parse {
        /// The plan file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An environment override did not fit the plan.
    #[error(
        "plan {path} with {ENV_OVERRIDE_PREFIX}* environment overrides is not valid: {message}"
    )]
    Override {
        /// The plan file.
        path: PathBuf,
        /// figment's message, naming the key.
        message: String,
    },
    /// Parsed, but wrong.
    #[error("plan {path} has {count} error{s}:\n{list}", count = diagnostics.len(),
        s = if diagnostics.len() == 1 { "" } else { "s" },
        list = diagnostics.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The plan file.
        path: PathBuf,
        /// Every problem.
        diagnostics: Vec<Diagnostic>,
    },
    /// A command named something the plan does not declare.
    #[error("plan {path} has no {what} named `{name}`; known: {known}")]
    Unknown {
        /// The plan file.
        path: PathBuf,
        /// `catalog` or `repository`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// The names it has.
        known: String,
    },
}
