use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use apache_avro::types::Value as AvroValue;
use apache_avro::{Codec, Reader as AvroReader, Schema as AvroSchema, Writer as AvroWriter};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use bytes::Bytes;
use iceberg::io::FileIO;
use iceberg::spec::{
    DataContentType, DataFile, DataFileBuilder, DataFileFormat, Datum, FormatVersion, Literal,
    Manifest, ManifestContentType, ManifestFile, ManifestList, ManifestListWriter, ManifestStatus,
    ManifestWriterBuilder, NestedField, PartitionSpec, PrimitiveType, Schema, Struct,
    TableMetadata, Transform, Type,
};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use serde_json::json;

use super::avro::{AvroHeader, parse_avro_header};
use super::manifest::ManifestFileRef;
use super::{
    DELETE_FILE_PATH_FIELD_ID, PathRewriter, RewriteError, rewrite_manifest, rewrite_manifest_list,
    rewrite_position_delete_file, rewrite_table_metadata,
};

const OLD: &str = "s3a://old-bucket/wh/db/t";
const NEW: &str = "s3://new-bucket/restored/t";
const SNAPSHOT_ID: i64 = 3_051_729_675_574_597_004;

fn rewriter() -> PathRewriter {
    PathRewriter::new(OLD, NEW)
}

// ---- PathRewriter -------------------------------------------------------------------

#[test]
fn file_url_forms_are_one_location() {
    for from in [
        "file:/data/wh/t",
        "file:///data/wh/t",
        "/data/wh/t",
        "file:///data/wh/t/",
    ] {
        let rw = PathRewriter::new(from, "file:///restore/t2");
        for path in [
            "file:/data/wh/t/data/a.parquet",
            "file:///data/wh/t/data/a.parquet",
            "/data/wh/t/data/a.parquet",
            "file://localhost/data/wh/t/data/a.parquet",
        ] {
            assert_eq!(
                rw.rewrite(path).unwrap(),
                "file:///restore/t2/data/a.parquet",
                "{from} {path}"
            );
        }
    }
}

#[test]
fn output_keeps_the_target_form() {
    let rw = PathRewriter::new("file:///data/wh/t", "file:/restore/t2/");
    assert_eq!(
        rw.rewrite("/data/wh/t/m.avro").unwrap(),
        "file:/restore/t2/m.avro"
    );
    let rw = PathRewriter::new("file:///data/wh/t", "/restore/t2");
    assert_eq!(
        rw.rewrite("file:/data/wh/t/m.avro").unwrap(),
        "/restore/t2/m.avro"
    );
    let rw = PathRewriter::new("s3://b/t", "s3a://c/u");
    assert_eq!(rw.rewrite("s3://b/t/m.avro").unwrap(), "s3a://c/u/m.avro");
}

#[test]
fn s3a_and_s3n_match_s3() {
    let rw = PathRewriter::new("s3a://bucket/wh/t", "s3://other/t");
    for path in [
        "s3://bucket/wh/t/x",
        "s3a://bucket/wh/t/x",
        "s3n://bucket/wh/t/x",
        "S3A://bucket/wh/t/x",
    ] {
        assert_eq!(rw.rewrite(path).unwrap(), "s3://other/t/x", "{path}");
    }
    assert_eq!(rw.rewrite("s3://bucket/wh/t").unwrap(), "s3://other/t");
}

#[test]
fn files_outside_the_location_map_under_external_roots() {
    let paths = [
        "file:///wh/t/data/a.parquet",
        "file:///elsewhere/data/cat=1/b.parquet",
        "file:///elsewhere/data/cat=2/c.parquet",
        "file:///imported/d.parquet",
        "file:///wh/t/../../../etc/e.parquet",
    ];
    let rw = PathRewriter::with_external(
        "file:///wh/t",
        "file:///new/t",
        &["file:///elsewhere/data".to_owned()],
        paths,
    );
    let roots: Vec<(String, String)> = rw
        .external_roots()
        .into_iter()
        .map(|m| (m.from, m.to))
        .collect();
    assert_eq!(
        roots,
        [
            (
                "/elsewhere/data".to_owned(),
                "file:///new/t/_external/0".to_owned()
            ),
            (
                "/imported".to_owned(),
                "file:///new/t/_external/1".to_owned()
            ),
        ]
    );
    assert_eq!(
        rw.rewrite(paths[2]).unwrap(),
        "file:///new/t/_external/0/cat=2/c.parquet"
    );
    assert_eq!(
        rw.rewrite("file:///elsewhere/data").unwrap(),
        "file:///new/t/_external/0",
        "the path property follows its root"
    );
    assert!(
        rw.rewrite(paths[4]).is_err(),
        "a climbing path gets no root"
    );
    let same = PathRewriter::with_roots("file:///wh/t", "file:///new/t", &rw.external_roots());
    assert_eq!(
        same.rewrite(paths[3]).unwrap(),
        rw.rewrite(paths[3]).unwrap()
    );
    let in_place = PathRewriter::in_place("file:///wh/t");
    assert_eq!(in_place.rewrite(paths[3]).unwrap(), paths[3]);
    assert!(in_place.rewrite(paths[4]).is_err());
}

#[test]
fn a_path_that_climbs_out_is_never_rewritten() {
    let rw = PathRewriter::new("file:///data/wh/t", "file:///restore/t2");
    for path in [
        "file:///data/wh/t/../../../etc/cron.d/x",
        "file:///data/wh/t/data/%2e%2e/%2e%2e/x",
        "file:///data/wh/t/data/a%2F..%2F..%2Fx",
        "file:///data/wh/t/./x",
    ] {
        assert!(
            matches!(rw.rewrite(path), Err(RewriteError::OutsideLocation { .. })),
            "{path}"
        );
    }
    // A source location that itself holds `..` (pyiceberg names a table `../x` so) is
    // matched as written; only the tail after it is checked.
    let rw = PathRewriter::new("file:///wh/db.db/../../x", "file:///restore/db/safe");
    assert_eq!(
        rw.rewrite("file:///wh/db.db/../../x/data/a.parquet")
            .unwrap(),
        "file:///restore/db/safe/data/a.parquet"
    );
}

#[test]
fn path_outside_the_location_is_an_error() {
    let rw = PathRewriter::new("s3://bucket/wh/t", "s3://other/t");
    for path in [
        "s3://bucket/wh/t2/data/x.parquet",
        "s3://bucket/wh/x.parquet",
        "gs://bucket/wh/t/x.parquet",
        "/bucket/wh/t/x.parquet",
        "",
    ] {
        let err = rw.rewrite(path).unwrap_err();
        assert!(
            matches!(err, RewriteError::OutsideLocation { .. }),
            "{path}"
        );
        assert_eq!(
            err.to_string(),
            format!("path {path} is outside the table location s3://bucket/wh/t")
        );
    }
    let rw = PathRewriter::new("file:/data/t", "file:/x");
    assert!(rw.rewrite("file://otherhost/data/t/a").is_err());
    assert!(rw.rewrite("hdfs:/data/t/a").is_err());
}

#[test]
fn identity_is_judged_on_normalized_locations() {
    assert!(PathRewriter::new("file:/data/t", "file:///data/t/").is_identity());
    assert!(PathRewriter::new("s3a://b/t", "s3://b/t").is_identity());
    assert!(!PathRewriter::new("s3://b/t", "s3://b/t2").is_identity());
    assert!(!PathRewriter::new("/data/t", "/data/u").is_identity());
}

// ---- table metadata -----------------------------------------------------------------

fn metadata_v2() -> serde_json::Value {
    json!({
        "format-version": 2,
        "table-uuid": "9c12d441-03fe-4693-9a96-a0705ddf69c1",
        "location": OLD,
        "last-sequence-number": 2,
        "last-updated-ms": 1_602_638_573_590_i64,
        "last-column-id": 2,
        "current-schema-id": 0,
        "schemas": [{"type": "struct", "schema-id": 0, "fields": [
            {"id": 1, "name": "id", "required": true, "type": "long"},
            {"id": 2, "name": "region", "required": false, "type": "string"}]}],
        "default-spec-id": 0,
        "partition-specs": [{"spec-id": 0, "fields": [
            {"name": "region", "transform": "identity", "source-id": 2, "field-id": 1000}]}],
        "last-partition-id": 1000,
        "default-sort-order-id": 0,
        "sort-orders": [{"order-id": 0, "fields": []}],
        "properties": {
            "owner": "alice",
            "write.data.path": format!("{OLD}/data-elsewhere"),
            "write.metadata.path": "s3://audit/metadata",
            "write.object-storage.path": format!("{OLD}/objects"),
        },
        "current-snapshot-id": 3_055_729_675_574_597_004_i64,
        "snapshots": [
            {"snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_515_100_955_770_i64,
             "sequence-number": 1, "summary": {"operation": "append"},
             "manifest-list": format!("{OLD}/metadata/snap-1.avro"), "schema-id": 0},
            {"snapshot-id": 3_055_729_675_574_597_004_i64,
             "parent-snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_555_100_955_770_i64,
             "sequence-number": 2, "summary": {"operation": "overwrite", "x": "y"},
             "manifest-list": "s3n://old-bucket/wh/db/t/metadata/snap-2.avro", "schema-id": 0}
        ],
        "snapshot-log": [
            {"snapshot-id": 3_051_729_675_574_597_004_i64, "timestamp-ms": 1_515_100_955_770_i64},
            {"snapshot-id": 3_055_729_675_574_597_004_i64, "timestamp-ms": 1_555_100_955_770_i64}],
        "metadata-log": [{"metadata-file": format!("{OLD}/metadata/v1.json"), "timestamp-ms": 1_515_100}],
        "refs": {
            "main": {"snapshot-id": 3_055_729_675_574_597_004_i64, "type": "branch"},
            "v1": {"snapshot-id": 3_051_729_675_574_597_004_i64, "type": "tag", "max-ref-age-ms": 10}},
        "statistics": [{"snapshot-id": 3_055_729_675_574_597_004_i64,
            "statistics-path": format!("{OLD}/metadata/stats.puffin"),
            "file-size-in-bytes": 413, "file-footer-size-in-bytes": 42,
            "blob-metadata": [{"type": "apache-datasketches-theta-v1", "snapshot-id": 3_055_729_675_574_597_004_i64,
                "sequence-number": 2, "fields": [1], "properties": {"ndv": "3"}}]}],
        "partition-statistics": [{"snapshot-id": 3_055_729_675_574_597_004_i64,
            "statistics-path": format!("{OLD}/metadata/partition-stats.parquet"),
            "file-size-in-bytes": 43}],
        "x-unknown-field": {"kept": [1, 2.5, "three"]}
    })
}

#[test]
fn metadata_v2_paths_are_rewritten_and_the_rest_kept() {
    let input = metadata_v2();
    let set = BTreeMap::from([("restored-from".to_owned(), OLD.to_owned())]);
    let new_uuid = uuid::Uuid::now_v7();
    let (out, warnings) = rewrite_table_metadata(
        &serde_json::to_vec(&input).unwrap(),
        &rewriter(),
        &set,
        Some(new_uuid),
    )
    .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();

    let mut expected = input;
    expected["location"] = json!(NEW);
    expected["table-uuid"] = json!(new_uuid.to_string());
    expected["snapshots"][0]["manifest-list"] = json!(format!("{NEW}/metadata/snap-1.avro"));
    expected["snapshots"][1]["manifest-list"] = json!(format!("{NEW}/metadata/snap-2.avro"));
    expected["statistics"][0]["statistics-path"] = json!(format!("{NEW}/metadata/stats.puffin"));
    expected["partition-statistics"][0]["statistics-path"] =
        json!(format!("{NEW}/metadata/partition-stats.parquet"));
    expected["metadata-log"] = json!([]);
    expected["properties"]["write.data.path"] = json!(format!("{NEW}/data-elsewhere"));
    expected["properties"]["write.object-storage.path"] = json!(format!("{NEW}/objects"));
    expected["properties"]["restored-from"] = json!(OLD);
    assert_eq!(out, expected);
    // Key order is kept too.
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&out), keys(&expected));

    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("write.metadata.path = s3://audit/metadata"),
        "{warnings:?}"
    );

    let parsed: TableMetadata = serde_json::from_value(out).unwrap();
    assert_eq!(parsed.location(), NEW);
    assert_eq!(parsed.uuid(), new_uuid);
    assert_eq!(parsed.last_updated_ms(), 1_602_638_573_590);
    assert_eq!(parsed.snapshots().count(), 2);
    assert!(
        parsed
            .snapshots()
            .all(|s| s.manifest_list().starts_with(NEW))
    );
    assert!(parsed.metadata_log().is_empty());
}

#[test]
fn metadata_v1_manifests_are_rewritten() {
    let input = json!({
        "format-version": 1,
        "location": "file:/data/wh/t",
        "last-updated-ms": 1_602_638_573_874_i64,
        "last-column-id": 1,
        "schema": {"type": "struct", "fields": [{"id": 1, "name": "x", "required": true, "type": "long"}]},
        "partition-spec": [],
        "snapshots": [{"snapshot-id": 1, "timestamp-ms": 1_515_100_955_770_i64,
            "manifests": ["file:///data/wh/t/metadata/m1.avro", "/data/wh/t/metadata/m2.avro"]}]
    });
    let rw = PathRewriter::new("file:///data/wh/t", "file:///restored/t");
    let (out, warnings) =
        rewrite_table_metadata(input.to_string().as_bytes(), &rw, &BTreeMap::new(), None).unwrap();
    let out: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let mut expected = input;
    expected["location"] = json!("file:///restored/t");
    expected["snapshots"][0]["manifests"] = json!([
        "file:///restored/t/metadata/m1.avro",
        "file:///restored/t/metadata/m2.avro"
    ]);
    assert_eq!(out, expected);
    assert!(warnings.is_empty());
}

#[test]
fn metadata_errors_name_the_field() {
    let mut input = metadata_v2();
    input["snapshots"][1]["manifest-list"] = json!("s3://elsewhere/snap-2.avro");
    let err = rewrite_table_metadata(
        input.to_string().as_bytes(),
        &rewriter(),
        &BTreeMap::new(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, RewriteError::OutsideLocation { ref path, .. } if path == "s3://elsewhere/snap-2.avro")
    );

    input["snapshots"][1]["manifest-list"] = json!(42);
    let err = rewrite_table_metadata(
        input.to_string().as_bytes(),
        &rewriter(),
        &BTreeMap::new(),
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "table metadata field snapshots[1].manifest-list is not a string"
    );

    let err = rewrite_table_metadata(b"{\"location\": ", &rewriter(), &BTreeMap::new(), None)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("parsing table metadata json: "),
        "{err}"
    );
}

// ---- Avro helpers -------------------------------------------------------------------

/// The header metadata of an Avro file, as strings.
fn avro_metadata(avro: &[u8]) -> BTreeMap<String, Vec<u8>> {
    parse_avro_header(avro, "test")
        .unwrap()
        .metadata
        .into_iter()
        .map(|(key, value)| match value {
            AvroValue::Bytes(bytes) => (key, bytes),
            other => panic!("{key}: {other:?}"),
        })
        .collect()
}

/// A copy of `bytes` whose header declares `schema` instead of the original writer schema.
fn with_header_schema(bytes: &[u8], header: &AvroHeader, schema_json: String) -> Vec<u8> {
    let mut metadata = header.metadata.clone();
    metadata.insert(
        "avro.schema".to_owned(),
        AvroValue::Bytes(schema_json.into_bytes()),
    );
    let map = apache_avro::to_avro_datum(
        &AvroSchema::map(AvroSchema::Bytes),
        AvroValue::Map(metadata),
    )
    .unwrap();
    let marker_start = header.len - 16;
    [b"Obj\x01".as_slice(), &map, &bytes[marker_start..]].concat()
}

/// Removes every `logicalType` attribute from an Avro schema in JSON form (default values,
/// which are data, are left alone).
fn strip_logical_types(schema: &mut serde_json::Value) {
    match schema {
        serde_json::Value::Object(map) => {
            map.remove("logicalType");
            map.iter_mut()
                .filter(|(key, _)| key.as_str() != "default")
                .for_each(|(_, value)| strip_logical_types(value));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_logical_types),
        _ => {}
    }
}

/// The value of field `name` of a record, looking through a union.
fn field_mut<'v>(record: &'v mut AvroValue, name: &str) -> Option<&'v mut AvroValue> {
    let AvroValue::Record(fields) = record else {
        return None;
    };
    let (_, value) = fields.iter_mut().find(|(field, _)| field == name)?;
    let mut value = value;
    while let AvroValue::Union(_, inner) = value {
        value = inner.as_mut();
    }
    Some(value)
}

/// The same Avro file written again with `codec` (a generic copy).
fn recompress(avro: &[u8], codec: Codec) -> Vec<u8> {
    let reader = AvroReader::new(avro).unwrap();
    let schema = reader.writer_schema().clone();
    let metadata = reader.user_metadata().clone();
    let records = reader.collect::<Result<Vec<_>, _>>().unwrap();
    let mut writer = AvroWriter::with_codec(&schema, Vec::new(), codec);
    for (key, value) in metadata {
        writer.add_user_metadata(key, value).unwrap();
    }
    for record in records {
        writer.append(record).unwrap();
    }
    writer.into_inner().unwrap()
}

async fn read_file(io: &FileIO, path: &str) -> Vec<u8> {
    io.new_input(path).unwrap().read().await.unwrap().to_vec()
}

// ---- manifest lists -----------------------------------------------------------------

fn manifest_file(name: &str, content: ManifestContentType, seq: i64) -> ManifestFile {
    ManifestFile {
        manifest_path: format!("{OLD}/metadata/{name}"),
        manifest_length: 5000 + seq,
        partition_spec_id: 0,
        content,
        sequence_number: seq,
        min_sequence_number: seq - 1,
        added_snapshot_id: SNAPSHOT_ID + seq,
        added_files_count: Some(2),
        existing_files_count: Some(1),
        deleted_files_count: Some(0),
        added_rows_count: Some(200),
        existing_rows_count: Some(100),
        deleted_rows_count: Some(0),
        partitions: None,
        key_metadata: None,
        first_row_id: None,
    }
}

async fn write_manifest_list(version: FormatVersion) -> Vec<u8> {
    let io = FileIO::new_with_memory();
    let path = format!("memory:///lists/{version}.avro");
    let writer = io.new_output(&path).unwrap().writer().await.unwrap();
    let mut list = match version {
        FormatVersion::V1 => ManifestListWriter::v1(writer, SNAPSHOT_ID, Some(1)),
        FormatVersion::V2 => ManifestListWriter::v2(writer, SNAPSHOT_ID, Some(1), 7),
        FormatVersion::V3 => ManifestListWriter::v3(writer, SNAPSHOT_ID, Some(1), 7, Some(10)),
    };
    let deletes = if version == FormatVersion::V1 {
        ManifestContentType::Data
    } else {
        ManifestContentType::Deletes
    };
    list.add_manifests(
        [
            manifest_file("m0.avro", ManifestContentType::Data, 5),
            manifest_file("m1.avro", deletes, 6),
            manifest_file("m2.avro", ManifestContentType::Data, 7),
        ]
        .into_iter(),
    )
    .unwrap();
    list.close().await.unwrap();
    read_file(&io, &path).await
}

#[tokio::test]
async fn manifest_list_paths_and_lengths_are_rewritten() {
    for version in [FormatVersion::V1, FormatVersion::V2, FormatVersion::V3] {
        let input = write_manifest_list(version).await;
        let new_sizes = HashMap::from([(format!("{NEW}/metadata/m1.avro"), 4242_i64)]);
        let output = rewrite_manifest_list(&input, &rewriter(), &new_sizes).unwrap();

        let before = ManifestList::parse_with_version(&input, version).unwrap();
        let after = ManifestList::parse_with_version(&output, version).unwrap();
        let mut expected = before.entries().to_vec();
        for manifest in &mut expected {
            manifest.manifest_path = manifest.manifest_path.replace(OLD, NEW);
        }
        expected[1].manifest_length = 4242;
        assert_eq!(after.entries(), expected.as_slice(), "{version}");
        assert_ne!(expected[0].manifest_length, 4242);
        assert_eq!(avro_metadata(&output), avro_metadata(&input), "{version}");
    }
}

#[tokio::test]
async fn manifest_list_codec_is_kept() {
    let plain = write_manifest_list(FormatVersion::V2).await;
    for codec in [
        Codec::Snappy,
        Codec::Deflate(apache_avro::DeflateSettings::default()),
        Codec::Zstandard(apache_avro::ZstandardSettings::new(3)),
    ] {
        let input = recompress(&plain, codec);
        let output = rewrite_manifest_list(&input, &rewriter(), &HashMap::new()).unwrap();
        let metadata = avro_metadata(&output);
        let name: &str = codec.into();
        assert_eq!(metadata["avro.codec"], name.as_bytes());
        assert_eq!(metadata, avro_metadata(&input));
        let after = ManifestList::parse_with_version(&output, FormatVersion::V2).unwrap();
        assert!(
            after
                .entries()
                .iter()
                .all(|m| m.manifest_path.starts_with(NEW))
        );
    }
    let zstd = recompress(
        &plain,
        Codec::Zstandard(apache_avro::ZstandardSettings::new(3)),
    );
    let output = rewrite_manifest_list(&zstd, &rewriter(), &HashMap::new()).unwrap();
    assert_eq!(avro_metadata(&output)["avro.codec.compression_level"], [3]);
}

#[tokio::test]
async fn manifest_list_errors() {
    let input = write_manifest_list(FormatVersion::V2).await;
    let rw = PathRewriter::new("s3://old-bucket/wh/db/other", NEW);
    assert!(matches!(
        rewrite_manifest_list(&input, &rw, &HashMap::new()),
        Err(RewriteError::OutsideLocation { .. })
    ));
    let err = rewrite_manifest_list(b"not avro", &rewriter(), &HashMap::new()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading avro manifest list header: not an avro object container file"
    );
    let truncated = &input[..input.len() - 20];
    assert!(rewrite_manifest_list(truncated, &rewriter(), &HashMap::new()).is_err());
}

// ---- manifests ----------------------------------------------------------------------

fn table_schema() -> Arc<Schema> {
    Arc::new(
        Schema::builder()
            .with_schema_id(0)
            .with_fields([
                NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
                NestedField::optional(2, "region", Type::Primitive(PrimitiveType::String)).into(),
                NestedField::optional(3, "day", Type::Primitive(PrimitiveType::Date)).into(),
            ])
            .build()
            .unwrap(),
    )
}

fn partition_spec(schema: &Arc<Schema>) -> PartitionSpec {
    PartitionSpec::builder(schema.clone())
        .with_spec_id(0)
        .add_partition_field("region", "region", Transform::Identity)
        .unwrap()
        .add_partition_field("day", "day", Transform::Identity)
        .unwrap()
        .build()
        .unwrap()
}

fn partition(region: &str, day: i32) -> Struct {
    Struct::from_iter([Some(Literal::string(region)), Some(Literal::date(day))])
}

fn data_file(prefix: &str, name: &str, size: u64) -> DataFile {
    DataFileBuilder::default()
        .content(DataContentType::Data)
        .file_path(format!("{prefix}/data/{name}"))
        .file_format(DataFileFormat::Parquet)
        .partition(partition("eu", 19_000))
        .partition_spec_id(0)
        .record_count(100)
        .file_size_in_bytes(size)
        .column_sizes(HashMap::from([(1, 800), (2, 300)]))
        .value_counts(HashMap::from([(1, 100), (2, 100)]))
        .null_value_counts(HashMap::from([(2, 3)]))
        .lower_bounds(HashMap::from([
            (1, Datum::long(1)),
            (2, Datum::string("a")),
        ]))
        .upper_bounds(HashMap::from([
            (1, Datum::long(100)),
            (2, Datum::string("z")),
        ]))
        .split_offsets(Some(vec![4]))
        .build()
        .unwrap()
}

/// A position delete file with `file_path` bounds `lower`/`upper` (None: no bound).
fn position_delete_file(
    prefix: &str,
    name: &str,
    lower: Option<&str>,
    upper: Option<&str>,
) -> DataFile {
    let mut lower_bounds = HashMap::from([(2_147_483_545, Datum::long(0))]);
    let mut upper_bounds = HashMap::from([(2_147_483_545, Datum::long(9))]);
    if let Some(lower) = lower {
        lower_bounds.insert(DELETE_FILE_PATH_FIELD_ID, Datum::string(lower));
    }
    if let Some(upper) = upper {
        upper_bounds.insert(DELETE_FILE_PATH_FIELD_ID, Datum::string(upper));
    }
    DataFileBuilder::default()
        .content(DataContentType::PositionDeletes)
        .file_path(format!("{prefix}/data/{name}"))
        .file_format(DataFileFormat::Parquet)
        .partition(partition("us", 19_001))
        .partition_spec_id(0)
        .record_count(10)
        .file_size_in_bytes(1500)
        .lower_bounds(lower_bounds)
        .upper_bounds(upper_bounds)
        .referenced_data_file(Some(format!("{prefix}/data/d0.parquet")))
        .build()
        .unwrap()
}

async fn write_data_manifest(version: FormatVersion) -> Vec<u8> {
    let io = FileIO::new_with_memory();
    let path = "memory:///m/data.avro";
    let schema = table_schema();
    let builder = ManifestWriterBuilder::new(
        io.new_output(path).unwrap(),
        Some(SNAPSHOT_ID),
        schema.clone(),
        partition_spec(&schema),
    );
    let mut writer = match version {
        FormatVersion::V1 => builder.build_v1(),
        FormatVersion::V2 => builder.build_v2_data(),
        FormatVersion::V3 => builder.build_v3_data(),
    };
    writer
        .add_file(data_file(OLD, "d0.parquet", 1000), 3)
        .unwrap();
    writer
        .add_existing_file(data_file(OLD, "d1.parquet", 1001), 17, 2, Some(2))
        .unwrap();
    writer
        .add_delete_file(data_file(OLD, "d2.parquet", 1002), 1, Some(1))
        .unwrap();
    writer.write_manifest_file().await.unwrap();
    read_file(&io, path).await
}

async fn write_delete_manifest(version: FormatVersion, files: Vec<DataFile>) -> Vec<u8> {
    let io = FileIO::new_with_memory();
    let path = "memory:///m/deletes.avro";
    let schema = table_schema();
    let builder = ManifestWriterBuilder::new(
        io.new_output(path).unwrap(),
        Some(SNAPSHOT_ID),
        schema.clone(),
        partition_spec(&schema),
    );
    let mut writer = match version {
        FormatVersion::V3 => builder.build_v3_deletes(),
        _ => builder.build_v2_deletes(),
    };
    for file in files {
        writer.add_file(file, 4).unwrap();
    }
    writer.write_manifest_file().await.unwrap();
    read_file(&io, path).await
}

/// Asserts that `output` parses to the entries of `input` with each data file replaced.
fn assert_entries(input: &[u8], output: &[u8], expected_files: Vec<DataFile>) {
    let before = Manifest::parse_avro(input).unwrap();
    let after = Manifest::parse_avro(output).unwrap();
    assert_eq!(after.metadata(), before.metadata());
    let expected: Vec<_> = before
        .entries()
        .iter()
        .zip(expected_files)
        .map(|(entry, data_file)| iceberg::spec::ManifestEntry {
            data_file,
            ..(**entry).clone()
        })
        .collect();
    let actual: Vec<_> = after
        .entries()
        .iter()
        .map(|entry| (**entry).clone())
        .collect();
    assert_eq!(actual, expected);
    assert_eq!(avro_metadata(output), avro_metadata(input));
}

#[tokio::test]
async fn data_manifest_paths_and_sizes_are_rewritten() {
    for version in [FormatVersion::V1, FormatVersion::V2, FormatVersion::V3] {
        let input = write_data_manifest(version).await;
        let new_sizes = HashMap::from([(format!("{NEW}/data/d1.parquet"), 77_i64)]);
        let (output, refs) = rewrite_manifest(&input, &rewriter(), &new_sizes).unwrap();
        assert_entries(
            &input,
            &output,
            vec![
                data_file(NEW, "d0.parquet", 1000),
                data_file(NEW, "d1.parquet", 77),
                data_file(NEW, "d2.parquet", 1002),
            ],
        );
        let statuses = [
            ManifestStatus::Added,
            ManifestStatus::Existing,
            ManifestStatus::Deleted,
        ];
        let expected_refs: Vec<_> = (0..3)
            .map(|i| ManifestFileRef {
                old_path: format!("{OLD}/data/d{i}.parquet"),
                new_path: format!("{NEW}/data/d{i}.parquet"),
                content: DataContentType::Data,
                file_format: "PARQUET".to_owned(),
                status: statuses[i],
                file_size_in_bytes: 1000 + i64::try_from(i).unwrap(),
            })
            .collect();
        assert_eq!(refs, expected_refs, "{version}");
    }
}

#[tokio::test]
async fn delete_manifest_bounds_and_referenced_files_are_rewritten() {
    for version in [FormatVersion::V2, FormatVersion::V3] {
        let full = format!("{OLD}/data/d0.parquet");
        let input = write_delete_manifest(
            version,
            vec![
                position_delete_file(OLD, "del0.parquet", Some(&full), Some(&full)),
                // Truncated bounds: the lower one no longer holds the whole location.
                position_delete_file(
                    OLD,
                    "del1.parquet",
                    Some("s3a://old-bu"),
                    Some(&format!("{OLD}/data/e")),
                ),
            ],
        )
        .await;
        let new_sizes = HashMap::from([(format!("{NEW}/data/del0.parquet"), 1499_i64)]);
        let (output, refs) = rewrite_manifest(&input, &rewriter(), &new_sizes).unwrap();

        let new_full = format!("{NEW}/data/d0.parquet");
        let mut first = position_delete_file(NEW, "del0.parquet", Some(&new_full), Some(&new_full));
        first = DataFileBuilder::default()
            .content(first.content_type())
            .file_path(first.file_path().to_owned())
            .file_format(first.file_format())
            .partition(first.partition().clone())
            .partition_spec_id(0)
            .record_count(first.record_count())
            .file_size_in_bytes(1499)
            .lower_bounds(first.lower_bounds().clone())
            .upper_bounds(first.upper_bounds().clone())
            .referenced_data_file(first.referenced_data_file())
            .build()
            .unwrap();
        let second =
            position_delete_file(NEW, "del1.parquet", None, Some(&format!("{NEW}/data/e")));
        assert_entries(&input, &output, vec![first, second]);
        assert!(
            refs.iter()
                .all(|r| r.content == DataContentType::PositionDeletes)
        );
        assert_eq!(refs[0].file_size_in_bytes, 1500);
        assert_eq!(refs[1].new_path, format!("{NEW}/data/del1.parquet"));
    }
}

#[tokio::test]
async fn manifest_codec_is_kept() {
    let plain = write_data_manifest(FormatVersion::V2).await;
    let input = recompress(&plain, Codec::Snappy);
    let (output, _) = rewrite_manifest(&input, &rewriter(), &HashMap::new()).unwrap();
    assert_eq!(avro_metadata(&output)["avro.codec"], b"snappy");
    assert_entries(
        &input,
        &output,
        vec![
            data_file(NEW, "d0.parquet", 1000),
            data_file(NEW, "d1.parquet", 1001),
            data_file(NEW, "d2.parquet", 1002),
        ],
    );
}

#[tokio::test]
async fn manifest_errors_name_the_record() {
    let input = write_data_manifest(FormatVersion::V2).await;
    let rw = PathRewriter::new("s3://old-bucket/wh/db/t/data/d0.parquet", NEW);
    let err = rewrite_manifest(&input, &rw, &HashMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("d1.parquet is outside the table location"),
        "{err}"
    );
}

/// Physical schema of a hand-made manifest: partition `u` is a Java-style `uuid`
/// (`fixed(16)`), `day` a `date`; bounds are a real Avro map for once.
const UUID_MANIFEST_SCHEMA: &str = r#"{"type": "record", "name": "manifest_entry", "fields": [
        {"name": "status", "type": "int", "field-id": 0},
        {"name": "data_file", "field-id": 2, "type": {"type": "record", "name": "r2", "fields": [
            {"name": "content", "type": "int", "field-id": 134},
            {"name": "file_path", "type": "string", "field-id": 100},
            {"name": "file_format", "type": "string", "field-id": 101},
            {"name": "partition", "field-id": 102, "type": {"type": "record", "name": "r102", "fields": [
                {"name": "u", "field-id": 1000, "type": ["null",
                    {"type": "fixed", "name": "uuid_fixed", "size": 16, "logicalType": "uuid"}]},
                {"name": "day", "field-id": 1001, "type": ["null", {"type": "int", "logicalType": "date"}]}]}},
            {"name": "file_size_in_bytes", "type": "long", "field-id": 104},
            {"name": "lower_bounds", "field-id": 125, "type": ["null", {"type": "map", "values": "bytes"}]},
            {"name": "x_unknown", "type": "string", "field-id": 9999}]}}]}"#;

#[test]
fn fixed_uuid_partitions_and_avro_map_bounds_survive() {
    let logical_json = UUID_MANIFEST_SCHEMA.to_owned();
    let mut physical_json: serde_json::Value = serde_json::from_str(&logical_json).unwrap();
    strip_logical_types(&mut physical_json);
    let physical = AvroSchema::parse(&physical_json).unwrap();
    let uuid = [7_u8; 16];
    let record = |path: &str, bound: &str| {
        AvroValue::Record(vec![
            ("status".into(), AvroValue::Int(1)),
            (
                "data_file".into(),
                AvroValue::Record(vec![
                    ("content".into(), AvroValue::Int(1)),
                    ("file_path".into(), AvroValue::String(path.into())),
                    ("file_format".into(), AvroValue::String("PARQUET".into())),
                    (
                        "partition".into(),
                        AvroValue::Record(vec![
                            (
                                "u".into(),
                                AvroValue::Union(1, Box::new(AvroValue::Fixed(16, uuid.to_vec()))),
                            ),
                            (
                                "day".into(),
                                AvroValue::Union(1, Box::new(AvroValue::Int(19_000))),
                            ),
                        ]),
                    ),
                    ("file_size_in_bytes".into(), AvroValue::Long(10)),
                    (
                        "lower_bounds".into(),
                        AvroValue::Union(
                            1,
                            Box::new(AvroValue::Map(HashMap::from([
                                (
                                    "2147483546".to_owned(),
                                    AvroValue::Bytes(bound.as_bytes().to_vec()),
                                ),
                                ("2147483545".to_owned(), AvroValue::Bytes(vec![0; 8])),
                            ]))),
                        ),
                    ),
                    ("x_unknown".into(), AvroValue::String("kept".into())),
                ]),
            ),
        ])
    };
    let mut writer = AvroWriter::with_codec(
        &physical,
        Vec::new(),
        Codec::Deflate(apache_avro::DeflateSettings::default()),
    );
    writer
        .add_user_metadata("format-version".into(), "2")
        .unwrap();
    writer
        .append(record(
            &format!("{OLD}/data/a.parquet"),
            &format!("{OLD}/data/x.parquet"),
        ))
        .unwrap();
    writer
        .append(record(&format!("{OLD}/data/b.parquet"), "s3a://ol"))
        .unwrap();
    let written = writer.into_inner().unwrap();
    // Declare the logical (Java-style) schema in the header, as Iceberg Java would.
    let header = parse_avro_header(&written, "test").unwrap();
    let input = with_header_schema(&written, &header, logical_json.clone());

    let (output, refs) = rewrite_manifest(&input, &rewriter(), &HashMap::new()).unwrap();
    assert_eq!(
        avro_metadata(&output)["avro.schema"],
        logical_json.as_bytes()
    );
    assert_eq!(refs.len(), 2);

    let header = parse_avro_header(&output, "test").unwrap();
    let physical_out = with_header_schema(&output, &header, physical_json.to_string());
    let records = AvroReader::new(physical_out.as_slice())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let first = record(
        &format!("{NEW}/data/a.parquet"),
        &format!("{NEW}/data/x.parquet"),
    );
    assert_eq!(records[0], first);
    let mut second = record(&format!("{NEW}/data/b.parquet"), "");
    if let Some(AvroValue::Map(bounds)) = field_mut(&mut second, "data_file")
        .and_then(|data_file| field_mut(data_file, "lower_bounds"))
    {
        bounds.remove("2147483546");
    }
    assert_eq!(records[1], second);
}

// ---- position delete files ----------------------------------------------------------

fn field_with_id(name: &str, data_type: DataType, id: i32) -> Field {
    Field::new(name, data_type, false).with_metadata(HashMap::from([(
        "PARQUET:field_id".to_owned(),
        id.to_string(),
    )]))
}

fn delete_batch(prefix: &str, files: &[&str], positions: &[i64]) -> RecordBatch {
    let schema = Arc::new(ArrowSchema::new(vec![
        field_with_id("file_path", DataType::Utf8, DELETE_FILE_PATH_FIELD_ID),
        field_with_id("pos", DataType::Int64, 2_147_483_545),
    ]));
    let paths: StringArray = files
        .iter()
        .map(|f| Some(format!("{prefix}/data/{f}")))
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(paths),
        Arc::new(Int64Array::from(positions.to_vec())),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn write_delete_file(compression: Compression) -> Vec<u8> {
    let props = WriterProperties::builder()
        .set_compression(compression)
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "iceberg.schema".into(),
            "{}".to_owned(),
        )]))
        .build();
    let first = delete_batch(OLD, &["a.parquet", "a.parquet", "b.parquet"], &[0, 5, 2]);
    let mut writer = ArrowWriter::try_new(Vec::new(), first.schema(), Some(props)).unwrap();
    writer.write(&first).unwrap();
    writer.flush().unwrap();
    writer
        .write(&delete_batch(OLD, &["c.parquet", "d.parquet"], &[1, 7]))
        .unwrap();
    writer.into_inner().unwrap()
}

fn read_batches(parquet: Vec<u8>) -> Vec<RecordBatch> {
    ParquetRecordBatchReaderBuilder::try_new(Bytes::from(parquet))
        .unwrap()
        .build()
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn position_delete_file_paths_are_rewritten() {
    for compression in [
        Compression::ZSTD(ZstdLevel::try_new(3).unwrap()),
        Compression::SNAPPY,
    ] {
        let input = write_delete_file(compression);
        let output = rewrite_position_delete_file(input.clone(), &rewriter()).unwrap();

        let meta_in = ParquetRecordBatchReaderBuilder::try_new(Bytes::from(input.clone())).unwrap();
        let meta_out =
            ParquetRecordBatchReaderBuilder::try_new(Bytes::from(output.clone())).unwrap();
        let (meta_in, meta_out) = (meta_in.metadata(), meta_out.metadata());
        assert_eq!(
            meta_out.file_metadata().schema_descr(),
            meta_in.file_metadata().schema_descr()
        );
        assert_eq!(
            meta_out.file_metadata().key_value_metadata(),
            meta_in.file_metadata().key_value_metadata()
        );
        let ids: Vec<_> = meta_out
            .file_metadata()
            .schema_descr()
            .columns()
            .iter()
            .map(|c| c.self_type().get_basic_info().id())
            .collect();
        assert_eq!(ids, [DELETE_FILE_PATH_FIELD_ID, 2_147_483_545]);
        let rows = |m: &parquet::file::metadata::ParquetMetaData| {
            m.row_groups()
                .iter()
                .map(parquet::file::metadata::RowGroupMetaData::num_rows)
                .collect::<Vec<_>>()
        };
        assert_eq!(rows(meta_out), [3, 2]);
        assert_eq!(rows(meta_out), rows(meta_in));
        for group in meta_out.row_groups() {
            for column in group.columns() {
                assert_eq!(
                    std::mem::discriminant(&column.compression()),
                    std::mem::discriminant(&compression)
                );
            }
        }

        // Both row groups come back as one batch.
        let (batches, batches_in) = (read_batches(output), read_batches(input));
        let files = [
            "a.parquet",
            "a.parquet",
            "b.parquet",
            "c.parquet",
            "d.parquet",
        ];
        assert_eq!(batches, [delete_batch(NEW, &files, &[0, 5, 2, 1, 7])]);
        assert_eq!(batches_in, [delete_batch(OLD, &files, &[0, 5, 2, 1, 7])]);
    }
}

#[test]
fn position_delete_file_errors() {
    let input = write_delete_file(Compression::UNCOMPRESSED);
    let rw = PathRewriter::new("s3://old-bucket/wh/db/other", NEW);
    assert!(matches!(
        rewrite_position_delete_file(input, &rw),
        Err(RewriteError::OutsideLocation { .. })
    ));
    let err = rewrite_position_delete_file(b"nope".to_vec(), &rewriter()).unwrap_err();
    assert!(matches!(err, RewriteError::ParquetRead(_)), "{err}");

    let schema = Arc::new(ArrowSchema::new(vec![field_with_id(
        "pos",
        DataType::Int64,
        2_147_483_545,
    )]));
    let batch =
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    let err = rewrite_position_delete_file(writer.into_inner().unwrap(), &rewriter()).unwrap_err();
    assert!(
        err.to_string().contains("column file_path is missing"),
        "{err}"
    );
}

// ---- the Avro walk ------------------------------------------------------------------

/// A manifest-list-shaped schema with every kind of value around the two fields rewritten:
/// arrays in several blocks (one giving its size), maps, named types referenced by full and
/// short name, enums, fixed, double, boolean, and a long inside a union.
const WALK_SCHEMA: &str = r#"{"type": "record", "name": "manifest_file", "namespace": "iceberg", "fields": [
    {"name": "stats", "type": {"type": "array", "items": {"type": "record", "name": "kv", "fields": [
        {"name": "k", "type": "int"}, {"name": "v", "type": "bytes"}]}}},
    {"name": "manifest_path", "type": "string"},
    {"name": "counts", "type": {"type": "map", "values": "long"}},
    {"name": "again", "type": ["null", "iceberg.kv"]},
    {"name": "again_short", "type": "kv"},
    {"name": "mode", "type": {"type": "enum", "name": "mode", "symbols": ["A", "B"]}},
    {"name": "digest", "type": {"type": "fixed", "name": "d4", "size": 4}},
    {"name": "ratio", "type": "double"},
    {"name": "flag", "type": "boolean"},
    {"name": "manifest_length", "type": ["null", "long"]}]}"#;

const WALK_MARKER: [u8; 16] = [9; 16];

/// One record of [`WALK_SCHEMA`], encoded by hand.
fn walk_record(path: &str, length: i64) -> Vec<u8> {
    use super::avro::{write_bytes, write_long};
    let kv = |out: &mut Vec<u8>, k: i64, v: &[u8]| {
        write_long(out, k);
        write_bytes(out, v);
    };
    let mut out = Vec::new();
    // stats: a block of one item, then a block of two that gives its size in bytes.
    write_long(&mut out, 1);
    kv(&mut out, 1, b"ab");
    let mut block = Vec::new();
    kv(&mut block, 2, b"");
    kv(&mut block, 3, b"xyz");
    write_long(&mut out, -2);
    write_long(&mut out, i64::try_from(block.len()).unwrap());
    out.extend_from_slice(&block);
    write_long(&mut out, 0);
    write_bytes(&mut out, path.as_bytes());
    write_long(&mut out, 1); // counts: {"a": 5}
    write_bytes(&mut out, b"a");
    write_long(&mut out, 5);
    write_long(&mut out, 0);
    write_long(&mut out, 1); // again: the kv branch
    kv(&mut out, 7, b"q");
    kv(&mut out, 8, b"");
    write_long(&mut out, 1); // mode B
    out.extend_from_slice(&[1, 2, 3, 4]);
    out.extend_from_slice(&1.5_f64.to_le_bytes());
    out.push(1);
    write_long(&mut out, 1);
    write_long(&mut out, length);
    out
}

/// An uncompressed Avro container of [`WALK_SCHEMA`] with `blocks` of records.
fn walk_container(blocks: &[Vec<Vec<u8>>]) -> Vec<u8> {
    walk_container_coded(blocks, "null")
}

/// [`walk_container`] with its blocks stored by `codec` (`null` or `deflate`).
fn walk_container_coded(blocks: &[Vec<Vec<u8>>], codec: &str) -> Vec<u8> {
    let stored = blocks.iter().map(|records| {
        let data = records.concat();
        let data = match codec {
            "null" => data,
            "deflate" => deflated(&data),
            other => panic!("no codec {other} here"),
        };
        (records.len(), data)
    });
    walk_container_stored(codec, &stored.collect::<Vec<_>>())
}

/// `data` compressed as Avro's `deflate` codec stores it (raw deflate, zlib's default level).
fn deflated(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut deflate =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    deflate.write_all(data).unwrap();
    deflate.finish().unwrap()
}

/// A container of [`WALK_SCHEMA`] records whose blocks (a count of records and the bytes
/// stored) are given as they are stored.
fn walk_container_stored(codec: &str, blocks: &[(usize, Vec<u8>)]) -> Vec<u8> {
    use super::avro::{write_bytes, write_long};
    let mut out = b"Obj\x01".to_vec();
    write_long(&mut out, 2); // the metadata map, in one order
    for (key, value) in [("avro.schema", WALK_SCHEMA), ("avro.codec", codec)] {
        write_bytes(&mut out, key.as_bytes());
        write_bytes(&mut out, value.as_bytes());
    }
    write_long(&mut out, 0);
    out.extend_from_slice(&WALK_MARKER);
    for (count, stored) in blocks {
        write_long(&mut out, i64::try_from(*count).unwrap());
        write_bytes(&mut out, stored);
        out.extend_from_slice(&WALK_MARKER);
    }
    out
}

#[test]
fn records_are_rewritten_in_place_across_blocks_and_value_kinds() {
    let input = walk_container(&[
        vec![
            walk_record(&format!("{OLD}/metadata/m0.avro"), 100),
            walk_record(&format!("{OLD}/metadata/m1.avro"), 101),
        ],
        vec![walk_record(&format!("{OLD}/metadata/m2.avro"), 102)],
    ]);
    let new_sizes = HashMap::from([(format!("{NEW}/metadata/m1.avro"), 1_000_000_i64)]);
    let output = rewrite_manifest_list(&input, &rewriter(), &new_sizes).unwrap();

    // Every byte but the paths and the one new length is as written; the small blocks are
    // written again as one.
    let expected = walk_container(&[vec![
        walk_record(&format!("{NEW}/metadata/m0.avro"), 100),
        walk_record(&format!("{NEW}/metadata/m1.avro"), 1_000_000),
        walk_record(&format!("{NEW}/metadata/m2.avro"), 102),
    ]]);
    assert_eq!(output, expected);
    // And another reader agrees it is a valid file.
    let records = AvroReader::new(output.as_slice())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(records.len(), 3);
}

#[test]
fn deflate_blocks_are_read_through_one_stream_and_written_again() {
    // A block per record, as pyiceberg writes them: each inflated through the same stream.
    let records: Vec<Vec<u8>> = (0..5)
        .map(|i| walk_record(&format!("{OLD}/metadata/m{i}.avro"), 100 + i))
        .collect();
    let input = walk_container_coded(
        &records.iter().map(|r| vec![r.clone()]).collect::<Vec<_>>(),
        "deflate",
    );
    let output = rewrite_manifest_list(&input, &rewriter(), &HashMap::new()).unwrap();
    let expected: Vec<Vec<u8>> = (0..5)
        .map(|i| walk_record(&format!("{NEW}/metadata/m{i}.avro"), 100 + i))
        .collect();
    // Written again as one block, and read back by another reader record for record.
    assert_eq!(
        output,
        walk_container_coded(std::slice::from_ref(&expected), "deflate"),
        "one block, compressed the way zlib does by default"
    );
    let read = AvroReader::new(output.as_slice())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let plain = AvroReader::new(walk_container(&[expected]).as_slice())
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(read, plain);

    // Compressed data cut short, or not deflate at all: named with the block.
    let header = walk_container_stored("deflate", &[]).len();
    let compressed = deflated(&records[0]);
    let cut = walk_container_stored(
        "deflate",
        &[(1, compressed[..compressed.len() - 4].to_vec())],
    );
    let err = rewrite_manifest_list(&cut, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("block at byte {header}: deflate data ends early")),
        "{err}"
    );
    let mut garbled = compressed.clone();
    garbled[0] = 0xff; // the last block, of the reserved type
    let garbled = walk_container_stored("deflate", &[(1, garbled)]);
    let err = rewrite_manifest_list(&garbled, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("block at byte {header}: damaged deflate data")),
        "{err}"
    );
}

#[test]
fn damaged_blocks_are_refused_with_where() {
    let record = walk_record(&format!("{OLD}/metadata/m0.avro"), 100);
    let good = walk_container(&[vec![record.clone(), record.clone()]]);

    // A block that claims two records but holds one and a half.
    let mut short = walk_container(&[vec![record.clone(), record[..record.len() / 2].to_vec()]]);
    let err = rewrite_manifest_list(&short, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("reading avro manifest list: record 1:"),
        "{err}"
    );

    // A block not followed by the file's sync marker.
    let last = good.len() - 1;
    short.clone_from(&good);
    short[last] ^= 0xff;
    let err = rewrite_manifest_list(&short, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(err.to_string().contains("no sync marker"), "{err}");

    // Bytes left over after the block's records.
    // A count of records no block could hold (each takes bytes): refused, not counted through.
    let mut huge = walk_container(&[vec![record.clone()]]);
    let block_start = huge.len() - 16 - record.len() - 3; // count (1 byte), size (2 bytes)
    assert_eq!(huge[block_start], 2, "one record, zig-zag encoded");
    huge.splice(
        block_start..=block_start,
        [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    );
    let err = rewrite_manifest_list(&huge, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string().contains("more items than bytes left"),
        "{err}"
    );

    let trailing = walk_container(&[vec![[record.as_slice(), &[0]].concat()]]);
    let err = rewrite_manifest_list(&trailing, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string()
            .contains("bytes after the block's last record"),
        "{err}"
    );

    // A file whose records are not records (its schema a bare `long`).
    let longs = {
        use super::avro::{write_bytes, write_long};
        let mut out = b"Obj\x01".to_vec();
        write_long(&mut out, 2);
        for (key, value) in [("avro.schema", "\"long\""), ("avro.codec", "null")] {
            write_bytes(&mut out, key.as_bytes());
            write_bytes(&mut out, value.as_bytes());
        }
        write_long(&mut out, 0);
        out.extend_from_slice(&WALK_MARKER);
        write_long(&mut out, 1);
        write_bytes(&mut out, &[10]);
        out.extend_from_slice(&WALK_MARKER);
        out
    };
    let err = rewrite_manifest_list(&longs, &rewriter(), &HashMap::new()).unwrap_err();
    assert!(
        err.to_string().contains("record 0: a record is expected"),
        "{err}"
    );
}
