//! Strategies, retention, entries and their hooks.

use std::sync::Arc;

use super::{Refs, category, check_name, lookup};
use crate::plan::raw::{RawBackup, RawMode, RawRetention, RawSnapshots, RawStrategy};
use crate::plan::{BackupEntry, BackupMode, Diagnostic, Retention, SnapshotSelection, Strategy};
use crate::repo::records::Category;

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

/// [`duration_at`] for a limit, where zero makes no sense: reported saying `zero` would do.
pub(super) fn limit_at(
    path: &str,
    value: Option<&str>,
    hint: &str,
    zero: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<chrono::Duration> {
    duration_at(path, value, hint, diags).filter(|d| {
        let positive = *d > chrono::Duration::zero();
        if !positive {
            diags.push(Diagnostic::new(
                path,
                format!("a limit of zero {zero}"),
                format!("{hint}, or leave it out"),
            ));
        }
        positive
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

pub(super) fn strategy(
    path: &str,
    name: String,
    raw: RawStrategy,
    diags: &mut Vec<Diagnostic>,
) -> Strategy {
    let interval = duration_at(
        &format!("{path}.interval"),
        raw.interval.as_deref(),
        "write a duration such as `30m`, `6h`, `1d` or `1w`",
        diags,
    );
    Strategy {
        name,
        mode: if raw.mode == Some(RawMode::Full) {
            BackupMode::Full
        } else {
            BackupMode::Incremental
        },
        snapshots: if raw.snapshots == Some(RawSnapshots::Current) {
            SnapshotSelection::Current
        } else {
            SnapshotSelection::All
        },
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
        timeout: limit_at(
            &format!("{path}.timeout"),
            raw.timeout.as_deref(),
            "write a duration such as `30m` or `6h`",
            "would stop every entry before it starts (without `timeout`, none stops it)",
            diags,
        ),
    }
}

fn verify_policy(
    path: &str,
    raw: &crate::plan::raw::RawVerify,
    diags: &mut Vec<Diagnostic>,
) -> crate::plan::VerifyPolicy {
    let interval = duration_at(
        &format!("{path}.interval"),
        raw.interval.as_deref(),
        "write a duration such as `1d` or `1w`",
        diags,
    );
    let read_data = raw.read_data.as_deref().and_then(|v| {
        crate::plan::Subset::parse(v)
            .map_err(|e| {
                let hint = "write `all`, `10%`, or `1/7` (a seventh each time, rotating)";
                diags.push(Diagnostic::new(format!("{path}.read_data"), e, hint));
            })
            .ok()
    });
    crate::plan::VerifyPolicy {
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

pub(super) fn backup(
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

fn hooks(
    path: &str,
    raw: crate::plan::raw::RawHooks,
    diags: &mut Vec<Diagnostic>,
) -> crate::plan::Hooks {
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
    crate::plan::Hooks {
        before: raw.before,
        after: raw.after,
        timeout,
    }
}

/// Two entries writing one repository would fight over its scope and lock.
pub(super) fn check_shared_repositories(backups: &[BackupEntry], diags: &mut Vec<Diagnostic>) {
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
