//! The YAML plan: what to back up where.
//!
//! Loading goes through three steps, after ripgrep and uv: read and parse into [`raw::RawPlan`]
//! (unknown keys and wrong types are errors with line and column), merge `BCN_PLAN_*`
//! environment overrides with figment, then validate purely into a [`Plan`], which cannot be
//! built invalid.

mod interpolate;
pub mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use globset::GlobSet;

use crate::repo::records::Category;
use crate::store::StoreLocation;
pub use interpolate::Resolve;
pub use validate::parse_duration;
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

/// Catalog connection settings, resolved. `Debug` never prints credentials, headers or
/// properties (they may hold secrets).
#[derive(Clone, PartialEq)]
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
        /// S3 settings of the warehouse.
        s3: Option<CatalogS3>,
    },
    /// An Iceberg REST catalog.
    Rest {
        /// Base URI.
        uri: String,
        /// Warehouse location or name.
        warehouse: Option<String>,
        /// Route prefix.
        prefix: Option<String>,
        /// Authentication.
        auth: RestAuth,
        /// Extra HTTP headers.
        headers: BTreeMap<String, String>,
        /// Extra catalog and `FileIO` properties.
        properties: BTreeMap<String, String>,
        /// S3 settings of the warehouse.
        s3: Option<CatalogS3>,
    },
    /// AWS Glue.
    Glue {
        /// Warehouse location (`s3://`).
        warehouse: String,
        /// Region.
        region: Option<String>,
        /// Glue endpoint override.
        endpoint: Option<String>,
        /// Catalog (account) id.
        catalog_id: Option<String>,
        /// AWS profile.
        profile: Option<String>,
        /// Static credentials.
        credentials: Option<AwsCredentials>,
        /// Extra catalog and `FileIO` properties.
        properties: BTreeMap<String, String>,
        /// S3 settings of the warehouse.
        s3: Option<CatalogS3>,
    },
    /// Hive Metastore.
    Hms {
        /// Thrift address, `host:port`.
        address: String,
        /// Warehouse location, absolute.
        warehouse: String,
        /// Framed Thrift transport instead of buffered.
        framed: bool,
        /// Extra catalog and `FileIO` properties.
        properties: BTreeMap<String, String>,
        /// S3 settings of the warehouse.
        s3: Option<CatalogS3>,
    },
}

impl CatalogKind {
    /// The plan's `type` of this catalog.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sql { .. } => "sql",
            Self::Rest { .. } => "rest",
            Self::Glue { .. } => "glue",
            Self::Hms { .. } => "hms",
        }
    }

    /// The warehouse when it is a location (a REST warehouse may be a mere name).
    pub fn warehouse_location(&self) -> Option<&str> {
        match self {
            Self::Sql { warehouse, .. } => warehouse.as_deref(),
            Self::Rest { warehouse, .. } => warehouse.as_deref().filter(|w| w.contains(":/")),
            Self::Glue { warehouse, .. } | Self::Hms { warehouse, .. } => Some(warehouse),
        }
    }

    /// Whether namespaces are single-level (Glue databases, Hive databases).
    pub fn single_level_namespaces(&self) -> bool {
        matches!(self, Self::Glue { .. } | Self::Hms { .. })
    }
}

impl fmt::Debug for CatalogKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
        match self {
            Self::Sql {
                uri,
                warehouse,
                catalog_name,
                properties,
                s3,
            } => f
                .debug_struct("Sql")
                .field("uri", uri)
                .field("warehouse", warehouse)
                .field("catalog_name", catalog_name)
                .field("properties", &keys(properties))
                .field("s3", s3)
                .finish(),
            Self::Rest {
                uri,
                warehouse,
                prefix,
                auth,
                headers,
                properties,
                s3,
            } => f
                .debug_struct("Rest")
                .field("uri", uri)
                .field("warehouse", warehouse)
                .field("prefix", prefix)
                .field("auth", auth)
                .field("headers", &keys(headers))
                .field("properties", &keys(properties))
                .field("s3", s3)
                .finish(),
            Self::Glue {
                warehouse,
                region,
                endpoint,
                catalog_id,
                profile,
                credentials,
                properties,
                s3,
            } => f
                .debug_struct("Glue")
                .field("warehouse", warehouse)
                .field("region", region)
                .field("endpoint", endpoint)
                .field("catalog_id", catalog_id)
                .field("profile", profile)
                .field("credentials", credentials)
                .field("properties", &keys(properties))
                .field("s3", s3)
                .finish(),
            Self::Hms {
                address,
                warehouse,
                framed,
                properties,
                s3,
            } => f
                .debug_struct("Hms")
                .field("address", address)
                .field("warehouse", warehouse)
                .field("framed", framed)
                .field("properties", &keys(properties))
                .field("s3", s3)
                .finish(),
        }
    }
}

/// How bcn authenticates to a REST catalog.
#[derive(Clone, PartialEq, Eq)]
pub enum RestAuth {
    /// No authentication.
    None,
    /// A bearer token.
    Token(String),
    /// OAuth 2 client credentials.
    OAuth2 {
        /// `client_id:client_secret`.
        credential: String,
        /// Token endpoint, when not the catalog's.
        server_uri: Option<String>,
        /// Scope, when not `catalog`.
        scope: Option<String>,
    },
}

impl fmt::Debug for RestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::OAuth2 {
                server_uri, scope, ..
            } => f
                .debug_struct("OAuth2")
                .field("credential", &"<redacted>")
                .field("server_uri", server_uri)
                .field("scope", scope)
                .finish(),
        }
    }
}

/// Static AWS credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
    /// Session token.
    pub session_token: Option<String>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AwsCredentials(<redacted>)")
    }
}

/// S3 settings of a catalog's warehouse, references resolved.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CatalogS3 {
    /// Endpoint URL.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Path-style addressing.
    pub path_style: Option<bool>,
    /// Static credentials.
    pub credentials: Option<AwsCredentials>,
}

impl fmt::Debug for CatalogS3 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogS3")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("credentials", &self.credentials)
            .finish()
    }
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
    /// S3 settings, for `s3://` locations.
    pub s3: Option<crate::store::S3Options>,
    /// The key of an encrypted repository.
    pub encryption: Option<crate::store::crypto::UserKey>,
    /// The plan refuses to leave this repository without encryption.
    pub require_encryption: bool,
}

/// How an entry is backed up.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// The plan's name for it (`default` for the built-in one).
    pub name: String,
    /// Copy and checksum every file again.
    pub full: bool,
    /// Keep only the current snapshot's files.
    pub current_snapshot_only: bool,
    /// An entry is due when its newest PIT is older than this.
    pub interval: Option<chrono::Duration>,
    /// Which PITs to keep.
    pub retention: Retention,
    /// Commit the PIT even when some tables fail.
    pub allow_partial: bool,
    /// Scheduled verification.
    pub verify: Option<VerifyPolicy>,
    /// A full backup when the newest full PIT is older than this.
    pub full_every: Option<chrono::Duration>,
}

/// A strategy's scheduled verification.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyPolicy {
    /// Due when the newest verification is older than this; `None`: every run.
    pub interval: Option<chrono::Duration>,
    /// Stored files to read; for [`Subset::Slice`], apply rotates `k` itself.
    pub read_data: Option<Subset>,
    /// Restore the newest PIT into a scratch catalog and read it back.
    pub restore_test: bool,
}

/// Which stored files a verification reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// Every file.
    All,
    /// A random fraction, in percent (0 < p ≤ 100), drawn anew each run.
    Percent(f64),
    /// Slice `k` of `t` fixed slices (1 ≤ k ≤ t): over `t` runs with k = 1..t, every file is
    /// read exactly once.
    Slice {
        /// Which slice, from 1.
        k: u32,
        /// How many slices.
        t: u32,
    },
}

impl Subset {
    /// Parses `all`, `10%` or `3/7`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let invalid = || {
            format!(
                "invalid subset `{value}`: write `all`, a percentage such as `10%`, or a slice such as `3/7`"
            )
        };
        if value.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| invalid())?;
            return if p > 0.0 && p <= 100.0 {
                Ok(Self::Percent(p))
            } else {
                Err(format!(
                    "subset {value}: the percentage must be above 0 and at most 100"
                ))
            };
        }
        if let Some((k, t)) = value.split_once('/') {
            let (k, t): (u32, u32) = (
                k.trim().parse().map_err(|_| invalid())?,
                t.trim().parse().map_err(|_| invalid())?,
            );
            return if k >= 1 && k <= t {
                Ok(Self::Slice { k, t })
            } else {
                Err(format!(
                    "subset {value}: the slice must be between 1 and {t}"
                ))
            };
        }
        Err(invalid())
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Percent(p) => write!(f, "{p}%"),
            Self::Slice { k, t } => write!(f, "{k}/{t}"),
        }
    }
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            name: "default".into(),
            full: false,
            current_snapshot_only: false,
            interval: None,
            retention: Retention::default(),
            allow_partial: false,
            verify: None,
            full_every: None,
        }
    }
}

/// A retention policy (restic-style): a PIT is kept when any rule keeps it, and the newest
/// PIT is always kept. An empty policy keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// Keep the newest N PITs.
    pub keep_last: Option<u32>,
    /// Keep the newest PIT of each of the last N hours with one.
    pub keep_hourly: Option<u32>,
    /// Keep the newest PIT of each of the last N days with one.
    pub keep_daily: Option<u32>,
    /// Keep the newest PIT of each of the last N ISO weeks with one.
    pub keep_weekly: Option<u32>,
    /// Keep the newest PIT of each of the last N months with one.
    pub keep_monthly: Option<u32>,
    /// Keep every PIT within this long of the newest one.
    #[serde(serialize_with = "serialize_duration")]
    pub keep_within: Option<chrono::Duration>,
}

#[allow(
    clippy::ref_option,
    reason = "the signature serde's serialize_with requires"
)]
fn serialize_duration<S: serde::Serializer>(
    d: &Option<chrono::Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{}s", d.num_seconds())),
        None => s.serialize_none(),
    }
}

impl Retention {
    /// True when no rule is set: nothing is ever forgotten.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One entry of `bcn apply`.
#[derive(Debug, Clone)]
pub struct BackupEntry {
    /// Its unique name.
    pub name: String,
    /// The source catalog.
    pub catalog: Arc<CatalogSpec>,
    /// One database only.
    pub database: Option<Vec<String>>,
    /// One table of `database` only.
    pub table: Option<String>,
    /// The repository.
    pub repository: Arc<RepositorySpec>,
    /// The strategy.
    pub strategy: Arc<Strategy>,
    /// The categories it takes.
    pub categories: Vec<Category>,
    /// Commands run around it.
    pub hooks: Hooks,
}

/// Commands run around an entry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    /// Before the backup; a failure fails the entry.
    pub before: Vec<Vec<String>>,
    /// After the entry, whatever happened.
    pub after: Vec<Vec<String>>,
    /// The longest one hook may run.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for Hooks {
    /// Program names only: arguments may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let programs = |hooks: &[Vec<String>]| -> Vec<String> {
            hooks.iter().filter_map(|h| h.first().cloned()).collect()
        };
        f.debug_struct("Hooks")
            .field("before", &programs(&self.before))
            .field("after", &programs(&self.after))
            .field("timeout", &self.timeout)
            .finish()
    }
}

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
        /// URL.
        url: String,
        /// Extra headers.
        headers: BTreeMap<String, String>,
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
    backups: Vec<BackupEntry>,
    reports: Vec<ReportSpec>,
    notifications: Vec<NotificationSpec>,
    metrics: Option<PathBuf>,
    api: Option<ApiSpec>,
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
        #[allow(
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
