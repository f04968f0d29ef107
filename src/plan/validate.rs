//! `RawPlan` → [`Plan`]: pure validation. No network, no filesystem, no credentials: every
//! problem is collected with its YAML path, so one run of `bcn validate` shows them all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::raw::{
    RawBackup, RawCatalog, RawCatalogS3, RawCategories, RawCategory, RawEvent, RawMode,
    RawNotification, RawPlan, RawReport, RawRepository, RawRetention, RawSnapshots, RawStrategy,
    RawThriftTransport,
};
use super::{
    ApiRole, ApiSpec, ApiToken, AwsCredentials, BackupEntry, CatalogKind, CatalogS3, CatalogSpec,
    Categorizer, Diagnostic, GlueConfig, HmsConfig, NotificationSpec, NotifyEvent, NotifyTarget,
    Plan, ReportSpec, ReportTemplate, RepositorySpec, RestAuth, RestConfig, Retention, Secret,
    SqlConfig, Strategy,
};
use crate::repo::records::Category;
use crate::store::StoreLocation;

/// Validates a parsed plan. `base` is the plan file's directory (relative paths are relative
/// to it).
pub fn validate(raw: RawPlan, base: &Path) -> Result<Plan, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    if let Some(v) = raw.version
        && v != 1
    {
        diags.push(Diagnostic::new(
            "version",
            format!("unknown plan version {v}"),
            "write `version: 1` or remove the key",
        ));
    }
    let mut catalogs = BTreeMap::new();
    for (name, raw_catalog) in raw.catalogs {
        let path = format!("catalogs.{name}");
        check_name(&path, &name, &mut diags);
        if let Some(spec) = catalog(&path, &name, raw_catalog, base, &mut diags) {
            catalogs.insert(name, Arc::new(spec));
        }
    }
    let mut repositories = BTreeMap::new();
    for (name, raw_repo) in raw.repositories {
        let path = format!("repositories.{name}");
        check_name(&path, &name, &mut diags);
        if let Some(spec) = repository(&path, &name, raw_repo, base, &mut diags) {
            repositories.insert(name, Arc::new(spec));
        }
    }
    let categorizer = categories(&raw.categories.unwrap_or_default(), &mut diags);
    let mut strategies = BTreeMap::new();
    for (name, raw_strategy) in raw.strategies {
        let path = format!("strategies.{name}");
        check_name(&path, &name, &mut diags);
        strategies.insert(
            name.clone(),
            Arc::new(strategy(&path, name, raw_strategy, &mut diags)),
        );
    }
    let refs = Refs {
        catalogs: &catalogs,
        repositories: &repositories,
        strategies: &strategies,
    };
    let mut backups: Vec<BackupEntry> = Vec::new();
    for (i, raw_backup) in raw.backups.into_iter().enumerate() {
        let path = format!("backups[{i}]");
        if backups.iter().any(|b| b.name == raw_backup.name) {
            diags.push(Diagnostic::new(
                format!("{path}.name"),
                format!("duplicate entry name `{}`", raw_backup.name),
                "give every entry its own name",
            ));
        }
        if let Some(entry) = backup(&path, raw_backup, &refs, &mut diags) {
            backups.push(entry);
        }
    }
    check_shared_repositories(&backups, &mut diags);
    let reports = raw
        .reports
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| report(&format!("reports[{i}]"), r, base, &mut diags))
        .collect();
    let notifications = raw
        .notifications
        .into_iter()
        .enumerate()
        .filter_map(|(i, n)| notification(&format!("notifications[{i}]"), n, &mut diags))
        .collect();
    let api = raw.api.map(|a| api(a, base, &mut diags));
    if diags.is_empty() {
        Ok(Plan {
            base: base.to_path_buf(),
            catalogs,
            repositories,
            categorizer,
            backups,
            reports,
            notifications,
            metrics: raw.metrics.map(|m| base.join(m.textfile)),
            api,
        })
    } else {
        Err(diags)
    }
}

fn api(raw: crate::plan::raw::RawApi, base: &Path, diags: &mut Vec<Diagnostic>) -> ApiSpec {
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

struct Refs<'a> {
    catalogs: &'a BTreeMap<String, Arc<CatalogSpec>>,
    repositories: &'a BTreeMap<String, Arc<RepositorySpec>>,
    strategies: &'a BTreeMap<String, Arc<Strategy>>,
}

/// Looks `name` up in `map`, or reports an unknown reference at `path`.
fn lookup<T: Clone>(
    map: &BTreeMap<String, T>,
    path: &str,
    (what, section): (&str, &str),
    name: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let found = map.get(name).cloned();
    if found.is_none() {
        let known: Vec<&str> = map.keys().map(String::as_str).collect();
        let known = if known.is_empty() {
            "none".into()
        } else {
            known.join(", ")
        };
        diags.push(Diagnostic::new(
            path,
            format!("unknown {what} `{name}`; known: {known}"),
            format!("declare it under `{section}:` or fix the name"),
        ));
    }
    found
}

/// Parses an optional duration of the plan at `path`, reporting a bad one with `hint`.
fn duration_at(
    path: &str,
    value: Option<&str>,
    hint: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<chrono::Duration> {
    value.and_then(|v| {
        parse_duration(v)
            .map_err(|e| diags.push(Diagnostic::new(path, e, hint)))
            .ok()
    })
}

/// Parses `30m`, `6h`, `1d`, `2w`, `1h 30m`.
pub fn parse_duration(value: &str) -> Result<chrono::Duration, String> {
    let d = humantime::parse_duration(value.trim())
        .map_err(|e| format!("invalid duration `{value}`: {e}"))?;
    // Every duration is added to or taken from a point in time; beyond a century that
    // overflows the calendar (a grace of `1000000y` once panicked), and no policy needs it.
    if d > MAX_DURATION {
        return Err(format!(
            "duration `{value}` is longer than the longest bcn accepts (100 years)"
        ));
    }
    chrono::Duration::from_std(d).map_err(|e| format!("invalid duration `{value}`: {e}"))
}

/// The longest duration of a plan or an option.
const MAX_DURATION: std::time::Duration = std::time::Duration::from_hours(100 * 366 * 24);

fn strategy(path: &str, name: String, raw: RawStrategy, diags: &mut Vec<Diagnostic>) -> Strategy {
    let interval = duration_at(
        &format!("{path}.interval"),
        raw.interval.as_deref(),
        "write a duration such as `30m`, `6h`, `1d` or `1w`",
        diags,
    );
    Strategy {
        name,
        full: raw.mode == Some(RawMode::Full),
        current_snapshot_only: raw.snapshots == Some(RawSnapshots::Current),
        interval,
        retention: retention(
            &format!("{path}.retention"),
            &raw.retention.unwrap_or_default(),
            diags,
        ),
        allow_partial: raw.allow_partial.unwrap_or(false),
        verify: raw
            .verify
            .as_ref()
            .map(|v| verify_policy(&format!("{path}.verify"), v, diags)),
        full_every: duration_at(
            &format!("{path}.full_every"),
            raw.full_every.as_deref(),
            "write a duration such as `7d` or `4w`",
            diags,
        ),
    }
}

fn verify_policy(
    path: &str,
    raw: &super::raw::RawVerify,
    diags: &mut Vec<Diagnostic>,
) -> super::VerifyPolicy {
    let interval = duration_at(
        &format!("{path}.interval"),
        raw.interval.as_deref(),
        "write a duration such as `1d` or `1w`",
        diags,
    );
    let read_data = raw.read_data.as_deref().and_then(|v| {
        super::Subset::parse(v)
            .map_err(|e| {
                let hint = "write `all`, `10%`, or `1/7` (a seventh each time, rotating)";
                diags.push(Diagnostic::new(format!("{path}.read_data"), e, hint));
            })
            .ok()
    });
    super::VerifyPolicy {
        interval,
        read_data,
        restore_test: raw.restore_test.unwrap_or(false),
    }
}

fn retention(path: &str, raw: &RawRetention, diags: &mut Vec<Diagnostic>) -> Retention {
    let keep_within = duration_at(
        &format!("{path}.keep_within"),
        raw.keep_within.as_deref(),
        "write a duration such as `7d` or `36h`",
        diags,
    );
    let counts = [
        ("keep_last", raw.keep_last),
        ("keep_hourly", raw.keep_hourly),
        ("keep_daily", raw.keep_daily),
        ("keep_weekly", raw.keep_weekly),
        ("keep_monthly", raw.keep_monthly),
    ];
    for (key, value) in counts {
        if value == Some(0) {
            let hint = "remove the key, or keep at least 1";
            diags.push(Diagnostic::new(
                format!("{path}.{key}"),
                "0 keeps nothing by this rule",
                hint,
            ));
        }
    }
    Retention {
        keep_last: raw.keep_last,
        keep_hourly: raw.keep_hourly,
        keep_daily: raw.keep_daily,
        keep_weekly: raw.keep_weekly,
        keep_monthly: raw.keep_monthly,
        keep_within,
    }
}

fn category(raw: RawCategory) -> Category {
    match raw {
        RawCategory::Global => Category::Global,
        RawCategory::Local => Category::Local,
        RawCategory::Ephemeral => Category::Ephemeral,
        RawCategory::Ignore => Category::Ignore,
    }
}

fn backup(
    path: &str,
    raw: RawBackup,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<BackupEntry> {
    check_name(&format!("{path}.name"), &raw.name, diags);
    let catalog = lookup(
        refs.catalogs,
        &format!("{path}.catalog"),
        ("catalog", "catalogs"),
        &raw.catalog,
        diags,
    );
    let repository = lookup(
        refs.repositories,
        &format!("{path}.repository"),
        ("repository", "repositories"),
        &raw.repository,
        diags,
    );
    let strategy = match &raw.strategy {
        Some(name) => lookup(
            refs.strategies,
            &format!("{path}.strategy"),
            ("strategy", "strategies"),
            name,
            diags,
        ),
        None => Some(Arc::new(Strategy::default())),
    };
    let database = raw.database.as_deref().and_then(|db| {
        crate::names::parse_namespace(db)
            .map_err(|e| {
                diags.push(Diagnostic::new(
                    format!("{path}.database"),
                    e,
                    "name a namespace",
                ));
            })
            .ok()
    });
    if let Some(table) = &raw.table {
        if raw.database.is_none() {
            let hint = "add the table's database";
            diags.push(Diagnostic::new(
                format!("{path}.table"),
                "`table` needs `database`",
                hint,
            ));
        }
        if let Err(e) = crate::names::check(table) {
            diags.push(Diagnostic::new(format!("{path}.table"), e, "name a table"));
        }
    }
    let categories: Vec<Category> = match raw.categories {
        Some(list) => list.into_iter().map(category).collect(),
        // `local` data goes only where an entry says so.
        None => vec![Category::Global, Category::Ephemeral],
    };
    let hint = "list any of global, local, ephemeral";
    if categories.contains(&Category::Ignore) {
        let message = "an entry cannot take `ignore`: ignored tables are never backed up";
        diags.push(Diagnostic::new(format!("{path}.categories"), message, hint));
    }
    if categories.is_empty() {
        let message = "the entry takes no category, so it would back up nothing";
        diags.push(Diagnostic::new(format!("{path}.categories"), message, hint));
    }
    let hooks = hooks(
        &format!("{path}.hooks"),
        raw.hooks.unwrap_or_default(),
        diags,
    );
    Some(BackupEntry {
        name: raw.name,
        catalog: catalog?,
        database,
        table: raw.table,
        repository: repository?,
        strategy: strategy?,
        categories,
        hooks,
    })
}

fn hooks(path: &str, raw: super::raw::RawHooks, diags: &mut Vec<Diagnostic>) -> super::Hooks {
    for (kind, list) in [("before", &raw.before), ("after", &raw.after)] {
        for (i, argv) in list.iter().enumerate() {
            if argv.first().is_none_or(String::is_empty) {
                diags.push(Diagnostic::new(
                    format!("{path}.{kind}[{i}]"),
                    "empty command",
                    "write the program and its arguments: [\"/usr/local/bin/pre-backup\", \"--quiet\"]",
                ));
            }
        }
    }
    let timeout = duration_at(
        &format!("{path}.timeout"),
        raw.timeout.as_deref(),
        "write a duration such as `30s` or `10m`",
        diags,
    )
    .and_then(|d| d.to_std().ok())
    .unwrap_or(std::time::Duration::from_mins(10));
    super::Hooks {
        before: raw.before,
        after: raw.after,
        timeout,
    }
}

/// Two entries writing one repository would fight over its scope and lock.
fn check_shared_repositories(backups: &[BackupEntry], diags: &mut Vec<Diagnostic>) {
    for (i, a) in backups.iter().enumerate() {
        if let Some(b) = backups[..i]
            .iter()
            .find(|b| b.repository.name == a.repository.name)
        {
            diags.push(Diagnostic::new(
                format!("backups[{i}].repository"),
                format!(
                    "entries `{}` and `{}` both write repository `{}`",
                    b.name, a.name, a.repository.name
                ),
                "a repository holds one scope: give each entry its own repository",
            ));
        }
    }
}

fn report(
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

fn notification(
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

/// Names used as keys must be usable on a command line and in file names.
fn check_name(path: &str, name: &str, diags: &mut Vec<Diagnostic>) {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if !ok {
        diags.push(Diagnostic::new(
            path,
            format!("invalid name `{name}`"),
            "use letters, digits, `-`, `_` and `.` (not first)",
        ));
    }
}

fn catalog(
    path: &str,
    name: &str,
    raw: RawCatalog,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<CatalogSpec> {
    let before = diags.len();
    let mut check = Checker { path, base, diags };
    let kind = match raw {
        RawCatalog::Sql {
            uri,
            warehouse,
            catalog_name,
            properties,
            s3,
        } => {
            let uri = resolve_sql_uri(&uri, base)
                .map_err(|message| {
                    check.report(
                        "uri",
                        message,
                        "write `sqlite:///abs/path/catalog.db`, `sqlite://relative/path.db` or `postgres://user@host/db`",
                    );
                })
                .ok();
            let warehouse = warehouse.and_then(|w| check.location("warehouse", &w));
            let s3 = check.s3(s3);
            check.reserved(&properties, &["uri", "warehouse"]);
            CatalogKind::Sql(SqlConfig {
                uri: uri.unwrap_or_default(),
                warehouse,
                catalog_name: catalog_name.unwrap_or_else(|| name.to_owned()),
                properties,
                s3,
            })
        }
        RawCatalog::Rest {
            uri,
            warehouse,
            prefix,
            token,
            credential,
            oauth2_server_uri,
            scope,
            headers,
            properties,
            s3,
        } => {
            check.http_url(
                "uri",
                &uri,
                "write the catalog's base URL, e.g. `http://127.0.0.1:8181`",
            );
            if let Some(w) = &warehouse
                && w.contains("://")
            {
                check.location("warehouse", w);
            }
            let oauth2_keys = [
                ("oauth2_server_uri", oauth2_server_uri.is_some()),
                ("scope", scope.is_some()),
            ];
            let has_credential = credential.is_some();
            let auth = match (token, credential) {
                (Some(_), Some(_)) => {
                    check.report(
                        "token",
                        "`token` and `credential` are both set",
                        "keep one: a bearer token, or OAuth2 client credentials",
                    );
                    RestAuth::None
                }
                (Some(token), None) => RestAuth::Token(token),
                (None, Some(credential)) => RestAuth::OAuth2 {
                    credential,
                    server_uri: oauth2_server_uri.inspect(|u| {
                        check.http_url("oauth2_server_uri", u, "write the token endpoint URL");
                    }),
                    scope,
                },
                (None, None) => RestAuth::None,
            };
            if !has_credential {
                for (key, set) in oauth2_keys {
                    if set {
                        check.report(
                            key,
                            format!("`{key}` without `credential`"),
                            "add `credential: ${CLIENT_ID_AND_SECRET}` or remove the key",
                        );
                    }
                }
            }
            for header in headers.keys() {
                if header.is_empty() || !header.bytes().all(is_header_char) {
                    check.report(
                        &format!("headers.{header}"),
                        format!("invalid HTTP header name `{header}`"),
                        "use letters, digits and `-`",
                    );
                }
            }
            let prefix = prefix
                .map(|p| p.trim_matches('/').to_owned())
                .filter(|p| !p.is_empty());
            let s3 = check.s3(s3);
            check.reserved(
                &properties,
                &[
                    "uri",
                    "warehouse",
                    "prefix",
                    "token",
                    "credential",
                    "oauth2-server-uri",
                    "scope",
                ],
            );
            CatalogKind::Rest(RestConfig {
                uri: uri.trim().trim_end_matches('/').to_owned(),
                warehouse,
                prefix,
                auth,
                headers,
                properties,
                s3,
            })
        }
        RawCatalog::Glue {
            warehouse,
            region,
            endpoint,
            catalog_id,
            profile,
            access_key_id,
            secret_access_key,
            session_token,
            properties,
            s3,
        } => {
            let warehouse = check.location("warehouse", &warehouse).inspect(|w| {
                if !(w.starts_with("s3://") || w.starts_with("s3a://") || w.contains("${")) {
                    check.report(
                        "warehouse",
                        format!("a Glue warehouse must be on S3, not `{w}`"),
                        "write `s3://bucket/prefix`",
                    );
                }
            });
            if let Some(e) = &endpoint {
                check.http_url(
                    "endpoint",
                    e,
                    "write the Glue endpoint URL, e.g. `http://127.0.0.1:5000`",
                );
            }
            let credentials =
                check.credentials("", access_key_id, secret_access_key, session_token);
            if profile.is_some() && credentials.is_some() {
                check.report(
                    "profile",
                    "`profile` and `access_key_id` are both set",
                    "keep one: a profile, or static keys",
                );
            }
            let s3 = check.s3(s3);
            check.reserved(
                &properties,
                &[
                    "uri",
                    "warehouse",
                    "catalog_id",
                    "region_name",
                    "profile_name",
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "aws_session_token",
                ],
            );
            CatalogKind::Glue(GlueConfig {
                warehouse: warehouse.unwrap_or_default(),
                region,
                endpoint: endpoint.map(|e| e.trim().trim_end_matches('/').to_owned()),
                catalog_id,
                profile,
                credentials,
                properties,
                s3,
            })
        }
        RawCatalog::Hms {
            uri,
            warehouse,
            thrift_transport,
            properties,
            s3,
        } => {
            let address = match hms_address(&uri) {
                Ok(a) => a,
                Err(message) => {
                    check.report("uri", message, "write `thrift://host:9083` or `host:9083`");
                    String::new()
                }
            };
            let warehouse = check.location("warehouse", &warehouse);
            let s3 = check.s3(s3);
            check.reserved(&properties, &["uri", "warehouse", "thrift_transport"]);
            CatalogKind::Hms(HmsConfig {
                address,
                warehouse: warehouse.unwrap_or_default(),
                framed: thrift_transport == Some(RawThriftTransport::Framed),
                properties,
                s3,
            })
        }
    };
    (diags.len() == before).then(|| CatalogSpec {
        name: name.to_owned(),
        kind,
    })
}

/// Collects the diagnostics of one catalog, keyed below its YAML path.
struct Checker<'a> {
    path: &'a str,
    base: &'a Path,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::new(
            format!("{}.{key}", self.path),
            message,
            hint,
        ));
    }

    fn location(&mut self, key: &str, value: &str) -> Option<String> {
        resolve_location(value, self.base)
            .map_err(|message| {
                self.report(
                    key,
                    message,
                    "use a path, `file:///...` or `s3://bucket/prefix`",
                );
            })
            .ok()
    }

    /// An `http(s)://` URL; unresolved `${...}` references (`bcn validate`) are accepted.
    fn http_url(&mut self, key: &str, value: &str, hint: &str) {
        let value = value.trim();
        if value.contains("${") {
            return;
        }
        let ok = url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            self.report(key, format!("`{value}` is not an http(s) URL"), hint);
        }
    }

    fn credentials(
        &mut self,
        prefix: &str,
        access_key_id: Option<Secret>,
        secret_access_key: Option<Secret>,
        session_token: Option<Secret>,
    ) -> Option<AwsCredentials> {
        match (access_key_id, secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token,
            }),
            (None, None) => {
                if session_token.is_some() {
                    self.report(
                        &format!("{prefix}session_token"),
                        "`session_token` without `access_key_id` and `secret_access_key`",
                        "add the keys the token belongs to, or remove it",
                    );
                }
                None
            }
            (id, _) => {
                let missing = if id.is_some() {
                    "secret_access_key"
                } else {
                    "access_key_id"
                };
                self.report(
                    &format!("{prefix}{missing}"),
                    format!("`{missing}` is missing"),
                    "give both `access_key_id` and `secret_access_key` (as `${ENV}` or `${file:/path}` references), or neither",
                );
                None
            }
        }
    }

    fn s3(&mut self, raw: Option<RawCatalogS3>) -> Option<CatalogS3> {
        let raw = raw?;
        if let Some(e) = &raw.endpoint {
            self.http_url(
                "s3.endpoint",
                e,
                "write the S3 endpoint URL, e.g. `http://127.0.0.1:9000`",
            );
        }
        let credentials = self.credentials(
            "s3.",
            raw.access_key_id,
            raw.secret_access_key,
            raw.session_token,
        );
        Some(CatalogS3 {
            endpoint: raw
                .endpoint
                .map(|e| e.trim().trim_end_matches('/').to_owned()),
            region: raw.region,
            path_style: raw.path_style,
            credentials,
        })
    }

    /// `properties` may not set what a typed key of the catalog sets.
    fn reserved(&mut self, properties: &BTreeMap<String, Secret>, keys: &[&str]) {
        for key in properties.keys() {
            let typed = keys.contains(&key.as_str()) || key.starts_with("header.");
            if typed {
                self.report(
                    &format!("properties.{key}"),
                    format!("`{key}` is set by a key of the catalog itself"),
                    "use the catalog's own key (see `bcn schema`) instead of `properties`",
                );
            }
        }
    }
}

/// Characters of an HTTP header name (RFC 9110 `tchar`).
fn is_header_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `host:port` of a Hive Metastore URI (`thrift://host:port` or `host:port`).
fn hms_address(uri: &str) -> Result<String, String> {
    let uri = uri.trim();
    if uri.contains("${") {
        return Ok(uri.to_owned());
    }
    let rest = match uri.split_once("://") {
        Some(("thrift", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!("unsupported scheme `{scheme}` in `{uri}`"));
        }
        None => uri,
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(rest.to_owned())
        }
        _ => Err(format!("`{uri}` names no host and port")),
    }
}

/// Resolves a SQL catalog URI; relative `SQLite` paths become absolute against `base`.
pub(crate) fn resolve_sql_uri(uri: &str, base: &Path) -> Result<String, String> {
    let uri = uri.trim();
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return Ok(uri.to_owned());
    }
    let Some(rest) = uri.strip_prefix("sqlite:") else {
        return Err(format!("unsupported SQL catalog URI `{uri}`"));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = rest
        .split_once('?')
        .map_or((rest, None), |(f, q)| (f, Some(q)));
    if file.is_empty() || file == ":memory:" {
        return Err(format!("SQLite URI `{uri}` names no database file"));
    }
    let abs = base.join(file);
    let mut out = format!("sqlite://{}", abs.display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// Resolves a warehouse or table location; relative paths become `file://` URLs against `base`.
pub(crate) fn resolve_location(value: &str, base: &Path) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("empty location".into());
    }
    if let Some((scheme, _)) = value.split_once("://") {
        return match scheme {
            "file" | "s3" | "s3a" | "s3n" | "gs" | "abfss" | "oss" | "memory" => {
                Ok(value.trim_end_matches('/').to_owned())
            }
            _ => Err(format!(
                "unsupported location scheme `{scheme}` in `{value}`"
            )),
        };
    }
    if let Some(rest) = value.strip_prefix("file:") {
        return Ok(format!(
            "file:///{}",
            rest.trim_start_matches('/').trim_end_matches('/')
        ));
    }
    Ok(format!("file://{}", base.join(value).display())
        .trim_end_matches('/')
        .to_owned())
}

fn repository(
    path: &str,
    name: &str,
    raw: RawRepository,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<RepositorySpec> {
    match StoreLocation::parse(&raw.location, base) {
        Ok(location) => {
            if raw.s3.is_some() && !matches!(location, StoreLocation::S3 { .. }) {
                diags.push(Diagnostic::new(
                    format!("{path}.s3"),
                    "S3 settings on a repository that is not on S3",
                    "remove `s3:` or use an `s3://bucket/prefix` location",
                ));
            }
            let encryption = raw.encryption.and_then(|e| {
                let key = e.key.expose();
                crate::secret::register(key);
                if key.contains("${") {
                    // Checked once the reference is resolved.
                    return crate::store::crypto::UserKey::new("unresolved reference").ok();
                }
                crate::store::crypto::UserKey::new(key)
                    .map_err(|err| {
                        diags.push(Diagnostic::new(
                            format!("{path}.encryption.key"),
                            err.to_string(),
                            "give the key by reference, e.g. `key: \"${file:/run/secrets/bcn}\"`",
                        ));
                    })
                    .ok()
            });
            let require_encryption = raw.require_encryption.unwrap_or(false);
            if require_encryption
                && encryption.is_none()
                && !diags
                    .iter()
                    .any(|d| d.path.starts_with(&format!("{path}.encryption")))
            {
                diags.push(Diagnostic::new(
                    format!("{path}.require_encryption"),
                    "the repository requires encryption but has no `encryption`",
                    "add `encryption: { key: \"${file:/run/secrets/bcn}\" }` (a new repository), or back this data up into an encrypted repository",
                ));
            }
            Some(RepositorySpec {
                name: name.to_owned(),
                location,
                description: raw.description,
                encryption,
                require_encryption,
                s3: raw.s3.map(|s| crate::store::S3Options {
                    endpoint: s.endpoint,
                    region: s.region,
                    path_style: s.path_style.unwrap_or(false),
                    access_key_id: s.access_key_id,
                    secret_access_key: s.secret_access_key,
                    session_token: s.session_token,
                    object_lock: s.object_lock.map(|l| crate::store::ObjectLock {
                        compliance: l.mode == crate::plan::raw::RawLockMode::Compliance,
                        days: l.days,
                    }),
                    sse: s.sse.map(|e| (e.algorithm, e.kms_key_id)),
                }),
            })
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                format!("{path}.location"),
                e.to_string(),
                "use a path, `file:///...` or `s3://bucket/prefix`",
            ));
            None
        }
    }
}

fn categories(raw: &RawCategories, diags: &mut Vec<Diagnostic>) -> Categorizer {
    let mut compile = |key: &str, patterns: &[String]| -> GlobSet {
        let mut builder = GlobSetBuilder::new();
        for (i, pattern) in patterns.iter().enumerate() {
            match Glob::new(pattern) {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(e) => diags.push(Diagnostic::new(
                    format!("categories.{key}[{i}]"),
                    format!("invalid glob `{pattern}`: {}", e.kind()),
                    "patterns match `database.table`, e.g. `sales.*` or `*.tmp_*`",
                )),
            }
        }
        builder.build().unwrap_or_else(|_| GlobSet::empty())
    };
    let ordered = vec![
        (Category::Ignore, compile("ignore", &raw.ignore)),
        (Category::Ephemeral, compile("ephemeral", &raw.ephemeral)),
        (Category::Local, compile("local", &raw.local)),
        (Category::Global, compile("global", &raw.global)),
    ];
    let default = category(raw.default.unwrap_or(RawCategory::Global));
    Categorizer { ordered, default }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_uris_resolve_against_the_plan() {
        let base = Path::new("/plans");
        assert_eq!(
            resolve_sql_uri("sqlite://lake/c.db", base).unwrap(),
            "sqlite:///plans/lake/c.db"
        );
        assert_eq!(
            resolve_sql_uri("sqlite:///abs/c.db?mode=rwc", base).unwrap(),
            "sqlite:///abs/c.db?mode=rwc"
        );
        assert_eq!(
            resolve_sql_uri("sqlite:c.db", base).unwrap(),
            "sqlite:///plans/c.db"
        );
        assert!(resolve_sql_uri("sqlite::memory:", base).is_err());
        assert!(resolve_sql_uri("mysql://x", base).is_err());
    }

    #[test]
    fn locations_resolve_against_the_plan() {
        let base = Path::new("/plans");
        assert_eq!(resolve_location("wh", base).unwrap(), "file:///plans/wh");
        assert_eq!(
            resolve_location("file:/abs/wh/", base).unwrap(),
            "file:///abs/wh"
        );
        assert_eq!(resolve_location("s3://b/wh", base).unwrap(), "s3://b/wh");
        assert!(resolve_location("ftp://x", base).is_err());
    }

    #[test]
    fn categories_take_the_most_specific_treatment() {
        let raw = RawCategories {
            default: None,
            global: vec!["*.*".into()],
            local: vec!["crm.*".into()],
            ephemeral: vec!["*.staging_*".into()],
            ignore: vec!["tmp.*".into()],
        };
        let mut diags = Vec::new();
        let c = categories(&raw, &mut diags);
        assert!(diags.is_empty());
        assert_eq!(c.category("tmp.x"), Category::Ignore);
        assert_eq!(c.category("crm.staging_a"), Category::Ephemeral);
        assert_eq!(c.category("crm.users"), Category::Local);
        assert_eq!(c.category("sales.orders"), Category::Global);
    }

    fn catalogs(yaml: &str) -> Result<BTreeMap<String, Arc<CatalogSpec>>, Vec<Diagnostic>> {
        let raw: RawPlan = serde_saphyr::from_str(yaml).unwrap();
        validate(raw, Path::new("/plans")).map(|p| p.catalogs)
    }

    #[test]
    fn every_catalog_type_validates() {
        let c = catalogs(
            r"
catalogs:
  rest:
    type: rest
    uri: http://127.0.0.1:8181/
    warehouse: lake
    prefix: /ws/
    credential: id:secret
    scope: catalog
    headers: { X-Tenant: a }
  glue:
    type: glue
    warehouse: s3://lake/wh
    region: eu-west-1
    endpoint: http://127.0.0.1:5000
    access_key_id: AKIA
    secret_access_key: topsecret
    s3: { endpoint: 'http://127.0.0.1:5000', path_style: true }
  hms:
    type: hms
    uri: thrift://127.0.0.1:9083
    warehouse: wh
    thrift_transport: framed
  sql:
    type: sql
    uri: sqlite://c.db
    s3: { region: us-east-1, access_key_id: a, secret_access_key: b }
",
        )
        .unwrap();
        let CatalogKind::Rest(RestConfig {
            uri, prefix, auth, ..
        }) = &c["rest"].kind
        else {
            panic!("{:?}", c["rest"]);
        };
        assert_eq!(uri, "http://127.0.0.1:8181");
        assert_eq!(prefix.as_deref(), Some("ws"));
        assert!(matches!(auth, RestAuth::OAuth2 { scope: Some(s), .. } if s == "catalog"));
        let CatalogKind::Hms(HmsConfig {
            address,
            warehouse,
            framed,
            ..
        }) = &c["hms"].kind
        else {
            panic!("{:?}", c["hms"]);
        };
        assert_eq!(address, "127.0.0.1:9083");
        assert_eq!(warehouse, "file:///plans/wh");
        assert!(framed);
        assert_eq!(c["glue"].kind.warehouse_location(), Some("s3://lake/wh"));
        assert!(c["glue"].kind.single_level_namespaces());
        assert_eq!(
            c["rest"].kind.warehouse_location(),
            None,
            "a warehouse name"
        );
        // Debug output carries no secret.
        let debug = format!("{c:?}");
        for secret in ["id:secret", "topsecret", "AKIA", "X-Tenant: a"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn catalog_mistakes_are_reported_with_their_paths() {
        let diags = catalogs(
            r"
catalogs:
  r:
    type: rest
    uri: localhost:8181
    token: t
    credential: c
    headers: { 'bad header': x }
    properties: { uri: http://x }
  g:
    type: glue
    warehouse: /local/wh
    access_key_id: a
    s3: { endpoint: ftp://x, session_token: t }
  h:
    type: hms
    uri: thrift://metastore
    warehouse: s3://b/wh
  o:
    type: rest
    uri: http://h
    scope: catalog
",
        )
        .unwrap_err();
        let paths: Vec<&str> = diags.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "catalogs.g.warehouse",
                "catalogs.g.secret_access_key",
                "catalogs.g.s3.endpoint",
                "catalogs.g.s3.session_token",
                "catalogs.h.uri",
                "catalogs.o.scope",
                "catalogs.r.uri",
                "catalogs.r.token",
                "catalogs.r.headers.bad header",
                "catalogs.r.properties.uri",
            ],
            "{diags:#?}"
        );
        assert!(diags.iter().all(|d| !d.hint.is_empty()));
    }

    #[test]
    fn unresolved_references_pass_syntax_only_validation() {
        catalogs(
            r"
catalogs:
  h:
    type: hms
    uri: ${HMS_URI}
    warehouse: s3://b/wh
  r:
    type: rest
    uri: ${REST_URI}
    token: ${REST_TOKEN}
",
        )
        .unwrap();
    }
}
