//! Deciding what a restore does, writing nothing: the PIT's selection, each table's target
//! name, location and action, the databases to create.

use std::collections::BTreeMap;

use globset::{Glob, GlobSetBuilder};
use iceberg::NamespaceIdent;

use super::{RestoreItem, RestorePlan, RestoreRequest, Target, ident};
use crate::catalog::{self, OpenCatalog, OpenMode};
use crate::engine::EngineError;
use crate::repo::Repository;
use crate::repo::records::{
    Category, Namespace, ObjectKind, PitRecord, Status, TableName, TableRecord, ns_display,
};

/// Decides what a restore does, writing nothing.
pub async fn prepare(request: &RestoreRequest) -> Result<RestorePlan, EngineError> {
    let repo = Repository::open(request.store.clone()).await?;
    let pit = repo.resolve_pit(&request.pit).await?;
    let selected = select(&pit, request)?;
    validate_targets(request, &selected)?;
    // A target SQLite file that does not exist yet is an empty catalog; it is created by
    // `execute`, never by a dry run.
    let target = match catalog::open(&request.target, OpenMode::Existing).await {
        Ok(c) => Some(c),
        Err(catalog::CatalogError::Missing { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let root = target_root(request)?;
    let mut items = Vec::new();
    let mut conflicts = Vec::new();
    // The target's views, read once per database (not once per restored object).
    let mut views: std::collections::HashMap<Namespace, std::collections::HashSet<String>> =
        std::collections::HashMap::new();
    for record in selected {
        let target_name = TableName {
            database: request
                .target_database
                .clone()
                .unwrap_or_else(|| record.name.database.clone()),
            name: request
                .target_table
                .clone()
                .unwrap_or_else(|| record.name.name.clone()),
        };
        if !request.original_location {
            check_placeable(&record.name, &target_name, &pit.id)?;
        }
        let (table_exists, view_exists) = match &target {
            Some(c) => {
                let id = ident(&target_name)?;
                (
                    c.catalog
                        .table_exists(&id)
                        .await
                        .map_err(c.err("checking a target table"))?,
                    target_views(c, &target_name.database, &mut views)
                        .await?
                        .contains(&target_name.name),
                )
            }
            None => (false, false),
        };
        let (exists, other) = match record.kind {
            ObjectKind::Table => (table_exists, view_exists),
            ObjectKind::View => (view_exists, table_exists),
        };
        if other {
            return Err(EngineError::invalid_hint(
                format!(
                    "{} {target_name} of PIT {} cannot be restored: a {} of that name exists in catalog `{}`",
                    record.kind.noun(),
                    pit.id,
                    if table_exists { "table" } else { "view" },
                    request.target.name,
                ),
                format!(
                    "restore it under another name with --table '{}' --target-table NAME",
                    record.name
                ),
            ));
        }
        if exists && !request.replace {
            conflicts.push(target_name.to_string());
        }
        let mut warnings = Vec::new();
        if record.kind == ObjectKind::View && target_name.database != record.name.database {
            warnings.push(format!(
                "view {} is restored into database `{}`, but its SQL still names the tables of `{}`",
                record.name,
                ns_display(&target_name.database),
                ns_display(&record.name.database)
            ));
        }
        for warning in &warnings {
            tracing::warn!("{warning}");
        }
        let state = record.state.as_ref();
        let (location, external_roots) = match (request.original_location, state) {
            (true, Some(state)) => (state.location.clone(), Vec::new()),
            (true, None) => {
                return Err(EngineError::invalid(format!(
                    "table {} has no recorded location in PIT {}: it cannot be restored in place",
                    record.name, pit.id
                )));
            }
            (false, _) => {
                let location = match &root {
                    Some(root) => format!(
                        "{root}/{}/{}",
                        target_name.database.join("/"),
                        target_name.name
                    ),
                    None => default_location(request, target.as_ref(), &target_name).await?,
                };
                let roots = external_roots(&repo, record, &location).await?;
                (location, roots)
            }
        };
        items.push(RestoreItem {
            kind: record.kind,
            warnings,
            keeps_uuid: request.original_location
                || (request.target.name == repo.scope().catalog && target_name == record.name),
            in_place: request.original_location,
            overwrite: request.original_location && request.replace,
            source: record.name.clone(),
            status: record.status,
            category: record.category,
            key: record.key.clone(),
            target: target_name,
            location,
            files: state.map_or(0, |s| s.files),
            bytes: state.map_or(0, |s| s.bytes),
            action: if exists { "replace" } else { "create" },
            stored_in: record.stored_in.clone().unwrap_or_default(),
            uuid: record.uuid.clone(),
            external_roots,
        });
    }
    if !conflicts.is_empty() {
        return Err(EngineError::Conflict(format!(
            "{} already exist{} in catalog `{}`: {}; nothing was restored (pass --replace to overwrite, or restore under another name with --target-table / --target-database)",
            if conflicts.len() == 1 {
                "a table"
            } else {
                "tables"
            },
            if conflicts.len() == 1 { "s" } else { "" },
            request.target.name,
            conflicts.join(", ")
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(dup) = items.iter().find(|i| !seen.insert(i.target.clone())) {
        return Err(EngineError::invalid_hint(
            format!("two selected tables would be restored as `{}`", dup.target),
            "narrow the selection with --table",
        ));
    }
    let create_databases = databases_to_create(&pit, &items, target.as_ref()).await?;
    Ok(RestorePlan {
        repository: repo.url().to_owned(),
        pit: pit.id.clone(),
        pit_time: pit.started_at,
        target_catalog: request.target.name.clone(),
        create_databases,
        tables: items,
        source_catalog: repo.scope().catalog.clone(),
        repo,
        target: match target {
            Some(catalog) => Target::Open(catalog),
            None => Target::Missing(request.target.clone()),
        },
        concurrency: request.concurrency,
    })
}

/// The names of the views of `database` in the target catalog (none when it does not exist),
/// listed once per restore.
async fn target_views<'v>(
    catalog: &OpenCatalog,
    database: &Namespace,
    cache: &'v mut std::collections::HashMap<Namespace, std::collections::HashSet<String>>,
) -> Result<&'v std::collections::HashSet<String>, EngineError> {
    if !cache.contains_key(database) {
        let ns = NamespaceIdent::from_vec(database.clone())
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        // Some catalogs fail to list a database that does not exist: it has no view.
        let names = if catalog
            .catalog
            .namespace_exists(&ns)
            .await
            .map_err(catalog.err("checking a target database"))?
        {
            catalog.list_views(&ns).await?.into_iter().collect()
        } else {
            std::collections::HashSet::new()
        };
        cache.insert(database.clone(), names);
    }
    Ok(&cache[database])
}

/// Refuses a target name that cannot become a directory of the restored table's location
/// safely (a source table named `..`, `../x`, with a control character, ...): names come from
/// the repository, which a catalog that accepts any name, damage or tampering may have filled.
fn check_placeable(source: &TableName, target: &TableName, pit: &str) -> Result<(), EngineError> {
    let problem = target
        .database
        .iter()
        .map(|part| (part, "--target-database NAME"))
        .chain(std::iter::once((&target.name, "--target-table NAME")))
        .find_map(|(part, option)| crate::names::check(part).err().map(|e| (e, option)));
    match problem {
        None => Ok(()),
        Some((e, option)) => Err(EngineError::invalid_hint(
            format!(
                "table {source:?} of PIT {pit} cannot be restored under this name: {e}",
                source = source.to_string()
            ),
            format!(
                "restore it alone under a safe name with --table '<pattern matching it>' {option}"
            ),
        )),
    }
}

/// Where the files of `record` that lie outside its location go under `location`; none for a
/// structure-only table.
pub(super) async fn external_roots(
    repo: &Repository,
    record: &TableRecord,
    location: &str,
) -> Result<Vec<crate::engine::rewrite::RootMapping>, EngineError> {
    let Some(stored_in) = record.stored_in.as_deref() else {
        return Ok(Vec::new());
    };
    if record.category == Category::Ephemeral || record.kind == ObjectKind::View {
        return Ok(Vec::new());
    }
    let list = repo.load_filelist_header(&record.key, stored_in).await?;
    // Only the files outside the location are kept, a part of the list at a time.
    let plain = crate::engine::rewrite::PathRewriter::new(&list.location, location);
    let mut outside = Vec::new();
    let mut parts = std::pin::pin!(repo.filelist_parts(&record.key, stored_in, &list));
    while let Some(part) = futures::TryStreamExt::try_next(&mut parts).await? {
        outside.extend(
            part.iter()
                .filter(|f| !plain.is_under(&f.path))
                .map(|f| f.path.clone()),
        );
    }
    let raw = repo.load_table_metadata(&record.key, stored_in).await?;
    let json = crate::engine::transfer::maybe_gunzip(&raw)
        .map_err(|e| EngineError::Damaged(format!("stored metadata of {}: {e}", record.name)))?;
    let rw = crate::engine::rewrite::PathRewriter::with_external(
        &list.location,
        location,
        &crate::engine::rewrite::path_properties(&json),
        outside.iter().map(String::as_str),
    );
    Ok(rw.external_roots())
}

/// The PIT's tables that the filters select.
fn select<'a>(
    pit: &'a PitRecord,
    request: &RestoreRequest,
) -> Result<Vec<&'a TableRecord>, EngineError> {
    let mut globs = GlobSetBuilder::new();
    for pattern in &request.tables {
        globs.add(Glob::new(pattern).map_err(|e| {
            EngineError::invalid(format!("invalid --table pattern `{pattern}`: {}", e.kind()))
        })?);
    }
    let globs = globs
        .build()
        .map_err(|e| EngineError::invalid(e.to_string()))?;
    let restorable = |t: &&TableRecord| {
        t.stored_in.is_some()
            && match t.status {
                Status::Deleted => request.include_deleted,
                Status::Excluded | Status::Failed => false,
                _ => true,
            }
    };
    let candidates: Vec<&TableRecord> = pit.tables.iter().filter(restorable).collect();
    for db in &request.databases {
        if !candidates.iter().any(|t| &t.name.database == db) {
            return Err(EngineError::NotFound(format!(
                "PIT {} has no{} database `{}`{}",
                pit.id,
                if request.include_deleted { "" } else { " live" },
                ns_display(db),
                deleted_hint(pit, request, |t| &t.name.database == db)
            )));
        }
    }
    for (i, pattern) in request.tables.iter().enumerate() {
        let one = Glob::new(pattern).map(|g| g.compile_matcher());
        let matches = |t: &TableRecord| one.as_ref().is_ok_and(|m| m.is_match(t.name.to_string()));
        if !candidates.iter().any(|t| matches(t)) {
            let known: Vec<String> = candidates.iter().map(|t| t.name.to_string()).collect();
            return Err(EngineError::NotFound(format!(
                "no table in PIT {} matches --table `{}`{}; tables: {}",
                pit.id,
                request.tables[i],
                deleted_hint(pit, request, matches),
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    let selected: Vec<&TableRecord> = candidates
        .into_iter()
        .filter(|t| request.databases.is_empty() || request.databases.contains(&t.name.database))
        .filter(|t| request.tables.is_empty() || globs.is_match(t.name.to_string()))
        .collect();
    if selected.is_empty() {
        return Err(EngineError::NotFound(format!(
            "PIT {} holds no table to restore with these filters",
            pit.id
        )));
    }
    Ok(selected)
}

fn deleted_hint(
    pit: &PitRecord,
    request: &RestoreRequest,
    matches: impl Fn(&TableRecord) -> bool,
) -> &'static str {
    let deleted = pit
        .tables
        .iter()
        .any(|t| t.status == Status::Deleted && matches(t));
    if deleted && !request.include_deleted {
        " (it was deleted before this PIT: add --include-deleted)"
    } else {
        ""
    }
}

fn validate_targets(
    request: &RestoreRequest,
    selected: &[&TableRecord],
) -> Result<(), EngineError> {
    if request.target_table.is_some() && selected.len() != 1 {
        return Err(EngineError::invalid_hint(
            format!(
                "--target-table needs exactly one table to restore, but {} are selected",
                selected.len()
            ),
            "narrow the selection with --table",
        ));
    }
    if request.target_database.is_some() {
        let mut dbs: Vec<String> = selected
            .iter()
            .map(|t| ns_display(&t.name.database))
            .collect();
        dbs.sort();
        dbs.dedup();
        if dbs.len() > 1 {
            return Err(EngineError::invalid_hint(
                format!(
                    "--target-database maps one source database, but the selection spans {}",
                    dbs.join(", ")
                ),
                "add --database",
            ));
        }
    }
    for name in request
        .target_table
        .iter()
        .chain(request.target_database.iter().flatten())
    {
        crate::names::check(name).map_err(EngineError::invalid)?;
    }
    Ok(())
}

/// The root under which restored tables get `<database>/<table>` when `--target-location`
/// is given; `None` when each table gets its catalog's default location (see
/// [`default_location`]) or keeps its own (`--original-location`). Also refuses, before
/// anything is written, a nested `--target-database` in a catalog whose databases are
/// single-level (Glue, Hive).
fn target_root(request: &RestoreRequest) -> Result<Option<String>, EngineError> {
    let kind = &request.target.kind;
    if kind.single_level_namespaces()
        && let Some(db) = &request.target_database
        && db.len() != 1
    {
        return Err(EngineError::invalid_hint(
            format!(
                "--target-database `{}`: catalog `{}` ({}) has single-level databases only",
                ns_display(db),
                request.target.name,
                kind.type_name()
            ),
            "name one database",
        ));
    }
    if request.original_location {
        return Ok(None);
    }
    Ok(request
        .target_location
        .as_ref()
        .map(|root| root.as_str().to_owned()))
}

/// Where the target catalog would put a new table `name`, as its own clients do: under the
/// database's `location` property when it has one; else, for REST, where the server stages a
/// new table; else `<warehouse>/<database>.db/<table>` (the layout of Java's and pyiceberg's
/// SQL, Glue and Hive catalogs; nested databases joined with dots).
async fn default_location(
    request: &RestoreRequest,
    target: Option<&OpenCatalog>,
    name: &TableName,
) -> Result<String, EngineError> {
    let kind = &request.target.kind;
    if let Some(catalog) = target {
        let ns = NamespaceIdent::from_vec(name.database.clone())
            .map_err(|e| EngineError::invalid(e.to_string()))?;
        if catalog
            .catalog
            .namespace_exists(&ns)
            .await
            .map_err(catalog.err("checking a target database"))?
        {
            let found = catalog
                .catalog
                .get_namespace(&ns)
                .await
                .map_err(catalog.err("reading a target database"))?;
            if let Some(location) = found.properties().get("location").filter(|l| !l.is_empty()) {
                return Ok(format!("{}/{}", location.trim_end_matches('/'), name.name));
            }
            if let Some(location) = catalog
                .default_table_location(&name.database, &name.name)
                .await?
            {
                return Ok(location);
            }
        }
    }
    let warehouse = match kind.warehouse_location() {
        Some(w) => w.trim_end_matches('/').to_owned(),
        None => match target {
            Some(catalog) => catalog
                .warehouse_location()
                .await?
                .ok_or_else(|| no_target_location(request))?,
            None => return Err(no_target_location(request)),
        },
    };
    Ok(if matches!(kind, crate::plan::CatalogKind::Rest(_)) {
        // REST servers lay tables out as `<warehouse>/<namespace path>/<table>` by default.
        format!("{warehouse}/{}/{}", name.database.join("/"), name.name)
    } else {
        format!("{warehouse}/{}.db/{}", name.database.join("."), name.name)
    })
}

fn no_target_location(request: &RestoreRequest) -> EngineError {
    EngineError::invalid(format!(
        "no target location: pass --target-location, or set `warehouse` on catalog `{}` in the plan{}",
        request.target.name,
        if matches!(request.target.kind, crate::plan::CatalogKind::Rest(_)) {
            " (a location, not a warehouse name)"
        } else {
            ""
        }
    ))
}

async fn databases_to_create(
    pit: &PitRecord,
    items: &[RestoreItem],
    target: Option<&OpenCatalog>,
) -> Result<Vec<(String, BTreeMap<String, String>)>, EngineError> {
    let mut out: Vec<(String, BTreeMap<String, String>)> = Vec::new();
    for item in items {
        let name = ns_display(&item.target.database);
        if out.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let exists = match target {
            Some(c) => {
                let ns = NamespaceIdent::from_vec(item.target.database.clone())
                    .map_err(|e| EngineError::invalid(e.to_string()))?;
                c.catalog
                    .namespace_exists(&ns)
                    .await
                    .map_err(c.err("checking a target database"))?
            }
            None => false,
        };
        if !exists {
            // Properties come from the source database; its `location` belonged to the source.
            let properties = pit
                .databases
                .iter()
                .find(|d| d.name == item.source.database)
                .map(|d| {
                    d.properties
                        .iter()
                        .filter(|(k, _)| k.as_str() != "location")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            out.push((name, properties));
        }
    }
    Ok(out)
}
