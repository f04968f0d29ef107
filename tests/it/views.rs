//! Iceberg views: a catalog or database backup takes them with statuses like tables, and a
//! restore writes their metadata under the new location and registers them — as `VIEW` rows in
//! SQL catalogs (as Java's JDBC catalog writes them) and through the REST view endpoints
//! (rustberg). The fixtures write the views (pyiceberg's `RestCatalog` on REST; metadata files
//! and rows as Java writes them on SQL, one of them gzipped) and read the restored ones.

use serde_json::Value;

use crate::support::{Catalog, CatalogType, Lake, Services, Workspace, unique, workspace_with};

/// A view as a reader sees it, without what a restore changes (location, UUID, file).
fn portable(view: &Value) -> Value {
    let mut view = view.clone();
    let obj = view.as_object_mut().unwrap();
    for field in ["location", "view_uuid", "metadata_location"] {
        obj.remove(field);
    }
    view
}

fn assert_same_views(restored: &Value, source: &Value, what: &str) {
    let names = |d: &Value| {
        d["views"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(names(restored), names(source), "{what}: view names");
    for name in names(source) {
        assert_eq!(
            portable(&restored["views"][&name]),
            portable(&source["views"][&name]),
            "{what}: view {name}"
        );
    }
}

fn statuses(pit: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = pit["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                format!(
                    "{}.{}",
                    t["database"].as_array().unwrap()[0].as_str().unwrap(),
                    t["name"].as_str().unwrap()
                ),
                t["kind"].as_str().unwrap_or("table").to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

#[test]
fn sql_view_rows_are_backed_up_with_statuses_and_restored_as_view_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-named", &["--namespace", "db1", "--name", "base"]);
    src.py(
        "make-views",
        &["--namespace", "db1", "--names", "v_one,v_two"],
    );
    let source = src.py("dump-views", &["--namespace", "db1"]);
    assert_eq!(source["views"].as_object().unwrap().len(), 2);
    let ws = Workspace::new(&[&src, &dst], "");
    let first = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    assert_eq!(
        statuses(&first["pit"]),
        [
            ("db1.base".into(), "table".into(), "NEW".into()),
            ("db1.v_one".into(), "view".into(), "NEW".into()),
            ("db1.v_two".into(), "view".into(), "NEW".into()),
        ]
    );
    assert_eq!(
        first["pit"]["summary"]["views"]["NEW"], 2,
        "{}",
        first["pit"]["summary"]
    );
    let second = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    assert!(
        statuses(&second["pit"])
            .iter()
            .all(|(_, _, s)| s == "UNCHANGED"),
        "{:?}",
        statuses(&second["pit"])
    );
    // A restore test restores the views into a scratch catalog and loads them back.
    let verified = ws.bcn(&["verify", "--repo", "repo", "--restore-test"]).ok();
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    let tested: Vec<&str> = verified["restore_test"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["ok"] == true)
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(tested, ["db1.base", "db1.v_one", "db1.v_two"], "{verified}");
    // A dropped view is DELETED, and `diff` says it was a view.
    src.py("drop-view", &["--view", "db1.v_two"]);
    let third = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    assert!(
        statuses(&third["pit"]).contains(&("db1.v_two".into(), "view".into(), "DELETED".into())),
        "{:?}",
        statuses(&third["pit"])
    );
    let diff = ws.bcn_text(&[
        "diff",
        "--repo",
        "repo",
        second["pit"]["id"].as_str().unwrap(),
        "latest",
    ]);
    assert!(diff.contains("- view db1.v_two"), "{diff}");
    // `list` names the views as views.
    let listed = ws.bcn_text(&["list", "--repo", "repo", "--pit", "latest"]);
    assert!(listed.contains("db1.v_one (view)"), "{listed}");

    let pit = second["pit"]["id"].as_str().unwrap();
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--pit",
        pit,
        "--target-catalog",
        "dst",
    ])
    .ok();
    // The source may be gone: the restored views stand on their own files.
    fs_err::remove_dir_all(src.dir.join("warehouse")).unwrap();
    let restored = dst.py("dump-views", &["--namespace", "db1"]);
    assert_same_views(&restored, &source, "SQL views restored into SQL");
    for name in ["v_one", "v_two"] {
        let view = &restored["views"][name];
        assert_eq!(
            view["location"],
            format!("{}/db1.db/{name}", dst.warehouse()).as_str()
        );
        assert!(
            view["metadata_location"]
                .as_str()
                .unwrap()
                .starts_with(view["location"].as_str().unwrap()),
            "{view}"
        );
    }
    assert!(
        dst.exists("db1.base"),
        "the table is restored with its views"
    );

    // Restoring again stops at the existing views unless --replace.
    let again = ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--table",
        "db1.v_*",
    ]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("db1.v_one"), "{}", again.stderr);
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--table",
        "db1.v_*",
        "--replace",
    ])
    .ok();
    let replaced = dst.py("dump-views", &["--namespace", "db1"]);
    assert_same_views(&replaced, &source, "views replaced");
}

#[test]
fn views_on_a_rest_catalog_restore_into_rest_and_sql() {
    let Some(svc) = Services::require("views::rest", &CatalogType::Rest.required_vars()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let rest = Catalog::new(CatalogType::Rest, "rest", tmp.path(), &svc);
    let sql = Catalog::new(CatalogType::Sql, "sql", tmp.path(), &svc);
    let ns = unique("views_");
    rest.py("make-named", &["--namespace", &ns, "--name", "base"]);
    rest.py("make-views", &["--namespace", &ns, "--names", "v_a,v_b"]);
    let source = rest.py("dump-views", &["--namespace", &ns]);
    let ws = workspace_with(&[&rest, &sql], "");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pit = ws
        .bcn(&[
            "backup",
            "--catalog",
            "rest",
            "--database",
            &ns,
            "--repo",
            repo,
        ])
        .ok();
    assert_eq!(
        pit["pit"]["summary"]["views"]["NEW"], 2,
        "{}",
        pit["pit"]["summary"]
    );

    // Into the same REST catalog under another database: registered through register-view,
    // with a warning that the SQL still names the old database.
    let other = unique("views_copy_");
    let run = ws.bcn(&[
        "restore",
        "--repo",
        repo,
        "--target-catalog",
        "rest",
        "--target-database",
        &other,
    ]);
    let report = run.ok();
    assert!(
        run.stderr.contains("its SQL still names the tables of"),
        "{}",
        run.stderr
    );
    assert_eq!(
        report["report"]["tables"].as_array().unwrap().len(),
        3,
        "{report}"
    );
    let copied = rest.py("dump-views", &["--namespace", &other]);
    assert_same_views(&copied, &source, "REST views restored into REST");
    assert_ne!(
        copied["views"]["v_a"]["view_uuid"],
        source["views"]["v_a"]["view_uuid"]
    );

    // Into a SQL catalog, as VIEW rows.
    ws.bcn(&["restore", "--repo", repo, "--target-catalog", "sql"])
        .ok();
    let in_sql = sql.py("dump-views", &["--namespace", &ns]);
    assert_same_views(&in_sql, &source, "REST views restored into SQL");

    // And SQL views (Java's layout) into REST.
    let sql_ns = unique("sqlviews_");
    sql.py(
        "make-views",
        &["--namespace", &sql_ns, "--names", "w_one,w_two"],
    );
    let sql_source = sql.py("dump-views", &["--namespace", &sql_ns]);
    let repo2 = tmp.path().join("repo2");
    let repo2 = repo2.to_str().unwrap();
    ws.bcn(&[
        "backup",
        "--catalog",
        "sql",
        "--database",
        &sql_ns,
        "--repo",
        repo2,
    ])
    .ok();
    ws.bcn(&["restore", "--repo", repo2, "--target-catalog", "rest"])
        .ok();
    let in_rest = rest.py("dump-views", &["--namespace", &sql_ns]);
    assert_same_views(&in_rest, &sql_source, "SQL views restored into REST");
}

#[test]
fn hive_views_restore_into_hive_and_sql() {
    let Some(svc) = Services::require("views::hms", &CatalogType::Hms.required_vars()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let hive = Catalog::new(CatalogType::Hms, "hive", tmp.path(), &svc);
    let sql = Catalog::new(CatalogType::Sql, "sql", tmp.path(), &svc);
    let db = unique("hviews_");
    hive.py("make-named", &["--namespace", &db, "--name", "base"]);
    hive.py(
        "make-views",
        &["--namespace", &db, "--names", "v_one,v_two"],
    );
    let source = hive.py("dump-views", &["--namespace", &db]);
    assert_eq!(source["views"].as_object().unwrap().len(), 2, "{source}");
    let ws = workspace_with(&[&hive, &sql], "");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let pit = ws
        .bcn(&[
            "backup",
            "--catalog",
            "hive",
            "--database",
            &db,
            "--repo",
            repo,
        ])
        .ok();
    assert_eq!(
        statuses(&pit["pit"]),
        [
            (format!("{db}.base"), "table".into(), "NEW".into()),
            (format!("{db}.v_one"), "view".into(), "NEW".into()),
            (format!("{db}.v_two"), "view".into(), "NEW".into()),
        ]
    );
    // Into the same metastore under another database, as VIRTUAL_VIEW tables Java reads.
    let copy = unique("hviews_copy_");
    ws.bcn(&[
        "restore",
        "--repo",
        repo,
        "--target-catalog",
        "hive",
        "--target-database",
        &copy,
    ])
    .ok();
    let copied = hive.py("dump-views", &["--namespace", &copy]);
    assert_same_views(&copied, &source, "Hive views restored into Hive");
    assert!(hive.py("exists", &["--table", &format!("{copy}.base")])["exists"] == true);
    // Into SQL as VIEW rows.
    ws.bcn(&["restore", "--repo", repo, "--target-catalog", "sql"])
        .ok();
    let in_sql = sql.py("dump-views", &["--namespace", &db]);
    assert_same_views(&in_sql, &source, "Hive views restored into SQL");
}
