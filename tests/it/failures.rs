//! Failures lose nothing: a backup that fails commits no PIT and the next one reuses what was
//! copied; locks keep two writers apart; damaged repositories give errors naming the file; a
//! restore that cannot read its files registers nothing.

use serde_json::Value;

use crate::support::{Lake, Workspace, files_under};

fn lake_with(tables: &str) -> (tempfile::TempDir, Lake, Lake, Workspace) {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", tables]);
    let ws = Workspace::new(&[&src, &dst], "");
    (tmp, src, dst, ws)
}

fn pit_count(ws: &Workspace) -> usize {
    files_under(&ws.path("repo/pits")).len()
}

#[test]
fn a_failed_table_commits_nothing_and_the_next_run_reuses_copied_files() {
    let (tmp, src, _dst, ws) = lake_with("events,users");
    // Lose one data file of db1.users: that table cannot be backed up.
    let data = files_under(&src.dir)
        .into_iter()
        .find(|f| f.contains("users") && f.ends_with(".parquet"))
        .unwrap();
    let aside = tmp.path().join("aside.parquet");
    fs_err::rename(src.dir.join(&data), &aside).unwrap();

    let failed = ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed
            .stderr
            .contains("1 table failed; no PIT was committed"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("db1.users"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains(data.rsplit('/').next().unwrap()),
        "the error names the missing file: {}",
        failed.stderr
    );
    assert!(
        failed
            .stderr
            .contains("the table is damaged, or its files were removed outside Iceberg"),
        "a missing file is not mistaken for a concurrent change: {}",
        failed.stderr
    );
    assert_eq!(pit_count(&ws), 0, "a failed backup commits no PIT");
    let described = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert_eq!(described["pits"], serde_json::json!([]));
    assert!(
        !ws.path("repo/locks/exclusive.json").exists(),
        "the lock is released"
    );
    let copied = files_under(&ws.path("repo"))
        .into_iter()
        .filter(|f| f.contains("/files/"))
        .count();
    assert!(
        copied > 0,
        "the healthy table's files stay for the next run"
    );

    fs_err::rename(&aside, src.dir.join(&data)).unwrap();
    let ok = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let total = ok["pit"]["summary"]["files_total"].as_u64().unwrap();
    let added = ok["pit"]["summary"]["files_added"].as_u64().unwrap();
    assert!(
        added < total,
        "files copied by the failed run are reused ({added} of {total} copied again)"
    );
    assert_eq!(added + copied as u64, total);
}

fn write_lock(ws: &Workspace, pid: u32, heartbeat: &str) {
    let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let lock = serde_json::json!({
        "format_version": 1, "run_id": "other-run", "host": host, "pid": pid, "command": "backup",
        "created_at": heartbeat, "heartbeat_at": heartbeat, "ttl_seconds": 300
    });
    fs_err::create_dir_all(ws.path("repo/locks")).unwrap();
    fs_err::write(ws.path("repo/locks/exclusive.json"), lock.to_string()).unwrap();
}

#[test]
fn a_locked_repository_refuses_a_second_backup_with_75_and_stale_locks_can_be_removed() {
    let (_tmp, _src, _dst, ws) = lake_with("events");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let now = bcn::context::Context::system().now().to_rfc3339();

    // A live holder (this test process) on this host.
    write_lock(&ws, std::process::id(), &now);
    let refused = ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"]);
    assert_eq!(refused.code, 75, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("is locked by backup run other-run"),
        "{}",
        refused.stderr
    );
    assert!(
        refused
            .stderr
            .contains(&format!("pid {}", std::process::id())),
        "{}",
        refused.stderr
    );
    assert!(!refused.stderr.contains("stale"), "{}", refused.stderr);
    // Readers never block on the lock.
    assert_eq!(
        ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok()["pits"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // --stale-only keeps a live holder's lock.
    let kept = ws
        .bcn_no_plan(&["unlock", "--repo", "repo", "--stale-only"])
        .ok();
    assert_eq!(kept["removed"], false);
    assert!(ws.path("repo/locks/exclusive.json").exists());

    // A dead holder: reported as stale and removed by --stale-only ...
    write_lock(&ws, 4_194_304, &now);
    let removed = ws
        .bcn_no_plan(&["unlock", "--repo", "repo", "--stale-only"])
        .ok();
    assert_eq!(
        (removed["removed"].clone(), removed["stale"].clone()),
        (Value::Bool(true), Value::Bool(true))
    );
    // ... or taken over by the next writer, which says whose lock it was.
    write_lock(&ws, 4_194_304, &now);
    let next = ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(
        next.stderr.contains("taking over a stale repository lock"),
        "{}",
        next.stderr
    );

    // A heartbeat older than the TTL is stale too.
    write_lock(&ws, std::process::id(), "2020-01-01T00:00:00Z");
    assert_eq!(
        ws.bcn_no_plan(&["unlock", "--repo", "repo", "--stale-only"])
            .ok()["removed"],
        true
    );
    assert_eq!(pit_count(&ws), 2);
}

#[test]
fn a_corrupt_or_missing_pit_record_is_named() {
    let (_tmp, _src, _dst, ws) = lake_with("events");
    let pit = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok()["pit"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = format!("pits/{pit}.json");
    fs_err::write(
        ws.path(&format!("repo/{key}")),
        b"{\"format_version\": 1, \"id\": ",
    )
    .unwrap();
    // describe shows it as damaged, with the reason; list of that PIT fails naming it.
    let described = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert!(
        described["damaged"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("PIT record {key} is corrupt")),
        "{described}"
    );
    let run = ws.bcn_no_plan(&["list", "--repo", "repo"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains(&format!("PIT record {key} is corrupt")),
        "{}",
        run.stderr
    );
    let restore = ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"]);
    assert_eq!(restore.code, 1);
    assert!(restore.stderr.contains(&key), "{}", restore.stderr);

    fs_err::write(ws.path(&format!("repo/{key}")), b"{\"format_version\": 7}").unwrap();
    let newer = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert!(
        newer["damaged"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("format version 7, newer than this bcn supports (2); upgrade bcn"),
        "{newer}"
    );

    let missing = ws.bcn_no_plan(&[
        "list",
        "--repo",
        "repo",
        "--pit",
        "19990101T000000.000Z-000000",
    ]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("no PIT `19990101T000000.000Z-000000`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn a_restore_missing_a_repository_file_registers_nothing_and_reports_each_table() {
    let (tmp, _src, dst, ws) = lake_with("events,users");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    // Lose one stored data file of db1.users.
    let pit = ws.bcn_no_plan(&["list", "--repo", "repo"]).ok();
    let users = pit["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "users")
        .unwrap();
    let key = users["key"].as_str().unwrap();
    let stored = files_under(&ws.path(&format!("repo/tables/{key}/files")))
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .unwrap();
    fs_err::remove_file(ws.path(&format!("repo/tables/{key}/files/{stored}"))).unwrap();

    let root = tmp.path().join("restored");
    let run = ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--target-location",
        root.to_str().unwrap(),
    ]);
    assert_eq!(
        run.code, 3,
        "one table restored, one failed: partial\n{}",
        run.stderr
    );
    let report = run.json();
    let outcomes: Vec<(String, String)> = report["report"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["source"]["name"].as_str().unwrap().to_owned(),
                t["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("events".to_owned(), "restored".to_owned()),
            ("users".to_owned(), "failed".to_owned())
        ]
    );
    assert_eq!(
        report["report"]["tables"][1]["error_kind"], "damaged",
        "a stored file that is gone is damage in the repository: {report}"
    );
    assert!(
        run.stderr.contains(&stored),
        "the error names the missing file: {}",
        run.stderr
    );
    assert!(
        dst.exists("db1.events"),
        "the healthy table stays registered"
    );
    assert!(
        !dst.exists("db1.users"),
        "the failed table is not registered"
    );
    assert_eq!(
        files_under(&root.join("db1/users")),
        Vec::<String>::new(),
        "the failed table's files are removed"
    );
    assert_eq!(dst.dump("db1.events")["row_count"], 8);
}

/// A server that takes every connection and every request and never answers: what an S3
/// endpoint behind a firewall that silently dropped the connection's state looks like.
fn silent_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stream, &mut std::io::sink());
            });
        }
    });
    address
}

#[test]
fn an_s3_repository_that_never_answers_fails_the_backup_after_its_read_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let address = silent_server();
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n  silent:\n    location: s3://bucket/repo\n    s3: {{ endpoint: \"http://{address}\", region: us-east-1, path_style: true, access_key_id: id, secret_access_key: secret, read_timeout: 1s }}\n"
        ),
    );
    let started = std::time::Instant::now();
    let run = ws.bcn(&["backup", "--catalog", "src", "--repo", "silent"]);
    // Four attempts of a second each, and the backoff between them: not for ever.
    assert!(
        started.elapsed() < std::time::Duration::from_mins(1),
        "{:?}",
        started.elapsed()
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains("s3://bucket/repo") && run.stderr.contains("after 4 attempts"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.to_lowercase().contains("timeout"),
        "{}",
        run.stderr
    );
    // A zero read timeout is refused, naming where.
    let plan = fs_err::read_to_string(&ws.plan)
        .unwrap()
        .replace("read_timeout: 1s", "read_timeout: 0s");
    fs_err::write(&ws.plan, plan).unwrap();
    let run = ws.bcn(&["backup", "--catalog", "src", "--repo", "silent"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("repositories.silent.s3.read_timeout"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_full_disk_fails_cleanly_and_the_run_after_freeing_space_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(1, 8);
    let dst = Lake::new(tmp.path(), "dst");
    let ws = Workspace::new(
        &[&src, &dst],
        "repositories:\n  main: { location: disk/repo }\n",
    );
    let disks = crate::support::SmallDisks::new();
    let hint = "hint: a disk (or quota) is full: free space on the one named and run again";
    let plan = ws.plan.to_str().unwrap();
    let bcn = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--config", plan]);
        disks.bcn(ws.dir.path(), &all)
    };

    // The repository's disk (4 MiB) cannot hold the table (8 MiB): no PIT, no lock, a hint.
    disks.mount(&ws.path("disk"), "4m");
    let backup = ["backup", "--catalog", "src", "--repo", "main"];
    let full = bcn(&backup);
    assert_eq!(full.code, 1, "{}", full.stderr);
    assert!(
        full.stderr.contains("No space left on device") && full.stderr.contains(hint),
        "{}",
        full.stderr
    );
    let listed = bcn(&["list", "--repo", "main"]);
    assert!(
        listed.stderr.contains("has no PIT yet"),
        "{}",
        listed.stderr
    );
    let files = |dir: &std::path::Path| {
        let out = disks
            .command(dir, "find")
            .args([".", "-type", "f"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(files(&ws.path("disk/repo/locks")), "", "no lock left");
    // Space freed (the disk grows): the next backup completes and proves whole.
    disks.mount(&ws.path("disk"), "64m");
    let done = bcn(&backup);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let verified = bcn(&["verify", "--repo", "main", "--read-data"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);

    // The restore's target disk is too small: nothing registered, what was written removed.
    let warehouse = dst.dir.join("warehouse");
    disks.mount(&warehouse, "4m");
    let restore = ["restore", "--repo", "main", "--target-catalog", "dst"];
    let full = bcn(&restore);
    assert_eq!(full.code, 1, "{}", full.stderr);
    assert!(full.stderr.contains(hint), "{}", full.stderr);
    assert!(!dst.exists("db1.big"), "nothing registered");
    assert_eq!(files(&warehouse), "", "files left behind");
    // Space freed: the restore completes, and pyiceberg reads the source's rows back.
    disks.mount(&warehouse, "64m");
    let done = bcn(&restore);
    assert_eq!(done.code, 0, "{}", done.stderr);
    let restored = dst.py_with(
        disks.command(ws.dir.path(), crate::support::python()),
        "dump",
        &["--table", "db1.big", "--digest"],
    );
    crate::support::assert_same_table(
        &restored,
        &src.dump_digest("db1.big"),
        "restored once the disk had room",
    );
}
