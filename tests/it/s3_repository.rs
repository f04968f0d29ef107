//! Repositories on S3: a table whose warehouse is on S3 (Glue on moto) backed up into a
//! repository on s3s-fs (which checks `SigV4` signatures), incrementally, and restored to local
//! disk; wrong credentials and a missing bucket give errors that say so and commit nothing.

use std::process::Command;

use serde_json::Value;

use crate::support::{
    Catalog, CatalogType, MOTO_VARS, Services, assert_same_table, python, unique, workspace_with,
};

const S3S_ENDPOINT: &str = "BCN_TEST_S3S_ENDPOINT";
const S3S_REGION: &str = "BCN_TEST_S3S_REGION";
const S3S_ACCESS_KEY: &str = "BCN_TEST_S3S_ACCESS_KEY";
const S3S_SECRET_KEY: &str = "BCN_TEST_S3S_SECRET_KEY";

pub(crate) fn services(test: &str) -> Option<Services> {
    let mut vars = MOTO_VARS.to_vec();
    vars.extend([S3S_ENDPOINT, S3S_REGION, S3S_ACCESS_KEY, S3S_SECRET_KEY]);
    Services::require(test, &vars)
}

/// Creates a bucket on s3s-fs with boto3 (an independent client).
pub(crate) fn create_s3s_bucket(svc: &Services, bucket: &str) {
    let script = "import sys, boto3\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], \
        aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])\n\
        s3.create_bucket(Bucket=sys.argv[5])\n";
    let out = Command::new(python())
        .args([
            "-c",
            script,
            svc.get(S3S_ENDPOINT),
            svc.get(S3S_ACCESS_KEY),
            svc.get(S3S_SECRET_KEY),
            svc.get(S3S_REGION),
            bucket,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A plan repository on s3s-fs; `secret` is a `${...}` reference or a literal.
pub(crate) fn s3s_repository(svc: &Services, name: &str, bucket: &str, secret: &str) -> String {
    format!(
        "  {name}:\n    location: s3://{bucket}/bcn/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{{S3S_ACCESS_KEY}}}\"\n      secret_access_key: \"{secret}\"\n",
        endpoint = svc.get(S3S_ENDPOINT),
        region = svc.get(S3S_REGION),
    )
}

#[test]
fn s3_warehouse_into_an_s3_repository_incrementally_and_back_to_local_disk() {
    let Some(svc) = services("s3_warehouse_into_an_s3_repository") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Catalog::new(CatalogType::Glue, "src", tmp.path(), &svc);
    let dst = Catalog::new(CatalogType::Sql, "dst", tmp.path(), &svc);
    let db = unique("db");
    src.py("make-sample", &["--namespace", &db, "--tables", "events"]);
    let bucket = unique("bcn-repo-");
    create_s3s_bucket(&svc, &bucket);
    let repos = format!(
        "repositories:\n{}",
        s3s_repository(&svc, "offsite", &bucket, &format!("${{{S3S_SECRET_KEY}}}"))
    );
    let ws = workspace_with(&[&src, &dst], &repos);
    let table = format!("{db}.events");
    let backup = || {
        ws.bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            &db,
            "--table",
            "events",
            "--repo",
            "offsite",
        ])
        .ok()
    };

    let at_pit1 = src.dump(&table);
    let first = backup();
    assert_eq!(first["repository"], format!("s3://{bucket}/bcn/repo"));
    assert_eq!(first["pit"]["tables"][0]["status"], "NEW");
    let total = first["pit"]["summary"]["files_total"].as_u64().unwrap();
    assert_eq!(
        first["pit"]["summary"]["files_added"].as_u64().unwrap(),
        total
    );

    let unchanged = backup();
    assert_eq!(unchanged["pit"]["tables"][0]["status"], "UNCHANGED");
    assert_eq!(unchanged["pit"]["summary"]["files_added"], 0);

    src.py("mutate", &["--table", &table, "--op", "append"]);
    let changed = backup();
    assert_eq!(changed["pit"]["tables"][0]["status"], "CHANGED");
    let added = changed["pit"]["summary"]["files_added"].as_u64().unwrap();
    assert!(
        (1..=4).contains(&added),
        "only the new snapshot's files are copied, not {added}"
    );

    let pit1 = first["pit"]["id"].as_str().unwrap();
    let root = tmp.path().join("restored");
    ws.bcn(&[
        "restore",
        "--repo",
        "offsite",
        "--pit",
        pit1,
        "--target-catalog",
        "dst",
        "--target-database",
        "local",
        "--target-location",
        root.to_str().unwrap(),
    ])
    .ok();
    let restored = dst.dump("local.events");
    assert_same_table(
        &restored,
        &at_pit1,
        "S3 table restored from an S3 repository to local disk",
    );
    assert!(
        restored["location"]
            .as_str()
            .unwrap()
            .starts_with("file://")
    );
    let described = ws.bcn(&["describe", "--repo", "offsite"]).ok();
    assert_eq!(described["pits"].as_array().unwrap().len(), 3);
}

#[test]
fn wrong_credentials_and_a_missing_bucket_are_named_and_commit_nothing() {
    let Some(svc) = services("wrong_credentials_and_a_missing_bucket") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Catalog::new(CatalogType::Sql, "src", tmp.path(), &svc);
    src.py("make-sample", &["--namespace", "db1", "--tables", "users"]);
    let bucket = unique("bcn-repo-");
    create_s3s_bucket(&svc, &bucket);
    let missing = unique("bcn-missing-");
    let repos = format!(
        "repositories:\n{}{}",
        s3s_repository(&svc, "wrong", &bucket, "not-the-secret"),
        s3s_repository(
            &svc,
            "nobucket",
            &missing,
            &format!("${{{S3S_SECRET_KEY}}}")
        )
        .replace(
            svc.get(S3S_ENDPOINT),
            svc.get(crate::support::MOTO_ENDPOINT)
        )
    );
    let ws = workspace_with(&[&src], &repos);

    let denied = ws.bcn(&["backup", "--catalog", "src", "--repo", "wrong"]);
    assert_eq!(denied.code, 1, "{}", denied.stderr);
    assert!(denied.stderr.contains("access denied"), "{}", denied.stderr);
    assert!(
        denied.stderr.contains(&format!("s3://{bucket}/bcn/repo")),
        "{}",
        denied.stderr
    );
    assert!(
        !denied.stderr.contains("not-the-secret"),
        "the secret leaked: {}",
        denied.stderr
    );

    let no_bucket = ws.bcn(&["backup", "--catalog", "src", "--repo", "nobucket"]);
    assert_eq!(no_bucket.code, 1, "{}", no_bucket.stderr);
    assert!(
        no_bucket
            .stderr
            .contains(&format!("bucket `{missing}` does not exist")),
        "{}",
        no_bucket.stderr
    );

    // With the right secret the same repository works: nothing was left half-written.
    let fixed = ws.path("fixed.yaml");
    let text = fs_err::read_to_string(&ws.plan)
        .unwrap()
        .replace("not-the-secret", &format!("${{{S3S_SECRET_KEY}}}"));
    fs_err::write(&fixed, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args([
            "--output",
            "json",
            "backup",
            "--catalog",
            "src",
            "--repo",
            "wrong",
            "--config",
        ])
        .arg(&fixed)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["pit"]["seq"], 1, "the refused runs committed no PIT");
}

#[test]
fn a_repository_on_the_warehouse_s_service_copies_server_side() {
    use crate::support::{MOTO_ACCESS_KEY, MOTO_ENDPOINT, MOTO_REGION, MOTO_SECRET_KEY};
    let Some(svc) = services("a_repository_on_the_warehouse_s_service") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = Catalog::new(CatalogType::Glue, "src", tmp.path(), &svc);
    let dst = Catalog::new(CatalogType::Sql, "dst", tmp.path(), &svc);
    let db = unique("db");
    src.py("make-sample", &["--namespace", &db, "--tables", "events"]);
    let bucket = unique("bcn-repo-");
    svc.create_moto_bucket(&bucket);
    let repos = format!(
        "repositories:\n  near:\n    location: s3://{bucket}/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{{MOTO_ACCESS_KEY}}}\"\n      secret_access_key: \"${{{MOTO_SECRET_KEY}}}\"\n",
        endpoint = svc.get(MOTO_ENDPOINT),
        region = svc.get(MOTO_REGION),
    );
    let ws = workspace_with(&[&src, &dst], &repos);
    let expected = src.dump(&format!("{db}.events"));
    let report = ws
        .bcn(&[
            "backup",
            "--catalog",
            "src",
            "--database",
            &db,
            "--repo",
            "near",
        ])
        .ok();
    let state = &report["pit"]["tables"][0]["state"];
    let server_side = state["files_server_side"].as_u64().unwrap_or(0);

    // The restore streams every stored file and checks its recorded SHA-256 on the way.
    ws.bcn(&[
        "restore",
        "--repo",
        "near",
        "--target-catalog",
        "dst",
        "--target-database",
        "local",
        "--target-location",
        tmp.path().join("r").to_str().unwrap(),
    ])
    .ok();
    assert_same_table(
        &dst.dump("local.events"),
        &expected,
        "backed up by server-side copies",
    );
    // Every data file went S3 to S3; only the metadata files bcn had read anyway were written.
    let data_files = crate::support::files_under(&tmp.path().join("r"))
        .iter()
        .filter(|f| f.ends_with(".parquet"))
        .count();
    assert!(data_files > 0);
    assert_eq!(server_side, data_files as u64, "{state}");
}

#[test]
fn gc_aborts_the_multipart_uploads_a_killed_run_left() {
    let Some(svc) = Services::require("gc_aborts_the_multipart_uploads", MOTO_VARS) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = crate::support::Lake::new(tmp.path(), "src");
    src.py("make-sample", &["--namespace", "db1", "--tables", "events"]);
    let bucket = unique("bcn-mpu-");
    svc.create_moto_bucket(&bucket);
    let repo = format!(
        "repositories:\n  s3repo:\n    location: s3://{bucket}/repo\n    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{BCN_TEST_MOTO_ACCESS_KEY}}\"\n      secret_access_key: \"${{BCN_TEST_MOTO_SECRET_KEY}}\"\n",
        endpoint = svc.get(crate::support::MOTO_ENDPOINT),
        region = svc.get(crate::support::MOTO_REGION),
    );
    let ws = crate::support::Workspace::new(&[&src], &repo);
    ws.bcn(&["backup", "--catalog", "src", "--repo", "s3repo"])
        .ok();
    // What a process killed in the middle of a large upload leaves: an upload never completed.
    let script = "import sys, boto3\n\
        s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='x', aws_secret_access_key='x', region_name=sys.argv[2])\n\
        if sys.argv[4] == 'start':\n\
        \x20   u = s3.create_multipart_upload(Bucket=sys.argv[3], Key='repo/tables/x/files/data/big.parquet')\n\
        \x20   s3.upload_part(Bucket=sys.argv[3], Key='repo/tables/x/files/data/big.parquet', UploadId=u['UploadId'], PartNumber=1, Body=b'x' * 1024)\n\
        print(len(s3.list_multipart_uploads(Bucket=sys.argv[3]).get('Uploads', [])))\n";
    let boto = |what: &str| {
        let out = Command::new(python())
            .args(["-c", script])
            .args([
                svc.get(crate::support::MOTO_ENDPOINT),
                svc.get(crate::support::MOTO_REGION),
                &bucket,
                what,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(boto("start"), "1");
    let described = ws.bcn(&["describe", "--repo", "s3repo"]).ok();
    assert_eq!(described["incomplete"]["objects"], 1, "{described}");
    let gc = ws
        .bcn(&["gc", "--repo", "s3repo", "--grace", "0s", "--yes"])
        .ok();
    assert_eq!(gc["incomplete"].as_array().unwrap().len(), 1, "{gc}");
    assert_eq!(boto("count"), "0", "the upload was aborted");
    let verified = ws.bcn(&["verify", "--repo", "s3repo", "--read-data"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}
