//! SIGINT and SIGTERM stop a run cleanly: documented exit codes, no PIT, no partial object,
//! no lock left, and the next run reuses what was copied.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Lake, Workspace, files_under};

/// Starts `bcn ARGS` in the workspace and sends `signal` once `ready()` holds.
fn signal_when(
    ws: &Workspace,
    args: &[&str],
    signal: &str,
    ready: impl Fn() -> bool,
) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args(args)
        .arg("--config")
        .arg(&ws.plan)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !ready() {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the run never reached the point to interrupt"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    child.wait_with_output().unwrap()
}

#[test]
fn sigterm_and_sigint_stop_a_backup_cleanly_and_the_next_run_reuses_the_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py(
        "make-bench",
        &[
            "--table",
            "db1.big",
            "--snapshots",
            "3",
            "--files-per-snapshot",
            "8",
            "--file-mib",
            "1",
        ],
    );
    let ws = Workspace::new(&[&src], "");
    let stored = || {
        files_under(&ws.path("repo/tables"))
            .iter()
            .filter(|f| f.ends_with(".parquet"))
            .count()
    };
    let args = ["backup", "--catalog", "src", "--repo", "repo"];
    for (signal, code) in [("-TERM", 143), ("-INT", 130)] {
        let before = stored();
        let out = signal_when(&ws, &args, signal, || stored() > before);
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
