use super::local_path;
use crate::store::{Access, Unfinished, temp_beside};

#[test]
fn local_paths_are_recognised() {
    for url in [
        "file:///w/t/a",
        "file:/w/t/a",
        "/w/t/a",
        "file://localhost/w/t/a",
    ] {
        assert_eq!(
            local_path(url).unwrap(),
            std::path::Path::new("/w/t/a"),
            "{url}"
        );
    }
    assert!(local_path("s3://b/w/t/a").is_none());
    assert!(local_path("file://host/w").is_none());
}

/// An unfinished file with a temporary name, as on filesystems without unnamed files.
fn named(dest: &std::path::Path) -> std::io::Result<Unfinished> {
    let (tmp, file) = temp_beside(dest, Access::Umask)?;
    Ok(Unfinished::Named(tmp, file))
}

/// An unfinished file, unnamed where the filesystem allows.
fn beside(dest: &std::path::Path) -> std::io::Result<Unfinished> {
    Unfinished::beside(dest, Access::Umask)
}

#[test]
fn an_unfinished_file_appears_under_its_name_only_when_finished_and_leaves_nothing_else() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let names = || {
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let dest = dir.path().join("sub/a.parquet");
    // Unnamed where the filesystem allows it, and the temporary name everywhere.
    if let Unfinished::Named(..) = beside(&dest).unwrap() {
        eprintln!("this filesystem has no unnamed files: both rounds use temporary names");
    }
    let makers: [fn(&std::path::Path) -> std::io::Result<Unfinished>; 2] = [beside, named];
    for make in makers {
        let mut file = make(&dest).unwrap();
        file.file().write_all(b"first").unwrap();
        assert!(!dest.exists(), "no name before it is finished");
        file.finish(&dest).unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"first");
        // A second file replaces the first (the caller decided it may).
        let mut file = make(&dest).unwrap();
        file.file().write_all(b"second").unwrap();
        file.finish(&dest).unwrap();
        assert_eq!(fs_err::read(&dest).unwrap(), b"second");
        // One dropped unfinished leaves nothing behind.
        let mut file = make(&dest.with_file_name("b.parquet")).unwrap();
        file.file().write_all(b"dropped").unwrap();
        drop(file);
        assert_eq!(names(), ["sub"]);
        let inside: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(inside, ["a.parquet"]);
        fs_err::remove_file(&dest).unwrap();
    }
}
