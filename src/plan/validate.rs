//! `RawPlan` → [`Plan`]: pure validation. No network, no filesystem, no credentials: every
//! problem is collected with its YAML path, so one run of `bcn validate` shows them all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::raw::{
    RawBackup, RawCatalog, RawCategories, RawCategory, RawEvent, RawMode, RawNotification, RawPlan,
    RawReport, RawRepository, RawRetention, RawSnapshots, RawStrategy,
};
use super::{
    BackupEntry, CatalogKind, CatalogSpec, Categorizer, Diagnostic, NotificationSpec, NotifyEvent,
    NotifyTarget, Plan, ReportSpec, ReportTemplate, RepositorySpec, Retention, S3Settings,
    Strategy,
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
    if diags.is_empty() {
        Ok(Plan {
            base: base.to_path_buf(),
            catalogs,
            repositories,
            categorizer,
            backups,
            reports,
            notifications,
        })
    } else {
        Err(diags)
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

/// Parses `30m`, `6h`, `1d`, `2w`, `1h 30m`.
pub fn parse_duration(value: &str) -> Result<chrono::Duration, String> {
    let d = humantime::parse_duration(value.trim())
        .map_err(|e| format!("invalid duration `{value}`: {e}"))?;
    chrono::Duration::from_std(d).map_err(|e| format!("invalid duration `{value}`: {e}"))
}

fn strategy(path: &str, name: String, raw: RawStrategy, diags: &mut Vec<Diagnostic>) -> Strategy {
    let interval = raw.interval.as_deref().and_then(|v| {
        parse_duration(v)
            .map_err(|e| {
                let hint = "write a duration such as `30m`, `6h`, `1d` or `1w`";
                diags.push(Diagnostic::new(format!("{path}.interval"), e, hint));
            })
            .ok()
    });
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
    }
}

fn retention(path: &str, raw: &RawRetention, diags: &mut Vec<Diagnostic>) -> Retention {
    let keep_within = raw.keep_within.as_deref().and_then(|v| {
        parse_duration(v)
            .map_err(|e| {
                let hint = "write a duration such as `7d` or `36h`";
                diags.push(Diagnostic::new(format!("{path}.keep_within"), e, hint));
            })
            .ok()
    });
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
        None => vec![Category::Global, Category::Local, Category::Ephemeral],
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
    Some(BackupEntry {
        name: raw.name,
        catalog: catalog?,
        database,
        table: raw.table,
        repository: repository?,
        strategy: strategy?,
        categories,
    })
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
        })
        .collect();
    if on.is_empty() {
        let hint = "list any of start, success, failure";
        diags.push(Diagnostic::new(format!("{path}.on"), "no event", hint));
    }
    let target = match (raw.webhook, raw.command) {
        (Some(hook), None) => {
            let url = &hook.url;
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
    Some(NotificationSpec { on, target })
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
    match raw {
        RawCatalog::Sql {
            uri,
            warehouse,
            catalog_name,
            properties,
        } => {
            let uri = match resolve_sql_uri(&uri, base) {
                Ok(uri) => uri,
                Err(message) => {
                    diags.push(Diagnostic::new(
                        format!("{path}.uri"),
                        message,
                        "write `sqlite:///abs/path/catalog.db`, `sqlite://relative/path.db` or `postgres://user@host/db`",
                    ));
                    return None;
                }
            };
            let warehouse = match warehouse.as_deref().map(|w| resolve_location(w, base)) {
                Some(Ok(w)) => Some(w),
                Some(Err(message)) => {
                    diags.push(Diagnostic::new(
                        format!("{path}.warehouse"),
                        message,
                        "use a path, `file:///...` or `s3://bucket/prefix`",
                    ));
                    return None;
                }
                None => None,
            };
            Some(CatalogSpec {
                name: name.to_owned(),
                kind: CatalogKind::Sql {
                    uri,
                    warehouse,
                    catalog_name: catalog_name.unwrap_or_else(|| name.to_owned()),
                    properties,
                },
            })
        }
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
            Some(RepositorySpec {
                name: name.to_owned(),
                location,
                description: raw.description,
                s3: raw.s3.map(|s| S3Settings {
                    endpoint: s.endpoint,
                    region: s.region,
                    path_style: s.path_style.unwrap_or(false),
                    access_key_id: s.access_key_id,
                    secret_access_key: s.secret_access_key,
                    session_token: s.session_token,
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
}
