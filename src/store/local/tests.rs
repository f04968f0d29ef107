use super::*;

fn new_store() -> (tempfile::TempDir, PathBuf, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("repo");
    let store = LocalStore::new(root.clone());
    (dir, root, store)
}

fn named(root: &std::path::Path, key: &str) -> bool {
    root.join(key).is_file()
}

/// Waits until `done` holds, at most a minute; fails saying `failed` after that.
async fn eventually(failed: &str, done: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < std::time::Duration::from_mins(1),
            "{failed}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn written_objects_read_back_at_once_and_take_their_names_when_synced() {
    let (dir, root, store) = new_store();
    let source = dir.path().join("source.bin");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs_err::write(&source, &content).unwrap();

    let (size, sha) = store.put_file("tables/t/files/a", &source).await.unwrap();
    assert_eq!(size, content.len() as u64);
    assert_eq!(sha, {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&content))
    });
    store
        .put_staged("tables/t/files/b", Bytes::from_static(b"bee"))
        .await
        .unwrap();
    // Readable through the store, listed, but not yet under their names on disk.
    assert_eq!(
        store.get("tables/t/files/b").await.unwrap().as_ref(),
        b"bee"
    );
    assert_eq!(
        store.head("tables/t/files/a").await.unwrap().unwrap().size,
        size
    );
    // By position, however often and wherever from: its handles share one file offset.
    for range in [10..20, 2_999_990..3_000_100, 0..5_usize] {
        let expected = &content[range.start..range.end.min(content.len())];
        let (start, end) = (range.start as u64, range.end as u64);
        let got = store
            .get_range("tables/t/files/a", start..end)
            .await
            .unwrap();
        assert_eq!(got.as_ref(), expected);
    }
    assert_eq!(
        store.get("tables/t/files/a").await.unwrap().as_ref(),
        content
    );
    let listed: Vec<String> = store
        .list("tables/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(listed, ["tables/t/files/a", "tables/t/files/b"]);
    // A page at a time too: the waiting objects once each, whatever is on disk.
    let mut paged: Vec<String> = futures::TryStreamExt::try_concat(store.list_pages("tables/"))
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    paged.sort();
    assert_eq!(paged, listed);
    assert!(!named(&root, "tables/t/files/a"));
    // A record written with `put` is durable and named at once.
    store
        .put("pits/p.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert!(named(&root, "pits/p.json"));

    store.sync().await.unwrap();
    assert!(named(&root, "tables/t/files/a") && named(&root, "tables/t/files/b"));
    assert_eq!(
        fs_err::read(root.join("tables/t/files/a")).unwrap(),
        content
    );
    assert!(store.list_incomplete("").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_store_dropped_before_its_sync_keeps_its_complete_objects_and_no_partial_one() {
    let (_dir, root, store) = new_store();
    store
        .put_staged("tables/t/files/done", Bytes::from_static(b"complete"))
        .await
        .unwrap();
    let mut cut = store.writer("tables/t/files/cut").await.unwrap();
    cut.write(Bytes::from_static(b"half")).await.unwrap();
    drop(cut);
    drop(store);
    assert_eq!(
        fs_err::read(root.join("tables/t/files/done")).unwrap(),
        b"complete"
    );
    assert!(!named(&root, "tables/t/files/cut"));
    let store = LocalStore::new(root);
    assert!(store.list_incomplete("").await.unwrap().is_empty());
}

#[tokio::test]
async fn deleting_or_replacing_a_waiting_object_leaves_nothing_behind() {
    let (_dir, root, store) = new_store();
    store
        .put_staged("tables/t/files/x", Bytes::from_static(b"one"))
        .await
        .unwrap();
    store
        .put_staged("tables/t/files/x", Bytes::from_static(b"two"))
        .await
        .unwrap();
    store
        .put_staged("tables/t/files/y", Bytes::from_static(b"y"))
        .await
        .unwrap();
    store.delete("tables/t/files/y").await.unwrap();
    store.sync().await.unwrap();
    assert_eq!(fs_err::read(root.join("tables/t/files/x")).unwrap(), b"two");
    assert!(!named(&root, "tables/t/files/y"));
    assert!(store.list_incomplete("").await.unwrap().is_empty());
}

#[test]
fn copies_are_exact_and_checksummed_small_and_over_several_chunks() {
    let dir = tempfile::tempdir().unwrap();
    copies_are_exact_and_checksummed(dir.path(), dir.path());
}

/// The same copies from another filesystem (a tmpfs) into the temporary directory's: the
/// kernel refuses `copy_file_range` across filesystems (EXDEV), and the copy falls back to
/// reading and writing, as a restore from a repository on another disk does.
#[test]
fn copies_across_filesystems_are_exact_and_checksummed() {
    use std::os::unix::fs::MetadataExt as _;
    let target = tempfile::tempdir().unwrap();
    let shm = std::path::Path::new("/dev/shm");
    let other = shm.is_dir()
        && fs_err::metadata(shm).unwrap().dev() != fs_err::metadata(target.path()).unwrap().dev();
    assert!(
        other || std::env::var_os("BCN_TEST_NO_SECOND_FILESYSTEM").is_some(),
        "no second filesystem: /dev/shm is missing or on the temporary directory's \
         (set BCN_TEST_NO_SECOND_FILESYSTEM=1 to leave this test out)"
    );
    if other {
        let source = tempfile::tempdir_in(shm).unwrap();
        copies_are_exact_and_checksummed(source.path(), target.path());
    }
}

/// Copies files of several sizes from `sources` into `targets` both ways and checks each.
fn copies_are_exact_and_checksummed(sources: &std::path::Path, targets: &std::path::Path) {
    use sha2::Digest as _;
    type Copy = fn(std::fs::File, u64, &mut std::fs::File) -> std::io::Result<(u64, String)>;
    let large = COPY_BUFFER * 2 + 12_345;
    // Empty, small (through the buffer), over two copy buffers and not a multiple of one
    // (copied by the kernel), and a source that holds more than expected (it grew): the size
    // and checksum are always those of what was copied, which a restore compares with what
    // it expected. The copy goes after what the target already holds (its position), which
    // the checksum leaves out. Both ways: the checksum of the copy (restores) and of the
    // source as read (backups).
    let cases = [(0, 0), (1_000, 1_000), (large, large), (large, 100_000)];
    let ways: [Copy; 2] = [copy_hashing_the_copy, copy_hashing_the_source];
    for (case, (way, (length, expected))) in ways
        .into_iter()
        .flat_map(|way| cases.map(|case| (way, case)))
        .enumerate()
    {
        let source = sources.join(format!("source-{case}"));
        let content: Vec<u8> = (0..length)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        fs_err::write(&source, &content).unwrap();
        let target = targets.join(format!("target-{case}"));
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&target)
            .unwrap();
        std::io::Write::write_all(&mut file, b"before").unwrap();
        let reader = std::fs::File::open(&source).unwrap();
        let (size, sha256) = way(reader, expected as u64, &mut file).unwrap();
        drop(file);
        assert_eq!(size, content.len() as u64);
        assert_eq!(sha256, hex::encode(sha2::Sha256::digest(&content)));
        assert_eq!(
            fs_err::read(&target).unwrap(),
            [b"before".as_slice(), &content].concat()
        );
    }
}

#[tokio::test]
async fn many_small_objects_are_made_durable_together_and_named_when_synced() {
    let (_dir, root, store) = new_store();
    let count = durable::SYNCFS_FROM * 2;
    for i in 0..count {
        store
            .put_staged(&format!("tables/t/files/{i}"), Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    // One waiting object gone before the sync: nothing left to make durable, no error.
    store.delete("tables/t/files/0").await.unwrap();
    store.sync().await.unwrap();
    assert!(!named(&root, "tables/t/files/0"));
    for i in 1..count {
        assert_eq!(
            fs_err::read_to_string(root.join(format!("tables/t/files/{i}"))).unwrap(),
            i.to_string()
        );
    }
    assert!(store.list_incomplete("").await.unwrap().is_empty());

    // The same through a store dropped before its sync (a stopped run).
    for i in 0..count {
        store
            .put_staged(&format!("tables/u/files/{i}"), Bytes::from(i.to_string()))
            .await
            .unwrap();
    }
    drop(store);
    assert!((0..count).all(|i| named(&root, &format!("tables/u/files/{i}"))));
}

#[tokio::test]
async fn a_sync_asked_for_by_a_full_list_that_another_took_leaves_the_rest_to_grow() {
    let (_dir, root, store) = new_store();
    store
        .put_staged("tables/t/files/a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    // What a copy that found the list full does once the sync before it took the list.
    store.sync_waiting(true).await.unwrap();
    assert!(
        !named(&root, "tables/t/files/a"),
        "a short list waits for more instead of a sync of its own"
    );
    store.sync().await.unwrap();
    assert!(named(&root, "tables/t/files/a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_that_find_the_list_full_behind_a_sync_leave_every_object_named() {
    let (_dir, root, store) = new_store();
    let store = Arc::new(store);
    let count = *PENDING_OBJECTS + 3;
    // A sync under way: the copies that add objects past the limit queue behind it.
    let held = store.syncing.clone().lock_owned().await;
    let puts: Vec<_> = (0..count)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_staged(&format!("tables/t/files/{i}"), Bytes::from(i.to_string()))
                    .await
            })
        })
        .collect();
    eventually("the copies did not all add their objects", || {
        store.pending.lock().unwrap().objects.len() >= count
    })
    .await;
    drop(held);
    for put in puts {
        put.await.unwrap().unwrap();
    }
    // The first in the queue took the full list; nothing is left waiting or unnamed.
    assert!(store.pending.lock().unwrap().objects.is_empty());
    assert!((0..count).all(|i| named(&root, &format!("tables/t/files/{i}"))));
}

#[tokio::test]
async fn a_sync_whose_caller_stops_waiting_still_ends() {
    let (_dir, root, store) = new_store();
    store
        .put_staged("tables/t/files/a", Bytes::from_static(b"a"))
        .await
        .unwrap();
    // The caller gives up while its sync waits for its turn (a copy dropped because another
    // failed); the sync goes on in a task of its own, and the store is still open.
    let held = store.syncing.clone().lock_owned().await;
    let sync = tokio::time::timeout(std::time::Duration::from_millis(50), store.sync());
    assert!(sync.await.is_err());
    drop(held);
    eventually("the dropped sync did not go on", || {
        named(&root, "tables/t/files/a")
    })
    .await;
    assert!(store.pending.lock().unwrap().objects.is_empty());
}

#[test]
fn syncing_many_paths_skips_those_gone_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths: Vec<PathBuf> = (0..durable::SYNCFS_FROM)
        .map(|i| {
            let path = dir.path().join(format!("f{i}"));
            fs_err::write(&path, b"x").unwrap();
            path
        })
        .collect();
    paths.push(dir.path().join("gone/file"));
    paths.push(dir.path().join("never-written"));
    durable::sync_files(&paths).unwrap();
    // Below the threshold, one fsync each: a missing file is skipped the same way.
    durable::sync_files(&paths[durable::SYNCFS_FROM - 2..]).unwrap();
}

#[test]
fn small_files_past_the_syncfs_threshold_keep_only_their_directories() {
    let dir = tempfile::tempdir().unwrap();
    let mut small = durable::Small::default();
    let write = |i: usize| {
        let sub = dir.path().join(format!("d{}", i % 3));
        fs_err::create_dir_all(&sub).unwrap();
        let path = sub.join(format!("f{i}"));
        fs_err::write(&path, b"x").unwrap();
        path
    };
    for i in 0..durable::SYNCFS_FROM - 1 {
        small.push(write(i));
    }
    // Below the threshold: an fsync each, so every path is kept.
    assert_eq!(small.files.len(), durable::SYNCFS_FROM - 1);
    small.sync().unwrap();
    for i in durable::SYNCFS_FROM - 1..durable::SYNCFS_FROM + 10 {
        small.push(write(i));
    }
    // From the threshold on: one syncfs, so only the three directories are kept.
    assert!(small.files.is_empty());
    let dirs: Vec<_> = (0..3).map(|i| dir.path().join(format!("d{i}"))).collect();
    assert_eq!(small.dirs.iter().cloned().collect::<Vec<_>>(), dirs);
    small.sync().unwrap();
}

#[tokio::test]
async fn files_put_together_are_stored_in_order_until_one_fails() {
    let (dir, root, store) = new_store();
    let source = |name: &str, content: &[u8]| {
        let path = dir.path().join(name);
        fs_err::write(&path, content).unwrap();
        path
    };
    let files = vec![
        ("tables/t/files/a".to_owned(), source("a", b"aaa")),
        ("tables/t/files/b".to_owned(), source("b", b"bb")),
        ("tables/t/files/gone".to_owned(), dir.path().join("gone")),
        ("tables/t/files/c".to_owned(), source("c", b"c")),
    ];
    let results = store.put_files(&files).await;
    assert_eq!(results.len(), 3, "nothing after the failure is copied");
    let sha = |data: &[u8]| {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(data))
    };
    assert_eq!(results[0].as_ref().unwrap(), &(3, sha(b"aaa")));
    assert_eq!(results[1].as_ref().unwrap(), &(2, sha(b"bb")));
    let err = results[2].as_ref().unwrap_err();
    assert_eq!(err.kind(), StoreErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("tables/t/files/gone"), "{err}");
    // The copies are the store's at once, and take their names when synced.
    assert_eq!(store.get("tables/t/files/b").await.unwrap().as_ref(), b"bb");
    store.sync().await.unwrap();
    assert!(named(&root, "tables/t/files/a") && named(&root, "tables/t/files/b"));
    assert!(!named(&root, "tables/t/files/c"));
}

#[tokio::test]
async fn a_directory_of_many_objects_is_listed_in_bounded_pages() {
    use futures::TryStreamExt as _;
    let (_dir, root, store) = new_store();
    let files = root.join("tables/t/files/data");
    fs_err::create_dir_all(files.join("part=1")).unwrap();
    let mut expected = Vec::new();
    for i in 0..2_500 {
        fs_err::write(files.join(format!("{i:05}.parquet")), [1u8; 3]).unwrap();
        expected.push(format!("tables/t/files/data/{i:05}.parquet"));
    }
    fs_err::write(files.join("part=1/x.parquet"), b"xy").unwrap();
    expected.push("tables/t/files/data/part=1/x.parquet".to_owned());
    // A leftover of a killed write is no object.
    fs_err::write(files.join(format!("{TMP_PREFIX}left")), b"z").unwrap();
    fs_err::write(root.join("pits.json"), b"{}").unwrap();
    expected.sort();

    let pages: Vec<Vec<ObjectMeta>> = store.list_pages("tables/").try_collect().await.unwrap();
    assert!(pages.len() >= 3, "{} pages", pages.len());
    assert!(
        pages
            .iter()
            .all(|p| !p.is_empty() && p.len() <= PAGE_OBJECTS)
    );
    let mut objects: Vec<ObjectMeta> = pages.into_iter().flatten().collect();
    objects.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, expected);
    assert_eq!(objects, store.list("tables/").await.unwrap());
    let left = store.list_incomplete("tables/").await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
}
