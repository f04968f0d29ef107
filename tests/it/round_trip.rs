//! The core promise: a table backed up at two PITs is restored, at each PIT, under another
//! name and location, and pyiceberg reads exactly the source's rows, schemas, snapshot
//! history and refs as they were at that PIT.

use serde_json::Value;

use crate::support::{Lake, Workspace, any_file_contains, assert_same_table, files_under};

/// Backs up `table` (table granularity), mutates it with `ops`, backs up again, restores
/// both PITs into another catalog and location, and compares with the source dumps.
fn round_trip(table: &str, ops: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let (db, name) = table.split_once('.').unwrap();
    let backup = || {
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            db,
            "--table",
            name,
            "--repo",
            "repo",
        ])
        .ok()
    };

    let before = src.dump(table);
    let pit1 = backup();
    assert_eq!(pit1["created_repository"], true);
    assert_eq!(pit1["pit"]["tables"][0]["status"], "NEW");
    for op in ops {
        src.py("mutate", &["--table", table, "--op", op]);
    }
    let after = src.dump(table);
    assert_ne!(
        before["current_snapshot_id"], after["current_snapshot_id"],
        "the mutations made a snapshot"
    );
    let pit2 = backup();
    assert_eq!(pit2["pit"]["tables"][0]["status"], "CHANGED");
    // Schema evolution, partition spec and format version are recorded per table per PIT.
    for (pit, dump) in [(&pit1, &before), (&pit2, &after)] {
        let state = &pit["pit"]["tables"][0]["state"];
        assert_eq!(state["schema_id"], dump["current_schema_id"]);
        let mut ids: Vec<i64> = dump["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["schema-id"].as_i64().unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(state["schema_ids"], serde_json::json!(ids));
        assert_eq!(state["spec_id"], dump["default_spec_id"]);
        assert_eq!(state["format_version"], dump["format_version"]);
        assert_eq!(state["current_snapshot_id"], dump["current_snapshot_id"]);
    }
    assert_eq!(pit2["pit"]["parent"], pit1["pit"]["id"]);

    for (pit, expected, target) in [(&pit1, &before, "at_pit1"), (&pit2, &after, "at_pit2")] {
        let id = pit["pit"]["id"].as_str().unwrap();
        let restore = ws
            .bcn(&[
                "restore",
                "--repo",
                "repo",
                "--pit",
                id,
                "--target-catalog",
                "dst",
                "--target-database",
                "restored",
                "--target-table",
                target,
                "--target-location",
                &format!("{}/relocated", tmp.path().display()),
            ])
            .ok();
        assert_eq!(
            restore["report"]["tables"][0]["outcome"], "restored",
            "{restore}"
        );
        let _ = expected;
    }

    // Nothing may still point at the source: move its warehouse away, then read.
    let moved = tmp.path().join("src-moved-away");
    fs_err::rename(src.dir.join("warehouse"), &moved).unwrap();
    let relocated = tmp.path().join("relocated");
    assert_eq!(
        any_file_contains(&relocated, src.dir.join("warehouse").to_str().unwrap()),
        None,
        "a restored file still names the source location"
    );
    for (expected, target) in [(&before, "at_pit1"), (&after, "at_pit2")] {
        let restored = dst.dump(&format!("restored.{target}"));
        assert_same_table(&restored, expected, target);
        let location = restored["location"].as_str().unwrap();
        assert!(
            location.ends_with(&format!("relocated/restored/{target}")),
            "{location}"
        );
        assert_ne!(
            restored["table_uuid"], expected["table_uuid"],
            "a copy under another name gets its own UUID"
        );
        assert_eq!(
            restored["properties"]["bcn.restore.source-table"],
            format!("src.{table}")
        );
        assert_eq!(
            restored["properties"]["bcn.restore.source-uuid"],
            expected["table_uuid"]
        );
    }
}

#[test]
fn table_with_appends_schema_change_deletes_overwrite_and_tag() {
    round_trip("db1.events", &["append", "add-column", "append", "delete"]);
}

#[test]
fn partitioned_table() {
    round_trip("db1.users", &["append", "delete"]);
}

#[test]
fn merge_on_read_table_with_position_deletes() {
    round_trip("db1.mor", &["append"]);
}

/// The repository's stored Iceberg files.
fn stored_files(ws: &Workspace) -> Vec<String> {
    files_under(&ws.path("repo"))
        .into_iter()
        .filter(|f| f.contains("/files/"))
        .collect()
}

#[test]
fn incremental_backups_copy_only_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src], "");
    let backup = || {
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            "db1",
            "--table",
            "events",
            "--repo",
            "repo",
        ])
        .ok()
    };

    let first = backup();
    let stored = stored_files(&ws);
    assert_eq!(
        first["pit"]["summary"]["files_added"],
        stored.len(),
        "the first backup copies every file once"
    );
    let mtimes = |files: &[String]| -> Vec<std::time::SystemTime> {
        files
            .iter()
            .map(|f| {
                fs_err::metadata(ws.path("repo").join(f))
                    .unwrap()
                    .modified()
                    .unwrap()
            })
            .collect()
    };
    let before = mtimes(&stored);

    // Unchanged: nothing copied, nothing rewritten, status decided from the catalog entry.
    let second = backup();
    assert_eq!(second["pit"]["tables"][0]["status"], "UNCHANGED");
    assert_eq!(second["pit"]["summary"]["files_added"], 0);
    assert_eq!(stored_files(&ws), stored);
    assert_eq!(mtimes(&stored), before, "stored files were rewritten");

    // Changed: only the new snapshot's files (data file, manifest, manifest list) are copied.
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    let third = backup();
    assert_eq!(third["pit"]["tables"][0]["status"], "CHANGED");
    let now = stored_files(&ws);
    let added: Vec<&String> = now.iter().filter(|f| !stored.contains(f)).collect();
    assert_eq!(
        third["pit"]["summary"]["files_added"],
        Value::from(added.len())
    );
    assert!(added.iter().any(|f| f.ends_with(".parquet")), "{added:?}");
    assert!(added.len() <= 4, "only the new snapshot's files: {added:?}");
    assert_eq!(mtimes(&stored), before, "stored files were rewritten");

    // Manifest lists and manifests are immutable: an incremental backup does not read again
    // those the repository holds. Spoil every Avro file of the source table (same size, so
    // the sizes the metadata records still match), append once more: the backup reads only
    // the new snapshot's, and the restore — from the stored copies — equals the table.
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    let expected = src.dump("db1.events");
    let new_snapshot = |f: &String| {
        !now.iter()
            .any(|n| n.ends_with(f.rsplit('/').next().unwrap()))
    };
    let location = expected["location"].as_str().unwrap();
    let metadata_dir =
        std::path::PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
            .join("metadata");
    let mut spoiled = 0;
    for file in files_under(&metadata_dir) {
        if file.ends_with(".avro") && !new_snapshot(&file) {
            let path = metadata_dir.join(&file);
            let size = fs_err::metadata(&path).unwrap().len();
            fs_err::write(&path, vec![b'x'; usize::try_from(size).unwrap()]).unwrap();
            spoiled += 1;
        }
    }
    assert!(
        spoiled >= 4,
        "the earlier snapshots' lists and manifests: {spoiled}"
    );
    let fourth = backup();
    assert_eq!(fourth["pit"]["tables"][0]["status"], "CHANGED");
    let dst = Lake::new(tmp.path(), "dst");
    let ws_restore = Workspace::new(&[&src, &dst], "");
    let restored = ws_restore.bcn(&[
        "restore",
        "--repo",
        ws.path("repo").to_str().unwrap(),
        "--target-catalog",
        "dst",
        "--target-location",
        tmp.path().join("restored").to_str().unwrap(),
    ]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_same_table(
        &dst.dump("db1.events"),
        &expected,
        "after spoiled manifests",
    );
}

/// The entries of the newest file list under `repo`, its parts in order.
fn newest_file_list(repo: &std::path::Path) -> Vec<Value> {
    let mut parts: Vec<(String, usize, String)> = files_under(repo)
        .into_iter()
        .filter(|f| f.contains("/filelists/") && f.ends_with(".jsonl"))
        .map(|f| {
            let name = f.rsplit('/').next().unwrap().trim_end_matches(".jsonl");
            let (pit, n) = name.rsplit_once('.').unwrap();
            (pit.to_owned(), n.parse().unwrap(), f)
        })
        .collect();
    let newest = parts.iter().map(|(pit, ..)| pit.clone()).max().unwrap();
    parts.retain(|(pit, ..)| *pit == newest);
    parts.sort();
    parts
        .iter()
        .flat_map(|(.., f)| {
            let text = fs_err::read_to_string(repo.join(f)).unwrap();
            text.lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_table_whose_file_list_does_not_fit_in_memory_is_stored_and_restored_the_same() {
    // `BCN_FILES_IN_MEMORY=2`: the backup holds two files of the table at a time and sorts
    // and merges the rest through temporary files — a table of millions of files, in small.
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let backup = |repo: &str, held: &str| {
        ws.bcn_env(
            &["backup", "--catalog", "src", "--repo", repo],
            &[("BCN_FILES_IN_MEMORY", held)],
        )
        .ok()
    };
    for round in 0..3 {
        if round > 0 {
            src.py("mutate", &["--table", "db1.events", "--op", "append"]);
        }
        let held = backup("held", "1000000");
        let spilled = backup("spilled", "2");
        assert_eq!(
            held["pit"]["summary"], spilled["pit"]["summary"],
            "round {round}"
        );
        let list = newest_file_list(&ws.path("spilled"));
        assert!(list.len() > 6, "enough files to spill: {}", list.len());
        assert_eq!(
            list,
            newest_file_list(&ws.path("held")),
            "round {round}: the same entries, in the same order, with the same references"
        );
        assert!(
            list.iter()
                .any(|e| e["refs"].as_array().is_some_and(|r| !r.is_empty())),
            "manifests record what they reference"
        );
    }
    let expected = src.dump("db1.events");
    let restored = ws.bcn(&[
        "restore",
        "--repo",
        "spilled",
        "--target-catalog",
        "dst",
        "--target-location",
        tmp.path().join("restored").to_str().unwrap(),
    ]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_same_table(&dst.dump("db1.events"), &expected, "spilled file lists");
}

#[test]
fn a_metadata_budget_of_one_byte_serialises_metadata_work_and_changes_nothing() {
    // `BCN_METADATA_BUDGET=1`: every manifest, manifest list and position-delete file a run
    // decodes or rewrites waits for the whole of the process's budget, so the tables taken
    // at once (`--jobs 8`) handle their metadata one file at a time. Nothing waits on room
    // it holds itself, and the tables come back the same.
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1"]);
    src.py("make-sample", &["--namespace", "db2"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let budget = [("BCN_METADATA_BUDGET", "1")];
    let backup = [
        "backup",
        "--catalog",
        "src",
        "--repo",
        "repo",
        "--jobs",
        "8",
    ];
    ws.bcn_env(&backup, &budget).ok();
    // An incremental backup: manifests walked before are not read, the new ones are.
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    src.py("mutate", &["--table", "db2.mor", "--op", "append"]);
    ws.bcn_env(&backup, &budget).ok();
    ws.bcn_env(&["verify", "--repo", "repo", "--read-data"], &budget)
        .ok();
    let target = tmp.path().join("restored");
    let target = target.to_str().unwrap();
    let restore = [
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--jobs",
        "8",
    ];
    ws.bcn_env(
        &[&restore[..], &["--target-location", target]].concat(),
        &budget,
    )
    .ok();
    for namespace in ["db1", "db2"] {
        for table in ["events", "users", "mor"] {
            let name = format!("{namespace}.{table}");
            assert_same_table(&dst.dump(&name), &src.dump(&name), &name);
        }
    }
}

#[test]
fn files_outside_the_table_location_restore_elsewhere_and_the_source_can_go() {
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::support::Lake::new(tmp.path(), "src");
    let dst = crate::support::Lake::new(tmp.path(), "dst");
    let data_path = tmp.path().join("elsewhere/data");
    let add_dir = tmp.path().join("imported");
    src.make_external("db1.ext", &data_path, &add_dir);
    let source = src.dump("db1.ext");
    assert_eq!(source["row_count"], 9);
    let ws = crate::support::Workspace::new(&[&src, &dst], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let target = tmp.path().join("restored");
    let target_url = format!("file://{}", target.display());
    // The dry run shows where each outside root goes.
    let dry = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--target-catalog",
            "dst",
            "--target-location",
            &target_url,
            "--dry-run",
        ])
        .ok();
    let roots = dry["plan"]["tables"][0]["external_roots"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        roots.len(),
        2,
        "write.data.path and the imported directory: {dry}"
    );
    for root in &roots {
        assert!(
            root["to"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{target_url}/db1/ext/_external/")),
            "{root}"
        );
    }
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--target-location",
        &target_url,
    ])
    .ok();
    // Remove every source file: the restored table must read from its own files alone.
    for dir in [
        data_path.parent().unwrap(),
        add_dir.as_path(),
        &src.dir.join("warehouse"),
    ] {
        fs_err::remove_dir_all(dir).unwrap();
    }
    let restored = dst.dump("db1.ext");
    crate::support::assert_same_table(&restored, &source, "files outside the location");
    assert!(
        restored["properties"]["write.data.path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{target_url}/db1/ext/_external/")),
        "the data path follows the data: {}",
        restored["properties"]
    );
}

#[test]
fn a_lost_warehouse_and_catalog_come_back_in_place_with_original_location() {
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::support::Lake::new(tmp.path(), "src");
    let data_path = tmp.path().join("elsewhere/data");
    let add_dir = tmp.path().join("imported");
    src.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,mor"],
    );
    src.make_external("db1.ext", &data_path, &add_dir);
    let tables = ["db1.events", "db1.mor", "db1.ext"];
    let before: Vec<serde_json::Value> = tables.iter().map(|t| src.dump(t)).collect();
    let ws = crate::support::Workspace::new(&[&src], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();

    // The disaster: the warehouse, the files outside it and the catalog database are gone.
    for dir in [
        data_path.parent().unwrap(),
        add_dir.as_path(),
        &src.dir.join("warehouse"),
    ] {
        fs_err::remove_dir_all(dir).unwrap();
    }
    fs_err::remove_file(src.dir.join("catalog.db")).unwrap();
    let restore = [
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "src",
        "--original-location",
    ];
    ws.bcn(&restore).ok();
    for (table, was) in tables.iter().zip(&before) {
        let now = src.dump(table);
        crate::support::assert_same_table(&now, was, table);
        assert_eq!(
            now["table_uuid"], was["table_uuid"],
            "{table} keeps its UUID"
        );
        assert_eq!(
            now["location"], was["location"],
            "{table} keeps its location"
        );
    }
    assert!(
        data_path.exists() && add_dir.join("added.parquet").exists(),
        "files back at their own paths"
    );

    // Again: the tables exist, so only --replace goes on, keeping the identical files.
    let again = ws.bcn(&restore);
    assert_eq!(again.code, 2, "{}", again.stderr);
    // A live data file that changed since is put back from the backup only with --replace.
    let damaged = crate::support::files_under(&data_path)
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .unwrap();
    fs_err::write(data_path.join(&damaged), b"not parquet").unwrap();
    let mut replace = restore.to_vec();
    replace.push("--replace");
    ws.bcn(&replace).ok();
    crate::support::assert_same_table(&src.dump("db1.ext"), &before[2], "repaired in place");
}

#[test]
fn a_v3_table_with_deletion_vectors_restores_elsewhere_at_the_catalogs_default_location() {
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::support::Lake::new(tmp.path(), "src");
    let dst = crate::support::Lake::new(tmp.path(), "dst");
    let made = src.py("make-dv", &["--table", "db1.dv"]);
    assert_eq!(made["format_version"], 3);
    let source = src.dump("db1.dv");
    assert_eq!(
        source["row_count"], 10,
        "the deletion vectors apply: {made}"
    );
    let ws = crate::support::Workspace::new(&[&src, &dst], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    // No --target-location: the table lands where the target catalog puts new tables.
    let expected_location = format!("{}/db1.db/dv", dst.warehouse());
    let dry = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--target-catalog",
            "dst",
            "--dry-run",
        ])
        .ok();
    assert_eq!(
        dry["plan"]["tables"][0]["location"],
        expected_location.as_str(),
        "{dry}"
    );
    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"])
        .ok();
    fs_err::remove_dir_all(src.dir.join("warehouse")).unwrap();
    let restored = dst.dump("db1.dv");
    crate::support::assert_same_table(&restored, &source, "deletion vectors relocated");
    assert_eq!(restored["location"], expected_location.as_str());
    // Each Puffin footer names the restored data files, not the source's.
    let puffins: Vec<String> = crate::support::files_under(&dst.dir.join("warehouse"))
        .into_iter()
        .filter(|f| f.ends_with(".puffin"))
        .collect();
    assert_eq!(puffins.len(), 1, "{puffins:?}");
    let footer = fs_err::read(dst.dir.join("warehouse").join(&puffins[0])).unwrap();
    let footer = String::from_utf8_lossy(&footer);
    assert!(
        footer.contains(&format!("{expected_location}/data/")),
        "{footer}"
    );
    assert!(!footer.contains(&src.warehouse()), "{footer}");
}

#[test]
fn partition_evolution_a_branch_and_expired_snapshots_survive_a_restore_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::support::Lake::new(tmp.path(), "src");
    let dst = crate::support::Lake::new(tmp.path(), "dst");
    let made = src.py("make-evolved", &["--table", "db1.evo"]);
    assert_eq!(made["specs"], 2);
    assert_eq!(made["refs"], serde_json::json!(["audit", "main"]));
    let source = src.dump("db1.evo");
    let ws = crate::support::Workspace::new(&[&src, &dst], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"])
        .ok();
    fs_err::remove_dir_all(src.dir.join("warehouse")).unwrap();
    let restored = dst.dump("db1.evo");
    // Both specs, the branch's own commit, every kept snapshot's rows; the expired snapshot
    // stays expired.
    crate::support::assert_same_table(&restored, &source, "evolved table");
    assert_eq!(restored["partition_specs"].as_array().unwrap().len(), 2);
    assert_eq!(restored["refs"]["audit"], source["refs"]["audit"]);
    assert!(
        restored["rows_at"]
            .get(made["expired"].to_string())
            .is_none(),
        "{}",
        restored["rows_at"]
    );
}
