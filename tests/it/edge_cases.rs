//! Promises that need an unusual source: a table replaced in place, a format-v1 table without
//! a UUID, and a table whose snapshots are expired (and their files deleted) while bcn copies it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bcn::engine::backup::{self, BackupOptions, BackupRequest};
use bcn::engine::{Event, Observer};
use bcn::plan::{Plan, Resolve};

use crate::support::{Lake, Workspace, assert_same_table, pit_statuses};

#[test]
fn replace_restores_a_pit_over_the_live_table_keeping_its_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src], "");
    let at_pit = src.dump("db1.events");
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
    .ok();
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    src.py("mutate", &["--table", "db1.events", "--op", "add-column"]);

    let location = tmp.path().join("replaced");
    let replaced = ws
        .bcn(&[
            "restore",
            "--repo",
            "repo",
            "--target-catalog",
            "src",
            "--replace",
            "--target-location",
            location.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(replaced["report"]["tables"][0]["action"], "replace");
    let now = src.dump("db1.events");
    assert_same_table(&now, &at_pit, "the table after --replace");
    assert_eq!(
        now["table_uuid"], at_pit["table_uuid"],
        "restored to its own name in its own catalog: same UUID"
    );
}

#[test]
fn a_v1_table_without_uuid_is_known_by_its_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py(
        "create-empty",
        &["--table", "db1.legacy", "--format-version", "1"],
    );
    src.py("mutate", &["--table", "db1.legacy", "--op", "append"]);
    src.py("strip-uuid", &["--table", "db1.legacy"]);
    let expected = src.dump("db1.legacy");
    assert_eq!(expected["format_version"], 1);
    let ws = Workspace::new(&[&src, &dst], "");
    let backup = || {
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            "db1",
            "--repo",
            "repo",
        ])
        .ok()
    };

    let first = backup();
    let key = first["pit"]["tables"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        key.starts_with("name-"),
        "no UUID: keyed by name, got {key}"
    );
    assert_eq!(first["pit"]["tables"][0]["uuid"], serde_json::Value::Null);
    let second = backup();
    assert_eq!(
        pit_statuses(&second["pit"]),
        [("db1.legacy".to_owned(), "UNCHANGED".to_owned())]
    );
    assert_eq!(
        second["pit"]["tables"][0]["key"],
        key.as_str(),
        "the key is stable"
    );

    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--target-location",
        tmp.path().join("r").to_str().unwrap(),
    ])
    .ok();
    assert_same_table(
        &dst.dump("db1.legacy"),
        &expected,
        "a v1 table without UUID",
    );
}

/// On the first file copied, expires every older snapshot of the table and deletes their files
/// (as a maintenance job running beside the backup would), once.
struct ExpireMidCopy {
    lake: Lake,
    table: String,
    fired: AtomicBool,
}

impl Observer for ExpireMidCopy {
    fn event(&self, event: &Event<'_>) {
        if matches!(event, Event::FileCopied { .. }) && !self.fired.swap(true, Ordering::SeqCst) {
            let purged = self.lake.py("expire-and-purge", &["--table", &self.table]);
            assert!(!purged["removed"].as_array().unwrap().is_empty());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_expired_while_it_is_copied_is_read_again_from_fresh_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let plan = Plan::load(&ws.plan, Resolve::Strict).unwrap();
    let observer = ExpireMidCopy {
        lake: src.clone(),
        table: "db1.events".into(),
        fired: AtomicBool::new(false),
    };
    let request = BackupRequest {
        catalog: plan.catalog("src", &ws.plan).unwrap(),
        database: Some(vec!["db1".into()]),
        table: Some("events".into()),
        store: Arc::new(bcn::store::LocalStore::new(ws.path("repo"))),
        categorizer: plan.categorizer().clone(),
        // One file at a time, so that files of the old metadata are still to be copied when
        // the table is expired under the backup.
        options: BackupOptions {
            file_concurrency: 1,
            ..BackupOptions::default()
        },
    };
    let report = backup::run(request, &bcn::context::Context::system(), &observer)
        .await
        .unwrap();
    assert!(
        observer.fired.load(Ordering::SeqCst),
        "the table was expired during the copy"
    );
    let state = &report.pit.tables[0].state.as_ref().unwrap();
    assert_eq!(
        state.snapshots, 1,
        "the PIT holds the fresh metadata, with one snapshot"
    );
    let expected = src.dump("db1.events");
    assert_eq!(
        state.metadata_location,
        expected["metadata_location"].as_str().unwrap()
    );

    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--target-location",
        tmp.path().join("r").to_str().unwrap(),
    ])
    .ok();
    assert_same_table(
        &dst.dump("db1.events"),
        &expected,
        "the table as it was after the expiry",
    );
}
