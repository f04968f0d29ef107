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

    fn db(&self) -> PathBuf {
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
        let out = Command::new(python())
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

    /// Everything pyiceberg reads of a table, every snapshot's rows included.
    pub(crate) fn dump(&self, table: &str) -> Value {
        self.py("dump", &["--table", table, "--all-snapshots"])
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
        let out = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(self.dir.path())
            .args(args)
            .args(["--output", "json", "--config"])
            .arg(&self.plan)
            .env_remove("BCN_REPO")
            .output()
            .expect("running bcn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs `bcn ARGS --output json` without a plan.
    pub(crate) fn bcn_no_plan(&self, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_bcn"))
            .current_dir(self.dir.path())
            .args(args)
            .args(["--output", "json"])
            .output()
            .expect("running bcn");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
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

/// Whether any file under `dir` contains `needle`.
pub(crate) fn any_file_contains(dir: &Path, needle: &str) -> Option<String> {
    files_under(dir).into_iter().find(|rel| {
        fs_err::read(dir.join(rel))
            .is_ok_and(|data| data.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}
