//! The YAML plan: what to back up where.
//!
//! Loading goes through three steps, after ripgrep and uv: read and parse into [`raw::RawPlan`]
//! (unknown keys and wrong types are errors with line and column), merge `BCN_PLAN_*`
//! environment overrides with figment, then validate purely into a [`Plan`], which cannot be
//! built invalid.

mod catalog;
mod entry;
mod error;
mod interpolate;
pub mod raw;
mod service;
mod strategy;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use catalog::{
    AwsCredentials, CatalogKind, CatalogS3, CatalogSpec, GlueConfig, HmsConfig, Properties,
    RestAuth, RestConfig, Secret, SqlConfig, exposed,
};
pub use entry::{BackupEntry, Categorizer, Hooks, RepositorySpec};
pub use error::{Diagnostic, PlanError};
pub use interpolate::Resolve;
pub use service::{
    ApiRole, ApiSpec, ApiToken, NotificationSpec, NotifyEvent, NotifyTarget, ReportSpec,
    ReportTemplate,
};
pub use strategy::{BackupMode, Retention, SnapshotSelection, Strategy, Subset, VerifyPolicy};
pub use validate::entry::parse_duration;
pub use validate::validate;

/// Prefix of environment variables that override plan values: `BCN_PLAN_CATALOGS__LAKE__URI`
/// sets `catalogs.lake.uri` (keys are lowercased; `__` separates levels).
pub const ENV_OVERRIDE_PREFIX: &str = "BCN_PLAN_";

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    base: PathBuf,
    catalogs: BTreeMap<String, Arc<CatalogSpec>>,
    repositories: BTreeMap<String, Arc<RepositorySpec>>,
    categorizer: Categorizer,
    backups: Vec<BackupEntry>,
    reports: Vec<ReportSpec>,
    notifications: Vec<NotificationSpec>,
    metrics: Option<PathBuf>,
    api: Option<ApiSpec>,
}

impl Plan {
    /// Reads, parses and validates the plan at `path`, applying `BCN_PLAN_*` overrides and
    /// resolving `${...}` references from the process environment (see [`Resolve`]).
    pub fn load(path: &Path, resolve: Resolve) -> Result<Self, PlanError> {
        Self::load_with(path, &|_| resolve)
    }

    /// Like [`Plan::load`], resolving references only in the sections a command uses
    /// (`catalogs.lake`, `repositories.main`): an unset variable that only an unused part of
    /// the plan needs (a webhook token, another catalog's key) does not stop the command.
    pub fn load_for(path: &Path, uses: &[String]) -> Result<Self, PlanError> {
        Self::load_with(path, &|at: &str| {
            let in_use = uses.iter().any(|u| {
                at == u
                    || at
                        .strip_prefix(u.as_str())
                        .is_some_and(|r| r.starts_with(['.', '[']))
            });
            if in_use {
                Resolve::Strict
            } else {
                Resolve::Lenient
            }
        })
    }

    fn load_with(path: &Path, resolve: &dyn Fn(&str) -> Resolve) -> Result<Self, PlanError> {
        let text = fs_err::read_to_string(path).map_err(|source| PlanError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .canonicalize()
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("."));
        Self::from_yaml_with(&text, path, &base, resolve)
    }

    /// Parses and validates plan text; `path` is only used in messages.
    pub fn from_yaml(
        text: &str,
        path: &Path,
        base: &Path,
        resolve: Resolve,
    ) -> Result<Self, PlanError> {
        Self::from_yaml_with(text, path, base, &|_| resolve)
    }

    fn from_yaml_with(
        text: &str,
        path: &Path,
        base: &Path,
        resolve: &dyn Fn(&str) -> Resolve,
    ) -> Result<Self, PlanError> {
        let raw = apply_overrides(parse(text, path)?, path)?;
        let invalid = |diagnostics| PlanError::Invalid {
            path: path.to_path_buf(),
            diagnostics,
        };
        let bug =
            |e: serde_json::Error| vec![Diagnostic::new("", e.to_string(), "report this as a bug")];
        // References are resolved on the plan as a JSON tree, so that every string of every
        // section may hold them.
        let mut tree = serde_json::to_value(&raw).map_err(|e| invalid(bug(e)))?;
        let mut diags = Vec::new();
        let mut unresolved = Vec::new();
        #[expect(
            clippy::disallowed_methods,
            reason = "plan references read the environment"
        )]
        let env = |name: &str| std::env::var(name).ok();
        interpolate::resolve_tree(
            &mut tree,
            "",
            resolve,
            base,
            &env,
            &mut diags,
            &mut unresolved,
        );
        if !diags.is_empty() {
            return Err(invalid(diags));
        }
        let raw = serde_json::from_value(tree).map_err(|e| invalid(bug(e)))?;
        let mut plan = validate(raw, base).map_err(invalid)?;
        // A notification whose reference could not be resolved is skipped when sent, saying
        // why, instead of failing a command that does not otherwise need it.
        for (i, spec) in plan.notifications.iter_mut().enumerate() {
            let prefix = format!("notifications[{i}]");
            spec.unresolved = unresolved
                .iter()
                .find(|(path, _)| path.starts_with(&prefix))
                .map(|(_, message)| message.clone());
        }
        Ok(plan)
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

    /// The entries of `bcn apply`, in plan order.
    pub fn backups(&self) -> &[BackupEntry] {
        &self.backups
    }

    /// The reports.
    pub fn reports(&self) -> &[ReportSpec] {
        &self.reports
    }

    /// The notifications.
    pub fn notifications(&self) -> &[NotificationSpec] {
        &self.notifications
    }

    /// The Prometheus textfile, absolute, if the plan asks for metrics.
    pub fn metrics_textfile(&self) -> Option<&Path> {
        self.metrics.as_deref()
    }

    /// The HTTP API settings, if the plan has `api:`.
    pub fn api(&self) -> Option<&ApiSpec> {
        self.api.as_ref()
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
