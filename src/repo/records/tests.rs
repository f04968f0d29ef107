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
