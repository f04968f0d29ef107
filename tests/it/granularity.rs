//! Catalog and database granularity: statuses between PITs (new, changed, unchanged,
//! renamed, deleted, databases appearing and going), and restores of any subset of any PIT.

use serde_json::Value;

use crate::support::{Lake, Workspace, assert_same_table, files_under, pit_statuses};

fn db_statuses(pit: &Value) -> Vec<(String, String)> {
    pit["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["name"][0].as_str().unwrap().to_owned(),
                d["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    v.sort();
    v
}

#[test]
fn catalog_backups_track_every_object_and_restore_any_subset() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,users"],
    );
    src.py("make-sample", &["--namespace", "db2", "--tables", "users"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let backup = || {
        ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
            .ok()["pit"]
            .clone()
    };

    let users_at_1 = src.dump("db1.users");
    let db2_users_at_1 = src.dump("db2.users");
    let pit1 = backup();
    assert_eq!(
        pit_statuses(&pit1),
        pairs(&[
            ("db1.events", "NEW"),
            ("db1.users", "NEW"),
            ("db2.users", "NEW")
        ])
    );
    assert_eq!(db_statuses(&pit1), pairs(&[("db1", "NEW"), ("db2", "NEW")]));

    // Nothing changed, and a no-change backup reads nothing but the catalog: remove every
    // metadata file, manifest list and manifest from the source and it still succeeds (a SQL
    // catalog lists every table's metadata location in one query).
    let avro: Vec<String> = files_under(&src.dir)
        .into_iter()
        .filter(|f| f.ends_with(".avro") || f.ends_with(".metadata.json"))
        .collect();
    let hidden = tmp.path().join("hidden");
    for f in &avro {
        let to = hidden.join(f);
        fs_err::create_dir_all(to.parent().unwrap()).unwrap();
        fs_err::rename(src.dir.join(f), to).unwrap();
    }
    let unchanged = backup();
    assert_eq!(
        pit_statuses(&unchanged),
        pairs(&[
            ("db1.events", "UNCHANGED"),
            ("db1.users", "UNCHANGED"),
            ("db2.users", "UNCHANGED")
        ])
    );
    assert_eq!(unchanged["summary"]["files_added"], 0);
    for f in &avro {
        fs_err::rename(hidden.join(f), src.dir.join(f)).unwrap();
    }

    // A rename, a change, a new database with a table, a dropped database.
    src.py("rename", &["--table", "db1.users", "--to", "db1.customers"]);
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    src.py("make-sample", &["--namespace", "db3", "--tables", "events"]);
    src.py("drop-namespace", &["--namespace", "db2"]);
    let events_at_2 = src.dump("db1.events");
    let db3_events_at_2 = src.dump("db3.events");
    let pit2 = backup();
    assert_eq!(
        pit_statuses(&pit2),
        pairs(&[
            ("db1.customers", "RENAMED"),
            ("db1.events", "CHANGED"),
            ("db2.users", "DELETED"),
            ("db3.events", "NEW")
        ])
    );
    assert_eq!(
        db_statuses(&pit2),
        pairs(&[("db1", "UNCHANGED"), ("db2", "DELETED"), ("db3", "NEW")])
    );
    let renamed = pit2["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "RENAMED")
        .unwrap();
    assert_eq!(renamed["previous_name"]["name"], "users");
    assert_eq!(
        renamed["state"]["files_added"], 0,
        "a rename copies nothing"
    );
    let deleted = pit2["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "DELETED")
        .unwrap();
    assert_eq!(deleted["last_pit"], unchanged["id"]);
    assert!(deleted["deleted_at"].is_string());

    // A table dropped and created again under the same name is another table.
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let pit3 = backup();
    let events: Vec<&Value> = pit3["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == "events" && t["database"][0] == "db1")
        .collect();
    let mut event_statuses: Vec<&str> = events
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    event_statuses.sort_unstable();
    assert_eq!(event_statuses, ["DELETED", "NEW"]);
    assert_ne!(events[0]["key"], events[1]["key"]);

    // describe and diff see the same history.
    let described = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert_eq!(described["manifest"]["granularity"], "catalog");
    assert_eq!(described["pits"].as_array().unwrap().len(), 4);
    let deleted_names: Vec<&str> = described["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(
        deleted_names.contains(&"db2.users")
            && deleted_names.contains(&"db2")
            && deleted_names.contains(&"db1.events"),
        "{deleted_names:?}"
    );
    let diff = ws
        .bcn_no_plan(&[
            "diff",
            "--repo",
            "repo",
            pit1["id"].as_str().unwrap(),
            pit2["id"].as_str().unwrap(),
        ])
        .ok();
    assert_eq!(diff["renamed"][0]["table"], "db1.customers");
    assert_eq!(diff["renamed"][0]["from"], "db1.users");
    assert_eq!(diff["changed"][0]["table"], "db1.events");
    assert_eq!(diff["added"][0]["table"], "db3.events");
    assert_eq!(diff["deleted"][0]["table"], "db2.users");
    assert_eq!(diff["databases_added"], serde_json::json!(["db3"]));
    assert_eq!(diff["databases_deleted"], serde_json::json!(["db2"]));

    // Restore the whole catalog as of PIT 2, chosen by time; the deleted table only on request.
    let pit2_time = pit2["started_at"].as_str().unwrap();
    let root = tmp.path().join("restored");
    let root = root.to_str().unwrap();
    let full = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--pit",
            pit2_time,
            "--target-catalog",
            "dst",
            "--target-location",
            root,
        ])
        .ok();
    assert_eq!(full["report"]["pit"], pit2["id"]);
    assert_eq!(full["report"]["tables"].as_array().unwrap().len(), 3);
    assert_same_table(&dst.dump("db1.events"), &events_at_2, "db1.events at PIT 2");
    assert_same_table(
        &dst.dump("db1.customers"),
        &users_at_1,
        "db1.customers (renamed users) at PIT 2",
    );
    assert_same_table(
        &dst.dump("db3.events"),
        &db3_events_at_2,
        "db3.events at PIT 2",
    );
    assert!(
        !dst.exists("db2.users"),
        "deleted tables are restored only with --include-deleted"
    );
    let listed = dst.py("list", &[]);
    assert_eq!(listed["namespaces"], serde_json::json!(["db1", "db3"]));

    let with_deleted = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--pit",
            pit2["id"].as_str().unwrap(),
            "--table",
            "db2.*",
            "--include-deleted",
            "--target-catalog",
            "dst",
            "--target-location",
            root,
        ])
        .ok();
    assert_eq!(
        with_deleted["report"]["tables"][0]["source"]["name"],
        "users"
    );
    assert_same_table(
        &dst.dump("db2.users"),
        &db2_users_at_1,
        "db2.users, deleted before PIT 2",
    );

    // One database out of the catalog backup, into another database, by id prefix.
    let prefix = &pit1["id"].as_str().unwrap()[..18];
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--pit",
        prefix,
        "--database",
        "db1",
        "--target-catalog",
        "dst",
        "--target-database",
        "db1_at_pit1",
        "--target-location",
        root,
    ])
    .ok();
    let got = dst.py("list", &[]);
    assert!(
        got["tables"]
            .as_array()
            .unwrap()
            .contains(&Value::from("db1_at_pit1.users")),
        "{got}"
    );
    assert_same_table(
        &dst.dump("db1_at_pit1.users"),
        &users_at_1,
        "db1.users at PIT 1",
    );
}

#[test]
fn database_backup_restores_one_table_and_refuses_other_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,users"],
    );
    src.py("make-sample", &["--namespace", "db2", "--tables", "users"]);
    let ws = Workspace::new(&[&src, &dst], "");

    let first = ws
        .bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            "db1",
            "--repo",
            "repo",
        ])
        .ok();
    assert_eq!(
        first["pit"]["tables"].as_array().unwrap().len(),
        2,
        "only db1's tables"
    );
    // Same scope: accepted.
    ws.bcn(&[
        "backup",
        "--catalog",
        "src",
        "--database",
        "db1",
        "--repo",
        "repo",
    ])
    .ok();
    // Broader (the whole catalog), narrower, other database, other catalog: refused with exit
    // 2, naming the fixed scope; never quietly narrowed.
    for args in [
        vec!["--catalog", "src"],
        vec!["--catalog", "src", "--database", "db1", "--table", "events"],
        vec!["--catalog", "src", "--database", "db2"],
        vec!["--catalog", "dst"],
    ] {
        let mut full = vec!["backup", "--repo", "repo"];
        full.extend(args.iter().copied());
        let run = ws.bcn(&full);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("holds database `src.db1`"),
            "{}",
            run.stderr
        );
    }
    let pits = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok()["pits"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(pits, 2, "refused backups commit nothing");

    let expected = src.dump("db1.events");
    let restored = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--table",
            "db1.events",
            "--target-catalog",
            "dst",
            "--target-location",
            tmp.path().join("r").to_str().unwrap(),
        ])
        .ok();
    assert_eq!(restored["report"]["tables"].as_array().unwrap().len(), 1);
    assert_same_table(
        &dst.dump("db1.events"),
        &expected,
        "db1.events out of a database backup",
    );
    assert!(!dst.exists("db1.users"));

    // A dry run names the table and location, and writes nothing.
    let dry = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--table",
            "db1.users",
            "--target-catalog",
            "dst",
            "--target-database",
            "other",
            "--target-location",
            tmp.path().join("dry").to_str().unwrap(),
            "--dry-run",
        ])
        .ok();
    assert_eq!(dry["plan"]["tables"][0]["target"]["database"][0], "other");
    assert!(
        dry["plan"]["tables"][0]["location"]
            .as_str()
            .unwrap()
            .ends_with("dry/other/users")
    );
    assert!(!tmp.path().join("dry").exists(), "a dry run wrote files");
    assert!(!dst.exists("other.users"));
}

#[test]
fn nested_namespaces_without_parent_rows_are_found_by_a_catalog_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    // pyiceberg writes a row for `sales.eu` only, none for `sales`.
    src.py(
        "make-sample",
        &["--namespace", "sales.eu", "--tables", "events"],
    );
    src.py("make-sample", &["--namespace", "top", "--tables", "users"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let out = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let mut names: Vec<String> = out["pit"]["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["name"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect::<Vec<_>>()
                .join(".")
        })
        .collect();
    names.sort();
    assert_eq!(names, ["sales.eu", "top"]);
    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"])
        .ok();
    assert_same_table(
        &dst.dump("sales.eu.events"),
        &src.dump("sales.eu.events"),
        "nested namespace",
    );
}
