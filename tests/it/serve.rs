//! `bcn serve`: the real server on 127.0.0.1, driven with a real HTTP client (reqwest):
//! every endpoint, the role matrix, 401/403/404/409/413/423/400, a backup job and a restore
//! job end to end with pyiceberg reading the restored table, two jobs at once, cancellation,
//! a restart that keeps the history and marks the interrupted job, a server stopped by
//! SIGTERM while a job runs, a verify job stuck on a hung read, tokens absent from logs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Lake, Workspace, assert_same_table};

const VIEWER: &str = "viewer-token-0123456789abcdef";
const OPERATOR: &str = "operator-token-0123456789abcdef";
const ADMIN: &str = "admin-token-0123456789abcdef0";
const SCOPED: &str = "scoped-token-0123456789abcdef";

/// The `api:` section of a test plan: a viewer and an admin token.
macro_rules! viewer_and_admin {
    () => {
        concat!(
            "api:\n  tokens:\n",
            "    - { name: viewer, token: \"${VIEWER_TOKEN}\", role: viewer }\n",
            "    - { name: admin, token: \"${ADMIN_TOKEN}\", role: admin }\n",
        )
    };
}

/// A client of the test servers. reqwest is built with rustls and no default provider; bcn
/// installs aws-lc at start-up, and so do the tests.
fn client() -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Client::new()
}

/// A running `bcn serve`; stopped (SIGKILL) when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(ws: &Workspace, log: &Path) -> Self {
        Self::start_with(ws, log, &[])
    }

    fn start_with(ws: &Workspace, log: &Path, extra: &[&str]) -> Self {
        let file = fs_err::File::create(log).unwrap();
        #[expect(clippy::zombie_processes, reason = "Drop kills and waits for it")]
        let child = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(ws.dir.path())
            .args(["serve", "--config"])
            .arg(&ws.plan)
            .args(["--listen", "127.0.0.1:0", "-v"])
            .args(extra)
            .env("VIEWER_TOKEN", VIEWER)
            .env("ADMIN_TOKEN", ADMIN)
            .env("SCOPED_TOKEN", SCOPED)
            .stdout(Stdio::null())
            .stderr(file.into_parts().0)
            .spawn()
            .unwrap();
        let started = Instant::now();
        loop {
            let text = fs_err::read_to_string(log).unwrap_or_default();
            if let Some(line) = text
                .lines()
                .find(|l| l.contains("bcn serve: listening on "))
            {
                let base = line.rsplit(' ').next().unwrap().trim().to_owned();
                return Self { child, base };
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the server did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends SIGTERM, as `systemctl stop` does; returns the exit code once the server ends
    /// (at most two minutes).
    fn terminate(&mut self) -> Option<i32> {
        let pid = rustix::process::Pid::from_raw(self.child.id().try_into().unwrap()).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                started.elapsed() < Duration::from_mins(2),
                "the server did not stop"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn call(
    client: &Client,
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = client.request(method, server.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    let doc = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, doc, location)
}

/// Cancels job `id` (as admin) once `ready` holds, polled every 5 ms for up to a minute;
/// returns the job once final, asserted `cancelled`.
async fn cancel_once(
    client: &Client,
    server: &Server,
    id: &str,
    what: &str,
    ready: impl Fn() -> bool,
) -> Value {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < Duration::from_mins(1), "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, answer, _) = call(
        client,
        server,
        Method::DELETE,
        &format!("/v1/jobs/{id}"),
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = wait_job(client, server, id).await;
    assert_eq!(job["state"], "cancelled", "{job}");
    job
}

/// Asserts that a dropped job (restore, verify, gc) says it was cancelled, and that its start
/// and its end were notified (`COMMAND started`, `COMMAND cancelled` in `events.txt`).
fn assert_cancel_notified(ws: &Workspace, job: &Value, command: &str) {
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cancelled on request")),
        "{job}"
    );
    let events = fs_err::read_to_string(ws.path("events.txt")).unwrap();
    assert_eq!(
        events.lines().collect::<Vec<_>>(),
        [format!("{command} started"), format!("{command} cancelled")],
        "{events}"
    );
}

/// Polls a job until it is final.
async fn wait_job(client: &Client, server: &Server, id: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, job, _) = call(
            client,
            server,
            Method::GET,
            &format!("/v1/jobs/{id}"),
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{job}");
        if !["queued", "running"].contains(&job["state"].as_str().unwrap()) {
            return job;
        }
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "job {id} never ended: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn plan_extra(operator_sha256: &str) -> String {
    let lines = [
        "  big:",
        "    type: sql",
        "    uri: sqlite://big/catalog.db",
        "    warehouse: big/warehouse",
        "repositories:",
        "  main: { location: repo-main }",
        "  other: { location: repo-other }",
        "  bigrepo: { location: repo-big }",
        "  bigrepo2: { location: repo-big2 }",
        "backups:",
        "  - { name: lake, catalog: src, repository: main }",
        "  - { name: second, catalog: src, repository: other }",
        "  - { name: big, catalog: big, repository: bigrepo }",
        "  - { name: big2, catalog: big, repository: bigrepo2 }",
        "notifications:",
        "  - { on: [start, success, failure], command: [\"sh\", \"-c\", \"echo $BCN_EVENT $BCN_ENTRY $BCN_STATUS >> events.txt\"] }",
        "api:",
        "  tokens:",
        "    - { name: viewer, token: \"${VIEWER_TOKEN}\", role: viewer }",
        "    - { name: operator, token_sha256: OPERATOR_SHA, role: operator }",
        "    - { name: admin, token: \"${ADMIN_TOKEN}\", role: admin }",
        "    - { name: scoped, token: \"${SCOPED_TOKEN}\", role: admin, entries: [second], repositories: [other] }",
    ];
    lines.join("\n").replace("OPERATOR_SHA", operator_sha256) + "\n"
}

fn sha256_hex(text: &str) -> String {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(text.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[expect(clippy::too_many_lines, reason = "one server, one story")]
async fn the_http_api_with_roles_jobs_and_a_persistent_history() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let ws = Workspace::new(&[&src, &dst], &plan_extra(&sha256_hex(OPERATOR)));
    let big = Lake::new(ws.dir.path(), "big");
    big.make_big(4, 10);
    let log = tmp.path().join("serve.log");
    let mut server = Server::start(&ws, &log);
    let client = client();
    let c = |m: Method, p: &'static str, t: Option<&'static str>, b: Option<Value>| {
        let (client, server) = (&client, &server);
        async move { call(client, server, m, p, t, b).await }
    };

    // The OpenAPI document is served as kept in the repository.
    let (status, doc, _) = c(Method::GET, "/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc,
        serde_json::from_str::<Value>(include_str!("../../src/serve/openapi.json")).unwrap()
    );
    // 401 without a token, with a wrong one.
    for token in [None, Some("not-a-token-of-the-plan")] {
        let (status, body, _) = c(Method::GET, "/v1/entries", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Every role reads; the scoped token sees its entry and repository only.
    for token in [VIEWER, OPERATOR, ADMIN] {
        let (status, body, _) = call(
            &client,
            &server,
            Method::GET,
            "/v1/entries",
            Some(token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["entries"].as_array().unwrap().len(), 4, "{body}");
    }
    let (_, scoped, _) = c(Method::GET, "/v1/repositories", Some(SCOPED), None).await;
    assert_eq!(scoped["repositories"][0]["name"], "other", "{scoped}");
    assert_eq!(scoped["repositories"].as_array().unwrap().len(), 1);

    // The role matrix for what changes things: each forbidden call is a 403 naming the role.
    let forbidden: [(Method, &str, &str, Option<Value>); 7] = [
        (Method::POST, "/v1/entries/lake/backup", VIEWER, None),
        (Method::POST, "/v1/entries/lake/verify", VIEWER, None),
        (Method::POST, "/v1/repositories/main/gc", OPERATOR, None),
        (
            Method::DELETE,
            "/v1/repositories/main/pits/latest",
            OPERATOR,
            None,
        ),
        (
            Method::POST,
            "/v1/restores",
            OPERATOR,
            Some(json!({"repository": "main", "target_catalog": "dst"})),
        ),
        (
            Method::POST,
            "/v1/restores",
            VIEWER,
            Some(json!({"repository": "main", "target_catalog": "dst"})),
        ),
        (Method::POST, "/v1/entries/lake/backup", SCOPED, None),
    ];
    for (method, path, token, body) in forbidden {
        let (status, doc, _) =
            call(&client, &server, method.clone(), path, Some(token), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {doc}");
    }

    // A backup job, end to end.
    let (status, job, location) = c(
        Method::POST,
        "/v1/entries/lake/backup",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(
        location.unwrap(),
        format!("/v1/jobs/{}", job["id"].as_str().unwrap())
    );
    assert_eq!(job["requested_by"], "operator");
    let done = wait_job(&client, &server, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(
        done["report"]["entries"][0]["status"], "succeeded",
        "{done}"
    );
    let (status, pits, _) = c(
        Method::GET,
        "/v1/repositories/main/pits",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(pits["pits"].as_array().unwrap().len(), 1, "{pits}");
    let (status, objects, _) = c(
        Method::GET,
        "/v1/repositories/main/pits/latest/objects",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{objects}");
    assert_eq!(objects["tables"][0]["name"], "t", "{objects}");
    let (_, verify, _) = c(
        Method::POST,
        "/v1/entries/lake/verify",
        Some(OPERATOR),
        Some(json!({"read_data": true})),
    )
    .await;
    let verified = wait_job(&client, &server, verify["id"].as_str().unwrap()).await;
    assert_eq!(verified["state"], "succeeded", "{verified}");

    // A dry run is open to viewers; the restore itself to admins, and pyiceberg reads it.
    let restore = json!({"repository": "main", "target_catalog": "dst"});
    let (status, dry, _) = c(
        Method::POST,
        "/v1/restores",
        Some(VIEWER),
        Some(json!({"repository": "main", "target_catalog": "dst", "dry_run": true})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{dry}");
    let dry = wait_job(&client, &server, dry["id"].as_str().unwrap()).await;
    assert_eq!(
        dry["report"]["plan"]["tables"][0]["action"], "create",
        "{dry}"
    );
    assert!(!dst.exists("db1.t"), "a dry run writes nothing");
    let (status, job, _) = c(
        Method::POST,
        "/v1/restores",
        Some(ADMIN),
        Some(restore.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let restored = wait_job(&client, &server, job["id"].as_str().unwrap()).await;
    assert_eq!(restored["state"], "succeeded", "{restored}");
    assert_same_table(
        &dst.dump("db1.t"),
        &src.dump("db1.t"),
        "restored through the API",
    );
    // 409 on an existing table; 400 on bad bodies, naming the field; 413 on a huge one.
    let (status, conflict, _) = c(
        Method::POST,
        "/v1/restores",
        Some(ADMIN),
        Some(restore.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert!(
        conflict["error"]["message"]
            .as_str()
            .unwrap()
            .contains("db1.t"),
        "{conflict}"
    );
    let (status, bad, _) = c(
        Method::POST,
        "/v1/restores",
        Some(ADMIN),
        Some(json!({"repository": "main", "target_catalog": "dst", "colour": "red"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"]["message"].as_str().unwrap().contains("colour"),
        "{bad}"
    );
    let raw = client
        .post(server.url("/v1/restores"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    let huge = json!({"repository": "main", "target_catalog": "dst", "table": vec!["x".repeat(1000); 100]});
    let (status, _, _) = c(Method::POST, "/v1/restores", Some(ADMIN), Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _, _) = c(
        Method::GET,
        "/v1/repositories/nope/pits",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // 423 while `bcn backup` holds the repository's lock.
    let mut cli = Command::new(env!("CARGO_BIN_EXE_bcn"))
        .current_dir(ws.dir.path())
        .args([
            "backup",
            "--catalog",
            "big",
            "--repo",
            "bigrepo",
            "--config",
        ])
        .arg(&ws.plan)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The lock itself, not any file in `locks/`: the first one there is the lock's temporary
    // file, before it is linked under its name.
    let lock = ws.dir.path().join("repo-big/locks/exclusive.json");
    let started = Instant::now();
    while !lock.exists() {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the CLI backup never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, locked, _) = c(Method::POST, "/v1/entries/big/backup", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::LOCKED, "{locked}");
    assert_eq!(
        locked["error"]["details"]["holder"]["command"], "backup",
        "{locked}"
    );
    assert!(cli.wait().unwrap().success());

    // Two jobs on two repositories run at once: the long one first (big2's first backup
    // copies everything; big's has nothing left to copy after the CLI's, and could end
    // before a second request arrives).
    let (_, a, _) = c(
        Method::POST,
        "/v1/entries/big2/backup",
        Some(OPERATOR),
        None,
    )
    .await;
    let (_, b, _) = c(Method::POST, "/v1/entries/big/backup", Some(OPERATOR), None).await;
    let a = wait_job(&client, &server, a["id"].as_str().unwrap()).await;
    let b = wait_job(&client, &server, b["id"].as_str().unwrap()).await;
    assert_eq!(
        (a["state"].as_str(), b["state"].as_str()),
        (Some("succeeded"), Some("succeeded")),
        "{a}\n{b}"
    );
    assert!(
        b["started_at"].as_str().unwrap() < a["finished_at"].as_str().unwrap(),
        "the second job started only after the first ended: {a}\n{b}"
    );

    // Cancelling a running job stops it cleanly: cancelled, and the lock is gone; its report
    // says whether it committed its PIT, and the repository agrees.
    let big2_pits = || {
        fs_err::read_dir(ws.dir.path().join("repo-big2/pits")).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))
            })
            .count()
        })
    };
    let pits_before = big2_pits();
    big.py("mutate", &["--table", "db1.big", "--op", "append"]);
    let (_, running, _) = c(
        Method::POST,
        "/v1/entries/big2/backup",
        Some(OPERATOR),
        Some(json!(null)),
    )
    .await;
    let id = running["id"].as_str().unwrap().to_owned();
    let (status, _, _) = call(
        &client,
        &server,
        Method::DELETE,
        &format!("/v1/jobs/{id}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = call(
        &client,
        &server,
        Method::DELETE,
        &format!("/v1/jobs/{id}"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert!(
        status == StatusCode::ACCEPTED || status == StatusCode::CONFLICT,
        "cancel answered {status}"
    );
    let cancelled = wait_job(&client, &server, &id).await;
    if status == StatusCode::ACCEPTED {
        assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
        let completed = cancelled["report"]["completed"]
            .as_array()
            .unwrap_or_else(|| panic!("a cancelled job reports what it completed: {cancelled}"));
        assert_eq!(cancelled["report"]["unfinished"], json!([]), "{cancelled}");
        assert_eq!(
            big2_pits(),
            pits_before + completed.len(),
            "the PITs in the repository are those before and those the report says the job committed: {cancelled}"
        );
    }
    // The stopped backup first makes the copies it completed durable (fsyncs, which a disk
    // shared with the rest of the suite can take seconds over), then removes its lock.
    let started = Instant::now();
    let lock2 = ws.dir.path().join("repo-big2/locks");
    while lock2.exists() && fs_err::read_dir(&lock2).unwrap().next().is_some() {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the cancelled job left its lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Forget one PIT (admin).
    let (status, forgot, _) = c(
        Method::DELETE,
        "/v1/repositories/main/pits/latest",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{forgot}");
    let (_, pits, _) = c(
        Method::GET,
        "/v1/repositories/main/pits",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(pits["pits"].as_array().unwrap().len(), 0, "{pits}");
    let (_, gc, _) = c(
        Method::POST,
        "/v1/repositories/main/gc",
        Some(ADMIN),
        Some(json!({"grace": "0s"})),
    )
    .await;
    let gc = wait_job(&client, &server, gc["id"].as_str().unwrap()).await;
    assert_eq!(gc["state"], "succeeded", "{gc}");
    assert!(
        !gc["report"]["unreferenced"].as_array().unwrap().is_empty(),
        "{gc}"
    );

    // A restart keeps the history and marks the job it interrupted.
    big.py("mutate", &["--table", "db1.big", "--op", "append"]);
    let (_, running, _) = c(Method::POST, "/v1/entries/big/backup", Some(OPERATOR), None).await;
    let interrupted_id = running["id"].as_str().unwrap().to_owned();
    server.kill();
    let log2 = tmp.path().join("serve2.log");
    let server = Server::start(&ws, &log2);
    let (status, history, _) = call(
        &client,
        &server,
        Method::GET,
        "/v1/jobs?limit=1000",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let jobs = history["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 9, "every job of the first server: {history}");
    let job = jobs
        .iter()
        .find(|j| j["id"] == interrupted_id.as_str())
        .unwrap();
    assert_eq!(job["state"], "interrupted", "{job}");
    let (_, scoped_jobs, _) = call(
        &client,
        &server,
        Method::GET,
        "/v1/jobs",
        Some(SCOPED),
        None,
    )
    .await;
    assert!(
        scoped_jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["target"] == "other" || j["target"] == "second"),
        "{scoped_jobs}"
    );

    // No token in any log line.
    drop(server);
    assert!(
        fs_err::read_to_string(&log)
            .unwrap()
            .contains("job accepted")
    );
    for log in [&log, &log2] {
        let text = fs_err::read_to_string(log).unwrap();
        for token in [VIEWER, OPERATOR, ADMIN, SCOPED] {
            assert!(!text.contains(token), "a token is in {}", log.display());
        }
    }
    // Jobs notified as the commands do: the backup (through apply), verify, restore, gc.
    let events = fs_err::read_to_string(ws.dir.path().join("events.txt")).unwrap();
    for line in [
        "start lake",
        "success lake",
        "success verify",
        "success restore",
        "success gc",
    ] {
        assert!(
            events.lines().any(|l| l.starts_with(line)),
            "no `{line}` in:\n{events}"
        );
    }
    // The job history lives next to the plan by default.
    assert!(ws.dir.path().join("bcn-jobs.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_scheduler_runs_due_entries_as_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let ws = Workspace::new(
        &[&src],
        "repositories:\n  main: { location: repo-main }\nbackups:\n  - { name: lake, catalog: src, repository: main }\napi:\n  tokens:\n    - { name: viewer, token: \"${VIEWER_TOKEN}\", role: viewer }\n",
    );
    let server = Server::start_with(&ws, &tmp.path().join("serve.log"), &["--schedule", "1s"]);
    let client = client();
    let started = Instant::now();
    loop {
        let (status, jobs, _) = call(
            &client,
            &server,
            Method::GET,
            "/v1/jobs",
            Some(VIEWER),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let done: Vec<&Value> = jobs["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["kind"] == "apply" && j["state"] == "succeeded")
            .collect();
        if let Some(job) = done.last() {
            assert_eq!(job["requested_by"], "scheduler");
            assert_eq!(job["report"]["entries"][0]["status"], "succeeded", "{job}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_mins(2),
            "no scheduled run: {jobs}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(ws.dir.path().join("repo-main/pits").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backup_job_stops_as_apply_does_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.make_big(4, 10);
    let ws = Workspace::new(
        &[&src],
        concat!(
            "repositories:\n  main: { location: repo }\n",
            "backups:\n  - { name: lake, catalog: src, repository: main }\n",
            "notifications:\n  - { on: [failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\n",
            "metrics: { textfile: bcn.prom }\n",
            viewer_and_admin!(),
        ),
    );
    let server = Server::start(&ws, &tmp.path().join("serve.log"));
    let client = client();
    let backup = async || {
        let (status, job, _) = call(
            &client,
            &server,
            Method::POST,
            "/v1/entries/lake/backup",
            Some(ADMIN),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        job["id"].as_str().unwrap().to_owned()
    };
    let id = backup().await;
    // Cancelled once the backup holds its lock: it is copying (forty files of 1 MiB, each
    // made durable before the PIT is committed).
    let lock = ws.path("repo/locks/exclusive.json");
    let job = cancel_once(&client, &server, &id, "the backup took its lock", || {
        lock.exists()
    })
    .await;
    // Its report is the run's: the entry failed as interrupted, saying what it committed.
    let entry = &job["report"]["entries"][0];
    assert_eq!(entry["status"], "failed", "{job}");
    assert!(
        entry["error"]
            .as_str()
            .is_some_and(|e| e.contains("interrupted by a cancel of its `bcn serve` job")),
        "{job}"
    );
    assert!(
        job["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("cancelled on request; interrupted by")),
        "{job}"
    );
    let completed = job["report"]["completed"].as_array().unwrap();
    assert_eq!(
        crate::support::files_under(&ws.path("repo/pits")).len(),
        completed.len(),
        "the PITs in the repository are those the report says the job committed: {job}"
    );
    // Notified and counted as a failed run, as `bcn apply` stopped by SIGTERM.
    crate::support::assert_failed_run_notified_and_counted(&ws, "lake");
    // The next job takes up from there: it succeeds, and the repository checks whole.
    let next = wait_job(&client, &server, &backup().await).await;
    assert_eq!(next["state"], "succeeded", "{next}");
    let verified = ws.bcn(&["verify", "--repo", "main", "--read-data"]);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_stops_its_running_jobs_and_records_them_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let ws = Workspace::new(
        &[&src],
        concat!(
            "repositories:\n  main: { location: repo }\n",
            "backups:\n  - { name: lake, catalog: src, repository: main, hooks: { before: [[\"sh\", \"-c\", \"echo $$ > hook.pid; exec sleep 100\"]], timeout: 10m } }\n",
            "notifications:\n  - { on: [failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\n",
            "metrics: { textfile: bcn.prom }\n",
            viewer_and_admin!(),
        ),
    );
    let mut server = Server::start(&ws, &tmp.path().join("serve.log"));
    let client = client();
    let (status, job, _) = call(
        &client,
        &server,
        Method::POST,
        "/v1/entries/lake/backup",
        Some(ADMIN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // The job is in its `before` hook, which would run for 100 s.
    let hook_pid = ws.path("hook.pid");
    let started = Instant::now();
    while !fs_err::read_to_string(&hook_pid).is_ok_and(|pid| pid.ends_with('\n')) {
        assert!(
            started.elapsed() < Duration::from_mins(1),
            "the hook never ran"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // `systemctl stop`: the job stops as on a cancel, records its end, and the server exits.
    assert_eq!(server.terminate(), Some(143));
    let pid = fs_err::read_to_string(&hook_pid).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", pid.trim())).exists()
            || fs_err::read_to_string(format!("/proc/{}/stat", pid.trim()))
                .is_ok_and(|stat| stat.contains(") Z")),
        "the hook {pid} outlived the server"
    );
    crate::support::assert_failed_run_notified_and_counted(&ws, "lake");
    assert!(!ws.path("repo/locks/exclusive.json").exists());
    // The next server shows what the job recorded as it stopped (not a mark of its own).
    let server = Server::start(&ws, &tmp.path().join("serve2.log"));
    let (status, job, _) = call(
        &client,
        &server,
        Method::GET,
        &format!("/v1/jobs/{id}"),
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["state"], "interrupted", "{job}");
    assert_eq!(
        job["error"],
        "the server stopped; interrupted by a cancel of its `bcn serve` job before its backup started: nothing was copied or committed",
        "{job}"
    );
    assert_eq!(job["report"]["entries"][0]["status"], "failed", "{job}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_restore_job_notifies_its_cancel_and_the_next_one_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let dst = Lake::new(tmp.path(), "dst");
    src.make_big(4, 10);
    let ws = Workspace::new(
        &[&src, &dst],
        concat!(
            "repositories:\n  main: { location: repo }\n",
            "backups:\n  - { name: lake, catalog: src, repository: main }\n",
            "notifications:\n  - { on: [start, failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\n",
            viewer_and_admin!(),
        ),
    );
    let backup = ws.bcn(&["backup", "--catalog", "src", "--repo", "main"]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    let server = Server::start(&ws, &tmp.path().join("serve.log"));
    let client = client();
    let restore = async || {
        let (status, job, _) = call(
            &client,
            &server,
            Method::POST,
            "/v1/restores",
            Some(ADMIN),
            Some(json!({"repository": "main", "target_catalog": "dst"})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{job}");
        job["id"].as_str().unwrap().to_owned()
    };
    let id = restore().await;
    // Cancelled once it copies (forty files of 1 MiB, each made durable before the table is
    // registered).
    let target = tmp.path().join("dst").join("warehouse");
    let job = cancel_once(&client, &server, &id, "the restore wrote a file", || {
        !crate::support::files_under(&target).is_empty()
    })
    .await;
    // Its start was notified, and so is its end: no one waits for a restore that ended.
    assert_cancel_notified(&ws, &job, "restore");
    // Nothing half-registered: the table is there only if the job says it registered it.
    let completed = job["report"]["completed"].as_array().unwrap();
    assert_eq!(dst.exists("db1.big"), !completed.is_empty(), "{job}");
    // The next restore takes up from there, and the table is the source's.
    if completed.is_empty() {
        let next = wait_job(&client, &server, &restore().await).await;
        assert_eq!(next["state"], "succeeded", "{next}");
    }
    assert_same_table(
        &dst.dump_digest("db1.big"),
        &src.dump_digest("db1.big"),
        "restored after a cancelled restore",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verify_job_stuck_on_a_hung_read_is_cancelled_and_notifies_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    src.py("make-named", &["--namespace", "db1", "--name", "t"]);
    let ws = Workspace::new(
        &[&src],
        concat!(
            "repositories:\n  main: { location: repo }\n",
            "backups:\n  - { name: lake, catalog: src, repository: main }\n",
            "notifications:\n  - { on: [start, success, failure, verify_failure], command: [\"sh\", \"-c\", \"echo $BCN_ENTRY $BCN_STATUS >> events.txt\"] }\n",
            viewer_and_admin!(),
        ),
    );
    let backup = ws.bcn(&["backup", "--catalog", "src", "--repo", "main"]);
    assert_eq!(backup.code, 0, "{}", backup.stderr);
    // A stored metadata file that never answers (a FIFO whose writer never writes: what a
    // hung disk or mount looks like).
    let stored = crate::support::hang(&ws.path("repo/tables"), ".metadata.json");
    let server = Server::start(&ws, &tmp.path().join("serve.log"));
    let client = client();
    let (status, job, _) = call(
        &client,
        &server,
        Method::POST,
        "/v1/entries/lake/verify",
        Some(ADMIN),
        Some(json!({ "read_data": true })),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().unwrap().to_owned();
    // The verification has the file open once a writer can open it without waiting; the
    // writer is held, so the read stays stuck.
    let writer = std::cell::RefCell::new(None);
    let job = cancel_once(
        &client,
        &server,
        &id,
        "the verification read the file",
        || {
            crate::support::hung_reader(&stored)
                .map(|fd| writer.replace(Some(fd)))
                .is_some()
        },
    )
    .await;
    // Its start was notified, and so is its end; nothing was recorded.
    assert_cancel_notified(&ws, &job, "verify");
    assert!(crate::support::files_under(&ws.path("repo/verifications")).is_empty());
    // The server goes on: the stuck read holds one thread, not the server.
    let (status, jobs, _) = call(
        &client,
        &server,
        Method::GET,
        "/v1/jobs",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{jobs}");
    assert!(writer.borrow().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_certificate_and_key() {
    let tmp = tempfile::tempdir().unwrap();
    let src = Lake::new(tmp.path(), "src");
    let ws = Workspace::new(
        &[&src],
        "repositories:\n  main: { location: repo-main }\nbackups:\n  - { name: lake, catalog: src, repository: main }\napi:\n  tokens:\n    - { name: viewer, token: \"${VIEWER_TOKEN}\", role: viewer }\n",
    );
    // A CA, and a server certificate for 127.0.0.1 signed by it (webpki refuses a
    // self-signed CA certificate as the server's own).
    let dir = tmp.path();
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=bcn test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    fs_err::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let server = Server::start_with(
        &ws,
        &tmp.path().join("serve.log"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.base.starts_with("https://"), "{}", server.base);
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The chain the server presents verifies against the CA (checked by openssl itself)...
    let address = server.base.trim_start_matches("https://").to_owned();
    let verified = Command::new("openssl")
        .args(["s_client", "-connect", &address, "-CAfile"])
        .arg(&ca)
        .args(["-verify_return_error", "-brief"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&verified.stderr);
    assert!(said.contains("Verification: OK"), "{said}");
    // ... and the API answers over it (this reqwest build trusts the system roots only).
    let client = Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let (status, body, _) = call(
        &client,
        &server,
        Method::GET,
        "/v1/entries",
        Some(VIEWER),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["entries"][0]["name"], "lake");
    // Plain HTTP to the HTTPS port gets no answer; a client that does not trust the
    // certificate is refused.
    let plain = Client::new()
        .get(server.url("/v1/entries").replacen("https://", "http://", 1))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    assert!(
        Client::new()
            .get(server.url("/v1/entries"))
            .send()
            .await
            .is_err()
    );
}
