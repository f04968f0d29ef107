//! The YAML plan: what to back up where.
//!
//! Loading goes through three steps, after ripgrep and uv: read and parse into [`raw::RawPlan`]
//! (unknown keys and wrong types are errors with line and column), merge `BCN_PLAN_*`
//! environment overrides with figment, then validate purely into a [`Plan`], which cannot be
//! built invalid.

pub mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::GlobSet;

use crate::repo::records::Category;
use crate::store::StoreLocation;
pub(crate) use validate::resolve_location;
pub use validate::validate;

/// Prefix of environment variables that override plan values: `BCN_PLAN_CATALOGS__LAKE__URI`
/// sets `catalogs.lake.uri` (keys are lowercased; `__` separates levels).
pub const ENV_OVERRIDE_PREFIX: &str = "BCN_PLAN_";

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

/// A catalog declared in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSpec {
    /// The plan's name for it.
    pub name: String,
    /// How to reach it.
    pub kind: CatalogKind,
}

/// Catalog connection settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogKind {
    /// A SQL catalog.
    Sql {
        /// Database URI, absolute.
        uri: String,
        /// Warehouse location, absolute.
        warehouse: Option<String>,
        /// Name inside the SQL database.
        catalog_name: String,
        /// Extra catalog and `FileIO` properties.
        properties: BTreeMap<String, String>,
    },
}

/// A repository declared in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositorySpec {
    /// The plan's name for it.
    pub name: String,
    /// Where it lives.
    pub location: StoreLocation,
    /// Free text.
    pub description: Option<String>,
}

/// Assigns categories to `database.table` names.
#[derive(Debug, Clone)]
pub struct Categorizer {
    ordered: Vec<(Category, GlobSet)>,
    default: Category,
}

impl Default for Categorizer {
    fn default() -> Self {
        Self {
            ordered: Vec::new(),
            default: Category::Global,
        }
    }
}

impl Categorizer {
    /// The category of `database.table`.
    pub fn category(&self, qualified: &str) -> Category {
        self.ordered
            .iter()
            .find(|(_, set)| set.is_match(qualified))
            .map_or(self.default, |(c, _)| *c)
    }
}

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    base: PathBuf,
    catalogs: BTreeMap<String, Arc<CatalogSpec>>,
    repositories: BTreeMap<String, Arc<RepositorySpec>>,
    categorizer: Categorizer,
}

impl Plan {
    /// Reads, parses and validates the plan at `path`, applying `BCN_PLAN_*` overrides from
    /// the process environment when `env_overrides` is set.
    pub fn load(path: &Path, env_overrides: bool) -> Result<Self, PlanError> {
        let text = fs_err::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_yaml(&text, path, &base, env_overrides)
    }

    /// Parses and validates plan text; `path` is only used in messages.
    pub fn from_yaml(
        text: &str,
        path: &Path,
        base: &Path,
        env_overrides: bool,
    ) -> Result<Self, PlanError> {
        let mut raw = parse(text, path)?;
        if env_overrides {
            raw = apply_overrides(raw, path)?;
        }
        validate(raw, base).map_err(|diagnostics| PlanError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        })
    }

    /// Directory relative paths are resolved against.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The catalog named `name`.
    pub fn catalog(&self, name: &str, plan_path: &Path) -> Result<Arc<CatalogSpec>, PlanError> {
        self.catalogs
            .get(name)
            .cloned()
            .ok_or_else(|| PlanError::Unknown {
                path: plan_path.to_path_buf(),
                what: "catalog",
                name: name.to_owned(),
                known: known(self.catalogs.keys()),
            })
    }

    /// Every catalog.
    pub fn catalogs(&self) -> impl Iterator<Item = &Arc<CatalogSpec>> {
        self.catalogs.values()
    }

    /// The repository named `name`, if declared.
    pub fn repository(&self, name: &str) -> Option<Arc<RepositorySpec>> {
        self.repositories.get(name).cloned()
    }

    /// Every repository.
    pub fn repositories(&self) -> impl Iterator<Item = &Arc<RepositorySpec>> {
        self.repositories.values()
    }

    /// The categories.
    pub fn categorizer(&self) -> &Categorizer {
        &self.categorizer
    }
}

/// The plan's JSON Schema, generated from [`raw::RawPlan`], pretty-printed with a final
/// newline. `schema/plan.schema.json` holds the same text (a test keeps them equal).
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(raw::RawPlan);
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

fn known<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn parse(text: &str, path: &Path) -> Result<raw::RawPlan, PlanError> {
    if text.trim().is_empty() {
        return Ok(raw::RawPlan::default());
    }
    serde_saphyr::from_str(text).map_err(|e| {
        // The parser renders a snippet naming `<input>`; name the plan file instead.
        let rendered = e
            .to_string()
            .replace("<input>", &path.display().to_string());
        let message = rendered
            .strip_prefix("error: ")
            .unwrap_or(&rendered)
            .to_owned();
        PlanError::Parse {
            path: path.to_path_buf(),
            message,
        }
    })
}

fn apply_overrides(raw: raw::RawPlan, path: &Path) -> Result<raw::RawPlan, PlanError> {
    use figment::Figment;
    use figment::providers::{Env, Serialized};

    let env = Env::prefixed(ENV_OVERRIDE_PREFIX).split("__");
    if env.iter().next().is_none() {
        return Ok(raw);
    }
    Figment::from(Serialized::defaults(raw))
        .merge(env)
        .extract()
        .map_err(|e| PlanError::Override {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
}
