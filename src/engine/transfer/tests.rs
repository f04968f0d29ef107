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
        // Where nothing may be replaced, a taken name is refused; a free one is taken.
        let mut file = make(&dest).unwrap();
        file.file().write_all(b"third").unwrap();
        assert!(!file.finish_new(&dest).unwrap(), "a taken name is refused");
        assert_eq!(fs_err::read(&dest).unwrap(), b"second");
        let free = dest.with_file_name("c.parquet");
        let mut file = make(&free).unwrap();
        file.file().write_all(b"third").unwrap();
        assert!(file.finish_new(&free).unwrap(), "a free name is taken");
        assert_eq!(fs_err::read(&free).unwrap(), b"third");
        fs_err::remove_file(&free).unwrap();
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

#[tokio::test]
async fn absent_copies_take_free_names_leave_taken_ones_and_stop_at_a_bad_checksum() {
    use super::{Absent, Placed, TransferError, sha256_hex, store_to_absent_files};
    use crate::store::{BackupStore as _, LocalStore};
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("repo"));
    // Small files, and one large enough to be looked for before it is copied.
    let contents: Vec<Vec<u8>> = vec![b"aaa".to_vec(), b"bbb".to_vec(), vec![7; 300 << 10]];
    for (key, content) in ["t/a", "t/b", "t/c"].iter().zip(&contents) {
        store
            .put(key, bytes::Bytes::from(content.clone()))
            .await
            .unwrap();
    }
    let table = dir.path().join("table");
    fs_err::create_dir_all(&table).unwrap();
    fs_err::write(table.join("b.parquet"), b"someone else's").unwrap();
    let paths: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|n| format!("file://{}/{n}.parquet", table.display()))
        .collect();
    let sums: Vec<String> = contents.iter().map(|c| sha256_hex(c)).collect();
    let copies: Vec<Absent> = ["t/a", "t/b", "t/c"]
        .iter()
        .zip(&contents)
        .zip(&sums)
        .zip(&paths)
        .map(|(((key, content), sha256), path)| Absent {
            key,
            sha256,
            size: content.len() as u64,
            path,
        })
        .collect();
    let claimed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let claims = claimed.clone();
    let placed = store_to_absent_files(&store, &copies, move |at| {
        claims.lock().unwrap().push(at);
    })
    .await
    .unwrap();
    assert_eq!(
        placed,
        [
            Placed::Copied(3),
            Placed::Occupied,
            Placed::Copied(300 << 10)
        ]
    );
    assert_eq!(
        *claimed.lock().unwrap(),
        [0, 2],
        "only what was written is claimed"
    );
    assert_eq!(fs_err::read(table.join("a.parquet")).unwrap(), b"aaa");
    assert_eq!(
        fs_err::read(table.join("b.parquet")).unwrap(),
        b"someone else's"
    );
    assert_eq!(fs_err::read(table.join("c.parquet")).unwrap(), contents[2]);

    // A large file already there is found without being copied; a stored object whose bytes
    // are not what the file list says stops the batch before the files after it.
    let d = format!("file://{}/d.parquet", table.display());
    let e = format!("file://{}/e.parquet", table.display());
    let wrong = sha256_hex(b"not these bytes");
    let copies = [
        Absent {
            key: "t/c",
            sha256: &sums[2],
            size: 300 << 10,
            path: &paths[2],
        },
        Absent {
            key: "t/a",
            sha256: &wrong,
            size: 3,
            path: &d,
        },
        Absent {
            key: "t/b",
            sha256: &sums[1],
            size: 3,
            path: &e,
        },
    ];
    claimed.lock().unwrap().clear();
    let claims = claimed.clone();
    let err = store_to_absent_files(&store, &copies, move |at| {
        claims.lock().unwrap().push(at);
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&err, TransferError::ChecksumMismatch { key, .. } if key == "t/a"),
        "{err}"
    );
    assert!(claimed.lock().unwrap().is_empty());
    assert!(!table.join("d.parquet").exists() && !table.join("e.parquet").exists());
}

/// Metadata files past the process's budget wait until room is given back, whatever the
/// tables asking: here one holds all of it (a file larger than the budget takes the whole).
#[tokio::test]
async fn metadata_past_the_budget_waits_for_room() {
    let whole = super::metadata_room(Some(u64::MAX)).await;
    let small = tokio::spawn(super::metadata_room(Some(10)));
    let unknown = tokio::spawn(super::metadata_room(None));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!small.is_finished() && !unknown.is_finished());
    drop(whole);
    let wait = std::time::Duration::from_secs(30);
    let small = tokio::time::timeout(wait, small).await.unwrap().unwrap();
    let unknown = tokio::time::timeout(wait, unknown).await.unwrap().unwrap();
    assert_eq!((small.num_permits(), unknown.num_permits()), (10, 1 << 20));
}
