use super::local_path;

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
