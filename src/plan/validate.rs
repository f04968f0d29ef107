//! `RawPlan` → [`Plan`]: pure validation. No network, no filesystem, no credentials: every
//! problem is collected with its YAML path, so one run of `bcn validate` shows them all.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::raw::{RawCatalog, RawCategories, RawCategory, RawPlan, RawRepository};
use super::{CatalogKind, CatalogSpec, Categorizer, Diagnostic, Plan, RepositorySpec};
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
    if diags.is_empty() {
        Ok(Plan {
            base: base.to_path_buf(),
            catalogs,
            repositories,
            categorizer,
        })
    } else {
        Err(diags)
    }
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
        Ok(location) => Some(RepositorySpec {
            name: name.to_owned(),
            location,
            description: raw.description,
        }),
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
    let default = match raw.default.unwrap_or(RawCategory::Global) {
        RawCategory::Global => Category::Global,
        RawCategory::Local => Category::Local,
        RawCategory::Ephemeral => Category::Ephemeral,
        RawCategory::Ignore => Category::Ignore,
    };
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
