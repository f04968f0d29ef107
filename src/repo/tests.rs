use super::*;

#[test]
fn pit_selectors_parse() {
    assert_eq!(PitSelector::parse("latest"), PitSelector::Latest);
    assert_eq!(
        PitSelector::parse("20261121T065012.345Z-ab12cd"),
        PitSelector::Id("20261121T065012.345Z-ab12cd".into())
    );
    let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
    assert_eq!(
        PitSelector::parse("2026-01-02T03:04:05Z"),
        PitSelector::AtOrBefore(t)
    );
    assert_eq!(
        PitSelector::parse("2026-01-02 03:04:05"),
        PitSelector::AtOrBefore(t)
    );
    let end = Utc.with_ymd_and_hms(2026, 1, 2, 23, 59, 59).unwrap();
    assert_eq!(
        PitSelector::parse("2026-01-02"),
        PitSelector::AtOrBefore(end)
    );
}

/// A list of `n` entries as a backup writes it (sorted by `rel`).
fn list_of(n: u32) -> FileList {
    FileList {
        format_version: FORMAT_VERSION,
        table_key: "0190c1c5-3c3e-7e55-8b2b-5b1f1c0a0d11".into(),
        pit: "20260101T000000.000Z-abcdef".into(),
        location: "s3://b/t".into(),
        metadata_location: "s3://b/t/metadata/00001.metadata.json".into(),
        metadata_sha256: "00".repeat(32),
        current_snapshot_only: false,
        files: (0..n)
            .map(|i| records::FileEntry {
                path: format!("s3://b/t/data/{i:06}.parquet"),
                rel: format!("data/{i:06}.parquet"),
                kind: records::FileKind::Data,
                size: u64::from(i),
                sha256: format!("{i:064x}"),
                refs: None,
            })
            .collect(),
        parts: Vec::new(),
    }
}

#[tokio::test]
async fn a_file_list_is_stored_in_parts_and_read_back_whole_or_a_part_at_a_time() {
    use futures::TryStreamExt as _;
    let store: Arc<dyn BackupStore> = Arc::new(crate::store::MemoryStore::new());
    let scope = Scope {
        catalog: "c".into(),
        database: None,
        table: None,
    };
    let repo = Repository::planned(store.clone(), &scope, Utc.timestamp_opt(0, 0).unwrap());
    let n = u32::try_from(2 * records::PART_FILES + 5).unwrap();
    let written = list_of(n);
    let (key, pit) = (written.table_key.clone(), written.pit.clone());
    repo.stage_filelist(written.clone()).await.unwrap();
    store.sync().await.unwrap();

    let whole = repo.load_filelist(&key, &pit).await.unwrap();
    assert_eq!(whole.files, written.files);
    let header = repo.load_filelist_header(&key, &pit).await.unwrap();
    assert!(header.files.is_empty());
    let counts: Vec<u64> = header.parts.iter().map(|p| p.files).collect();
    assert_eq!(counts, [10_000, 10_000, 5]);
    let parts: Vec<_> = repo
        .filelist_parts(&key, &pit, &header)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(parts.concat(), written.files);

    // A v1 list with its entries inline reads the same both ways.
    let inline = list_of(3);
    let v1 = FileList {
        format_version: 1,
        ..inline.clone()
    };
    store
        .put(
            &layout::filelist(&key, "20250101T000000.000Z-abcdef"),
            encode(&v1),
        )
        .await
        .unwrap();
    let old = repo
        .load_filelist_header(&key, "20250101T000000.000Z-abcdef")
        .await
        .unwrap();
    let parts: Vec<_> = repo
        .filelist_parts(&key, "20250101T000000.000Z-abcdef", &old)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(parts.concat(), inline.files);

    // A part that is gone is named when the list is read.
    store
        .delete(&layout::filelist_part(&key, &pit, 1))
        .await
        .unwrap();
    let e = repo.load_filelist(&key, &pit).await.unwrap_err();
    assert!(
        crate::error::error_chain(&e).contains(&layout::filelist_part(&key, &pit, 1)),
        "{e}"
    );
}

/// A run stopped while it takes the lock (its future dropped after the creation started, as
/// a signal or a cancelled job does) leaves no lock once the creation lands: the local store
/// creates it in a blocking task that completes whatever its caller does. Both orders: the
/// run dropped before the creation lands, and after it sent its result but before the run
/// received it. One thread for the runtime, so that nothing runs between a poll and a drop.
#[tokio::test]
async fn a_lock_being_taken_by_a_stopped_run_is_removed_when_its_creation_lands() {
    use futures::FutureExt as _;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn BackupStore> =
        Arc::new(crate::store::LocalStore::new(dir.path().to_path_buf()));
    let scope = Scope {
        catalog: "c".into(),
        database: None,
        table: None,
    };
    let ctx = crate::context::Context::system();
    let repo = Repository::planned(store.clone(), &scope, ctx.now());
    for _ in 0..20 {
        let taking = lock::acquire(&repo, &ctx, "backup", 300);
        // Polled once: the creation is started (it runs when this task yields); then the run
        // is gone.
        assert!(taking.now_or_never().is_none());
        lock::settle(std::time::Duration::from_secs(30)).await;
        // The creation's temporary file is gone too: what it did is done.
        let locks = dir.path().join("locks");
        let creating = || {
            std::fs::read_dir(&locks).is_ok_and(|mut d| {
                d.any(|e| {
                    e.unwrap()
                        .file_name()
                        .to_string_lossy()
                        .starts_with(".bcn-tmp-")
                })
            })
        };
        let started = std::time::Instant::now();
        while creating() {
            assert!(
                started.elapsed().as_secs() < 30,
                "the lock's creation never ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            lock::read_lock(&repo).await.unwrap().is_none(),
            "the lock of the stopped run is left"
        );
    }
    // The creation lands and sends its result, but the run is dropped before it runs again
    // (woken, then stopped by a `select!` that picked the signal).
    for _ in 0..20 {
        let mut taking = Box::pin(lock::acquire(&repo, &ctx, "backup", 300));
        assert!(futures::poll!(&mut taking).is_pending());
        let started = std::time::Instant::now();
        while !lock::CREATIONS.is_empty() {
            assert!(
                started.elapsed().as_secs() < 30,
                "the lock's creation never ended"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(lock::read_lock(&repo).await.unwrap().is_some());
        drop(taking);
        lock::settle(std::time::Duration::from_secs(30)).await;
        assert!(
            lock::read_lock(&repo).await.unwrap().is_none(),
            "the lock created for a run dropped before it received it is left"
        );
    }
    // A lock taken and held is not touched by that.
    let held = lock::acquire(&repo, &ctx, "backup", 300).await.unwrap();
    lock::settle(std::time::Duration::from_secs(30)).await;
    assert!(lock::read_lock(&repo).await.unwrap().is_some());
    held.release().await.unwrap();
    assert!(lock::read_lock(&repo).await.unwrap().is_none());
}
