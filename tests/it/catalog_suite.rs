//! One round trip per catalog type, against real services: SQL (`SQLite`, local files),
//! Glue (moto, files on moto S3), Hive Metastore (files on moto S3) and REST (rustberg, files
//! in its local warehouse).
//!
//! pyiceberg writes the sample tables (`events`, `users`); bcn backs the database up into a
//! local repository, twice around a change (NEW, then CHANGED / UNCHANGED); bcn restores the
//! first PIT into the same catalog under another database and location; pyiceberg reads the
//! restored tables, compared with the source as it was: rows of every snapshot, schemas,
//! specs, sort orders, snapshots and refs.
//!
//! Needs `scripts/services/start.sh` (see `support::Services`); `BCN_TEST_SERVICES=off`
//! skips the service-backed cases.

use std::time::Instant;

use crate::support::{
    Catalog, CatalogType, Services, assert_same_table_any_order, normalize_location, pit_statuses,
    unique, workspace_with,
};

#[expect(clippy::print_stderr, reason = "timings, shown with --nocapture")]
fn round_trip(kind: CatalogType) {
    let test = format!("catalog_suite::{kind:?}");
    let Some(svc) = Services::require(&test, &kind.required_vars()) else {
        return;
    };
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let lake = Catalog::new(kind, "lake", tmp.path(), &svc);
    let src = unique("src_");
    let dst = unique("dst_");
    lake.py(
        "make-sample",
        &["--namespace", &src, "--tables", "events,users"],
    );
    if kind == CatalogType::Hms {
        // A metastore also holds plain Hive tables: they are no part of any backup.
        lake.add_plain_hive_table(&src, "plain_hive");
    }
    let ws = workspace_with(&[&lake], "");
    let repo = tmp.path().join("repo");
    let repo = repo.to_str().unwrap();
    let backup = || {
        ws.bcn(&[
            "backup",
            "--catalog",
            "lake",
            "--database",
            &src,
            "--repo",
            repo,
        ])
        .ok()
    };
    let (events, users) = (format!("{src}.events"), format!("{src}.users"));
    let before = [lake.dump(&events), lake.dump(&users)];

    let pit1 = backup();
    assert_eq!(pit1["created_repository"], true);
    assert_eq!(
        pit_statuses(&pit1["pit"]),
        [
            (events.clone(), "NEW".into()),
            (users.clone(), "NEW".into())
        ],
        "{kind:?}"
    );
    lake.py("mutate", &["--table", &events, "--op", "append"]);
    let pit2 = backup();
    assert_eq!(pit2["pit"]["parent"], pit1["pit"]["id"]);
    assert_eq!(
        pit_statuses(&pit2["pit"]),
        [
            (events.clone(), "CHANGED".into()),
            (users.clone(), "UNCHANGED".into())
        ],
        "{kind:?}"
    );

    let restore = ws
        .bcn(&[
            "restore",
            "--repo",
            repo,
            "--pit",
            pit1["pit"]["id"].as_str().unwrap(),
            "--target-catalog",
            "lake",
            "--target-database",
            &dst,
            "--target-location",
            &lake.scratch,
        ])
        .ok();
    for t in restore["report"]["tables"].as_array().unwrap() {
        assert_eq!(t["outcome"], "restored", "{kind:?}: {t}");
    }
    assert_eq!(restore["report"]["tables"].as_array().unwrap().len(), 2);

    for (table, source) in ["events", "users"].iter().zip(&before) {
        let restored = lake.dump(&format!("{dst}.{table}"));
        assert_same_table_any_order(&restored, source, &format!("{kind:?} {table}"));
        assert_eq!(
            normalize_location(restored["location"].as_str().unwrap()),
            format!("{}/{dst}/{table}", lake.scratch),
            "{kind:?}: the restored table lives under --target-location"
        );
        assert!(
            restored["metadata_location"]
                .as_str()
                .unwrap()
                .starts_with(&lake.scratch),
            "{kind:?}: {}",
            restored["metadata_location"]
        );
        assert_ne!(restored["table_uuid"], source["table_uuid"], "{kind:?}");
        assert_eq!(
            restored["properties"]["bcn.restore.source-table"],
            format!("lake.{src}.{table}")
        );
    }
    // The source moved on after PIT 1 and is untouched by the restore.
    let now = lake.dump(&events);
    assert_ne!(now["current_snapshot_id"], before[0]["current_snapshot_id"]);
    assert_eq!(now["location"], before[0]["location"]);
    eprintln!(
        "catalog_suite::{kind:?}: round trip in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn sql() {
    round_trip(CatalogType::Sql);
}

#[test]
fn glue() {
    round_trip(CatalogType::Glue);
}

#[test]
fn hms() {
    round_trip(CatalogType::Hms);
}

#[test]
fn rest() {
    round_trip(CatalogType::Rest);
}
