use super::*;

#[test]
fn newer_format_is_refused_with_its_version() {
    let err =
        decode::<LockRecord>("lock", "locks/x.json", br#"{"format_version": 9}"#).unwrap_err();
    assert!(err.to_string().contains("format version 9"), "{err}");
    let err = decode::<LockRecord>("lock", "locks/x.json", b"{not json").unwrap_err();
    assert!(
        err.to_string().starts_with("lock locks/x.json is corrupt"),
        "{err}"
    );
}

#[test]
fn records_carry_their_own_checksum() {
    let lock = LockRecord {
        format_version: 1,
        run_id: "r".into(),
        host: "h".into(),
        pid: 1,
        command: "backup".into(),
        created_at: DateTime::UNIX_EPOCH,
        heartbeat_at: DateTime::UNIX_EPOCH,
        ttl_seconds: 300,
    };
    let bytes = encode(&lock);
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains("\"checksum\": \"sha256:"), "{text}");
    assert_eq!(decode::<LockRecord>("lock", "l", &bytes).unwrap(), lock);
    let edited = text.replace("\"pid\": 1", "\"pid\": 2");
    let err = decode::<LockRecord>("lock", "locks/x.json", edited.as_bytes()).unwrap_err();
    assert!(
        err.to_string()
            .contains("lock locks/x.json is damaged: its content does not match"),
        "{err}"
    );
    // Records from before checksums still read.
    let old = serde_json::to_vec(&lock).unwrap();
    assert_eq!(decode::<LockRecord>("lock", "l", &old).unwrap(), lock);
}

#[test]
fn scope_display_names_granularity() {
    let scope = Scope {
        catalog: "c".into(),
        database: Some(vec!["d".into()]),
        table: None,
    };
    assert_eq!(scope.to_string(), "database `c.d`");
    assert_eq!(scope.granularity(), Granularity::Database);
}

/// The encoding records were written with before, through a `serde_json::Value` tree: the
/// checksum over the tree's compact JSON, then the tree pretty-printed with it.
fn encode_through_tree<T: Serialize>(record: &T) -> Vec<u8> {
    use sha2::Digest as _;
    let mut tree = serde_json::to_value(record).unwrap();
    let sum = format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(serde_json::to_vec(&tree).unwrap()))
    );
    if let Some(object) = tree.as_object_mut() {
        object.insert("checksum".into(), serde_json::Value::String(sum));
    }
    let mut out = serde_json::to_vec_pretty(&tree).unwrap();
    out.push(b'\n');
    out
}

#[test]
fn records_encode_as_they_always_did_and_older_ones_decode() {
    let list = FileList {
        format_version: 1,
        table_key: "db/t-\u{e9}".into(),
        pit: "20260101T000000.000Z-abcdef".into(),
        location: "s3://b/wh/db/t \"quoted\"\\".into(),
        metadata_location: "s3://b/wh/db/t/metadata/00001.metadata.json".into(),
        metadata_sha256: "00".repeat(32),
        current_snapshot_only: false,
        files: (0..50u32)
            .map(|i| FileEntry {
                path: format!("s3://b/wh/db/t/data/{i}\t\u{1F600}.parquet"),
                rel: format!("data/{i}.parquet"),
                kind: if i % 2 == 0 {
                    FileKind::Data
                } else {
                    FileKind::Manifest
                },
                size: u64::MAX - u64::from(i),
                sha256: format!("{i:064x}"),
                refs: (i % 3 == 0).then(|| vec![i, i + 1]),
            })
            .collect(),
        parts: Vec::new(),
    };
    let bytes = encode(&list);
    assert_eq!(bytes.as_ref(), encode_through_tree(&list).as_slice());
    let back: FileList = decode_with("file list", "l", &bytes, true).unwrap();
    assert_eq!(encode(&back), bytes);

    // Any JSON the tree could hold, written by hand in unusual ways: the checksum is that of
    // the tree the old decoder built (numbers and escapes normalised, keys in order).
    let value: serde_json::Value = serde_json::from_str(
        r#"{"format_version": 1, "b": [1e3, -0, -12, 0.5, null, true, {"z": "\u00e9\n", "a": []}],
            "a": {"checksum": "nested, kept"}, "empty": {}}"#,
    )
    .unwrap();
    let signed = String::from_utf8(encode_through_tree(&value)).unwrap();
    let checksum = &signed[signed.find("\"checksum\": \"sha256:").unwrap()..];
    let by_hand = format!(
        "{{ \"format_version\" : 1,\"b\":[ 1E3,-0,-12,5e-1,null,true,{{\"z\":\"\\u00e9\\n\",\"a\":[ ]}}],\n\"a\":{{\"checksum\":\"nested, kept\"}}, \"empty\" : {{ }},{}",
        checksum.trim_end()
    );
    let decoded: serde_json::Value = decode_with("record", "r", by_hand.as_bytes(), true).unwrap();
    assert_eq!(decoded["b"][6]["z"], "\u{e9}\n");
    let tampered = by_hand.replace("-12", "-13");
    assert!(matches!(
        decode::<serde_json::Value>("record", "r", tampered.as_bytes()),
        Err(DecodeError::Damaged { .. })
    ));
    // A record with no field at all still takes its checksum as its only field.
    assert_eq!(
        encode(&serde_json::json!({})).as_ref(),
        encode_through_tree(&serde_json::json!({})).as_slice()
    );
}

fn part_entries(n: u32) -> Vec<FileEntry> {
    (0..n)
        .map(|i| FileEntry {
            path: format!("s3://b/wh/db/t/data/{i}\n\u{e9}.parquet"),
            rel: format!("data/{i:05}.parquet"),
            kind: FileKind::Data,
            size: u64::from(i),
            sha256: format!("{i:064x}"),
            refs: (i % 2 == 0).then(|| vec![i]),
        })
        .collect()
}

fn part_of(bytes: &[u8], files: u64) -> FileListPart {
    use sha2::Digest as _;
    FileListPart {
        files,
        size: bytes.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(bytes)),
    }
}

#[test]
fn a_file_list_part_reads_back_one_entry_a_line() {
    let entries = part_entries(3);
    let bytes = encode_part(&entries);
    assert_eq!(String::from_utf8(bytes.clone()).unwrap().lines().count(), 3);
    let part = part_of(&bytes, 3);
    assert_eq!(decode_part("k", &part, &bytes).unwrap(), entries);
    assert_eq!(
        decode_part("k", &part, &encode_part(&[]))
            .map(|e| e.len())
            .ok(),
        None
    );
    let empty = encode_part(&[]);
    assert!(
        decode_part("k", &part_of(&empty, 0), &empty)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_damaged_short_or_swapped_part_is_refused_naming_it() {
    let entries = part_entries(4);
    let bytes = encode_part(&entries);
    let part = part_of(&bytes, 4);
    let mut flipped = bytes.clone();
    flipped[10] ^= 1;
    let short = &bytes[..bytes.len() - 1];
    for bad in [flipped.as_slice(), short, &encode_part(&entries[..3])] {
        let e = decode_part("tables/u/filelists/p.0.jsonl", &part, bad).unwrap_err();
        assert!(matches!(e, DecodeError::Damaged { .. }), "{e}");
        assert!(
            e.to_string().contains("tables/u/filelists/p.0.jsonl"),
            "{e}"
        );
    }
    // Written consistently but holding another count than the list records.
    let three = encode_part(&entries[..3]);
    let e = decode_part("k", &part_of(&three, 4), &three).unwrap_err();
    assert!(e.to_string().contains("holds 3 entries"), "{e}");
    // A path that would leave the restored table is refused even with a matching checksum.
    let mut escaping = part_entries(1);
    escaping[0].rel = "../outside.parquet".into();
    let bytes = encode_part(&escaping);
    let e = decode_part("k", &part_of(&bytes, 1), &bytes).unwrap_err();
    assert!(matches!(e, DecodeError::Invalid { .. }), "{e}");
    // A list's own record of a part is checked as the list is read.
    let mut list: FileList = serde_json::from_value(serde_json::json!({
        "format_version": 2, "table_key": "0190c1c5-3c3e-7e55-8b2b-5b1f1c0a0d11", "pit": "20260101T000000.000Z-abcdef",
        "location": "s3://b/t", "metadata_location": "s3://b/t/m.json",
        "metadata_sha256": "00".repeat(32),
        "parts": [{"files": 1, "size": 2, "sha256": "zz"}],
    }))
    .unwrap();
    assert!(list.check().unwrap_err().contains("part 0"));
    list.parts[0].sha256 = "00".repeat(32);
    assert!(list.check().is_ok());
    list.files = part_entries(1);
    assert!(
        list.check()
            .unwrap_err()
            .contains("both inline and in parts")
    );
}
