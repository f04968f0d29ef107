//! Hostile names, tampered repositories and crash leftovers: whatever a catalog or a
//! repository holds, a restore writes only below its target, detects damage instead of obeying
//! it, and a killed run is followed by one that succeeds.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::support::{Lake, Workspace, files_under};

/// Every file below `dir`, as absolute paths.
fn snapshot(dir: &Path) -> BTreeSet<String> {
    files_under(dir)
        .into_iter()
        .map(|f| dir.join(f).display().to_string())
        .collect()
}

/// Files that appeared below `dir` since `before`, the `SQLite` catalog files excepted.
fn new_files(dir: &Path, before: &BTreeSet<String>) -> Vec<String> {
    snapshot(dir)
        .difference(before)
        .filter(|f| !f.contains("catalog.db"))
        .cloned()
        .collect()
}

fn named(lake: &Lake, namespace: &str, name: &str) -> Value {
    lake.py("dump-named", &["--namespace", namespace, "--name", name])
}

#[test]
fn hostile_table_names_back_up_and_never_restore_outside_their_target() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    let long = "x".repeat(255);
    let hostile = ["..", "../../escape", "a/b", "%2F"];
    let odd = ["données_été", long.as_str()];
    for name in hostile.iter().chain(&odd) {
        src.py("make-named", &["--namespace", "db", "--name", name]);
    }
    let ws = Workspace::new(&[&src, &dst], "");
    let backup = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let mut backed_up: Vec<String> = backup["pit"]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    backed_up.sort();
    let mut expected: Vec<String> = hostile
        .iter()
        .chain(&odd)
        .map(|n| (*n).to_owned())
        .collect();
    expected.sort();
    assert_eq!(
        backed_up, expected,
        "every table is backed up, names as they are"
    );

    let target = tmp.path().join("target");
    let target_url = format!("file://{}", target.display());
    let before = snapshot(tmp.path());

    // Restoring everything under its own name is refused before anything is written.
    let refused = ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--target-location",
        &target_url,
    ]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("cannot be restored under this name")
            && refused.stderr.contains("--target-table"),
        "the message names the problem and the way out: {}",
        refused.stderr
    );
    assert_eq!(new_files(tmp.path(), &before), Vec::<String>::new());

    // Each hostile table restores under a safe name, entirely below its target location.
    for (i, name) in hostile.iter().enumerate() {
        let safe = format!("safe_{i}");
        let before = snapshot(tmp.path());
        let run = ws.bcn(&[
            "restore",
            "--repo",
            "repo",
            "--table",
            &format!("db.{name}"),
            "--target-catalog",
            "dst",
            "--target-table",
            &safe,
            "--target-location",
            &target_url,
        ]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let inside = target.join("db").join(&safe).display().to_string();
        for file in new_files(tmp.path(), &before) {
            assert!(
                file.starts_with(&format!("{inside}/")),
                "{name}: {file} is outside {inside}"
            );
        }
        let (restored, source) = (named(&dst, "db", &safe), named(&src, "db", name));
        assert_eq!(restored["rows"], source["rows"], "{name}");
        assert_eq!(restored["snapshots"], source["snapshots"], "{name}");
    }

    // Unusual but placeable names restore under their own name.
    for name in odd {
        let run = ws.bcn(&[
            "restore",
            "--repo",
            "repo",
            "--table",
            &format!("db.{name}"),
            "--target-catalog",
            "dst",
            "--target-location",
            &target_url,
        ]);
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        assert_eq!(
            named(&dst, "db", name)["rows"],
            named(&src, "db", name)["rows"],
            "{name}"
        );
    }
}

#[test]
fn control_characters_in_a_name_fail_that_table_alone_named_and_explained() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    for name in ["plain", "tab\there", "nl\nhere"] {
        src.py("make-named", &["--namespace", "db", "--name", name]);
    }
    let ws = Workspace::new(
        &[&src, &dst],
        "repositories:\n  repo: { location: repo }\nstrategies:\n  s: { allow_partial: true }\nbackups:\n  - { name: lake, catalog: src, repository: repo, strategy: s }\n",
    );
    // iceberg-rust's file access drops control characters from paths, so these tables cannot
    // be read: each fails alone, named (escaped) and explained.
    let run = ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    for shown in ["db.tab\\there", "db.nl\\nhere"] {
        assert!(run.stderr.contains(shown), "{shown}: {}", run.stderr);
    }
    assert!(
        run.stderr
            .contains("the table's name holds a control character"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("- db.plain"), "{}", run.stderr);
    // With allow_partial the rest is committed, the two marked FAILED under their real names.
    let partial = ws.bcn_no_plan(&["apply", ws.plan.to_str().unwrap()]);
    assert_eq!(partial.code, 3, "{}", partial.stderr);
    let failed = &partial.json()["entries"][0]["backup"]["failed"];
    let kinds: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unsupported", "unsupported"], "{failed}");
    let listed = ws.bcn(&["list", "--repo", "repo"]).ok();
    let mut statuses: Vec<(String, String)> = listed["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            ("nl\nhere".to_owned(), "FAILED".to_owned()),
            ("plain".to_owned(), "NEW".to_owned()),
            ("tab\there".to_owned(), "FAILED".to_owned()),
        ]
    );
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--table",
        "db.plain",
        "--target-catalog",
        "dst",
    ])
    .ok();
    assert_eq!(
        named(&dst, "db", "plain")["rows"],
        named(&src, "db", "plain")["rows"]
    );
}

#[derive(Clone, Copy)]
enum Seal {
    Keep,
    New,
    Strip,
}

/// A backed-up table and the keys of its records.
struct Backed {
    tmp: tempfile::TempDir,
    src: Lake,
    dst: Lake,
    ws: Workspace,
    pit: String,
    key: String,
}

fn backed_up() -> Backed {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let out = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let pit = out["pit"]["id"].as_str().unwrap().to_owned();
    let key = out["pit"]["tables"][0]["key"].as_str().unwrap().to_owned();
    Backed {
        tmp,
        src,
        dst,
        ws,
        pit,
        key,
    }
}

impl Backed {
    fn filelist(&self) -> std::path::PathBuf {
        self.ws.path(&format!(
            "repo/tables/{}/filelists/{}.json",
            self.key, self.pit
        ))
    }

    fn pit_record(&self) -> std::path::PathBuf {
        self.ws.path(&format!("repo/pits/{}.json", self.pit))
    }

    /// Rewrites a record: with its old checksum (`Seal::Keep`, as damage would), a valid new
    /// one (`Seal::New`, as a tamperer would), or none (`Seal::Strip`).
    fn edit(file: &Path, seal: Seal, change: impl FnOnce(&mut Value)) {
        let mut doc: Value = serde_json::from_slice(&fs_err::read(file).unwrap()).unwrap();
        let old = doc.as_object_mut().unwrap().remove("checksum").unwrap();
        change(&mut doc);
        let bytes = match seal {
            Seal::New => bcn::repo::records::encode(&doc).to_vec(),
            Seal::Keep => {
                doc.as_object_mut().unwrap().insert("checksum".into(), old);
                serde_json::to_vec_pretty(&doc).unwrap()
            }
            Seal::Strip => serde_json::to_vec_pretty(&doc).unwrap(),
        };
        fs_err::write(file, bytes).unwrap();
    }

    fn restore(&self, target: &str) -> crate::support::Run {
        self.ws.bcn(&[
            "restore",
            "--repo",
            "repo",
            "--target-catalog",
            "dst",
            "--target-location",
            target,
        ])
    }

    fn part(&self) -> std::path::PathBuf {
        self.filelist().with_extension("0.jsonl")
    }

    /// Changes the first data file's entry of the file list: under the checksum the list
    /// records of its part (`reseal: false`, as damage would), or recording the changed part
    /// under a new checksum of the list (`reseal: true`, as a tamperer would).
    fn edit_data_entry(&self, reseal: bool, change: impl FnOnce(&mut Value)) {
        crate::support::edit_filelist_entries(&self.filelist(), reseal, |entries| {
            change(entries.iter_mut().find(|f| f["kind"] == "data").unwrap());
        });
    }
}

#[test]
fn tampered_or_damaged_records_are_detected_not_obeyed() {
    let b = backed_up();
    let target = b.tmp.path().join("target");
    let target_url = format!("file://{}", target.display());
    let pristine_list = fs_err::read(b.filelist()).unwrap();
    let pristine_part = fs_err::read(b.part()).unwrap();
    let pristine_pit = fs_err::read(b.pit_record()).unwrap();
    let restore_fails = |code: i32, needle: &str| {
        let before = snapshot(b.tmp.path());
        let run = b.restore(&target_url);
        assert_eq!(run.code, code, "{}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "expected `{needle}`: {}",
            run.stderr
        );
        assert!(!b.dst.exists("db1.events"), "nothing is registered");
        assert_eq!(
            new_files(b.tmp.path(), &before),
            Vec::<String>::new(),
            "every file written is removed again"
        );
        fs_err::write(b.filelist(), &pristine_list).unwrap();
        fs_err::write(b.part(), &pristine_part).unwrap();
        fs_err::write(b.pit_record(), &pristine_pit).unwrap();
        run
    };

    let one_character = |entry: &mut Value| {
        let path = entry["path"]
            .as_str()
            .unwrap()
            .replace(".parquet", ".parquez");
        entry["path"] = Value::String(path);
    };
    // One changed character in an entry (damage): the checksum the list records of the part
    // that holds it catches it, naming the part.
    b.edit_data_entry(false, one_character);
    let run = restore_fails(1, "is damaged: its content does not match the checksum");
    assert!(run.stderr.contains(".0.jsonl"), "{}", run.stderr);
    // One changed character in the list itself, under its old checksum.
    Backed::edit(&b.filelist(), Seal::Keep, |doc| {
        doc["location"] = Value::String(format!("{}z", doc["location"].as_str().unwrap()));
    });
    restore_fails(1, "is damaged: its content does not match the checksum");
    // The checksum removed: this repository writes every record with one.
    Backed::edit(&b.filelist(), Seal::Strip, |_| {});
    restore_fails(1, "it has no checksum");

    // The same change with a recomputed checksum: the restored metadata reaches a file that
    // is not there, so the table is not registered (it used to be, and exit 0).
    b.edit_data_entry(true, one_character);
    let run = restore_fails(1, "which is not at the target");
    assert!(run.stderr.contains("failed to restore"), "{}", run.stderr);
    assert!(
        !run.stderr.contains("no PIT was committed"),
        "{}",
        run.stderr
    );

    // A stored-file path that climbs out of the repository.
    b.edit_data_entry(true, |entry| {
        entry["rel"] = Value::String("../../../../../outside.parquet".into());
    });
    restore_fails(1, "invalid stored file path");

    // A table path that climbs out of the table location.
    let list: Value = serde_json::from_slice(&pristine_list).unwrap();
    let location = list["location"].as_str().unwrap().to_owned();
    b.edit_data_entry(true, |entry| {
        entry["path"] = Value::String(format!("{location}/../../../../escaped.parquet"));
    });
    restore_fails(1, "is outside the table location");

    // A table key that climbs out of `tables/`.
    Backed::edit(&b.pit_record(), Seal::New, |doc| {
        doc["tables"][0]["key"] = Value::String("../../../etc".into());
    });
    restore_fails(1, "invalid table key");

    // A table name that would climb out of the target location.
    Backed::edit(&b.pit_record(), Seal::New, |doc| {
        doc["tables"][0]["name"] = Value::String("../../../escaped".into());
    });
    restore_fails(2, "cannot be restored under this name");

    // Nothing left behind: the pristine repository restores.
    assert_eq!(b.restore(&target_url).code, 0);
    crate::support::assert_same_table(
        &b.dst.dump("db1.events"),
        &b.src.dump("db1.events"),
        "after the tampering attempts",
    );
}

#[test]
fn a_damaged_stored_file_is_named_with_the_side_that_disagrees() {
    let b = backed_up();
    let data = files_under(&b.ws.path(&format!("repo/tables/{}/files", b.key)))
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .unwrap();
    let path = b.ws.path(&format!("repo/tables/{}/files/{data}", b.key));
    let mut bytes = fs_err::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs_err::write(&path, bytes).unwrap();
    let run = b.restore(&format!("file://{}", b.tmp.path().join("t").display()));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "stored file tables/{}/files/{data} is damaged",
            b.key
        )) && run
            .stderr
            .contains("the file list (which passed its own check) records"),
        "{}",
        run.stderr
    );
    assert!(!b.dst.exists("db1.events"));
}

#[test]
fn a_killed_restore_is_followed_by_one_that_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.make_big(3, 6);
    let ws = Workspace::new(&[&src, &dst], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let args = [
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "dst",
        "--replace",
        "--output",
        "json",
    ];
    for delay_ms in [20, 60, 150, 300] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(ws.dir.path())
            .args(args)
            .arg("--config")
            .arg(&ws.plan)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let rerun = ws.bcn(&args[..6]);
        assert_eq!(
            rerun.code, 0,
            "a re-run after a kill at {delay_ms} ms: {}",
            rerun.stderr
        );
    }
    crate::support::assert_same_table(
        &dst.dump("db1.big"),
        &src.dump("db1.big"),
        "after killed restores",
    );
    assert!(
        !files_under(&dst.dir)
            .iter()
            .any(|f| f.ends_with(".parquet") && f.contains("bcn-tmp")),
        "no partial file under a final name"
    );
}

#[test]
fn gc_reclaims_temporary_files_of_killed_runs_and_describe_counts_them() {
    let b = backed_up();
    // What a process killed in the middle of a write leaves: temporary files, old enough.
    let dir = b.ws.path(&format!("repo/tables/{}/files/data", b.key));
    let mut planted = 0;
    for i in 0..3 {
        let path = dir.join(format!(".bcn-tmp-{i:032x}"));
        fs_err::write(&path, vec![7u8; 1000]).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        planted += 1000;
    }
    let described = b.ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert_eq!(described["incomplete"]["objects"], 3);
    assert_eq!(described["incomplete"]["bytes"], planted);

    let dry = b.ws.bcn_no_plan(&["gc", "--repo", "repo"]).ok();
    assert_eq!(dry["incomplete"].as_array().unwrap().len(), 3);
    assert!(
        dir.join(format!(".bcn-tmp-{:032x}", 0)).exists(),
        "a dry run deletes nothing"
    );
    let done =
        b.ws.bcn_no_plan(&["gc", "--repo", "repo", "--grace", "1h", "--yes"])
            .ok();
    assert_eq!(done["incomplete"].as_array().unwrap().len(), 3);
    assert!(
        !files_under(&b.ws.path("repo"))
            .iter()
            .any(|f| f.contains(".bcn-tmp-")),
        "gc removed every temporary file"
    );
    let after = b.ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert_eq!(after["incomplete"]["objects"], 0);
    // Referenced objects were left alone: the PIT still restores.
    assert_eq!(
        b.restore(&format!("file://{}", b.tmp.path().join("t").display()))
            .code,
        0
    );
}

#[test]
fn one_damaged_pit_record_does_not_hide_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let mut pits = Vec::new();
    for _ in 0..3 {
        let out = ws
            .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
            .ok();
        pits.push((
            out["pit"]["id"].as_str().unwrap().to_owned(),
            out["pit"]["started_at"].as_str().unwrap().to_owned(),
        ));
        src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    }
    let damaged_key = format!("pits/{}.json", pits[1].0);
    fs_err::write(
        ws.path(&format!("repo/{damaged_key}")),
        b"{\"format_version\": 1, ",
    )
    .unwrap();

    let described = ws.bcn_no_plan(&["describe", "--repo", "repo"]).ok();
    assert_eq!(described["pits"].as_array().unwrap().len(), 2);
    assert_eq!(described["damaged"][0]["id"], pits[1].0.as_str());
    assert!(
        described["damaged"][0]["reason"]
            .as_str()
            .unwrap()
            .contains(&damaged_key)
    );
    let listed = ws
        .bcn_no_plan(&["list", "--repo", "repo", "--pit", "latest"])
        .ok();
    assert_eq!(listed["pit"], pits[2].0.as_str());
    let diff = ws
        .bcn_no_plan(&["diff", "--repo", "repo", &pits[0].0, &pits[2].0])
        .ok();
    assert_eq!(diff["changed"].as_array().unwrap().len(), 1);
    // A time that falls on the damaged PIT resolves to the newest readable one before it.
    let restored = ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--pit",
        &pits[1].1,
        "--target-catalog",
        "dst",
    ]);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(restored.json()["report"]["pit"], pits[0].0.as_str());
    assert!(
        restored.stderr.contains("passing over a damaged PIT"),
        "{}",
        restored.stderr
    );
    // forget keeps working on the readable PITs and leaves the damaged record alone.
    let forgot = ws
        .bcn_no_plan(&["forget", "--repo", "repo", "--keep-last", "1", "--yes"])
        .ok();
    assert_eq!(forgot["forgotten"], serde_json::json!([pits[0].0]));
    assert_eq!(forgot["damaged"], serde_json::json!([pits[1].0]));
    assert!(ws.path(&format!("repo/{damaged_key}")).exists());
    // gc fails closed, exit 1 like every other command on a damaged repository.
    let gc = ws.bcn_no_plan(&["gc", "--repo", "repo", "--yes"]);
    assert_eq!(gc.code, 1, "{}", gc.stderr);
    assert!(
        gc.stderr.contains(&damaged_key) && gc.stderr.contains("nothing was deleted"),
        "{}",
        gc.stderr
    );
    assert!(!ws.path("repo/locks/exclusive.json").exists());
}

#[test]
fn durations_out_of_range_are_refused_and_leave_no_lock() {
    let b = backed_up();
    let run =
        b.ws.bcn_no_plan(&["gc", "--repo", "repo", "--grace", "1000000y", "--yes"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("longer than the longest"),
        "{}",
        run.stderr
    );
    assert!(!b.ws.path("repo/locks/exclusive.json").exists());
}

#[test]
fn a_closed_output_stream_never_panics_and_a_dead_holders_lock_is_taken_over() {
    let b = backed_up();
    let script = format!(
        "set -o pipefail; '{bcn}' -v backup --catalog src --repo repo --config '{plan}' 2>&1 | head -c 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        bcn = env!("CARGO_BIN_EXE_bcn"),
        plan = b.ws.plan.display()
    );
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(b.ws.dir.path())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(status, "0", "bcn's own exit status with a closed pipe");
    assert!(!b.ws.path("repo/locks/exclusive.json").exists());

    // A lock whose holder died on this host (kill -9) does not block the next run.
    let host = fs_err::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned();
    let now = bcn::context::Context::system().now().to_rfc3339();
    let lock = serde_json::json!({
        "format_version": 1, "run_id": "killed-run", "host": host, "pid": 4_194_304,
        "command": "backup", "created_at": now, "heartbeat_at": now, "ttl_seconds": 300
    });
    fs_err::write(b.ws.path("repo/locks/exclusive.json"), lock.to_string()).unwrap();
    let next = b.ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(
        next.stderr.contains("taking over a stale repository lock")
            && next.stderr.contains("killed-run"),
        "{}",
        next.stderr
    );
    assert!(!b.ws.path("repo/locks/exclusive.json").exists());
}

#[test]
fn a_non_empty_directory_is_not_made_a_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src], "");
    fs_err::create_dir_all(ws.path("docs")).unwrap();
    fs_err::write(ws.path("docs/notes.txt"), "mine").unwrap();
    let run = ws.bcn(&["backup", "--catalog", "src", "--repo", "docs"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("it is not empty and holds no bcn repository"),
        "{}",
        run.stderr
    );
    assert_eq!(files_under(&ws.path("docs")), vec!["notes.txt".to_owned()]);
}

#[test]
fn commands_resolve_only_the_references_they_use() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(
        &[&src, &dst],
        "notifications:\n  - { on: [failure], webhook: { url: \"http://127.0.0.1:9/hook\", headers: { Authorization: \"Bearer ${BCN_TEST_NEVER_SET_TOKEN}\" } } }\n",
    );
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "dst"])
        .ok();
    ws.bcn(&["list", "--repo", "repo"]).ok();
    // A command that does use it still says what is missing.
    let apply = ws.bcn_no_plan(&["apply", "--dry-run", ws.plan.to_str().unwrap()]);
    assert_ne!(apply.code, 0);
    assert!(
        apply.stderr.contains("BCN_TEST_NEVER_SET_TOKEN"),
        "{}",
        apply.stderr
    );
}

#[test]
fn hostile_names_come_back_in_place_exactly_where_they_were() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let hostile = ["..", "../../escape", "a/b", "%2F", "données_été"];
    for name in hostile {
        src.py("make-named", &["--namespace", "db", "--name", name]);
    }
    let before: Vec<Value> = hostile.iter().map(|n| named(&src, "db", n)).collect();
    let original = snapshot(tmp.path());
    let ws = Workspace::new(&[&src], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    // Everything the tables had is lost: the warehouse, the directory `../../escape` reached,
    // and the catalog database.
    fs_err::remove_dir_all(src.dir.join("warehouse")).unwrap();
    fs_err::remove_dir_all(src.dir.join("escape")).unwrap();
    fs_err::remove_file(src.dir.join("catalog.db")).unwrap();
    ws.bcn(&[
        "restore",
        "--repo",
        "repo",
        "--target-catalog",
        "src",
        "--original-location",
    ])
    .ok();
    for (name, was) in hostile.iter().zip(&before) {
        let now = named(&src, "db", name);
        assert_eq!(now["rows"], was["rows"], "{name}");
        assert_eq!(
            now["location"], was["location"],
            "{name}: at its own location"
        );
    }
    // Every data and manifest file is back exactly where it was; besides them only the new
    // metadata files of the restore (and the catalog) appeared.
    let now = snapshot(tmp.path());
    for file in original
        .iter()
        .filter(|f| !f.ends_with(".metadata.json") && !f.contains("catalog.db"))
    {
        assert!(now.contains(file), "{file} is back");
    }
    for file in now.difference(&original) {
        assert!(
            file.ends_with(".metadata.json")
                || file.contains("catalog.db")
                || file.contains(ws.dir.path().to_str().unwrap()),
            "{file} was not there before"
        );
    }
}
