//! No secret reaches any output: every command at trace level, with a Glue catalog whose
//! warehouse is on S3 and an S3 repository (both on moto), stdout, stderr, reports and
//! notifications scanned for every secret value.

use crate::support::{
    Catalog, CatalogType, MOTO_ENDPOINT, MOTO_REGION, MOTO_VARS, Services, unique,
};

/// What bcn is given as the S3 and Glue secret key (moto accepts any).
const SECRET_KEY: &str = "bcnSeCrEtKeY7f3a9c1e5d";
/// A session token.
const SESSION: &str = "bcnSeSsIoNtOkEn5b2d8e4a";
/// A token handed to a notification command.
const HOOK: &str = "bcnHoOkToKeN9c4e1f7b3a";

#[test]
fn no_secret_reaches_any_output_at_trace_level() {
    let Some(svc) = Services::require("no_secret_reaches_any_output", MOTO_VARS) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(CatalogType::Glue, &unique("gl"), tmp.path(), &svc);
    let ns = unique("sec_");
    catalog.py("make-sample", &["--namespace", &ns, "--tables", "events"]);
    let bucket = unique("bcn-sec-");
    svc.create_moto_bucket(&bucket);
    let extra = format!(
        r#"repositories:
  s3repo:
    location: s3://{bucket}/repo
    s3:
      endpoint: {endpoint}
      region: {region}
      path_style: true
      access_key_id: "${{BCN_TEST_MOTO_ACCESS_KEY}}"
      secret_access_key: "${{BCN_TEST_MOTO_SECRET_KEY}}"
      session_token: "${{BCN_TEST_SESSION_TOKEN}}"
strategies:
  s: {{ mode: incremental }}
backups:
  - {{ name: e, catalog: {name}, database: {ns}, repository: s3repo, strategy: s }}
reports:
  - {{ template: markdown, output: "reports/{{{{entry}}}}.md" }}
notifications:
  - {{ on: [success, failure], command: ["sh", "-c", "cat > notified.json", "${{BCN_TEST_HOOK_TOKEN}}"] }}
"#,
        endpoint = svc.get(MOTO_ENDPOINT),
        region = svc.get(MOTO_REGION),
        name = catalog.name,
    );
    let ws = crate::support::workspace_with(&[&catalog], &extra);
    let env = [
        ("BCN_TEST_MOTO_SECRET_KEY", SECRET_KEY),
        ("BCN_TEST_SESSION_TOKEN", SESSION),
        ("BCN_TEST_HOOK_TOKEN", HOOK),
        ("BCN_LOG", "trace"),
    ];
    let plan = ws.plan.to_str().unwrap().to_owned();
    let restored_ns = unique("sec_r_");
    let commands: Vec<Vec<&str>> = vec![
        vec!["-vv", "validate", &plan],
        vec!["-vv", "apply", &plan],
        vec![
            "-vv",
            "backup",
            "--config",
            &plan,
            "--catalog",
            &catalog.name,
            "--database",
            &ns,
            "--repo",
            "s3repo",
        ],
        vec!["-vv", "describe", "--config", &plan, "--repo", "s3repo"],
        vec!["-vv", "list", "--config", &plan, "--repo", "s3repo"],
        vec![
            "-vv",
            "restore",
            "--config",
            &plan,
            "--repo",
            "s3repo",
            "--target-catalog",
            &catalog.name,
            "--target-database",
            &restored_ns,
            "--dry-run",
        ],
        vec![
            "-vv",
            "restore",
            "--config",
            &plan,
            "--repo",
            "s3repo",
            "--target-catalog",
            &catalog.name,
            "--target-database",
            &restored_ns,
        ],
        vec![
            "-vv",
            "forget",
            "--config",
            &plan,
            "--repo",
            "s3repo",
            "--keep-last",
            "5",
            "--yes",
        ],
        vec!["-vv", "gc", "--config", &plan, "--repo", "s3repo", "--yes"],
        vec!["-vv", "unlock", "--config", &plan, "--repo", "s3repo"],
    ];
    let mut seen = String::new();
    for args in &commands {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(ws.dir.path())
            .args(args)
            .envs(env)
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "{args:?} failed:\n{}",
            stderr.lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        for secret in [SECRET_KEY, SESSION, HOOK] {
            for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
                if let Some(line) = text.lines().find(|l| l.contains(secret)) {
                    panic!("{args:?}: a secret on {stream}: {line}");
                }
            }
        }
        seen.push_str(&stderr);
    }
    assert!(
        seen.contains("TRACE") && seen.contains("DEBUG"),
        "the scan read trace-level output"
    );
    assert!(seen.contains("***"), "something was redacted");
    let reports = crate::support::files_under(&ws.path("reports"));
    assert!(!reports.is_empty(), "apply wrote its report");
    let notified = ws.path("notified.json");
    assert!(notified.exists(), "the notification command ran");
    for file in reports
        .iter()
        .map(|r| ws.path(&format!("reports/{r}")))
        .chain([notified])
    {
        let text = fs_err::read_to_string(&file).unwrap();
        for secret in [SECRET_KEY, SESSION, HOOK] {
            assert!(!text.contains(secret), "a secret in {}", file.display());
        }
    }
}
