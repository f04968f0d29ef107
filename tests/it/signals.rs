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
    assert_eq!(
        fs_err::read_to_string(ws.path("events.txt"))
            .unwrap()
            .trim(),
        "lake failed"
    );
    let metrics = fs_err::read_to_string(ws.path("bcn.prom")).unwrap();
    assert!(
        metrics.contains("bcn_entry_status{entry=\"lake\",repository=")
            && metrics.contains("status=\"failed\"} 1"),
        "{metrics}"
    );
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
