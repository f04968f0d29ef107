//! Test harness: `SQLite` catalogs written and read by pyiceberg (an independent Iceberg
//! client), the `bcn` binary run as a user runs it, and table comparisons.
//!
//! The Python venv comes from `scripts/test-env.sh` (cached, pinned versions), or from
//! `BCN_TEST_PYTHON` when set.

#![allow(dead_code, reason = "each test module uses a part of the harness")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The repository root.
pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python interpreter of the test venv, installed on first use.
pub(crate) fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Some(p) = std::env::var_os("BCN_TEST_PYTHON") {
            return PathBuf::from(p);
        }
        let out = Command::new("bash")
            .arg(root().join("scripts/test-env.sh"))
            .output()
            .expect("running scripts/test-env.sh");
        assert!(
            out.status.success(),
            "scripts/test-env.sh failed (it installs pyiceberg for the tests):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("test-env.sh prints the python path")
                .trim(),
        )
    })
}

/// A `SQLite` catalog with a local warehouse, in its own directory.
#[derive(Debug, Clone)]
pub(crate) struct Lake {
    /// Catalog name (plan name, pyiceberg name and `catalog_name` column alike).
    pub(crate) name: String,
    /// Directory holding `catalog.db` and `warehouse/`.
    pub(crate) dir: PathBuf,
}

impl Lake {
    /// A lake named `name` under `parent`.
    pub(crate) fn new(parent: &Path, name: &str) -> Self {
        let dir = parent.join(name);
        fs_err::create_dir_all(dir.join("warehouse")).unwrap();
        Self {
            name: name.into(),
            dir,
        }
    }

    pub(crate) fn db(&self) -> PathBuf {
        self.dir.join("catalog.db")
    }

    /// The warehouse URL.
    pub(crate) fn warehouse(&self) -> String {
        format!("file://{}", self.dir.join("warehouse").display())
    }

    /// The plan entry for this catalog.
    pub(crate) fn plan_entry(&self) -> String {
        format!(
            "  {name}:\n    type: sql\n    uri: sqlite://{db}\n    warehouse: {wh}\n",
            name = self.name,
            db = self.db().display(),
            wh = self.warehouse()
        )
    }

    /// Runs a `tests/py/bcn_fixtures.py` subcommand against this catalog; returns its JSON.
    pub(crate) fn py(&self, sub: &str, args: &[&str]) -> Value {
        self.py_with(Command::new(python()), sub, args)
    }

    /// [`Lake::py`] through `command` (which runs Python, or a program that runs it).
    pub(crate) fn py_with(&self, mut command: Command, sub: &str, args: &[&str]) -> Value {
        let out = command
            .arg(root().join("tests/py/bcn_fixtures.py"))
            .arg(sub)
            .args(["--catalog-type", "sql", "--catalog-name", &self.name])
            .args(["--prop", &format!("uri=sqlite:///{}", self.db().display())])
            .args(["--prop", &format!("warehouse={}", self.warehouse())])
            .args(args)
            .output()
            .expect("running bcn_fixtures.py");
        assert!(
            out.status.success(),
            "bcn_fixtures.py {sub} {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bcn_fixtures.py prints JSON")
    }

    /// Makes `db1.big`: `snapshots` appends of `files` incompressible 1 MiB data files, big
    /// enough for a run to be interrupted in the middle of its copies.
    pub(crate) fn make_big(&self, snapshots: u32, files: u32) {
        let (snapshots, files) = (snapshots.to_string(), files.to_string());
        self.py(
            "make-bench",
            &[
                "--table",
                "db1.big",
                "--snapshots",
                &snapshots,
                "--files-per-snapshot",
                &files,
                "--file-mib",
                "1",
                // Slow to back up on purpose: tests stop or race such a backup.
                "--commit-per-file",
            ],
        );
    }

    /// Makes `table` with `write.data.path` in `data_path` and a file added from `add_dir`
    /// (files outside its location).
    pub(crate) fn make_external(&self, table: &str, data_path: &Path, add_dir: &Path) {
        self.py(
            "make-external",
            &[
                "--table",
                table,
                "--data-path",
                data_path.to_str().unwrap(),
                "--add-dir",
                add_dir.to_str().unwrap(),
            ],
        );
    }

    /// Everything pyiceberg reads of a table, every snapshot's rows included.
    pub(crate) fn dump(&self, table: &str) -> Value {
        self.py("dump", &["--table", table, "--all-snapshots"])
    }

    /// [`Lake::dump`] with the current rows alone, as their count and SHA-256: for tables of
    /// megabytes, whose rows of every snapshot would take a minute to print and compare.
    pub(crate) fn dump_digest(&self, table: &str) -> Value {
        self.py("dump", &["--table", table, "--digest"])
    }

    /// Whether pyiceberg sees the table.
    pub(crate) fn exists(&self, table: &str) -> bool {
        self.py("exists", &["--table", table])["exists"]
            .as_bool()
            .unwrap()
    }
}

/// A working directory with a plan naming some lakes.
pub(crate) struct Workspace {
    /// Keeps the directory alive.
    pub(crate) dir: tempfile::TempDir,
    /// The plan file.
    pub(crate) plan: PathBuf,
}

/// The result of one `bcn` run.
#[derive(Debug)]
pub(crate) struct Run {
    /// Exit code.
    pub(crate) code: i32,
    /// Stdout.
    pub(crate) stdout: String,
    /// Stderr.
    pub(crate) stderr: String,
}

impl From<std::process::Output> for Run {
    fn from(out: std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    /// Stdout as JSON (the command must have had `--output json`).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Asserts success and returns the JSON document.
    pub(crate) fn ok(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "bcn failed:\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self.json()
    }
}

impl Workspace {
    /// A workspace whose plan declares `lakes` and the extra YAML `extra`.
    pub(crate) fn new(lakes: &[&Lake], extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plan = dir.path().join("plan.yaml");
        let mut text = String::from("catalogs:\n");
        for lake in lakes {
            text.push_str(&lake.plan_entry());
        }
        text.push_str(extra);
        fs_err::write(&plan, text).unwrap();
        Self { dir, plan }
    }

    /// A path inside the workspace.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs `bcn ARGS --output json` with the plan, in the workspace.
    pub(crate) fn bcn(&self, args: &[&str]) -> Run {
        self.run(args, true)
    }

    /// Runs `bcn ARGS --output json` without a plan.
    pub(crate) fn bcn_no_plan(&self, args: &[&str]) -> Run {
        self.run(args, false)
    }

    /// Runs `bcn ARGS --output json` with the plan and extra environment variables.
    pub(crate) fn bcn_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_env(args, true, env)
    }

    /// Runs `bcn ARGS` with the plan and text output; asserts success and returns stdout.
    pub(crate) fn bcn_text(&self, args: &[&str]) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(self.dir.path())
            .args(args)
            .arg("--config")
            .arg(&self.plan)
            .env_remove("BCN_REPO")
            .env_remove("BCN_CONFIG")
            .output()
            .expect("running bcn");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "bcn {args:?} failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn run(&self, args: &[&str], with_plan: bool) -> Run {
        self.run_env(args, with_plan, &[])
    }

    fn run_env(&self, args: &[&str], with_plan: bool, env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bcn"));
        command
            .current_dir(self.dir.path())
            .args(args)
            .args(["--output", "json"])
            .envs(env.iter().copied());
        if with_plan {
            command.arg("--config").arg(&self.plan);
        }
        let out = command
            .env_remove("BCN_REPO")
            .env_remove("BCN_CONFIG")
            .output()
            .expect("running bcn");
        Run::from(out)
    }
}

/// Asserts that `entry`'s run was notified as failed, alone (`events.txt`, written by a
/// notification command `echo $BCN_ENTRY $BCN_STATUS`), and counted failed in the metrics
/// (`bcn.prom`).
pub(crate) fn assert_failed_run_notified_and_counted(ws: &Workspace, entry: &str) {
    assert_eq!(
        fs_err::read_to_string(ws.path("events.txt"))
            .unwrap()
            .trim(),
        format!("{entry} failed")
    );
    let metrics = fs_err::read_to_string(ws.path("bcn.prom")).unwrap();
    assert!(
        metrics.contains(&format!("bcn_entry_status{{entry=\"{entry}\",repository="))
            && metrics.contains("status=\"failed\"} 1"),
        "{metrics}"
    );
}

/// Asserts that a restored table is the source table as it was: rows (of every snapshot),
/// schemas, partition specs, sort orders, snapshot history and refs. Identity fields
/// (UUID, location, properties) are compared by the callers that care.
pub(crate) fn assert_same_table(restored: &Value, source: &Value, what: &str) {
    for field in [
        "format_version",
        "current_snapshot_id",
        "current_schema_id",
        "schemas",
        "default_spec_id",
        "partition_specs",
        "default_sort_order_id",
        "sort_orders",
        "snapshots",
        "refs",
        "rows",
        "row_count",
        "rows_at",
    ] {
        assert_eq!(restored[field], source[field], "{what}: `{field}` differs");
    }
}

/// Every file under `dir`, relative, sorted.
/// Rewrites the entries of the file list at `list` (in its part 0, where a test table's
/// entries all are) with `change`. `reseal` records the new part in the list and gives the
/// list a new checksum, as a tamperer would; otherwise the list goes on recording the old
/// part, as after damage.
pub(crate) fn edit_filelist_entries(
    list: &Path,
    reseal: bool,
    change: impl FnOnce(&mut Vec<Value>),
) {
    use sha2::Digest as _;
    let part = list.with_extension("0.jsonl");
    let mut entries: Vec<Value> = fs_err::read_to_string(&part)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    change(&mut entries);
    let mut bytes = Vec::new();
    for entry in &entries {
        serde_json::to_writer(&mut bytes, entry).unwrap();
        bytes.push(b'\n');
    }
    fs_err::write(&part, &bytes).unwrap();
    if reseal {
        let mut doc: Value = serde_json::from_slice(&fs_err::read(list).unwrap()).unwrap();
        doc.as_object_mut().unwrap().remove("checksum");
        doc["parts"][0] = serde_json::json!({
            "files": entries.len(),
            "size": bytes.len(),
            "sha256": hex::encode(sha2::Sha256::digest(&bytes)),
        });
        fs_err::write(list, bcn::repo::records::encode(&doc)).unwrap();
    }
}

pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs_err::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// Small disks that fill: tmpfs mounts of a given size, seen only by the commands run through
/// [`SmallDisks::command`] (a mount namespace of their own, inside a user namespace where
/// the kernel allows one: no privileges needed). Unmounted when dropped.
pub(crate) struct SmallDisks {
    holder: std::process::Child,
    /// Whether they are in a user namespace of their own too.
    user: bool,
}

impl SmallDisks {
    pub(crate) fn new() -> Self {
        // A user namespace where one may be made; root may also do without.
        for user in [true, false] {
            let mut unshare = Command::new("unshare");
            if user {
                unshare.args(["--user", "--map-root-user"]);
            }
            let mut holder = unshare
                .args(["--mount", "--propagation", "private"])
                .args(["sh", "-c", "echo ready && exec sleep 100000"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("running unshare (util-linux)");
            let mut line = String::new();
            std::io::BufRead::read_line(
                &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
                &mut line,
            )
            .unwrap();
            if line.trim() == "ready" {
                return Self { holder, user };
            }
            let _ = holder.wait();
        }
        panic!(
            "`unshare --mount` failed with and without `--user`: this test needs user namespaces (sysctl kernel.unprivileged_userns_clone=1) or root"
        );
    }

    /// `program` run where the disks are mounted, in `dir` (a working directory taken
    /// outside would resolve paths through the mounts of outside).
    pub(crate) fn command(&self, dir: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["-t", &self.holder.id().to_string(), "-m"]);
        if self.user {
            command.arg("-U");
        }
        command
            .arg(format!("--wd={}", dir.display()))
            .arg("--")
            .arg(program);
        command
    }

    /// Mounts (or, mounted, resizes) a disk of `size` (`4m`) at `dir`.
    pub(crate) fn mount(&self, dir: &Path, size: &str) {
        fs_err::create_dir_all(dir).unwrap();
        let script = "mountpoint -q \"$2\" && exec mount -o remount,size=$1 \"$2\"; exec mount -t tmpfs -o size=$1 tmpfs \"$2\"";
        let status = self
            .command(Path::new("/"), "sh")
            .args(["-c", script, "sh", size])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success(), "mounting {size} at {}", dir.display());
    }

    /// Runs `bcn ARGS --output json` in `dir`, seeing the disks.
    pub(crate) fn bcn(&self, dir: &Path, args: &[&str]) -> Run {
        let out = self
            .command(dir, env!("CARGO_BIN_EXE_bcn"))
            .args(args)
            .args(["--output", "json"])
            .env_remove("BCN_REPO")
            .env_remove("BCN_CONFIG")
            .output()
            .unwrap();
        Run::from(out)
    }
}

impl Drop for SmallDisks {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Replaces the first file under `dir` whose name ends with `suffix` with a FIFO that nobody
/// writes: opening it for reading waits for ever, as a read does on a hung disk or NFS
/// mount. Returns its path.
pub(crate) fn hang(dir: &Path, suffix: &str) -> PathBuf {
    let path = files_under(dir)
        .into_iter()
        .find(|rel| rel.ends_with(suffix))
        .map_or_else(
            || panic!("no file `*{suffix}` under {}", dir.display()),
            |rel| dir.join(rel),
        );
    fs_err::remove_file(&path).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    path
}

/// A writer of the FIFO `path` made by [`hang`] once a reader waits on it (then held, it
/// keeps the reader waiting: it never writes); `None` while nobody reads.
pub(crate) fn hung_reader(path: &Path) -> Option<rustix::fd::OwnedFd> {
    let flags = rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::NONBLOCK;
    match rustix::fs::open(path, flags, rustix::fs::Mode::empty()) {
        Ok(fd) => Some(fd),
        Err(rustix::io::Errno::NXIO) => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Whether any file under `dir` contains `needle`.
pub(crate) fn any_file_contains(dir: &Path, needle: &str) -> Option<String> {
    files_under(dir).into_iter().find(|rel| {
        fs_err::read(dir.join(rel))
            .is_ok_and(|data| data.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

// -------------------------------------------------------------------------------------------
// Catalogs on the test services (catalog_suite, cross_stack).
//
// scripts/services/start.sh RUN_DIR starts moto (S3 + Glue), a Hive Metastore and rustberg
// (REST) on 127.0.0.1 and writes RUN_DIR/services.env; the tests read its BCN_TEST_*
// variables from the environment. A missing variable fails the test, naming the script,
// unless BCN_TEST_SERVICES=off, which skips it with a loud line.
// -------------------------------------------------------------------------------------------

/// The variables of `RUN_DIR/services.env` a test needs.
#[derive(Debug, Clone)]
pub(crate) struct Services {
    vars: std::collections::HashMap<String, String>,
}

impl Services {
    /// The variables `names`; `None` (after printing a SKIPPED line) when one is missing and
    /// `BCN_TEST_SERVICES=off`. Panics naming `scripts/services/start.sh` otherwise.
    pub(crate) fn require(test: &str, names: &[&str]) -> Option<Self> {
        use std::io::Write as _;
        let mut vars = std::collections::HashMap::new();
        let mut missing = Vec::new();
        for name in names {
            match std::env::var_os(name).and_then(|v| v.into_string().ok()) {
                Some(v) if !v.is_empty() => {
                    vars.insert((*name).to_owned(), v);
                }
                _ => missing.push(*name),
            }
        }
        if missing.is_empty() {
            return Some(Self { vars });
        }
        if std::env::var_os("BCN_TEST_SERVICES").is_some_and(|v| v == "off") {
            // Straight to the process's stderr: libtest would capture `eprintln!`.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED {test}: BCN_TEST_SERVICES=off and {} not set (needs the test services) ***",
                missing.join(", ")
            );
            return None;
        }
        panic!(
            "{test} needs the test services, but {} {} not set: run `scripts/services/start.sh RUN_DIR` and source RUN_DIR/services.env (scripts/test.sh does both), or set BCN_TEST_SERVICES=off to skip",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" }
        );
    }

    /// A variable `require` checked.
    pub(crate) fn get(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{name} was not required"))
    }

    /// Creates bucket `bucket` on moto S3.
    pub(crate) fn create_moto_bucket(&self, bucket: &str) {
        let script = "import sys, boto3\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2], \
            aws_secret_access_key=sys.argv[3], region_name=sys.argv[4])\n\
            s3.create_bucket(Bucket=sys.argv[5])\n";
        let out = Command::new(python())
            .args(["-c", script])
            .args([
                self.get(MOTO_ENDPOINT),
                self.get(MOTO_ACCESS_KEY),
                self.get(MOTO_SECRET_KEY),
                self.get(MOTO_REGION),
                bucket,
            ])
            .output()
            .expect("running python");
        assert!(
            out.status.success(),
            "creating bucket {bucket} on moto: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// moto's S3 + Glue endpoint.
pub(crate) const MOTO_ENDPOINT: &str = "BCN_TEST_MOTO_ENDPOINT";
/// moto's region.
pub(crate) const MOTO_REGION: &str = "BCN_TEST_MOTO_REGION";
/// moto's access key (any is accepted).
pub(crate) const MOTO_ACCESS_KEY: &str = "BCN_TEST_MOTO_ACCESS_KEY";
/// moto's secret key.
pub(crate) const MOTO_SECRET_KEY: &str = "BCN_TEST_MOTO_SECRET_KEY";
/// The Hive Metastore, `thrift://127.0.0.1:P`.
pub(crate) const HMS_URI: &str = "BCN_TEST_HMS_URI";
/// The metastore's default warehouse, on moto S3.
pub(crate) const HMS_WAREHOUSE: &str = "BCN_TEST_HMS_WAREHOUSE";
/// The S3 endpoint of that warehouse (moto).
pub(crate) const HMS_S3_ENDPOINT: &str = "BCN_TEST_HMS_S3_ENDPOINT";
/// rustberg, the REST catalog.
pub(crate) const REST_URI: &str = "BCN_TEST_REST_URI";
/// rustberg's warehouse: restored tables must go inside it.
pub(crate) const REST_WAREHOUSE: &str = "BCN_TEST_REST_WAREHOUSE";

/// The moto variables, for Glue and S3.
pub(crate) const MOTO_VARS: &[&str] =
    &[MOTO_ENDPOINT, MOTO_REGION, MOTO_ACCESS_KEY, MOTO_SECRET_KEY];

/// A fresh name: `prefix` and 8 hex digits (lowercase, as Glue and Hive want).
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The type of a [`Catalog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CatalogType {
    /// `SQLite` with a local warehouse.
    Sql,
    /// Glue on moto, files on moto S3.
    Glue,
    /// Hive Metastore, files on moto S3.
    Hms,
    /// Hive Metastore, files on local disk (the metastore writes `file:/x` locations).
    HmsLocal,
    /// rustberg, files in its local warehouse.
    Rest,
}

impl CatalogType {
    /// The service variables a catalog of this type needs.
    pub(crate) fn required_vars(self) -> Vec<&'static str> {
        match self {
            Self::Sql => vec![],
            Self::Glue => MOTO_VARS.to_vec(),
            Self::Hms => {
                let mut v = MOTO_VARS.to_vec();
                v.extend([HMS_URI, HMS_WAREHOUSE, HMS_S3_ENDPOINT]);
                v
            }
            Self::HmsLocal => vec![HMS_URI],
            Self::Rest => vec![REST_URI, REST_WAREHOUSE],
        }
    }
}

/// A catalog of any type, for plans (bcn) and for `bcn_fixtures.py` (pyiceberg).
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// Its name in the plan and for pyiceberg.
    pub(crate) name: String,
    /// Its type.
    pub(crate) kind: CatalogType,
    yaml: String,
    py_args: Vec<String>,
    /// Root of fresh locations for restored tables (a unique S3 prefix or local directory).
    pub(crate) scratch: String,
}

impl Catalog {
    /// A catalog of type `kind` named `name`; `dir` holds local files (the `SQLite` catalog and
    /// warehouse). Glue and Hive catalogs get a fresh moto bucket for `scratch`.
    pub(crate) fn new(kind: CatalogType, name: &str, dir: &Path, svc: &Services) -> Self {
        let s3_yaml = |endpoint: &str| {
            format!(
                "    s3:\n      endpoint: {endpoint}\n      region: {region}\n      path_style: true\n      access_key_id: \"${{{MOTO_ACCESS_KEY}}}\"\n      secret_access_key: \"${{{MOTO_SECRET_KEY}}}\"\n",
                region = svc.get(MOTO_REGION),
            )
        };
        let s3_py = |endpoint: &str| {
            vec![
                format!("s3.endpoint={endpoint}"),
                format!("s3.region={}", svc.get(MOTO_REGION)),
                "s3.path-style-access=true".into(),
                format!("s3.access-key-id={}", svc.get(MOTO_ACCESS_KEY)),
                format!("s3.secret-access-key={}", svc.get(MOTO_SECRET_KEY)),
            ]
        };
        let bucket = || {
            let b = unique("bcn-it-");
            svc.create_moto_bucket(&b);
            b
        };
        let (yaml, py_type, props, scratch) = match kind {
            CatalogType::Sql => {
                let lake = Lake::new(dir, name);
                let yaml = lake.plan_entry();
                let props = vec![
                    format!("uri=sqlite:///{}", lake.db().display()),
                    format!("warehouse={}", lake.warehouse()),
                ];
                let scratch = format!("file://{}", dir.join(format!("{name}-restored")).display());
                (yaml, "sql", props, scratch)
            }
            CatalogType::Glue => {
                let endpoint = svc.get(MOTO_ENDPOINT);
                let bucket = bucket();
                let warehouse = format!("s3://{bucket}/wh");
                let yaml = format!(
                    "  {name}:\n    type: glue\n    warehouse: {warehouse}\n    region: {region}\n    endpoint: {endpoint}\n    access_key_id: \"${{{MOTO_ACCESS_KEY}}}\"\n    secret_access_key: \"${{{MOTO_SECRET_KEY}}}\"\n{s3}",
                    region = svc.get(MOTO_REGION),
                    s3 = s3_yaml(endpoint)
                );
                let mut props = vec![
                    format!("glue.endpoint={endpoint}"),
                    format!("glue.region={}", svc.get(MOTO_REGION)),
                    format!("glue.access-key-id={}", svc.get(MOTO_ACCESS_KEY)),
                    format!("glue.secret-access-key={}", svc.get(MOTO_SECRET_KEY)),
                    format!("warehouse={warehouse}"),
                ];
                props.extend(s3_py(endpoint));
                (yaml, "glue", props, format!("s3://{bucket}/restored"))
            }
            CatalogType::Hms => {
                let endpoint = svc.get(HMS_S3_ENDPOINT);
                let warehouse = svc.get(HMS_WAREHOUSE);
                let yaml = format!(
                    "  {name}:\n    type: hms\n    uri: {uri}\n    warehouse: {warehouse}\n{s3}",
                    uri = svc.get(HMS_URI),
                    s3 = s3_yaml(endpoint)
                );
                let mut props = vec![
                    format!("uri={}", svc.get(HMS_URI)),
                    format!("warehouse={warehouse}"),
                ];
                props.extend(s3_py(endpoint));
                (yaml, "hive", props, format!("s3://{}/restored", bucket()))
            }
            CatalogType::HmsLocal => {
                let warehouse = format!("file://{}", dir.join(format!("{name}-wh")).display());
                let yaml = format!(
                    "  {name}:\n    type: hms\n    uri: {uri}\n    warehouse: {warehouse}\n",
                    uri = svc.get(HMS_URI)
                );
                let props = vec![
                    format!("uri={}", svc.get(HMS_URI)),
                    format!("warehouse={warehouse}"),
                ];
                let scratch = format!("file://{}", dir.join(format!("{name}-restored")).display());
                (yaml, "hive", props, scratch)
            }
            CatalogType::Rest => {
                let warehouse = svc.get(REST_WAREHOUSE);
                let yaml = format!(
                    "  {name}:\n    type: rest\n    uri: {uri}\n    warehouse: {warehouse}\n",
                    uri = svc.get(REST_URI)
                );
                let props = vec![format!("uri={}", svc.get(REST_URI))];
                let scratch = format!("{warehouse}/{}", unique("restored_"));
                (yaml, "rest", props, scratch)
            }
        };
        let mut py_args = vec![
            "--catalog-type".to_owned(),
            py_type.to_owned(),
            "--catalog-name".to_owned(),
            name.to_owned(),
        ];
        for p in props {
            py_args.push("--prop".into());
            py_args.push(p);
        }
        Self {
            name: name.to_owned(),
            kind,
            yaml,
            py_args,
            scratch,
        }
    }

    /// The plan entry (under `catalogs:`).
    pub(crate) fn plan_entry(&self) -> &str {
        &self.yaml
    }

    /// Runs a `tests/py/bcn_fixtures.py` subcommand against this catalog; returns its JSON.
    pub(crate) fn py(&self, sub: &str, args: &[&str]) -> Value {
        let out = Command::new(python())
            .arg(root().join("tests/py/bcn_fixtures.py"))
            .arg(sub)
            .args(&self.py_args)
            .args(args)
            .output()
            .expect("running bcn_fixtures.py");
        assert!(
            out.status.success(),
            "bcn_fixtures.py {sub} {args:?} on {} ({:?}) failed:\n{}",
            self.name,
            self.kind,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("bcn_fixtures.py prints JSON")
    }

    /// Everything pyiceberg reads of a table, every snapshot's rows included.
    pub(crate) fn dump(&self, table: &str) -> Value {
        self.py("dump", &["--table", table, "--all-snapshots"])
    }

    /// Adds a plain (non-Iceberg) Hive table `ns.name` to a Hive catalog: the metastore lists
    /// it with the Iceberg tables, and bcn must skip it.
    pub(crate) fn add_plain_hive_table(&self, ns: &str, name: &str) {
        assert!(matches!(
            self.kind,
            CatalogType::Hms | CatalogType::HmsLocal
        ));
        let script = "import sys\n\
            from pyiceberg.catalog.hive import HiveCatalog\n\
            from hive_metastore.ttypes import Table, StorageDescriptor, SerDeInfo, FieldSchema\n\
            uri, db, name = sys.argv[1:4]\n\
            c = HiveCatalog('plain', uri=uri)\n\
            location = c.load_namespace_properties(db)['location'] + '/' + name\n\
            sd = StorageDescriptor(cols=[FieldSchema(name='line', type='string')], location=location, \
            inputFormat='org.apache.hadoop.mapred.TextInputFormat', \
            outputFormat='org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat', \
            serdeInfo=SerDeInfo(serializationLib='org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe'))\n\
            with c._client as client:\n\
            \x20   client.create_table(Table(tableName=name, dbName=db, tableType='EXTERNAL_TABLE', \
            sd=sd, parameters={'EXTERNAL': 'TRUE'}, partitionKeys=[]))\n";
        let uri = self
            .py_args
            .iter()
            .find_map(|a| a.strip_prefix("uri="))
            .expect("a Hive catalog has a uri");
        let out = Command::new(python())
            .args(["-c", script, uri, ns, name])
            .output()
            .expect("running python");
        assert!(
            out.status.success(),
            "creating Hive table {ns}.{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates database `ns` before `make-sample` does: on a local Hive warehouse, with a
    /// `file://` location (else the metastore would put it in its own S3 warehouse).
    pub(crate) fn prepare_namespace(&self, ns: &str) {
        if self.kind != CatalogType::HmsLocal {
            return;
        }
        // The `--prop` values of the pyiceberg options.
        let props = self.py_args.iter().skip(5).step_by(2);
        let script = "import sys\n\
            from pyiceberg.catalog import load_catalog\n\
            props = dict(p.split('=', 1) for p in sys.argv[3:])\n\
            c = load_catalog(sys.argv[1], type='hive', **props)\n\
            c.create_namespace(sys.argv[2], {'location': props['warehouse'] + '/' + sys.argv[2] + '.db'})\n";
        let out = Command::new(python())
            .args(["-c", script, &self.name, ns])
            .args(props)
            .output()
            .expect("running python");
        assert!(
            out.status.success(),
            "creating database {ns} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A workspace whose plan declares `catalogs` and the extra YAML `extra`.
pub(crate) fn workspace_with(catalogs: &[&Catalog], extra: &str) -> Workspace {
    let entries: String = catalogs.iter().map(|c| c.plan_entry()).collect();
    Workspace::new(&[], &format!("{entries}{extra}"))
}

/// The statuses of a PIT's tables as `(database.table, status)`, sorted.
pub(crate) fn pit_statuses(pit: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = pit["tables"]
        .as_array()
        .expect("a PIT lists its tables")
        .iter()
        .map(|t| {
            let db: Vec<&str> = t["database"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            (
                format!("{}.{}", db.join("."), t["name"].as_str().unwrap()),
                t["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

/// A location with `file:/x` (as the Hive Metastore writes it) put back as `file:///x`.
pub(crate) fn normalize_location(location: &str) -> String {
    match location.strip_prefix("file:") {
        Some(rest) if !rest.starts_with("//") => format!("file://{rest}"),
        _ => location.to_owned(),
    }
}

/// [`assert_same_table`] with `schemas`, `partition_specs` and `sort_orders` in id order: some
/// catalogs (rustberg) serve them in any order, which means nothing.
pub(crate) fn assert_same_table_any_order(restored: &Value, source: &Value, what: &str) {
    let sorted = |dump: &Value| {
        let mut dump = dump.clone();
        for (field, id) in [
            ("schemas", "schema-id"),
            ("partition_specs", "spec-id"),
            ("sort_orders", "order-id"),
        ] {
            if let Some(list) = dump[field].as_array_mut() {
                list.sort_by_key(|v| v[id].as_i64());
            }
        }
        dump
    };
    assert_same_table(&sorted(restored), &sorted(source), what);
}
