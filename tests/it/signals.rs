//! SIGINT and SIGTERM stop a run cleanly: documented exit codes, no PIT, no partial object,
//! no lock left, and the next run reuses what was copied.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Lake, Workspace, files_under};

/// Starts `bcn ARGS --config PLAN` in the workspace and sends `signal` once `ready(pid)` holds.
fn signal_when(
    ws: &Workspace,
    args: &[&str],
    signal: &str,
    ready: impl Fn(u32) -> bool,
) -> std::process::Output {
    let mut with_plan = args.to_vec();
    with_plan.extend(["--config", ws.plan.to_str().unwrap()]);
    signal_command(ws, &with_plan, signal, ready)
}

/// Starts `bcn ARGS` in the workspace and sends `signal` once `ready(pid)` holds.
fn signal_command(
    ws: &Workspace,
    args: &[&str],
    signal: &str,
    ready: impl Fn(u32) -> bool,
) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready(child.id()) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the run never reached the point to interrupt"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Sent from here, not by a `kill` process: no fork and exec between the moment seen and
    // the signal, in which a short run could end.
    let signal = match signal {
        "-INT" => rustix::process::Signal::INT,
        "-TERM" => rustix::process::Signal::TERM,
        other => panic!("no such signal in these tests: {other}"),
    };
    let pid = rustix::process::Pid::from_raw(child.id().try_into().unwrap()).unwrap();
    rustix::process::kill_process(pid, signal).unwrap();
    child.wait_with_output().unwrap()
}

/// Files the process `pid` holds open without a name under `dir`, each counted once: a
/// local repository's copies in progress and those waiting for their names (`O_TMPFILE`).
fn unnamed_open(pid: u32, dir: &std::path::Path) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let dir = dir.to_string_lossy().into_owned();
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .map(|link| link.to_string_lossy().into_owned())
        .filter(|link| link.starts_with(&dir) && link.ends_with(" (deleted)"))
        .collect::<std::collections::HashSet<_>>()
        .len()
}

/// Files a backup copies at once (its default).
const FILE_CONCURRENCY: usize = 8;

#[test]
fn sigterm_and_sigint_stop_a_backup_cleanly_and_the_next_run_reuses_the_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(3, 8);
    let ws = Workspace::new(&[&src], "");
    let stored = || {
        files_under(&ws.path("repo/tables"))
            .iter()
            .filter(|f| f.ends_with(".parquet"))
            .count()
    };
    // Copies in progress: objects wait unnamed (or under temporary names where the filesystem
    // has no unnamed files) until they are synced together, so neither proves a copy complete;
    // once more than `FILE_CONCURRENCY` appeared, at least one is.
    let written = |pid| {
        files_under(&ws.path("repo/tables")).len() + unnamed_open(pid, &ws.path("repo/tables"))
    };
    let args = ["backup", "--catalog", "src", "--repo", "repo"];
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let before = written(0);
        // The first run is stopped once a copy is certainly complete; the second as soon as it
        // holds the lock: the first may have stored nearly every file, leaving it too few new
        // names to wait for (it failed so under load).
        let lock = ws.path("repo/locks/exclusive.json");
        // The open files are looked at first: cheaper than a walk of the repository, which on
        // a loaded machine took long enough to miss the whole copy.
        let out = signal_when(&ws, &args, signal, |pid| match signal {
            "-TERM" => {
                unnamed_open(pid, &ws.path("repo/tables")) > FILE_CONCURRENCY
                    || written(pid) > before + FILE_CONCURRENCY
            }
            _ => lock.exists(),
        });
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{signal}: {stderr}");
        assert!(stderr.contains("stopped by SIG"), "{stderr}");
        assert!(
            files_under(&ws.path("repo/pits")).is_empty(),
            "{signal}: no PIT is committed"
        );
        assert!(
            !ws.path("repo/locks/exclusive.json").exists(),
            "{signal}: the lock is released"
        );
        assert!(
            !files_under(&ws.path("repo"))
                .iter()
                .any(|f| f.contains(".bcn-tmp-")),
            "{signal}: no partial object is left"
        );
        assert!(
            stored() > 0,
            "{signal}: the complete copies are kept under their names"
        );
    }
    let copied = files_under(&ws.path("repo/tables"))
        .iter()
        .filter(|f| f.contains("/files/"))
        .count();
    let done = ws.bcn(&args).ok();
    let added = done["pit"]["summary"]["files_added"].as_u64().unwrap();
    let total = done["pit"]["summary"]["files_total"].as_u64().unwrap();
    assert!(copied > 0);
    assert_eq!(
        added + copied as u64,
        total,
        "the files copied before the signals are reused"
    );
}

#[test]
fn sigterm_stops_a_backup_to_s3_cleanly() {
    use crate::s3_repository::{create_s3s_bucket, s3s_repository};
    let vars = [
        "BCN_TEST_S3S_ENDPOINT",
        "BCN_TEST_S3S_REGION",
        "BCN_TEST_S3S_ACCESS_KEY",
        "BCN_TEST_S3S_SECRET_KEY",
        "BCN_TEST_S3S_ROOT",
    ];
    let Some(svc) = crate::support::Services::require("sigterm_stops_a_backup_to_s3", &vars) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(3, 8);
    let bucket = crate::support::unique("bcn-sig-");
    create_s3s_bucket(&svc, &bucket);
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n{}",
            s3s_repository(&svc, "s3repo", &bucket, "${BCN_TEST_S3S_SECRET_KEY}")
        ),
    );
    // s3s-fs keeps objects as files: the repository as the server sees it.
    let root = std::path::PathBuf::from(svc.get("BCN_TEST_S3S_ROOT"))
        .join(&bucket)
        .join("bcn/repo");
    let stored = || {
        files_under(&root.join("tables"))
            .iter()
            .filter(|f| f.contains("/files/"))
            .count()
    };
    let args = ["backup", "--catalog", "src", "--repo", "s3repo"];
    let out = signal_when(&ws, &args, "-TERM", |_| stored() > 0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(files_under(&root.join("pits")).is_empty(), "no PIT");
    assert!(
        !root.join("locks/exclusive.json").exists(),
        "the lock is released"
    );
    // The server may still be finishing an upload whose whole body it had received when bcn
    // stopped (a complete object the next run may reuse): count once the bucket is still.
    let copied = settled(stored);
    let done = ws.bcn(&args).ok();
    let added = done["pit"]["summary"]["files_added"].as_u64().unwrap();
    let total = done["pit"]["summary"]["files_total"].as_u64().unwrap();
    assert_eq!(added + copied as u64, total, "what was copied is reused");
    // Every object in the repository is whole: the copies checksum as recorded.
    let verified = ws.bcn(&["verify", "--repo", "s3repo", "--read-data"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

#[test]
fn sigterm_stops_apply_with_a_report_a_notification_and_metrics_saying_so() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(3, 8);
    let ws = Workspace::new(
        &[&src],
        "repositories:\n  main: { location: repo }\n  other: { location: repo-other }\nbackups:\n  - { name: lake, catalog: src, repository: main }\n  - { name: second, catalog: src, repository: other }\n",
    );
    let extra = "notifications:\n  - { on: [failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\nmetrics: { textfile: bcn.prom }\n";
    fs_err::write(&ws.plan, fs_err::read_to_string(&ws.plan).unwrap() + extra).unwrap();
    let plan = ws.plan.to_str().unwrap();
    let out = signal_command(&ws, &["apply", plan, "--output", "json"], "-TERM", |pid| {
        !files_under(&ws.path("repo/tables")).is_empty()
            || unnamed_open(pid, &ws.path("repo/tables")) > 0
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "the second entry never starts: {report}");
    assert_eq!(entries[0]["status"], "failed");
    assert!(
        entries[0]["error"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{report}"
    );
    crate::support::assert_failed_run_notified_and_counted(&ws, "lake");
    assert!(files_under(&ws.path("repo/pits")).is_empty());
    assert!(!ws.path("repo/locks/exclusive.json").exists());
}

/// The value of `count` once it has stayed the same for half a second (at most ten seconds).
fn settled(count: impl Fn() -> usize) -> usize {
    let mut last = count();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(500));
        let now = count();
        if now == last {
            break;
        }
        last = now;
    }
    last
}

#[test]
fn sigterm_during_the_swaps_of_a_replace_restore_leaves_every_table_old_or_new() {
    const TABLES: i64 = 12;
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py(
        "make-many-tables",
        &["--namespace", "many", "--tables", &TABLES.to_string()],
    );
    let ws = Workspace::new(&[&src], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let rows = src.dump("many.t00000");
    let mut before = src.py("locations", &[]);
    // The catalog as bcn's SQL catalog keeps it, read as it changes: a swap drops the table it
    // replaces, then registers the new one, so for a moment the table is not there.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let catalog = runtime
        .block_on(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .connect(&format!("sqlite://{}?mode=ro", src.db().display())),
        )
        .unwrap();
    let tables_now = || {
        runtime
            .block_on(
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM iceberg_tables")
                    .fetch_one(&catalog),
            )
            .unwrap_or(TABLES)
    };
    let mut caught = 0;
    for round in 0..3 {
        let new = tmp.path().join(format!("new-{round}"));
        let args = [
            "restore",
            "--repo",
            "repo",
            "--target-catalog",
            "src",
            "--replace",
            "--jobs",
            "1",
            "--target-location",
            new.to_str().unwrap(),
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(ws.dir.path())
            .args(args)
            .arg("--config")
            .arg(&ws.plan)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // SIGTERM the moment a table is missing: between a swap's drop and its register.
        let pid = rustix::process::Pid::from_raw(child.id().try_into().unwrap()).unwrap();
        loop {
            if tables_now() < TABLES {
                rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
                caught += 1;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            // The run ended before a moment without the table was seen: nothing to check
            // but that it did its work.
            before = src.py("locations", &[]);
            continue;
        }
        assert_eq!(out.status.code(), Some(143), "{stderr}");
        assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
        // Every table is still in the catalog: the one it had, or its new copy.
        let after = src.py("locations", &[]);
        let (old, now) = (before.as_object().unwrap(), after.as_object().unwrap());
        assert_eq!(
            old.keys().collect::<Vec<_>>(),
            now.keys().collect::<Vec<_>>(),
            "round {round}: no table is missing after the signal\n{stderr}"
        );
        let new_dir = new.to_str().unwrap();
        for (table, location) in now {
            let location = location.as_str().unwrap();
            let swapped = location.contains(new_dir);
            assert!(
                swapped || location == old[table],
                "round {round}: {table} points at {location}, neither its old metadata nor the new"
            );
            // A swap said to have landed as it stopped did land.
            if stderr.contains(&format!("table {table} was restored")) {
                assert!(swapped, "round {round}: {table}: {stderr}");
            }
        }
        assert!(
            stderr.contains(
                "was restored (replacing any table of that name) in catalog `src` as it stopped"
            ),
            "round {round}: the swap under way ended, and is said: {stderr}"
        );
        // The next run finishes the job: every table at its new location.
        let rerun = ws.bcn(&args);
        assert_eq!(rerun.code, 0, "round {round}: {}", rerun.stderr);
        before = src.py("locations", &[]);
        for (table, location) in before.as_object().unwrap() {
            assert!(
                location.as_str().unwrap().contains(new_dir),
                "round {round}: {table} at {location} after the rerun"
            );
        }
    }
    assert!(
        caught > 0,
        "no round caught a table between its drop and its register"
    );
    crate::support::assert_same_table(
        &src.dump("many.t00000"),
        &rows,
        "after stopped and finished replaces",
    );
}

/// Whether the process `pid` has ended (gone, or a zombie waiting for its parent).
fn ended(pid: &str) -> bool {
    fs_err::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn sigterm_stops_apply_in_a_before_hook_or_a_hung_verification_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(1, 4);

    // A `before` hook that would run for 100 s: killed, nothing backed up, the
    // `after` hook told, no lock left.
    let ws = Workspace::new(
        &[&src],
        "repositories:\n  main: { location: repo }\nbackups:\n  - { name: lake, catalog: src, repository: main, hooks: { before: [[\"sh\", \"-c\", \"echo $$ > hook.pid; exec sleep 100\"]], after: [[\"sh\", \"-c\", \"echo $BCN_STATUS > after.txt\"]], timeout: 10m } }\n",
    );
    let plan = ws.plan.to_str().unwrap();
    let hook_pid = ws.path("hook.pid");
    let out = signal_command(&ws, &["apply", plan, "--output", "json"], "-TERM", |_| {
        fs_err::read_to_string(&hook_pid).is_ok_and(|pid| pid.ends_with('\n'))
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &report["entries"][0];
    assert_eq!(entry["status"], "failed", "{report}");
    assert_eq!(
        entry["error"],
        "interrupted by a signal before its backup started: nothing was copied or committed",
        "{report}"
    );
    let pid = fs_err::read_to_string(&hook_pid).unwrap();
    let pid = pid.trim();
    let gone = Instant::now();
    while !ended(pid) {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "the before hook {pid} still runs after bcn ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fs_err::read_to_string(ws.path("after.txt")).unwrap().trim(),
        "failed"
    );
    assert!(files_under(&ws.path("repo/pits")).is_empty());
    assert!(!ws.path("repo/locks/exclusive.json").exists());

    // A scheduled verification stuck reading a stored file (a FIFO with a writer that never
    // writes: what a hung disk or mount looks like): the signal ends the run, the backup's PIT
    // stays, nothing is recorded, and the verification is due again.
    let ws = Workspace::new(
        &[&src],
        "repositories:\n  main: { location: repo }\nstrategies:\n  s: { interval: 1d, verify: { interval: 1s, read_data: all } }\nbackups:\n  - { name: lake, catalog: src, repository: main, strategy: s }\n",
    );
    let plan = ws.plan.to_str().unwrap();
    let first = ws.bcn_no_plan(&["apply", plan]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let verifications = || files_under(&ws.path("repo/verifications")).len();
    assert_eq!(verifications(), 1, "the first run verifies");
    let stored = crate::support::hang(&ws.path("repo/tables"), ".metadata.json");
    std::thread::sleep(Duration::from_millis(1100));
    let mut child = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args(["apply", plan, "--output", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The verification has the stored file open once a writer can open it without waiting.
    let started = Instant::now();
    let writer = loop {
        if let Some(writer) = crate::support::hung_reader(&stored) {
            break writer;
        }
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the verification never read the stored file"
        );
        if child.try_wait().unwrap().is_some() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the run ended first: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let pid = rustix::process::Pid::from_raw(child.id().try_into().unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    // The read stays stuck while the writer is held; let it go after a minute so that a run
    // that waits for it still ends (and fails the assertions below).
    let stopped = Instant::now();
    while child.try_wait().unwrap().is_none() && stopped.elapsed() < Duration::from_mins(1) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let ended_while_stuck = child.try_wait().unwrap().is_some();
    drop(writer);
    let out = child.wait_with_output().unwrap();
    assert!(
        ended_while_stuck,
        "bcn waited for the stuck read: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = &report["entries"][0];
    assert_eq!(
        entry["status"], "skipped",
        "the backup was not due: {report}"
    );
    assert_ne!(entry["verification_failed"], true, "not damage: {report}");
    assert!(
        entry["notes"].as_array().unwrap().iter().any(|n| n
            .as_str()
            .unwrap()
            .starts_with("verification interrupted by a signal: not recorded")),
        "{report}"
    );
    assert_eq!(verifications(), 1, "nothing recorded: {report}");
    assert!(!ws.path("repo/locks/exclusive.json").exists());
}
