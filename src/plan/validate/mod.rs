//! `RawPlan` → [`Plan`]: pure validation. No network, no filesystem, no credentials: every
//! problem is collected with its YAML path, so one run of `bcn validate` shows them all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::raw::{RawCategories, RawCategory, RawPlan};
use super::{BackupEntry, CatalogSpec, Categorizer, Diagnostic, Plan, RepositorySpec, Strategy};
use crate::repo::records::Category;

mod catalog;
pub(super) mod entry;
mod notify;
pub(super) mod repository;
#[cfg(test)]
mod tests;

use catalog::catalog;
use entry::{backup, check_shared_repositories, strategy};
use notify::{api, notification, report};
use repository::repository;

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

pub(super) struct Refs<'a> {
    catalogs: &'a BTreeMap<String, Arc<CatalogSpec>>,
    repositories: &'a BTreeMap<String, Arc<RepositorySpec>>,
    strategies: &'a BTreeMap<String, Arc<Strategy>>,
}

/// Looks `name` up in `map`, or reports an unknown reference at `path`.
pub(super) fn lookup<T: Clone>(
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

pub(super) fn category(raw: RawCategory) -> Category {
    match raw {
        RawCategory::Global => Category::Global,
        RawCategory::Local => Category::Local,
        RawCategory::Ephemeral => Category::Ephemeral,
        RawCategory::Ignore => Category::Ignore,
    }
}

/// Names used as keys must be usable on a command line and in file names.
pub(super) fn check_name(path: &str, name: &str, diags: &mut Vec<Diagnostic>) {
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

pub(super) fn categories(raw: &RawCategories, diags: &mut Vec<Diagnostic>) -> Categorizer {
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
