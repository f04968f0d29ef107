use super::*;

#[test]
fn options_debug_hides_secrets() {
    let options = S3Options {
        access_key_id: Some("AKIDEXAMPLE".into()),
        secret_access_key: Some("wJalrXUtnFEMI".into()),
        session_token: Some("FwoGZXIvYXdzE".into()),
        ..S3Options::default()
    };
    let shown = format!("{options:?}");
    assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
    assert!(!shown.contains("wJalrXUtnFEMI"), "{shown}");
    assert!(!shown.contains("FwoGZXIvYXdzE"), "{shown}");
    let store = S3Store::new("b", "p", options).unwrap();
    assert!(!format!("{store:?}").contains("wJalrXUtnFEMI"));
}

#[test]
fn new_checks_the_options() {
    let store = S3Store::new("bucket", "/a/b/", S3Options::default()).unwrap();
    assert_eq!(store.url(), "s3://bucket/a/b");
    assert_eq!(store.full_key("k"), "a/b/k");
    let root = S3Store::new("bucket", "", S3Options::default()).unwrap();
    assert_eq!(root.url(), "s3://bucket");
    assert_eq!(root.full_key("k"), "k");
    let half = S3Options {
        access_key_id: Some("id".into()),
        ..S3Options::default()
    };
    assert!(S3Store::new("bucket", "", half).is_err());
    assert!(S3Store::new("", "", S3Options::default()).is_err());
}

#[test]
fn copy_helpers_encode_keys_and_decode_checksums() {
    assert_eq!(
        encode_key("wh/db/t/data/a b+c=1.parquet"),
        "wh/db/t/data/a%20b%2Bc%3D1.parquet"
    );
    // SHA-256 of "hello world" repeated 1000 times, as S3 reports it and as hex.
    assert_eq!(
        base64_to_hex("NMeTyb60RAz8O63Wl3YHEhUvy+CJBaaiE3s4lf13Gd8=").unwrap(),
        "34c793c9beb4440cfc3badd697760712152fcbe08905a6a2137b3895fd7719df"
    );
    assert_eq!(
        normalize_endpoint(Some("HTTP://h:9/")),
        normalize_endpoint(Some("http://h:9"))
    );
    assert_ne!(
        normalize_endpoint(None),
        normalize_endpoint(Some("http://h:9"))
    );
}
