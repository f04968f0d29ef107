//! Encrypted repositories: pyiceberg writes the tables, bcn backs them up into encrypted
//! repositories (local, moto, s3s-fs) and restores them, pyiceberg reads them back row for row;
//! every byte the repository holds is scanned for the tables' names, column names and values;
//! wrong, missing and rotated keys, damaged ciphertext, and what `validate` says of `local`
//! data going to plain repositories.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use crate::support::{
    Catalog, CatalogType, Lake, MOTO_VARS, Services, Workspace, assert_same_table, python, unique,
    workspace_with,
};

/// What must never be readable in an encrypted repository: the database and table names, a
/// column name, a column doc and row values.
const NEEDLES: [&str; 7] = [
    "confidential_db",
    "payroll_secret",
    "payroll_secret-3",
    "country",
    "added in evolution",
    "events",
    "score",
];

/// Makes the tables whose names and values the scans look for.
fn make_secret_tables(py: impl Fn(&str, &[&str])) {
    py(
        "make-sample",
        &["--namespace", "confidential_db", "--tables", "events,users"],
    );
    py(
        "make-named",
        &["--namespace", "confidential_db", "--name", "payroll_secret"],
    );
}

/// Every needle found in the files under `dir` (names and contents).
fn scan_dir(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for rel in crate::support::files_under(dir) {
        let bytes = fs_err::read(dir.join(&rel)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for needle in NEEDLES {
            // Sealed names are random base32hex: a five-letter needle turns up in a few thousand
            // of their characters by chance about once in 10,000 runs, a six-letter one almost
            // never. Sealed contents are random bytes, where five letters never do.
            let in_name = needle.len() >= 6 && rel.contains(needle);
            if in_name || text.contains(needle) {
                found.push(format!("{needle} in {rel}"));
            }
        }
    }
    found
}

fn write_key(dir: &Path, name: &str, key: &str) -> String {
    let path = dir.join(name);
    fs_err::write(&path, format!("{key}\n")).unwrap();
    path.to_str().unwrap().to_owned()
}

fn repository(name: &str, location: &str, key_file: &str) -> String {
    format!(
        "  {name}:\n    location: {location}\n    encryption:\n      key: \"${{file:{key_file}}}\"\n"
    )
}

#[test]
fn an_encrypted_local_repository_round_trips_and_shows_no_name_or_value() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    make_secret_tables(|sub, args| {
        src.py(sub, args);
    });
    let tables = [
        "confidential_db.events",
        "confidential_db.users",
        "confidential_db.payroll_secret",
    ];
    let before: Vec<_> = tables.iter().map(|t| src.dump(t)).collect();
    let key = write_key(tmp.path(), "key", "correct horse battery staple");
    let vault = tmp.path().join("vault");
    let ws = Workspace::new(
        &[&src, &dst],
        &format!(
            "repositories:\n{}",
            repository("vault", vault.to_str().unwrap(), &key)
        ),
    );
    ws.bcn(&["backup", "--catalog", "src", "--repo", "vault"])
        .ok();
    // A second, incremental backup after a change reads the first PIT through the encryption.
    src.py(
        "mutate",
        &["--table", "confidential_db.users", "--op", "append"],
    );
    let second = ws
        .bcn(&["backup", "--catalog", "src", "--repo", "vault"])
        .ok();
    assert_eq!(
        second["pit"]["summary"]["tables"]["UNCHANGED"], 2,
        "{}",
        second["pit"]["summary"]
    );

    let found = scan_dir(&vault);
    assert!(
        found.is_empty(),
        "readable in the encrypted repository: {found:?}"
    );
    // Only the marker and the key file are in the clear.
    let clear: Vec<String> = crate::support::files_under(&vault)
        .into_iter()
        .filter(|f| {
            let bytes = fs_err::read(vault.join(f)).unwrap();
            !bytes.starts_with(b"BCNE")
        })
        .collect();
    assert_eq!(clear.len(), 2, "{clear:?}");
    assert!(
        clear.iter().any(|f| f == "bcn-encryption.json"),
        "{clear:?}"
    );
    assert!(clear.iter().any(|f| f.starts_with("keys/")), "{clear:?}");
    // Owner-only, files and directories.
    for rel in crate::support::files_under(&vault) {
        let mode = fs_err::metadata(vault.join(&rel))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{rel} is readable by others: {mode:o}");
    }
    assert_eq!(
        fs_err::metadata(vault.join("keys"))
            .unwrap()
            .permissions()
            .mode()
            & 0o077,
        0
    );

    let described = ws.bcn(&["describe", "--repo", "vault"]).ok();
    assert_eq!(described["protection"]["encrypted"], true, "{described}");
    let verified = ws.bcn(&["verify", "--repo", "vault", "--read-data"]).ok();
    assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");

    // Restore the first PIT and read it back.
    let first = ws.bcn(&["describe", "--repo", "vault"]).ok()["pits"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ws.bcn(&[
        "restore",
        "--repo",
        "vault",
        "--pit",
        &first,
        "--target-catalog",
        "dst",
    ])
    .ok();
    for (table, before) in tables.iter().zip(&before) {
        assert_same_table(&dst.dump(table), before, table);
    }
}

#[test]
fn missing_wrong_and_rotated_keys_and_damaged_ciphertext() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py(
        "make-named",
        &["--namespace", "confidential_db", "--name", "payroll_secret"],
    );
    let key1 = write_key(tmp.path(), "key1", "first passphrase here");
    let key2 = write_key(
        tmp.path(),
        "key2",
        "raw:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    );
    let wrong = write_key(tmp.path(), "wrong", "not the passphrase");
    let vault = tmp.path().join("vault");
    let vault_str = vault.to_str().unwrap();
    let ws = Workspace::new(&[&src, &dst], "");
    let with_key = |key: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--key-file", key]);
        ws.bcn(&all)
    };
    with_key(&key1, &["backup", "--catalog", "src", "--repo", vault_str]).ok();

    // No key: named as encrypted, exit 2, before anything else happens.
    let missing = ws.bcn(&["list", "--repo", vault_str]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("encrypted repository and no key was given"),
        "{}",
        missing.stderr
    );
    let missing = ws.bcn(&["backup", "--catalog", "src", "--repo", vault_str]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    // A wrong key: the repository is named, nothing is written.
    let files_before = crate::support::files_under(&vault);
    let wrong_run = with_key(&wrong, &["backup", "--catalog", "src", "--repo", vault_str]);
    assert_ne!(wrong_run.code, 0);
    assert!(
        wrong_run.stderr.contains("opens none of its 1 key")
            && wrong_run.stderr.contains(vault_str),
        "{}",
        wrong_run.stderr
    );
    assert_eq!(crate::support::files_under(&vault), files_before);
    // A key for a plain repository is refused too.
    let plain = tmp.path().join("plain");
    ws.bcn(&[
        "backup",
        "--catalog",
        "src",
        "--repo",
        plain.to_str().unwrap(),
    ])
    .ok();
    let keyed = with_key(&key1, &["list", "--repo", plain.to_str().unwrap()]);
    assert!(
        keyed.stderr.contains("without encryption"),
        "{}",
        keyed.stderr
    );

    // Rotation: add a raw key, open with it, remove the first; every PIT stays restorable.
    let added = ws
        .bcn(&[
            "key",
            "add",
            "--repo",
            vault_str,
            "--key-file",
            &key1,
            "--new-key-file",
            &key2,
        ])
        .ok();
    let first_id = ws
        .bcn(&["key", "list", "--repo", vault_str, "--key-file", &key1])
        .ok()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(added["added"].as_str().unwrap(), first_id);
    with_key(&key2, &["key", "remove", "--repo", vault_str, &first_id]).ok();
    let old = with_key(&key1, &["list", "--repo", vault_str]);
    assert_ne!(old.code, 0, "a removed key stops working");
    with_key(
        &key2,
        &["restore", "--repo", vault_str, "--target-catalog", "dst"],
    )
    .ok();
    assert_same_table(
        &dst.dump("confidential_db.payroll_secret"),
        &src.dump("confidential_db.payroll_secret"),
        "restored with the rotated key",
    );

    // Damaged ciphertext: one flipped byte in the largest object is found and named.
    let largest = crate::support::files_under(&vault)
        .into_iter()
        .max_by_key(|f| fs_err::metadata(vault.join(f)).unwrap().len())
        .unwrap();
    let path = vault.join(&largest);
    let mut bytes = fs_err::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs_err::write(&path, bytes).unwrap();
    let verify = with_key(&key2, &["verify", "--repo", vault_str, "--read-data"]);
    assert_eq!(verify.code, 1, "{}{}", verify.stdout, verify.stderr);
    let report = verify.json();
    let problems = report["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| p["problem"]
            .as_str()
            .unwrap()
            .contains("does not open with the repository's key")),
        "{report}"
    );
}

#[test]
fn validate_warns_of_local_data_in_plain_repositories_and_require_encryption_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let key = write_key(tmp.path(), "key", "a passphrase for the vault");
    let plan = |repos: &str| {
        Workspace::new(
            &[&src],
            &format!(
                "repositories:\n{repos}backups:\n  - name: crm\n    catalog: src\n    repository: plain\n    categories: [global, local]\n  - name: safe\n    catalog: src\n    repository: vault\n    categories: [local]\n  - name: config\n    catalog: src\n    repository: other\n"
            ),
        )
    };
    let ws = plan(&format!(
        "  plain:\n    location: plain\n  other:\n    location: other\n{}",
        repository("vault", "vault", &key)
    ));
    let plan_path = ws.plan.to_str().unwrap().to_owned();
    let run = ws.bcn_no_plan(&["validate", &plan_path]);
    let report = run.ok();
    let warnings = report["warnings"].as_array().unwrap();
    assert_eq!(
        warnings.len(),
        1,
        "only the entry that names `local` for a plain repository: {report}"
    );
    assert_eq!(warnings[0]["path"], "backups.crm.categories");
    assert!(
        warnings[0]["message"]
            .as_str()
            .unwrap()
            .contains("not encrypted")
    );

    let ws = plan(&format!(
        "  plain:\n    location: plain\n    require_encryption: true\n  other:\n    location: other\n{}",
        repository("vault", "vault", &key)
    ));
    let plan_path = ws.plan.to_str().unwrap().to_owned();
    let run = ws.bcn_no_plan(&["validate", &plan_path]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("repositories.plain.require_encryption"),
        "{}",
        run.stderr
    );
}

/// Every needle found in the objects of `bucket` on an S3 service (read with boto3); in names,
/// as in [`scan_dir`], only needles of six letters or more.
fn scan_bucket(
    endpoint: &str,
    access: &str,
    secret: &str,
    region: &str,
    bucket: &str,
) -> Vec<String> {
    let script = "import sys, json, boto3\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], \
        aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])\n\
        needles = json.loads(sys.argv[6])\n\
        found = []\n\
        count = 0\n\
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=sys.argv[5]):\n\
        \x20   for o in page.get('Contents', []):\n\
        \x20       count += 1\n\
        \x20       body = s3.get_object(Bucket=sys.argv[5], Key=o['Key'])['Body'].read().decode('latin-1')\n\
        \x20       found += [n + ' in ' + o['Key'] for n in needles if (len(n) >= 6 and n in o['Key']) or n in body]\n\
        print(json.dumps({'objects': count, 'found': found}))\n";
    let out = Command::new(python())
        .args([
            "-c",
            script,
            endpoint,
            access,
            secret,
            region,
            bucket,
            &serde_json::to_string(&NEEDLES).unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(doc["objects"].as_u64().unwrap() > 5, "{doc}");
    doc["found"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn encrypted_repositories_on_moto_and_s3s_round_trip_verify_and_gc_without_server_side_copies() {
    use crate::support::{MOTO_ACCESS_KEY, MOTO_ENDPOINT, MOTO_REGION, MOTO_SECRET_KEY};
    let Some(svc) = crate::s3_repository::services("encryption::s3") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The warehouse is on moto too: a plain repository there would copy server-side.
    let src = Catalog::new(CatalogType::Glue, "src", tmp.path(), &svc);
    let dst = Catalog::new(CatalogType::Sql, "dst", tmp.path(), &svc);
    let db = unique("confidential_db_");
    src.py(
        "make-sample",
        &["--namespace", &db, "--tables", "events,users"],
    );
    src.py(
        "make-named",
        &["--namespace", &db, "--name", "payroll_secret"],
    );
    let key = write_key(tmp.path(), "key", "s3 vault passphrase");
    let moto_bucket = unique("bcn-enc-");
    svc.create_moto_bucket(&moto_bucket);
    // s3s-fs refuses keys longer than about 160 bytes: the names must stay short.
    let s3s_bucket = unique("bcn-enc-");
    crate::s3_repository::create_s3s_bucket(&svc, &s3s_bucket);
    let encryption = format!("    encryption:\n      key: \"${{file:{key}}}\"\n");
    let repos = format!(
        "repositories:\n  moto:\n    location: s3://{moto_bucket}/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{{MOTO_ACCESS_KEY}}}\"\n      secret_access_key: \"${{{MOTO_SECRET_KEY}}}\"\n{encryption}{s3s}{encryption}",
        endpoint = svc.get(MOTO_ENDPOINT),
        region = svc.get(MOTO_REGION),
        s3s = crate::s3_repository::s3s_repository(
            &svc,
            "s3s",
            &s3s_bucket,
            "${BCN_TEST_S3S_SECRET_KEY}"
        ),
    );
    let ws = workspace_with(&[&src, &dst], &repos);
    let tables = ["events", "users", "payroll_secret"];
    let before: Vec<_> = tables
        .iter()
        .map(|t| src.dump(&format!("{db}.{t}")))
        .collect();
    let backup = |repo: &str| {
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            &db,
            "--repo",
            repo,
        ])
        .ok()
    };
    let restore = |repo: &str, target: &str| {
        ws.bcn(&[
            "restore",
            "--repo",
            repo,
            "--target-catalog",
            "dst",
            "--target-database",
            target,
        ])
        .ok()
    };
    for repo in ["moto", "s3s"] {
        let report = backup(repo);
        for table in report["pit"]["tables"].as_array().unwrap() {
            assert_eq!(
                table["state"]["files_server_side"].as_u64().unwrap_or(0),
                0,
                "{repo}: no server-side copy into an encrypted repository"
            );
        }
        let target = format!("{repo}_restored");
        restore(repo, &target);
        for (table, before) in tables.iter().zip(&before) {
            assert_same_table(
                &dst.dump(&format!("{target}.{table}")),
                before,
                &format!("{repo}: {table}"),
            );
        }
        let verified = ws.bcn(&["verify", "--repo", repo, "--read-data"]).ok();
        assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
    }

    // A delete rewrites data files; once the first PIT is forgotten, gc finds the old ones
    // (by their opaque names) and deletes them, and what is kept still verifies and restores.
    src.py(
        "mutate",
        &["--table", &format!("{db}.events"), "--op", "delete"],
    );
    let after = src.dump(&format!("{db}.events"));
    for repo in ["moto", "s3s"] {
        backup(repo);
        ws.bcn(&["forget", "--repo", repo, "--keep-last", "1", "--yes"])
            .ok();
        let gc = ws
            .bcn(&["gc", "--repo", repo, "--grace", "0s", "--yes"])
            .ok();
        let gone = gc["unreferenced"].as_array().unwrap();
        assert!(!gone.is_empty(), "{repo}: {gc}");
        assert!(
            gone.iter()
                .all(|o| o["key"].as_str().unwrap().starts_with("tables/#")),
            "{gc}"
        );
        let verified = ws.bcn(&["verify", "--repo", repo, "--read-data"]).ok();
        assert_eq!(verified["problems"], serde_json::json!([]), "{verified}");
        assert_eq!(verified["reclaimable"]["objects"], 0, "{verified}");
        let target = format!("{repo}_after");
        restore(repo, &target);
        assert_same_table(
            &dst.dump(&format!("{target}.events")),
            &after,
            &format!("{repo}: events after gc"),
        );
    }
    for (endpoint, access, secret, region, bucket) in [
        (
            MOTO_ENDPOINT,
            MOTO_ACCESS_KEY,
            MOTO_SECRET_KEY,
            MOTO_REGION,
            &moto_bucket,
        ),
        (
            "BCN_TEST_S3S_ENDPOINT",
            "BCN_TEST_S3S_ACCESS_KEY",
            "BCN_TEST_S3S_SECRET_KEY",
            "BCN_TEST_S3S_REGION",
            &s3s_bucket,
        ),
    ] {
        let found = scan_bucket(
            svc.get(endpoint),
            svc.get(access),
            svc.get(secret),
            svc.get(region),
            bucket,
        );
        assert!(found.is_empty(), "readable in {bucket}: {found:?}");
    }
}

/// Runs a boto3 snippet against moto with `s3` bound to a client; prints what it prints.
fn moto_py(svc: &Services, body: &str, args: &[&str]) -> String {
    use crate::support::{MOTO_ACCESS_KEY, MOTO_ENDPOINT, MOTO_REGION, MOTO_SECRET_KEY};
    let script = format!(
        "import sys, json, datetime, boto3\n\
         s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], \
         aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])\n\
         args = sys.argv[5:]\n{body}"
    );
    let out = Command::new(python())
        .args(["-c", &script])
        .args([
            svc.get(MOTO_ENDPOINT),
            svc.get(MOTO_ACCESS_KEY),
            svc.get(MOTO_SECRET_KEY),
            svc.get(MOTO_REGION),
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn object_lock_keeps_records_and_files_from_forget_and_gc_and_sse_is_passed_through() {
    use crate::support::{MOTO_ACCESS_KEY, MOTO_ENDPOINT, MOTO_REGION, MOTO_SECRET_KEY};
    let Some(svc) = Services::require("encryption::object_lock", MOTO_VARS) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let bucket = unique("bcn-lock-");
    moto_py(
        &svc,
        "s3.create_bucket(Bucket=args[0], ObjectLockEnabledForBucket=True)\n",
        &[&bucket],
    );
    let ws = Workspace::new(
        &[&src],
        &format!(
            "repositories:\n  locked:\n    location: s3://{bucket}/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{{MOTO_ACCESS_KEY}}}\"\n      secret_access_key: \"${{{MOTO_SECRET_KEY}}}\"\n      object_lock: {{ mode: governance, days: 1 }}\n      sse: {{ algorithm: \"aws:kms\", kms_key_id: bcn-test-key }}\n",
            endpoint = svc.get(MOTO_ENDPOINT),
            region = svc.get(MOTO_REGION),
        ),
    );
    ws.bcn(&["backup", "--catalog", "src", "--repo", "locked"])
        .ok();
    src.py("mutate", &["--table", "db1.t", "--op", "append"]);
    ws.bcn(&["backup", "--catalog", "src", "--repo", "locked"])
        .ok();
    // Every record and file carries its retention and encryption; locks are gone.
    let heads: serde_json::Value = serde_json::from_str(&moto_py(
        &svc,
        "out = {}\n\
         for page in s3.get_paginator('list_objects_v2').paginate(Bucket=args[0]):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       h = s3.head_object(Bucket=args[0], Key=o['Key'])\n\
         \x20       out[o['Key']] = [h.get('ObjectLockMode'), str(h.get('ObjectLockRetainUntilDate')), h.get('ServerSideEncryption'), h.get('SSEKMSKeyId')]\n\
         print(json.dumps(out))\n",
        &[&bucket],
    ))
    .unwrap();
    let heads = heads.as_object().unwrap();
    assert!(
        heads.keys().any(|k| k.starts_with("repo/pits/")),
        "{heads:?}"
    );
    assert!(
        !heads.keys().any(|k| k.starts_with("repo/locks/")),
        "{heads:?}"
    );
    for (key, head) in heads {
        assert_eq!(head[0], "GOVERNANCE", "{key}");
        assert_eq!(head[2], "aws:kms", "{key}");
        assert_eq!(head[3], "bcn-test-key", "{key}");
    }
    let described = ws.bcn(&["describe", "--repo", "locked"]).ok();
    assert_eq!(
        described["protection"]["object_lock"],
        "S3 Object Lock, governance mode, 1 day"
    );

    // forget: the older PIT is retained, so it stays and is reported.
    let forget = ws
        .bcn(&["forget", "--repo", "locked", "--keep-last", "1", "--yes"])
        .ok();
    assert_eq!(forget["forgotten"], serde_json::json!([]), "{forget}");
    let locked = forget["locked"].as_array().unwrap();
    assert_eq!(locked.len(), 1, "{forget}");
    assert!(locked[0]["until"].as_str().unwrap() > "2000", "{forget}");
    assert_eq!(
        ws.bcn(&["describe", "--repo", "locked"]).ok()["pits"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // gc: an unreferenced object still under retention stays, and is reported.
    moto_py(
        &svc,
        "until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)\n\
         s3.put_object(Bucket=args[0], Key='repo/tables/stray/files/x', Body=b'x', ObjectLockMode='GOVERNANCE', ObjectLockRetainUntilDate=until)\n",
        &[&bucket],
    );
    let gc = ws
        .bcn(&["gc", "--repo", "locked", "--grace", "0s", "--yes"])
        .ok();
    assert_eq!(gc["unreferenced"], serde_json::json!([]), "{gc}");
    assert_eq!(gc["locked"][0]["key"], "tables/stray/files/x", "{gc}");
    let still = moto_py(
        &svc,
        "print(s3.head_object(Bucket=args[0], Key='repo/tables/stray/files/x')['ContentLength'])\n",
        &[&bucket],
    );
    assert_eq!(still.trim(), "1");
}
