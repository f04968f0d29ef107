//! Unattended operation: every failure is reported, notified and visible in metrics (parsed by
//! Prometheus's own parser); stale locks are taken over; cadences are decided from the
//! repository's history under a fixed clock; an entry past its timeout fails loudly; restore
//! and gc notify a real HTTP listener; logs for machines, completions and the manual page.

use std::fmt::Write as _;
use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::{Lake, MOTO_VARS, Services, Workspace, python, unique};

/// Parses a Prometheus textfile with `prometheus_client`: `{metric: {entry: value}}`, and
/// for `bcn_entry_status` the status whose value is 1.
fn metrics(path: &std::path::Path) -> Value {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = {}\n\
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):\n\
        \x20   for s in family.samples:\n\
        \x20       entry = s.labels['entry']\n\
        \x20       if s.name == 'bcn_entry_status':\n\
        \x20           if s.value == 1: out.setdefault('status', {})[entry] = s.labels['status']\n\
        \x20       else: out.setdefault(s.name, {})[entry] = s.value\n\
        print(json.dumps(out))\n";
    let out = Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejects the file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn apply(ws: &Workspace, extra: &[&str], env: &[(&str, &str)]) -> crate::support::Run {
    let mut args = vec!["apply", ws.plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    let mut command = Command::new(env!("CARGO_BIN_EXE_bcn"));
    command
        .current_dir(ws.dir.path())
        .args(&args)
        .args(["--output", "json"])
        .envs(env.iter().copied());
    let out = command.output().unwrap();
    crate::support::Run::from(out)
}

const NOTIFY: &str = "notifications:\n  - { on: [start, success, failure, verify_failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_EVENT $BCN_STATUS >> events.txt\"] }\nmetrics: { textfile: metrics/bcn.prom }\nreports:\n  - { template: text, output: \"reports/{{entry}}.txt\" }\n";

#[test]
fn an_entry_that_fails_before_its_backup_is_reported_notified_and_in_the_metrics() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let mut entries = String::from(
        "repositories:\n  good: { location: repo-good }\n  broken: { location: repo-broken }\n",
    );
    let mut backups = String::from(
        "backups:\n  - { name: good, catalog: src, repository: good }\n  - { name: broken, catalog: src, repository: broken }\n",
    );
    let svc = Services::require(
        "an_entry_that_fails_before_its_backup",
        &[MOTO_VARS, &["BCN_TEST_S3S_ENDPOINT"]].concat(),
    );
    if let Some(svc) = &svc {
        // A bucket that is gone (moto), and credentials that are refused (s3s-fs checks them).
        let _ = write!(
            entries,
            "  gone: {{ location: s3://{bucket}/r, s3: {{ endpoint: {moto}, region: us-east-1, path_style: true, access_key_id: x, secret_access_key: y }} }}\n  refused: {{ location: s3://whatever/r, s3: {{ endpoint: {s3s}, region: us-east-1, path_style: true, access_key_id: nobody, secret_access_key: wrong-secret }} }}\n",
            bucket = unique("bcn-gone-"),
            moto = svc.get(crate::support::MOTO_ENDPOINT),
            s3s = svc.get("BCN_TEST_S3S_ENDPOINT"),
        );
        backups.push_str(
            "  - { name: gone, catalog: src, repository: gone }\n  - { name: refused, catalog: src, repository: refused }\n",
        );
    }
    let listener = Listener::start(tmp.path());
    let webhook = format!(
        "  - {{ on: [failure], webhook: {{ url: \"http://127.0.0.1:{}/bcn\" }} }}\n",
        listener.port
    );
    let notify = NOTIFY.replace("metrics:", &format!("{webhook}metrics:"));
    let ws = Workspace::new(&[&src], &format!("{entries}{backups}{notify}"));
    // A repository whose manifest is damaged: it cannot be opened.
    fs_err::create_dir_all(ws.path("repo-broken")).unwrap();
    fs_err::write(ws.path("repo-broken/bcn-repository.json"), "{ damaged").unwrap();

    let run = apply(&ws, &[], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.json();
    let failing: Vec<&str> = if svc.is_some() {
        vec!["broken", "gone", "refused"]
    } else {
        vec!["broken"]
    };
    for name in &failing {
        let entry = report["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["entry"] == *name)
            .unwrap();
        assert_eq!(entry["status"], "failed", "{entry}");
        assert!(
            entry["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{entry}"
        );
        assert!(
            ws.path(&format!("reports/{name}.txt")).exists(),
            "{name}: the report is written"
        );
    }
    let events = fs_err::read_to_string(ws.path("events.txt")).unwrap();
    for name in &failing {
        assert!(
            events.contains(&format!("{name} failure failed")),
            "{events}"
        );
    }
    assert!(events.contains("good success succeeded"), "{events}");
    let mut posted: Vec<String> = listener
        .posts()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["entry"].as_str().unwrap(),
                p["status"].as_str().unwrap()
            )
        })
        .collect();
    posted.sort();
    let mut expected: Vec<String> = failing.iter().map(|n| format!("{n} failed")).collect();
    expected.sort();
    assert_eq!(posted, expected, "a failure webhook per failed entry");
    let m = metrics(&ws.path("metrics/bcn.prom"));
    assert_eq!(m["status"]["good"], "succeeded");
    assert!(
        m["bcn_last_success_timestamp_seconds"]["good"]
            .as_f64()
            .unwrap()
            > 1e9
    );
    assert_eq!(m["bcn_pits"]["good"], 1.0);
    assert!(m["bcn_files_copied"]["good"].as_f64().unwrap() > 0.0);
    assert!(m["bcn_repository_bytes"]["good"].as_f64().unwrap() > 0.0);
    for name in &failing {
        assert_eq!(m["status"][name], "failed", "{m}");
        assert!(
            m["bcn_last_success_timestamp_seconds"].get(name).is_none(),
            "{m}"
        );
        assert!(
            m["bcn_last_attempt_timestamp_seconds"][name]
                .as_f64()
                .unwrap()
                > 1e9
        );
    }
}

#[test]
fn a_backup_killed_with_sigkill_leaves_a_lock_the_next_apply_takes_over() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(2, 8);
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n  main: {{ location: repo }}\nbackups:\n  - {{ name: lake, catalog: src, repository: main }}\n{NOTIFY}"
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args(["backup", "--catalog", "src", "--repo", "main", "--config"])
        .arg(&ws.plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = ws.path("repo/locks/exclusive.json");
    let started = std::time::Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed().as_secs() < 60,
            "the backup never took its lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL: nothing runs, the lock stays
    child.wait().unwrap();
    assert!(lock.exists(), "a killed run leaves its lock");
    let run = apply(&ws, &[], &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("taking over a stale repository lock"),
        "{}",
        run.stderr
    );
    assert_eq!(run.json()["entries"][0]["status"], "succeeded");
    assert!(!lock.exists());
}

#[test]
fn full_every_and_the_verification_interval_follow_the_repository_history() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n  main: {{ location: repo }}\nstrategies:\n  s: {{ interval: 1h, full_every: 7d, verify: {{ interval: 1d }} }}\nbackups:\n  - {{ name: lake, catalog: src, repository: main, strategy: s }}\n{NOTIFY}"
        ),
    );
    let at = |time: &str| apply(&ws, &[], &[("BCN_NOW", time)]).ok()["entries"][0].clone();
    let first = at("2030-01-01T00:00:00Z");
    assert_eq!(first["backup"]["pit"]["strategy"]["mode"], "incremental");
    assert_eq!(first["verify_due"], "never verified");
    assert!(first["verification"].is_object());

    // An entry that is not due keeps its "last success" in the metrics.
    let skipped = at("2030-01-01T00:10:00Z");
    assert_eq!(skipped["status"], "skipped");
    let m = metrics(&ws.path("metrics/bcn.prom"));
    assert!(
        m["bcn_last_success_timestamp_seconds"]["lake"]
            .as_f64()
            .unwrap()
            > 1.8e9,
        "{m}"
    );
    assert_eq!(m["status"]["lake"], "skipped");
    // An hour later: the backup is due, a full one is not, nor the verification.
    src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    let second = at("2030-01-01T01:00:01Z");
    assert_eq!(second["backup"]["pit"]["strategy"]["mode"], "incremental");
    assert!(
        second["full_due"]
            .as_str()
            .unwrap()
            .starts_with("incremental: newest full PIT"),
        "{second}"
    );
    assert!(
        second["verify_due"].as_str().unwrap().contains("due in"),
        "{second}"
    );
    assert!(second["verification"].is_null());

    // Eight days on: a full backup (every file copied again) and a verification.
    let third = at("2030-01-09T00:00:00Z");
    assert_eq!(
        third["backup"]["pit"]["strategy"]["mode"], "full",
        "{third}"
    );
    let summary = &third["backup"]["pit"]["summary"];
    assert_eq!(summary["files_added"], summary["files_total"]);
    assert!(third["verification"].is_object());

    // The dry run says which cadence is due and why.
    let dry = apply(&ws, &["--dry-run"], &[("BCN_NOW", "2030-01-20T00:00:00Z")]).ok();
    let entry = &dry["entries"][0];
    assert!(
        entry["full_due"]
            .as_str()
            .unwrap()
            .starts_with("full: newest full PIT is"),
        "{entry}"
    );
    assert!(
        entry["verify_due"]
            .as_str()
            .unwrap()
            .contains("interval 1day"),
        "{entry}"
    );
}

/// A real HTTP listener on 127.0.0.1 that records every POST body, one JSON per line.
struct Listener {
    child: std::process::Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Listener {
    fn start(dir: &std::path::Path) -> Self {
        let log = dir.join("posts.jsonl");
        let script = "import http.server, json, sys\n\
            class H(http.server.BaseHTTPRequestHandler):\n\
            \x20   def do_POST(self):\n\
            \x20       body = self.rfile.read(int(self.headers['Content-Length']))\n\
            \x20       with open(sys.argv[1], 'a') as f: f.write(json.dumps(json.loads(body)) + '\\n')\n\
            \x20       self.send_response(204); self.end_headers()\n\
            \x20   def log_message(self, *a): pass\n\
            s = http.server.HTTPServer(('127.0.0.1', 0), H)\n\
            print(s.server_port, flush=True)\n\
            s.serve_forever()\n";
        let mut child = Command::new(python())
            .args(["-c", script])
            .arg(&log)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        Self {
            child,
            port: line.trim().parse().unwrap(),
            log,
        }
    }

    fn posts(&self) -> Vec<Value> {
        fs_err::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn restore_forget_and_gc_notify_a_real_http_listener() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = Listener::start(tmp.path());
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(
        &[&src, &dst],
        &format!(
            "notifications:\n  - {{ on: [start, success, failure], webhook: {{ url: \"http://127.0.0.1:{}/bcn\" }} }}\n",
            listener.port
        ),
    );
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"])
        .ok();
    ws.bcn(&["forget", "--repo", "repo", "--keep-last", "1", "--yes"])
        .ok();
    ws.bcn(&["gc", "--repo", "repo", "--yes"]).ok();
    ws.bcn(&["gc", "--repo", "repo"]).ok(); // a dry run sends nothing
    let failed = ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"]);
    assert_eq!(failed.code, 2, "the table exists now: {}", failed.stderr);
    let seen: Vec<(String, String)> = listener
        .posts()
        .iter()
        .map(|p| {
            (
                p["entry"].as_str().unwrap().to_owned(),
                p["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("restore", "started"),
        ("restore", "succeeded"),
        ("forget", "started"),
        ("forget", "succeeded"),
        ("gc", "started"),
        ("gc", "succeeded"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
    .collect();
    assert_eq!(seen, expected);
    let restored = &listener.posts()[1];
    assert_eq!(restored["report"]["tables"][0]["outcome"], "restored");
}

#[test]
fn json_logs_completions_and_the_manual_page() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src], "");
    let run = ws.bcn(&[
        "-v",
        "--log-format",
        "json",
        "backup",
        "--catalog",
        "src",
        "--repo",
        "repo",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(lines.len() >= 2, "{}", run.stderr);
    for line in lines {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }

    let bcn = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = bcn(&["completions", "bash"]);
    assert!(
        bash.contains("verify") && bash.contains("--read-data"),
        "{bash}"
    );
    let mut check = Command::new("bash")
        .arg("-n")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .as_mut()
        .unwrap()
        .write_all(bash.as_bytes())
        .unwrap();
    assert!(check.wait().unwrap().success(), "bash accepts the script");
    for shell in ["zsh", "fish"] {
        assert!(bcn(&["completions", shell]).contains("restore"), "{shell}");
    }
    let man = bcn(&["man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH bcn 1"), "{man}");
    assert!(man.contains("verify"));
    let verify = bcn(&["man", "verify"]);
    assert!(
        verify.contains("bcn\\-verify") && verify.contains("read\\-data"),
        "{verify}"
    );
}

#[test]
fn hooks_run_around_an_entry_with_its_outcome_and_keep_their_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let after = "[\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS pit=$BCN_PIT error=$BCN_ERROR >> after.txt\"]";
    let plan = |before: &str, timeout: &str| {
        format!(
            "repositories:\n  main: {{ location: repo }}\nbackups:\n  - {{ name: lake, catalog: src, repository: main, hooks: {{ before: [{before}], after: [{after}], timeout: {timeout} }} }}\n"
        )
    };
    // A failing before hook: nothing is backed up, the after hook learns why.
    let ws = Workspace::new(&[&src], &plan("[\"sh\", \"-c\", \"exit 3\"]", "1m"));
    let run = apply(&ws, &[], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let entry = &run.json()["entries"][0];
    assert_eq!(entry["status"], "failed");
    assert!(
        entry["error"]
            .as_str()
            .unwrap()
            .contains("before hook: hook `sh` failed"),
        "{entry}"
    );
    assert!(!ws.path("repo/pits").exists(), "no backup ran");
    let seen = fs_err::read_to_string(ws.path("after.txt")).unwrap();
    assert!(
        seen.starts_with("lake failed pit= error=before hook"),
        "{seen}"
    );

    // A before hook that takes too long is killed.
    let ws = Workspace::new(&[&src], &plan("[\"sleep\", \"30\"]", "1s"));
    let started = std::time::Instant::now();
    let run = apply(&ws, &[], &[]);
    // Under the hook's 30 s even on a loaded machine: it was killed.
    assert!(started.elapsed().as_secs() < 29, "{:?}", started.elapsed());
    assert!(
        run.json()["entries"][0]["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within 1s and was killed")
    );

    // Succeeding hooks, one holding a secret in its arguments: the secret never shows.
    let ws = Workspace::new(
        &[&src],
        &plan(
            "[\"sh\", \"-c\", \"true\", \"${BCN_TEST_HOOK_SECRET}\"]",
            "1m",
        ),
    );
    let secret = "hookSeCrEt-4f2a9c";
    let run = apply(
        &ws,
        &["-vv"],
        &[("BCN_TEST_HOOK_SECRET", secret), ("BCN_LOG", "trace")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains(secret) && !run.stdout.contains(secret));
    let pit = run.json()["entries"][0]["backup"]["pit"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = fs_err::read_to_string(ws.path("after.txt")).unwrap();
    assert_eq!(seen.trim(), format!("lake succeeded pit={pit} error="));
}

#[test]
fn an_entry_past_its_timeout_fails_loudly_and_the_next_one_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(1, 4);
    let other = Lake::new(tmp.path(), "other");
    other.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let ws = Workspace::new(
        &[&src, &other],
        concat!(
            "repositories:\n  main: { location: repo }\n  second: { location: repo-second }\n",
            "strategies:\n  bounded: { timeout: 3s }\n",
            "backups:\n",
            "  - { name: lake, catalog: src, repository: main, strategy: bounded }\n",
            "  - { name: second, catalog: other, repository: second, strategy: bounded }\n",
            "notifications:\n  - { on: [failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\n",
            "metrics: { textfile: bcn.prom }\n",
        ),
    );
    // One of the source's data files never answers (a FIFO nobody writes: what a hung mount
    // looks like): without a timeout the run would never end, and nobody would hear of it.
    crate::support::hang(&src.dir.join("warehouse"), ".parquet");
    let run = apply(&ws, &[], &[]);
    let report = run.json();
    let entries = report["entries"].as_array().unwrap();
    assert_eq!(entries[0]["status"], "failed", "{report}");
    let error = entries[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("interrupted by its strategy's timeout (3s): the backup was stopped; nothing was committed"),
        "{error}"
    );
    assert_eq!(
        entries[1]["status"], "succeeded",
        "the next entry runs: {report}"
    );
    assert_eq!(run.code, 3, "a failed entry: {}", run.stderr);
    crate::support::assert_failed_run_notified_and_counted(&ws, "lake");
    assert!(
        !ws.path("repo/pits").exists()
            || crate::support::files_under(&ws.path("repo/pits")).is_empty()
    );
    assert!(!ws.path("repo/locks/exclusive.json").exists());
    // A scheduled verification that cannot finish within the timeout (a stored file that
    // never answers) is a failed verification, loud as one: `verify_failure`, exit 3.
    let ws = Workspace::new(
        &[&other],
        concat!(
            "repositories:\n  main: { location: repo }\n",
            "strategies:\n  s: { interval: 1d, timeout: 3s, verify: { interval: 1s, read_data: all } }\n",
            "backups:\n  - { name: lake, catalog: other, repository: main, strategy: s }\n",
            "notifications:\n  - { on: [verify_failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_EVENT >> events.txt\"] }\n",
        ),
    );
    assert_eq!(
        apply(&ws, &[], &[]).code,
        0,
        "the first run backs up and verifies"
    );
    crate::support::hang(&ws.path("repo/tables"), ".metadata.json");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = apply(&ws, &[], &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let entry = &run.json()["entries"][0];
    assert_eq!(entry["verification_failed"], true, "{entry}");
    assert!(
        entry["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(
                "verification could not run to its end: interrupted by its strategy's timeout (3s)"
            )),
        "{entry}"
    );
    assert_eq!(
        fs_err::read_to_string(ws.path("events.txt"))
            .unwrap()
            .trim(),
        "lake verify_failure"
    );

    // A timeout of zero is refused, naming where.
    let plan = fs_err::read_to_string(&ws.plan)
        .unwrap()
        .replace("timeout: 3s", "timeout: 0s");
    fs_err::write(&ws.plan, plan).unwrap();
    let run = apply(&ws, &[], &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("strategies.s.timeout"),
        "{}",
        run.stderr
    );
}
