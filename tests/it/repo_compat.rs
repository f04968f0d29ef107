//! Repositories written by released versions of bcn must stay readable and restorable.
//! `tests/fixtures/repos/v1/quickstart` is a repository-format v1 backup of the quickstart
//! lakehouse (taken at `/srv/bcn-fixture`); it is restored elsewhere and read by pyiceberg.
//! Never regenerate a fixture of a released format: add a new one next to it.

use crate::support::{Lake, Workspace, root};

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    fs_err::create_dir_all(to).unwrap();
    for entry in fs_err::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs_err::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_v1_repository_still_describes_and_restores() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&root().join("tests/fixtures/repos/v1/quickstart"), &repo);
    let dst = Lake::new(tmp.path(), "dst");
    let ws = Workspace::new(&[&dst], "");
    let repo_arg = repo.to_str().unwrap();

    let described = ws.bcn_no_plan(&["describe", "--repo", repo_arg]).ok();
    assert_eq!(described["manifest"]["format_version"], 1);
    assert_eq!(described["manifest"]["granularity"], "catalog");
    assert_eq!(described["pits"].as_array().unwrap().len(), 1);

    let target = tmp.path().join("restored");
    let restored = ws
        .bcn(&[
            "restore",
            "--repo",
            repo_arg,
            "--target-catalog",
            "dst",
            "--target-location",
            target.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(restored["report"]["tables"].as_array().unwrap().len(), 2);
    let events = dst.dump("demo.events");
    assert_eq!(events["row_count"], 20);
    assert_eq!(events["snapshots"].as_array().unwrap().len(), 3);
    assert!(
        events["location"]
            .as_str()
            .unwrap()
            .starts_with(&format!("file://{}", target.display()))
    );
    let customers = dst.dump("demo.customers");
    assert_eq!(customers["row_count"], 3);
    let names: Vec<&str> = customers["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 3);
    assert!(
        names.contains(&"Ada") && names.contains(&"Grace") && names.contains(&"Edsger"),
        "{names:?}"
    );
}
