use super::*;

#[test]
fn metadata_versions_count_up() {
    assert_eq!(
        next_metadata_version("s3://b/t/metadata/00007-abc.metadata.json"),
        8
    );
    assert_eq!(
        next_metadata_version("file:///t/metadata/v3.metadata.json"),
        0
    );
}
