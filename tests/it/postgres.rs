//! `PostgreSQL` SQL catalogs (a real server, started by `scripts/services/start.sh`): pyiceberg's
//! `SqlCatalog` writes the tables, bcn backs the catalog up, restores it into `SQLite` and
//! back into `PostgreSQL`, and pyiceberg reads every restored table.

use std::process::Command;

use serde_json::Value;

use crate::support::{Lake, Services, Workspace, assert_same_table, python, root, unique};

const PG_URI: &str = "BCN_TEST_PG_URI";

/// A catalog in the test `PostgreSQL` database, told apart from others by its name.
struct PgCatalog {
    name: String,
    uri: String,
    warehouse: String,
}

impl PgCatalog {
    fn new(svc: &Services, dir: &std::path::Path, prefix: &str) -> Self {
        let name = unique(prefix);
        let warehouse = dir.join(format!("{name}-wh"));
        fs_err::create_dir_all(&warehouse).unwrap();
        Self {
            name,
            uri: svc.get(PG_URI).to_owned(),
            warehouse: format!("file://{}", warehouse.display()),
        }
    }

    fn plan_entry(&self) -> String {
        format!(
            "  {}:\n    type: sql\n    uri: {}\n    warehouse: {}\n",
            self.name, self.uri, self.warehouse
        )
    }

    fn py(&self, sub: &str, args: &[&str]) -> Value {
        let sqlalchemy = self
            .uri
            .replacen("postgresql://", "postgresql+psycopg2://", 1);
        let out = Command::new(python())
            .arg(root().join("tests/py/bcn_fixtures.py"))
            .arg(sub)
            .args(["--catalog-type", "sql", "--catalog-name", &self.name])
            .args(["--prop", &format!("uri={sqlalchemy}")])
            .args(["--prop", &format!("warehouse={}", self.warehouse)])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "bcn_fixtures.py {sub} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn dump(&self, table: &str) -> Value {
        self.py("dump", &["--table", table, "--all-snapshots"])
    }
}

#[test]
fn a_postgres_catalog_restores_into_sqlite_and_back() {
    let Some(svc) = Services::require(
        "a_postgres_catalog_restores_into_sqlite_and_back",
        &[PG_URI],
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let pg = PgCatalog::new(&svc, tmp.path(), "pg_");
    let back = PgCatalog::new(&svc, tmp.path(), "pgback_");
    let lite = Lake::new(tmp.path(), "lite");
    pg.py(
        "make-sample",
        &["--namespace", "db1", "--tables", "events,mor"],
    );
    // A nested namespace with no row for its parent, as pyiceberg makes it.
    pg.py(
        "make-sample",
        &["--namespace", "sales.eu", "--tables", "users"],
    );
    let ws = Workspace::new(
        &[&lite],
        &format!("{}{}", pg.plan_entry(), back.plan_entry()),
    );
    let out = ws
        .bcn(&["backup", "--catalog", &pg.name, "--repo", "repo"])
        .ok();
    assert_eq!(out["pit"]["tables"].as_array().unwrap().len(), 3, "{out}");

    ws.bcn(&["restore", "--repo", "repo", "--target-catalog", "lite"])
        .ok();
    for table in ["db1.events", "db1.mor", "sales.eu.users"] {
        assert_same_table(
            &lite.dump(table),
            &pg.dump(table),
            &format!("{table} in SQLite"),
        );
    }
    // And back into PostgreSQL, from a backup of the SQLite copy.
    ws.bcn(&["backup", "--catalog", "lite", "--repo", "repo-lite"])
        .ok();
    ws.bcn(&[
        "restore",
        "--repo",
        "repo-lite",
        "--target-catalog",
        &back.name,
    ])
    .ok();
    for table in ["db1.events", "db1.mor", "sales.eu.users"] {
        assert_same_table(
            &back.dump(table),
            &pg.dump(table),
            &format!("{table} back in PostgreSQL"),
        );
    }
}
