//! `bcn apply`: categories (ephemeral, ignore, excluded), interval and `--force`, retention
//! and gc, one failing entry among others, locks, secrets, reports, and notifications received
//! by a real HTTP listener and a real command.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use serde_json::Value;

use crate::support::{Lake, Workspace, assert_same_table, files_under, pit_statuses};

fn entry<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["entry"] == name)
        .unwrap_or_else(|| panic!("no entry {name} in {report}"))
}

fn status_of(list: &Value, table: &str) -> Option<String> {
    pit_statuses(list)
        .into_iter()
        .find(|(name, _)| name == table)
        .map(|(_, status)| status)
}

#[test]
fn categories_keep_structure_only_ignore_and_exclude() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,users"],
    );
    src.py(
        "make-sample",
        &["--namespace", "staging", "--tables", "users"],
    );
    src.py("make-sample", &["--namespace", "tmp", "--tables", "events"]);
    let entries = "backups:\n  - name: lake\n    catalog: src\n    repository: main\nrepositories:\n  main:\n    location: repo\n";
    let ws = Workspace::new(
        &[&src, &dst],
        &format!("{entries}categories:\n  ephemeral: [\"staging.*\"]\n  ignore: [\"tmp.*\"]\n"),
    );
    let first = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap()]).ok();
    assert_eq!(entry(&first, "lake")["status"], "succeeded");
    let list = ws.bcn_no_plan(&["list", "--repo", "repo"]).ok();
    assert_eq!(
        status_of(&list, "staging.users").as_deref(),
        Some("STRUCTURE_ONLY")
    );
    assert_eq!(status_of(&list, "db1.users").as_deref(), Some("NEW"));
    assert_eq!(
        status_of(&list, "tmp.events"),
        None,
        "ignored tables are never listed"
    );
    let staging_key = list["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["database"][0] == "staging")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        files_under(&ws.path(&format!("repo/tables/{staging_key}/files"))).is_empty(),
        "structure only: no data copied"
    );

    // The ephemeral table comes back empty, with its schema and partition spec.
    let source = src.dump("staging.users");
    let restore_staging = |location: &str, extra: &[&str]| {
        let location = tmp.path().join(location);
        let mut args = vec!["restore", "--repo", "repo", "--table", "staging.users"];
        args.extend(["--target-catalog", "dst"]);
        args.extend(["--target-location", location.to_str().unwrap()]);
        args.extend_from_slice(extra);
        ws.bcn(&args)
    };
    restore_staging("r", &[]).ok();
    let restored = dst.dump("staging.users");
    assert_eq!(restored["row_count"], 0);
    assert_eq!(restored["snapshots"], serde_json::json!([]));
    let current = |d: &Value| {
        d["schemas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["schema-id"] == d["current_schema_id"])
            .unwrap()["fields"]
            .clone()
    };
    assert_eq!(current(&restored), current(&source));
    assert_eq!(restored["partition_specs"], source["partition_specs"]);

    // A replace whose new table cannot be created (its location lies under a regular file)
    // fails and puts the table it replaced back: nothing is lost.
    fs_err::write(tmp.path().join("not-a-dir"), "x").unwrap();
    let failed = restore_staging("not-a-dir/r", &["--replace"]);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    assert!(
        failed.stderr.contains("the replaced table was put back"),
        "{}",
        failed.stderr
    );
    let kept = dst.dump("staging.users");
    assert_eq!(
        kept["location"], restored["location"],
        "the old table is back"
    );
    assert_eq!(current(&kept), current(&source));

    // db1.users moves to `ignore`: it is EXCLUDED, not DELETED.
    let ws2_plan = ws.path("plan2.yaml");
    let text = fs_err::read_to_string(&ws.plan)
        .unwrap()
        .replace("ignore: [\"tmp.*\"]", "ignore: [\"tmp.*\", \"db1.users\"]");
    fs_err::write(&ws2_plan, text).unwrap();
    let dry = ws
        .bcn_no_plan(&["apply", ws2_plan.to_str().unwrap(), "--dry-run"])
        .ok();
    let actions = entry(&dry, "lake")["actions"].as_array().unwrap().clone();
    let action = |table: &str| {
        actions
            .iter()
            .find(|a| a["table"] == table)
            .map(|a| a["action"].as_str().unwrap().to_owned())
    };
    assert_eq!(action("db1.users").as_deref(), Some("excluded"));
    assert_eq!(action("tmp.events").as_deref(), Some("ignored"));
    assert_eq!(action("db1.events").as_deref(), Some("unchanged"));
    ws.bcn_no_plan(&["apply", ws2_plan.to_str().unwrap()]).ok();
    let list = ws.bcn_no_plan(&["list", "--repo", "repo"]).ok();
    assert_eq!(status_of(&list, "db1.users").as_deref(), Some("EXCLUDED"));
}

#[test]
fn interval_force_retention_and_gc_keep_every_referenced_file() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let extra = "repositories:\n  main:\n    location: repo\nstrategies:\n  daily:\n    interval: 1d\n    retention:\n      keep_last: 2\nbackups:\n  - name: lake\n    catalog: src\n    repository: main\n    strategy: daily\n";
    let ws = Workspace::new(&[&src, &dst], extra);
    let plan = ws.plan.to_str().unwrap();
    let apply = |args: &[&str]| {
        let mut all = vec!["apply", plan];
        all.extend_from_slice(args);
        ws.bcn_no_plan(&all).ok()
    };
    assert_eq!(entry(&apply(&[]), "lake")["status"], "succeeded");
    let skipped = apply(&[]);
    assert_eq!(entry(&skipped, "lake")["status"], "skipped");
    assert!(
        entry(&skipped, "lake")["due_reason"]
            .as_str()
            .unwrap()
            .contains("interval 1day"),
        "{skipped}"
    );
    for _ in 0..2 {
        src.py("mutate", &["--table", "db1.events", "--op", "append"]);
        let forced = apply(&["--force"]);
        assert_eq!(entry(&forced, "lake")["status"], "succeeded");
    }
    let last = apply(&["--force"]);
    let forgotten = entry(&last, "lake")["retention"]["forgotten"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(forgotten, 1, "keep_last 2: each run forgets the oldest");
    let pits = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok()["pits"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(pits, 2);

    // gc removes what only forgotten PITs referenced, and nothing a kept PIT needs.
    let dry = ws
        .bcn_no_plan(&["gc", "--repo", "repo", "--grace", "0s"])
        .ok();
    assert!(!dry["unreferenced"].as_array().unwrap().is_empty(), "{dry}");
    let before = files_under(&ws.path("repo"));
    assert_eq!(
        files_under(&ws.path("repo")),
        before,
        "gc without --yes deletes nothing"
    );
    let young = ws.bcn_no_plan(&["gc", "--repo", "repo", "--yes"]).ok();
    assert_eq!(
        young["unreferenced"],
        serde_json::json!([]),
        "the default grace period spares fresh files"
    );
    let done = ws
        .bcn_no_plan(&["gc", "--repo", "repo", "--grace", "0s", "--yes"])
        .ok();
    assert!(done["bytes"].as_u64().unwrap() > 0);
    // A forgotten PIT's file lists go with their parts; only the list the two kept PITs
    // share (the table did not change between them) remains, with its part.
    let lists = |suffix: &str| {
        files_under(&ws.path("repo/tables"))
            .iter()
            .filter(|f| f.contains("/filelists/") && f.ends_with(suffix))
            .count()
    };
    assert_eq!((lists(".json"), lists(".0.jsonl")), (1, 1), "{done}");
    assert!(done.to_string().contains(".0.jsonl"), "{done}");
    for gone in done["unreferenced"].as_array().unwrap() {
        assert!(
            !ws.path(&format!("repo/{}", gone["key"].as_str().unwrap()))
                .exists()
        );
    }
    let expected = src.dump("db1.events");
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
    assert_same_table(&dst.dump("db1.events"), &expected, "restored after gc");
    // The older kept PIT still restores too.
    let older = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok()["pits"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--pit",
        &older,
        "--target-catalog",
        "dst",
        "--target-database",
        "older",
        "--target-location",
        tmp.path().join("r2").to_str().unwrap(),
    ])
    .ok();
    assert!(dst.dump("older.events")["row_count"].as_u64().unwrap() > 0);
}

#[test]
fn one_failing_entry_does_not_stop_the_others_and_locks_give_75() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let extra = "  broken:\n    type: sql\n    uri: sqlite://missing/catalog.db\nrepositories:\n  a:\n    location: repo-a\n  b:\n    location: repo-b\nbackups:\n  - name: broken\n    catalog: broken\n    repository: a\n  - name: good\n    catalog: src\n    repository: b\n";
    let ws = Workspace::new(&[&src], extra);
    let run = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.json();
    assert_eq!(entry(&report, "broken")["status"], "failed");
    assert!(
        entry(&report, "broken")["error"]
            .as_str()
            .unwrap()
            .contains("missing/catalog.db does not exist")
    );
    assert_eq!(entry(&report, "good")["status"], "succeeded");
    assert!(run.stderr.contains("entry `broken`"), "{}", run.stderr);

    // Only the good entry, with its repository locked by a live process: 75.
    let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let now = bcn::context::Context::system().now().to_rfc3339();
    let lock = serde_json::json!({"format_version": 1, "run_id": "r", "host": host, "pid": std::process::id(),
        "command": "backup", "created_at": now, "heartbeat_at": now, "ttl_seconds": 300});
    fs_err::create_dir_all(ws.path("repo-b/locks")).unwrap();
    fs_err::write(ws.path("repo-b/locks/exclusive.json"), lock.to_string()).unwrap();
    let locked = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap(), "--only", "good"]);
    assert_eq!(locked.code, 75, "{}", locked.stderr);
    assert_eq!(entry(&locked.json(), "good")["status"], "locked");
    let unknown = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap(), "--only", "nope"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown.stderr.contains("the plan has no entry `nope`"),
        "{}",
        unknown.stderr
    );
    // How to fix it comes apart in the JSON document, for programs that drive bcn.
    let error = &unknown.json()["error"];
    assert!(
        error["hint"].as_str().is_some_and(|h| h.contains("good")),
        "{error}"
    );
}

/// A one-shot HTTP server on loopback that records each request's head and body.
fn listener(requests: usize) -> (String, mpsc::Receiver<(String, String)>) {
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in server.incoming().take(requests) {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            tx.send((head, String::from_utf8(body).unwrap())).unwrap();
        }
    });
    (url, rx)
}

#[test]
fn notifications_reach_a_webhook_and_a_command_and_secrets_stay_out_of_output() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let (url, received) = listener(2);
    let secret = "s3cr3t-token-4711";
    fs_err::write(tmp.path().join("hook-secret"), format!("{secret}\n")).unwrap();
    let extra = format!(
        "repositories:\n  main:\n    location: repo\nbackups:\n  - name: nightly\n    catalog: src\n    repository: main\n\
         reports:\n  - template: markdown\n    output: \"reports/{{{{entry}}}}-{{{{date}}}}.md\"\n  - template: text\n    output: reports/{{{{entry}}}}.txt\n\
         notifications:\n  - on: [start, success]\n    webhook:\n      url: \"{url}?key=${{BCN_TEST_HOOK_KEY}}\"\n      headers:\n        Authorization: \"Bearer ${{file:{}}}\"\n\
         \x20 - on: [success]\n    command: [\"sh\", \"-c\", \"cat > {}; echo $BCN_EVENT $BCN_ENTRY $BCN_STATUS > {}\"]\n",
        tmp.path().join("hook-secret").display(),
        tmp.path().join("hook-stdin.json").display(),
        tmp.path().join("hook-env.txt").display(),
    );
    let ws = Workspace::new(&[&src], &extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args(["-vv", "apply", ws.plan.to_str().unwrap()])
        .env("BCN_TEST_HOOK_KEY", secret)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");

    let (start_head, start_body) = received
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    let (success_head, success_body) = received
        .recv_timeout(std::time::Duration::from_secs(30))
        .unwrap();
    assert!(
        start_head.starts_with(&format!("POST /hook?key={secret} ")),
        "{start_head}"
    );
    assert!(
        success_head
            .to_ascii_lowercase()
            .contains(&format!("authorization: bearer {secret}")),
        "{success_head}"
    );
    let start: Value = serde_json::from_str(&start_body).unwrap();
    let success: Value = serde_json::from_str(&success_body).unwrap();
    assert_eq!(start["entry"], "nightly");
    assert_eq!(success["status"], "succeeded");
    assert_eq!(success["backup"]["pit"]["tables"][0]["name"], "events");

    let hook_env = fs_err::read_to_string(tmp.path().join("hook-env.txt")).unwrap();
    assert_eq!(hook_env.trim(), "success nightly succeeded");
    let hook_stdin: Value =
        serde_json::from_str(&fs_err::read_to_string(tmp.path().join("hook-stdin.json")).unwrap())
            .unwrap();
    assert_eq!(hook_stdin["entry"], "nightly");

    let reports: Vec<String> = files_under(&ws.path("reports"));
    assert_eq!(reports.len(), 2, "{reports:?}");
    let markdown = fs_err::read_to_string(
        ws.path("reports")
            .join(reports.iter().find(|r| r.ends_with(".md")).unwrap()),
    )
    .unwrap();
    assert!(
        markdown.contains("## bcn: `nightly` — succeeded"),
        "{markdown}"
    );
    for (what, text) in [
        ("stdout", stdout.to_string()),
        ("stderr", stderr.to_string()),
        ("markdown report", markdown),
    ] {
        assert!(!text.contains(secret), "the secret leaked into {what}");
    }
    let text_report = fs_err::read_to_string(ws.path("reports/nightly.txt")).unwrap();
    assert!(!text_report.contains(secret));
}
