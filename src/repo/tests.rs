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
