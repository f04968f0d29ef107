//! `bcn verify`: damage of every kind is found and named, the rest keeps restoring, and
//! `--subset K/T` reads every file once over T runs. Sources are written by pyiceberg.

use serde_json::Value;

use crate::support::{Lake, MOTO_VARS, Services, Workspace, files_under, unique};

/// A lake with a partitioned table backed up twice (an append between) into `repo`.
struct Setup {
    _tmp: tempfile::TempDir,
    dst: Lake,
    ws: Workspace,
    pits: Vec<String>,
    key: String,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(&[&src, &dst], "");
    let mut pits = Vec::new();
    let mut key = String::new();
    for _ in 0..2 {
        let out = ws
            .bcn(&["backup", "--catalog", "src", "--repo", "repo"])
            .ok();
        pits.push(out["pit"]["id"].as_str().unwrap().to_owned());
        out["pit"]["tables"][0]["key"]
            .as_str()
            .unwrap()
            .clone_into(&mut key);
        src.py("mutate", &["--table", "db1.events", "--op", "append"]);
    }
    Setup {
        _tmp: tmp,
        dst,
        ws,
        pits,
        key,
    }
}

impl Setup {
    fn verify(&self, extra: &[&str]) -> (i32, Value, String) {
        let mut args = vec!["verify", "--repo", "repo"];
        args.extend_from_slice(extra);
        let run = self.ws.bcn_no_plan(&args);
        (run.code, run.json(), run.stderr)
    }

    /// Stored files of the table whose name ends with `suffix` (under `files/`).
    fn stored(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        files_under(&self.ws.path(&format!("repo/tables/{}/files", self.key)))
            .into_iter()
            .filter(|f| pred(f))
            .map(|f| format!("tables/{}/files/{f}", self.key))
            .collect()
    }

    fn path(&self, key: &str) -> std::path::PathBuf {
        self.ws.path(&format!("repo/{key}"))
    }

    fn flip(&self, key: &str) -> Vec<u8> {
        let original = fs_err::read(self.path(key)).unwrap();
        let mut bytes = original.clone();
        let i = bytes.len() - 40.min(bytes.len() / 2);
        bytes[i] ^= 0x55;
        fs_err::write(self.path(key), bytes).unwrap();
        original
    }

    fn problems(report: &Value) -> Vec<(String, String)> {
        report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["key"].as_str().unwrap_or_default().to_owned(),
                    p["problem"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn restore_first_pit(&self) {
        let out = self.ws.bcn(&[
            "restore",
            "--repo",
            "repo",
            "--pit",
            &self.pits[0],
            "--target-catalog",
            "dst",
            "--replace",
        ]);
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
}

#[test]
fn a_clean_repository_verifies_and_read_data_checks_every_file() {
    let s = setup();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["pits"].as_array().unwrap().len(), 2);
    assert!(report["manifests_read"].as_u64().unwrap() >= 2);
    assert_eq!(report["reclaimable"]["objects"], 0);
    let (code, report, _) = s.verify(&["--read-data"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["files_read"], report["files_checked"]);
    assert_eq!(report["bytes_read"], report["bytes_checked"]);

    // Three fixed slices read every file exactly once between them.
    let total = report["files_checked"].as_u64().unwrap();
    let mut read = 0;
    for k in 1..=3 {
        let (code, r, _) = s.verify(&["--read-data", "--subset", &format!("{k}/3")]);
        assert_eq!(code, 0);
        let n = r["files_read"].as_u64().unwrap();
        assert!(n < total, "slice {k}/3 read {n} of {total}");
        read += n;
    }
    assert_eq!(read, total);
    let bad =
        s.ws.bcn_no_plan(&["verify", "--repo", "repo", "--read-data", "--subset", "4/3"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn flipped_bytes_are_found_by_read_data_only_and_named() {
    let s = setup();
    let data = s.stored(|f| f.ends_with(".parquet"))[0].clone();
    let manifest = s.stored(|f| f.ends_with("-m0.avro"))[0].clone();
    let list = s.stored(|f| f.contains("/snap-"))[0].clone();
    for key in [&data, &manifest, &list] {
        let original = s.flip(key);
        let (code, report, stderr) = s.verify(&["--read-data"]);
        assert_eq!(code, 1, "{key}: {report}");
        assert!(stderr.contains("problem"), "{stderr}");
        assert!(
            Setup::problems(&report)
                .iter()
                .any(|(k, p)| k == key && p.contains("is damaged: its content has SHA-256")),
            "{key}: {report}"
        );
        assert!(
            report["problems"][0]["hint"]
                .as_str()
                .unwrap()
                .contains("--full")
        );
        if key == &data {
            // Same size, still parses: the structure check cannot see it.
            assert_eq!(s.verify(&[]).0, 0);
        }
        fs_err::write(s.path(key), original).unwrap();
    }
    assert_eq!(s.verify(&["--read-data"]).0, 0);
}

#[test]
fn missing_truncated_and_unknown_files_and_damaged_records_are_each_named() {
    let s = setup();
    let data = s.stored(|f| f.ends_with(".parquet"));

    // A truncated file, a deleted file.
    let truncated = &data[0];
    let original = fs_err::read(s.path(truncated)).unwrap();
    fs_err::write(s.path(truncated), &original[..original.len() / 2]).unwrap();
    let deleted = &data[1];
    let deleted_bytes = fs_err::read(s.path(deleted)).unwrap();
    fs_err::remove_file(s.path(deleted)).unwrap();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1, "{report}");
    let problems = Setup::problems(&report);
    assert!(
        problems
            .iter()
            .any(|(k, p)| k == truncated && p.contains("bytes, its file list records")),
        "{report}"
    );
    assert!(
        problems
            .iter()
            .any(|(k, p)| k == deleted && p.contains("is missing")),
        "{report}"
    );
    assert!(
        report["problems"][0]["pit"].is_string() && report["problems"][0]["table"] == "db1.events"
    );
    fs_err::write(s.path(truncated), &original).unwrap();
    fs_err::write(s.path(deleted), &deleted_bytes).unwrap();

    // An unknown extra object is not damage: gc can reclaim it.
    let extra = format!("tables/{}/files/data/stray.parquet", s.key);
    fs_err::write(s.path(&extra), b"stray").unwrap();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["reclaimable"]["objects"], 1);
    assert_eq!(report["reclaimable"]["bytes"], 5);
    fs_err::remove_file(s.path(&extra)).unwrap();

    // Damaged stored metadata, then a damaged file list.
    let metadata = format!("tables/{}/metadata/{}.metadata.json", s.key, s.pits[1]);
    let original = s.flip(&metadata);
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1);
    assert!(
        Setup::problems(&report)
            .iter()
            .any(|(k, p)| *k == metadata && p.contains("does not match the SHA-256")),
        "{report}"
    );
    fs_err::write(s.path(&metadata), original).unwrap();
    let list = format!("tables/{}/filelists/{}.json", s.key, s.pits[1]);
    let part = format!("tables/{}/filelists/{}.0.jsonl", s.key, s.pits[1]);
    let pristine = fs_err::read(s.path(&list)).unwrap();
    let pristine_part = fs_err::read(s.path(&part)).unwrap();
    crate::support::edit_filelist_entries(&s.path(&list), false, |entries| {
        entries[0]["size"] = Value::from(1);
    });
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        Setup::problems(&report)
            .iter()
            .any(|(k, p)| *k == list && p.contains(&format!("{part} is damaged"))),
        "{report}"
    );
    assert_eq!(
        report["reclaimable"],
        Value::Null,
        "unknown while a file list is unreadable"
    );
    // A part that is gone is named too.
    fs_err::remove_file(s.path(&part)).unwrap();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1, "{report}");
    assert!(
        Setup::problems(&report)
            .iter()
            .any(|(k, p)| *k == list && p.contains(&part)),
        "{report}"
    );
    fs_err::write(s.path(&part), &pristine_part).unwrap();

    // A file list that lost an entry the metadata references (resealed, so only the walk of
    // the stored metadata can tell).
    let mut lost_path = String::new();
    crate::support::edit_filelist_entries(&s.path(&list), true, |entries| {
        let index = entries.iter().position(|f| f["kind"] == "data").unwrap();
        lost_path = entries.remove(index)["path"].as_str().unwrap().to_owned();
    });
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1);
    assert!(
        Setup::problems(&report)
            .iter()
            .any(|(k, p)| *k == list && p.contains(&lost_path) && p.contains("does not hold")),
        "{report}"
    );
    fs_err::write(s.path(&list), &pristine).unwrap();
    fs_err::write(s.path(&part), &pristine_part).unwrap();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 0, "the pristine list and part verify: {report}");

    // A damaged PIT record: named, and every other PIT is still verified and restores.
    let pit_key = format!("pits/{}.json", s.pits[1]);
    fs_err::write(s.path(&pit_key), b"{\"format_version\": 1,").unwrap();
    let (code, report, _) = s.verify(&[]);
    assert_eq!(code, 1);
    assert_eq!(report["pits"], serde_json::json!([s.pits[0]]));
    assert!(
        Setup::problems(&report).iter().any(|(k, _)| *k == pit_key),
        "{report}"
    );
    assert!(
        report["reclaimable"].is_null(),
        "unknown while a record is unreadable"
    );
    s.restore_first_pit();
    assert_eq!(
        s.dst.dump("db1.events")["row_count"],
        8,
        "the first PIT restores, read back by pyiceberg: the sample's rows"
    );
}

#[test]
fn verify_finds_damage_in_an_s3_repository() {
    let Some(svc) = Services::require("verify_finds_damage_in_an_s3_repository", MOTO_VARS) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let bucket = unique("bcn-verify-");
    svc.create_moto_bucket(&bucket);
    let repo = format!(
        "repositories:\n  s3repo:\n    location: s3://{bucket}/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{BCN_TEST_MOTO_ACCESS_KEY}}\"\n      secret_access_key: \"${{BCN_TEST_MOTO_SECRET_KEY}}\"\n",
        endpoint = svc.get(crate::support::MOTO_ENDPOINT),
        region = svc.get(crate::support::MOTO_REGION),
    );
    let ws = Workspace::new(&[&src], &repo);
    let out = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "s3repo"])
        .ok();
    let key = out["pit"]["tables"][0]["key"].as_str().unwrap().to_owned();
    let clean = ws.bcn(&["verify", "--repo", "s3repo", "--read-data"]).ok();
    assert_eq!(clean["files_read"], clean["files_checked"]);

    // Damage two objects with boto3: one deleted, one overwritten (same size, flipped byte).
    let script = "import sys, boto3\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='x', aws_secret_access_key='x', region_name=sys.argv[2])\n\
        keys = sorted(o['Key'] for o in s3.list_objects_v2(Bucket=sys.argv[3], Prefix=sys.argv[4])['Contents'] if o['Key'].endswith('.parquet'))\n\
        s3.delete_object(Bucket=sys.argv[3], Key=keys[0])\n\
        body = bytearray(s3.get_object(Bucket=sys.argv[3], Key=keys[1])['Body'].read())\n\
        body[len(body) // 2] ^= 0x55\n\
        s3.put_object(Bucket=sys.argv[3], Key=keys[1], Body=bytes(body))\n\
        print(keys[0]); print(keys[1])\n";
    let damaged = std::process::Command::new(crate::support::python())
        .args([
            "-c",
            script,
            svc.get(crate::support::MOTO_ENDPOINT),
            svc.get(crate::support::MOTO_REGION),
            &bucket,
            &format!("repo/tables/{key}/files/"),
        ])
        .output()
        .unwrap();
    assert!(
        damaged.status.success(),
        "{}",
        String::from_utf8_lossy(&damaged.stderr)
    );
    let keys: Vec<String> = String::from_utf8_lossy(&damaged.stdout)
        .lines()
        .map(|k| k.trim_start_matches("repo/").to_owned())
        .collect();
    let run = ws.bcn(&["verify", "--repo", "s3repo", "--read-data"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let problems: Vec<(String, String)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().to_owned(),
                p["problem"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        problems
            .iter()
            .any(|(k, p)| *k == keys[0] && p.contains("is missing")),
        "{report}"
    );
    assert!(
        problems
            .iter()
            .any(|(k, p)| *k == keys[1] && p.contains("is damaged")),
        "{report}"
    );
}

#[test]
fn a_backup_after_verify_found_damage_copies_the_file_again() {
    let s = setup();
    let data = s.stored(|f| f.ends_with(".parquet"))[0].clone();
    s.flip(&data);
    let (code, report, _) = s.verify(&["--read-data"]);
    assert_eq!(code, 1, "{report}");
    // The table is unchanged since the last PIT: only the damage marker makes the backup
    // walk it again, and the damaged copy is replaced, not reused.
    let out =
        s.ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
            .ok();
    assert!(out["pit"]["summary"]["files_added"].as_u64().unwrap() >= 1);
    assert!(
        files_under(&s.ws.path("repo/damaged")).is_empty(),
        "the marker is gone"
    );
    let (code, report, _) = s.verify(&["--read-data"]);
    assert_eq!(
        code, 0,
        "every PIT that shares the file is healed: {report}"
    );
}

#[test]
fn repair_heals_from_the_live_table_and_refuses_a_live_file_that_differs() {
    let s = setup();
    let data = s.stored(|f| f.ends_with(".parquet"));
    s.flip(&data[0]);
    let repair = |s: &Setup| {
        s.ws.bcn(&["verify", "--repo", "repo", "--read-data", "--repair"])
    };
    let healed = repair(&s);
    assert_eq!(healed.code, 0, "{}", healed.stderr);
    assert_eq!(healed.json()["repaired"], serde_json::json!([data[0]]));
    assert_eq!(s.verify(&["--read-data"]).0, 0);
    assert!(!s.ws.path("repo/locks/exclusive.json").exists());

    // The stored copy damaged and the live file changed too: nothing is replaced.
    s.flip(&data[1]);
    let entry =
        s.ws.bcn_no_plan(&["verify", "--repo", "repo", "--read-data"])
            .json()["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .to_owned();
    let live = entry
        .split(" (file://")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .map(|path| format!("/{}", path.trim_start_matches('/')))
        .unwrap();
    let mut bytes = fs_err::read(&live).unwrap();
    bytes[10] ^= 0x01;
    fs_err::write(&live, bytes).unwrap();
    let refused = repair(&s);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let report = refused.json();
    assert!(
        report["unrepaired"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("no longer has the recorded content"),
        "{report}"
    );
    assert_eq!(report["repaired"], Value::Null);
}

#[test]
fn backups_keep_running_past_a_damaged_newest_pit_and_name_it() {
    let s = setup();
    let damaged = format!("pits/{}.json", s.pits[1]);
    fs_err::write(s.path(&damaged), b"not json").unwrap();
    let out =
        s.ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
            .ok();
    assert_eq!(out["damaged_pits"], serde_json::json!([s.pits[1]]));
    assert_eq!(
        out["pit"]["parent"],
        s.pits[0].as_str(),
        "compared against the newest readable PIT"
    );
    let new_pit = out["pit"]["id"].as_str().unwrap();
    assert!(
        new_pit > s.pits[1].as_str(),
        "the new PIT sorts after the damaged one"
    );
    let listed = s.ws.bcn_no_plan(&["list", "--repo", "repo"]).ok();
    assert_eq!(listed["pit"], new_pit);
}

#[test]
fn restore_test_reads_every_ref_back_and_fails_naming_a_damaged_table() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,users,mor"],
    );
    let ws = Workspace::new(&[&src], "");
    ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    let scratch = tmp.path().join("scratch");
    fs_err::create_dir_all(&scratch).unwrap();
    let scratch_env = scratch.to_str().unwrap();
    let run = ws.bcn_env(
        &["verify", "--repo", "repo", "--restore-test"],
        &[("TMPDIR", scratch_env)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.json();
    let tables = report["restore_test"]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 3, "{report}");
    for t in tables {
        assert_eq!(t["ok"], true, "{t}");
        assert!(t["snapshots_read"].as_u64().unwrap() >= 1, "{t}");
    }
    let events = tables.iter().find(|t| t["table"] == "db1.events").unwrap();
    assert!(
        events["snapshots_read"].as_u64().unwrap() >= 2,
        "the tag is read too: {events}"
    );
    let mor = tables.iter().find(|t| t["table"] == "db1.mor").unwrap();
    assert_eq!(
        mor["current_rows"],
        src.dump("db1.mor")["row_count"],
        "rows after position deletes, as pyiceberg reads them"
    );
    assert!(
        files_under(&scratch).is_empty(),
        "the scratch catalog is removed"
    );

    // A damaged stored data file of one table: that table is named, the others pass.
    let listed = ws.bcn_no_plan(&["list", "--repo", "repo"]).ok();
    let users = listed["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "users")
        .unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let data = files_under(&ws.path(&format!("repo/tables/{users}/files")))
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .unwrap();
    let path = ws.path(&format!("repo/tables/{users}/files/{data}"));
    let mut bytes = fs_err::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs_err::write(&path, bytes).unwrap();
    let run = ws.bcn_env(
        &[
            "verify",
            "--repo",
            "repo",
            "--restore-test",
            "--table",
            "db1.users",
            "--table",
            "db1.events",
        ],
        &[("TMPDIR", scratch_env)],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let problem = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["problem"].as_str().unwrap().starts_with("restore test"))
        .unwrap();
    assert_eq!(problem["table"], "db1.users", "{report}");
    let tested = report["restore_test"]["tables"].as_array().unwrap();
    assert_eq!(tested.len(), 2);
    assert!(
        tested
            .iter()
            .any(|t| t["table"] == "db1.events" && t["ok"] == true)
    );
    assert!(
        files_under(&scratch).is_empty(),
        "removed after a failure too"
    );
}

/// A workspace whose single entry has the strategy `strategy` (YAML flow mapping).
fn entry_workspace(tmp: &std::path::Path, strategy: &str) -> (Lake, Workspace) {
    let src = Lake::new(tmp, "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n  main: {{ location: repo }}\nstrategies:\n  s: {strategy}\nbackups:\n  - {{ name: lake, catalog: src, repository: main, strategy: s }}\nnotifications:\n  - {{ on: [verify_failure, failure], command: [\"sh\", \"-c\", \"echo $BCN_EVENT >> events.txt\"] }}\n"
        ),
    );
    (src, ws)
}

fn apply(ws: &Workspace, extra: &[&str]) -> crate::support::Run {
    let mut args = vec!["apply", ws.plan.to_str().unwrap()];
    args.extend_from_slice(extra);
    ws.bcn_no_plan(&args)
}

#[test]
fn apply_verifies_on_its_own_interval_and_rotates_slices() {
    let tmp = tempfile::tempdir().unwrap();
    let (_src, ws) = entry_workspace(
        tmp.path(),
        "{ interval: 1h, verify: { interval: 1d, read_data: 1/2, restore_test: true } }",
    );
    let first = apply(&ws, &[]).ok();
    let entry = &first["entries"][0];
    assert_eq!(entry["status"], "succeeded");
    assert_eq!(entry["verify_due"], "never verified");
    assert_eq!(entry["verification"]["read_data"], "1/2");
    assert_eq!(
        entry["verification"]["restore_test"]["tables"][0]["ok"],
        true
    );
    let files = entry["verification"]["files_checked"].as_u64().unwrap();
    let mut read = entry["verification"]["files_read"].as_u64().unwrap();

    // Neither the backup nor the verification is due an instant later.
    let second = apply(&ws, &[]).ok();
    let entry = &second["entries"][0];
    assert_eq!(entry["status"], "skipped");
    assert!(
        entry["verify_due"].as_str().unwrap().contains("due in"),
        "{entry}"
    );
    assert!(entry["verification"].is_null());
    let dry = apply(&ws, &["--dry-run"]).ok();
    assert!(
        dry["entries"][0]["verify_due"]
            .as_str()
            .unwrap()
            .contains("clean")
    );

    // Forced, the next verification reads the other slice.
    let third = apply(&ws, &["--force"]).ok();
    let entry = &third["entries"][0];
    assert_eq!(entry["verification"]["read_data"], "2/2");
    read += entry["verification"]["files_read"].as_u64().unwrap();
    assert_eq!(read, files, "two slices read every file once");
    assert!(
        !ws.path("events.txt").exists(),
        "nothing failed, nothing notified"
    );
}

#[test]
fn apply_notifies_verify_failure_when_damage_is_found() {
    let tmp = tempfile::tempdir().unwrap();
    let (_src, ws) = entry_workspace(tmp.path(), "{ verify: { read_data: all } }");
    apply(&ws, &[]).ok();
    let data = files_under(&ws.path("repo/tables"))
        .into_iter()
        .find(|f| f.ends_with(".parquet"))
        .unwrap();
    let path = ws.path(&format!("repo/tables/{data}"));
    let mut bytes = fs_err::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    fs_err::write(&path, bytes).unwrap();
    let run = apply(&ws, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    let entry = &run.json()["entries"][0];
    assert_eq!(entry["status"], "succeeded", "the backup itself worked");
    assert_eq!(entry["verification_failed"], true);
    assert!(
        entry["verification"]["problems"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("is damaged"),
        "{entry}"
    );
    let events = fs_err::read_to_string(ws.path("events.txt")).unwrap();
    assert_eq!(events.trim(), "verify_failure");
}

#[test]
fn a_stored_manifest_that_is_not_the_one_walked_is_copied_again() {
    // A backup killed before its PIT leaves stored files that no file list names; the next
    // backup reuses such a metadata file only when it has exactly the bytes it walked.
    let s = setup();
    for pit in &s.pits {
        fs_err::remove_file(s.path(&format!("pits/{pit}.json"))).unwrap();
    }
    let manifest = s
        .stored(|f| f.ends_with(".avro") && !f.rsplit('/').next().unwrap().starts_with("snap-"))
        .pop()
        .expect("a stored manifest");
    let original = s.flip(&manifest);
    s.ws.bcn(&["backup", "--catalog", "src", "--repo", "repo"])
        .ok();
    assert_eq!(
        fs_err::read(s.path(&manifest)).unwrap(),
        original,
        "{manifest} is the manifest walked again"
    );
    let (code, report, stderr) = s.verify(&["--read-data"]);
    assert_eq!(code, 0, "{stderr}\n{report}");
}
