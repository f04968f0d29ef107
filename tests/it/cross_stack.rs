//! Restores across catalog types and storages, against real services: `SQLite` + local files
//! into Glue + S3, into Hive + S3 and into Hive + local files; Glue + S3 and Hive + local files
//! (whose locations the metastore writes as `file:/x`) into `SQLite` + local files. Nested
//! databases are refused by Glue and Hive before anything is written, and a catalog that is
//! down stops a backup with exit code 1, naming it, with nothing committed.
//!
//! Needs `scripts/services/start.sh` (see `support::Services`); `BCN_TEST_SERVICES=off`
//! skips the service-backed cases.

use std::path::Path;

use crate::support::{
    Catalog, CatalogType, Services, Workspace, assert_same_table, files_under, normalize_location,
    unique, workspace_with,
};

/// Samples in `from`, one backup (database granularity, local repository), a restore of the
/// whole PIT into `to` under a new database at `to.scratch`; pyiceberg compares every table.
fn across(from: CatalogType, to: CatalogType) {
    let test = format!("cross_stack::{from:?}_to_{to:?}");
    let mut vars = from.required_vars();
    vars.extend(to.required_vars());
    let Some(svc) = Services::require(&test, &vars) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Catalog::new(from, "src", tmp.path(), &svc);
    let dst = Catalog::new(to, "dst", tmp.path(), &svc);
    let (src_db, dst_db) = (unique("from_"), unique("to_"));
    // `mor` (position deletes) is checked with DuckDB when it is made, which reads local
    // files only: it is made on local sources.
    let tables: &[&str] = if matches!(from, CatalogType::Sql | CatalogType::HmsLocal) {
        &["events", "users", "mor"]
    } else {
        &["events", "users"]
    };
    src.prepare_namespace(&src_db);
    src.py(
        "make-sample",
        &["--namespace", &src_db, "--tables", &tables.join(",")],
    );
    let ws = workspace_with(&[&src, &dst], "");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let before: Vec<_> = tables
        .iter()
        .map(|t| src.dump(&format!("{src_db}.{t}")))
        .collect();

    if from == CatalogType::HmsLocal {
        let location = before[0]["location"].as_str().unwrap();
        assert!(
            location.starts_with("file:/") && !location.starts_with("file://"),
            "the metastore gave the source the `file:/x` form: {location}"
        );
    }
    let pit = ws
        .bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            &src_db,
            "--repo",
            repo,
        ])
        .ok();
    let restore = ws
        .bcn(&[
            "restore",
            "--repo",
            repo,
            "--pit",
            pit["pit"]["id"].as_str().unwrap(),
            "--target-catalog",
            "dst",
            "--target-database",
            &dst_db,
            "--target-location",
            &dst.scratch,
        ])
        .ok();
    let report = restore["report"]["tables"].as_array().unwrap();
    assert_eq!(report.len(), tables.len(), "{restore}");
    for t in report {
        assert_eq!(t["outcome"], "restored", "{test}: {t}");
    }
    for (table, source) in tables.iter().zip(&before) {
        let restored = dst.dump(&format!("{dst_db}.{table}"));
        assert_same_table(&restored, source, &format!("{test} {table}"));
        assert_eq!(
            normalize_location(restored["location"].as_str().unwrap()),
            format!("{}/{dst_db}/{table}", dst.scratch),
            "{test}"
        );
        assert_eq!(
            restored["properties"]["bcn.restore.source-table"],
            format!("src.{src_db}.{table}")
        );
    }
    if from == CatalogType::Sql {
        // Nothing may still point at the source: move its warehouse away, then read again.
        let warehouse = tmp.path().join("src/warehouse");
        fs_err::rename(&warehouse, tmp.path().join("moved-away")).unwrap();
        let restored = dst.dump(&format!("{dst_db}.events"));
        assert_same_table(
            &restored,
            &before[0],
            &format!("{test} events, source gone"),
        );
    }
}

#[test]
fn sqlite_local_to_glue_s3() {
    across(CatalogType::Sql, CatalogType::Glue);
}

#[test]
fn sqlite_local_to_hive_s3() {
    across(CatalogType::Sql, CatalogType::Hms);
}

#[test]
fn glue_s3_to_sqlite_local() {
    across(CatalogType::Glue, CatalogType::Sql);
}

/// The metastore turns `file:///x` into `file:/x`: pyiceberg then writes tables whose
/// locations have that form, and bcn must back them up and relocate them all the same.
#[test]
fn hive_local_to_sqlite_local() {
    across(CatalogType::HmsLocal, CatalogType::Sql);
}

#[test]
fn sqlite_local_to_hive_local() {
    across(CatalogType::Sql, CatalogType::HmsLocal);
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn pit_count(repo: &Path) -> usize {
    files_under(&repo.join("pits")).len()
}

/// A backup from a catalog that is down fails with exit code 1, names the catalog, and
/// commits nothing: neither into a new repository nor into one that already has PITs.
#[test]
fn a_catalog_that_is_down_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let none = Services::require("cross_stack::down", &[]).unwrap();
    let lake = Catalog::new(CatalogType::Sql, "lake", tmp.path(), &none);
    lake.py("make-sample", &["--namespace", "db1", "--tables", "users"]);
    let repo = tmp.path().join("repo");
    let first = workspace_with(&[&lake], "")
        .bcn(&[
            "backup",
            "--catalog",
            "lake",
            "--repo",
            repo.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(pit_count(&repo), 1, "{first}");

    let hms_down = format!(
        "  lake:\n    type: hms\n    uri: thrift://127.0.0.1:{}\n    warehouse: s3://nowhere/wh\n",
        closed_port()
    );
    let rest_down = format!(
        "  lake:\n    type: rest\n    uri: http://127.0.0.1:{}\n",
        closed_port()
    );
    for down in [hms_down, rest_down] {
        let ws = Workspace::new(&[], &down);
        // Into the repository that already holds PITs of `lake`, and into a new one.
        for target in [repo.clone(), tmp.path().join(unique("new-repo-"))] {
            let run = ws.bcn(&[
                "backup",
                "--catalog",
                "lake",
                "--repo",
                target.to_str().unwrap(),
            ]);
            assert_eq!(
                run.code, 1,
                "{down}\nstdout: {}\nstderr: {}",
                run.stdout, run.stderr
            );
            assert!(
                run.stderr.contains("cannot open catalog `lake`"),
                "the message names the catalog:\n{}",
                run.stderr
            );
            assert!(
                run.stderr.contains("127.0.0.1:"),
                "the message names where the catalog was expected:\n{}",
                run.stderr
            );
        }
        assert_eq!(pit_count(&repo), 1, "no PIT was committed");
        assert!(
            !repo.join("locks/exclusive.json").exists(),
            "the lock is released"
        );
    }
    for entry in fs_err::read_dir(tmp.path()).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("new-repo-") {
            assert_eq!(pit_count(&entry.path()), 0, "{name} got a PIT");
        }
    }
}

/// Glue and Hive databases are single-level: a nested database is refused before anything is
/// written, whether it comes from the source or from `--target-database`.
#[test]
fn nested_databases_do_not_go_to_single_level_catalogs() {
    for to in [CatalogType::Glue, CatalogType::Hms] {
        let test = format!("cross_stack::nested_to_{to:?}");
        let Some(svc) = Services::require(&test, &to.required_vars()) else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let src = Catalog::new(CatalogType::Sql, "src", tmp.path(), &svc);
        let dst = Catalog::new(to, "dst", tmp.path(), &svc);
        let nested = format!("{}.inner", unique("outer_"));
        src.py(
            "make-sample",
            &["--namespace", &nested, "--tables", "users"],
        );
        let ws = workspace_with(&[&src, &dst], "");
        let repo = tmp.path().join("repo");
        let repo = repo.to_str().unwrap();
        // Database granularity: a catalog-wide backup cannot reach `outer.inner` here, as
        // pyiceberg creates no `outer` row and iceberg-catalog-sql lists children of existing
        // namespaces only.
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            &nested,
            "--repo",
            repo,
        ])
        .ok();
        let target = tmp.path().join("target");
        let location = format!("file://{}", target.display());
        let restore = |extra: &[&str]| {
            let mut args = vec![
                "restore",
                "--repo",
                repo,
                "--target-catalog",
                "dst",
                "--target-location",
                &location,
            ];
            args.extend(extra);
            ws.bcn(&args)
        };
        for (extra, code) in [(vec![], 1), (vec!["--target-database", "x.y"], 2)] {
            let run = restore(&extra);
            assert_eq!(run.code, code, "{test} {extra:?}: {}", run.stderr);
            assert!(
                run.stderr.contains("single-level") || run.stderr.contains("hierarchical"),
                "{test} {extra:?}: the message says why:\n{}",
                run.stderr
            );
            assert!(!target.exists(), "{test} {extra:?}: files were written");
        }
        // A single-level target database is fine.
        let ok = restore(&["--target-database", &unique("flat_")]).ok();
        assert_eq!(ok["report"]["tables"][0]["outcome"], "restored", "{ok}");
    }
}

/// Glue and Hive side by side in one plan: one `bcn apply` backs both up, each into its own
/// repository; then each is restored into the other.
#[test]
fn glue_and_hive_side_by_side() {
    let mut vars = CatalogType::Glue.required_vars();
    vars.extend(CatalogType::Hms.required_vars());
    let Some(svc) = Services::require("cross_stack::glue_and_hive_side_by_side", &vars) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let glue = Catalog::new(CatalogType::Glue, "glue", tmp.path(), &svc);
    let hive = Catalog::new(CatalogType::Hms, "hive", tmp.path(), &svc);
    let (glue_db, hive_db) = (unique("g_"), unique("h_"));
    glue.prepare_namespace(&glue_db);
    hive.prepare_namespace(&hive_db);
    glue.py(
        "make-sample",
        &["--namespace", &glue_db, "--tables", "events"],
    );
    hive.py(
        "make-sample",
        &["--namespace", &hive_db, "--tables", "users"],
    );
    let extra = format!(
        "repositories:\n  glue-repo:\n    location: {r}/glue\n  hive-repo:\n    location: {r}/hive\nbackups:\n  - name: glue\n    catalog: glue\n    database: {glue_db}\n    repository: glue-repo\n  - name: hive\n    catalog: hive\n    database: {hive_db}\n    repository: hive-repo\n",
        r = tmp.path().join("repos").display()
    );
    let ws = workspace_with(&[&glue, &hive], &extra);
    let events = glue.dump(&format!("{glue_db}.events"));
    let users = hive.dump(&format!("{hive_db}.users"));
    let applied = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap()]).ok();
    for entry in applied["entries"].as_array().unwrap() {
        assert_eq!(entry["status"], "succeeded", "{entry}");
    }
    let (into_hive, into_glue) = (unique("from_glue_"), unique("from_hive_"));
    ws.bcn(&[
        "restore",
        "--repo",
        "glue-repo",
        "--target-catalog",
        "hive",
        "--target-database",
        &into_hive,
        "--target-location",
        &hive.scratch,
    ])
    .ok();
    ws.bcn(&[
        "restore",
        "--repo",
        "hive-repo",
        "--target-catalog",
        "glue",
        "--target-database",
        &into_glue,
        "--target-location",
        &glue.scratch,
    ])
    .ok();
    assert_same_table(
        &hive.dump(&format!("{into_hive}.events")),
        &events,
        "Glue table restored into Hive",
    );
    assert_same_table(
        &glue.dump(&format!("{into_glue}.users")),
        &users,
        "Hive table restored into Glue",
    );
}
