//! How Iceberg tables and views look as Hive tables: the table types, parameters, storage
//! descriptors and column types Java's `HiveCatalog` writes, so that every Hive-based engine
//! reads what bcn registers.

use hive_metastore::{FieldSchema, SerDeInfo, StorageDescriptor};
use iceberg::spec::{PrimitiveType, Schema, TableMetadata, Type};
use iceberg::{Error, ErrorKind, Result};
use pilota::{AHashMap, FastStr};

/// The `table_type` parameter of an Iceberg view's Hive table.
pub(super) const ICEBERG_VIEW: &str = "ICEBERG-VIEW";

/// The Hive table of an Iceberg view, as Java's `HiveViewOperations` writes it: a
/// `VIRTUAL_VIEW` whose text is the SQL of the current version (the `hive` dialect first),
/// with the columns of its schema, `table_type=ICEBERG-VIEW`, `metadata_location`, the view
/// UUID and its properties.
pub(super) fn hive_view(
    db: &str,
    name: &str,
    metadata: &serde_json::Value,
    metadata_location: &str,
) -> Result<hive_metastore::Table> {
    use serde_json::Value;
    let invalid = |what: &str| Error::new(ErrorKind::DataInvalid, format!("view metadata: {what}"));
    let current = metadata
        .get("current-version-id")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("no current-version-id"))?;
    let version = metadata
        .get("versions")
        .and_then(Value::as_array)
        .and_then(|v| {
            v.iter()
                .find(|v| v.get("version-id").and_then(Value::as_i64) == Some(current))
        })
        .ok_or_else(|| invalid("no current version"))?;
    let schema_id = version.get("schema-id").and_then(Value::as_i64);
    let schema = metadata
        .get("schemas")
        .and_then(Value::as_array)
        .and_then(|s| {
            s.iter()
                .find(|s| s.get("schema-id").and_then(Value::as_i64) == schema_id)
        })
        .ok_or_else(|| invalid("no schema for the current version"))?;
    let schema: Schema = serde_json::from_value(schema.clone())
        .map_err(|e| invalid(&format!("its schema does not read: {e}")))?;
    let sqls: Vec<(&str, &str)> = version
        .get("representations")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter(|r| r.get("type").and_then(Value::as_str) == Some("sql"))
                .filter_map(|r| {
                    Some((
                        r.get("dialect").and_then(Value::as_str).unwrap_or(""),
                        r.get("sql").and_then(Value::as_str)?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let sql = sqls
        .iter()
        .find(|(d, _)| d.eq_ignore_ascii_case("hive"))
        .or_else(|| sqls.first())
        .map(|(_, sql)| FastStr::from((*sql).to_owned()));
    let location = metadata
        .get("location")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("no location"))?;
    let cols = columns(&schema);
    let mut parameters: AHashMap<FastStr, FastStr> = metadata
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| {
            p.iter()
                .filter(|(k, _)| k.as_str() != "hive.metastore.table.owner")
                .filter_map(|(k, v)| {
                    Some((
                        FastStr::from(k.clone()),
                        FastStr::from(v.as_str()?.to_owned()),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    parameters.insert("table_type".into(), ICEBERG_VIEW.into());
    parameters.insert(
        "metadata_location".into(),
        FastStr::from(metadata_location.to_owned()),
    );
    if let Some(uuid) = metadata.get("view-uuid").and_then(Value::as_str) {
        parameters.insert("uuid".into(), FastStr::from(uuid.to_owned()));
    }
    let owner = metadata
        .pointer("/properties/hive.metastore.table.owner")
        .and_then(Value::as_str)
        .unwrap_or("bcn");
    let time = version
        .get("timestamp-ms")
        .and_then(Value::as_i64)
        .and_then(|ms| i32::try_from(ms / 1000).ok())
        .unwrap_or(i32::MAX);
    Ok(hive_metastore::Table {
        table_name: Some(name.to_owned().into()),
        db_name: Some(db.to_owned().into()),
        table_type: Some("VIRTUAL_VIEW".into()),
        owner: Some(owner.to_owned().into()),
        create_time: Some(time),
        last_access_time: Some(time),
        retention: Some(i32::MAX),
        partition_keys: Some(Vec::new()),
        view_original_text: sql.clone(),
        view_expanded_text: sql,
        sd: Some(StorageDescriptor {
            location: Some(location.to_owned().into()),
            cols: Some(cols),
            input_format: Some("org.apache.hadoop.mapred.FileInputFormat".into()),
            output_format: Some("org.apache.hadoop.mapred.FileOutputFormat".into()),
            serde_info: Some(SerDeInfo {
                serialization_lib: Some(
                    "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into(),
                ),
                parameters: Some(AHashMap::new()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        parameters: Some(parameters),
        ..Default::default()
    })
}

/// Whether Hive table parameters mark an Iceberg table.
pub(super) fn is_iceberg(parameters: Option<&AHashMap<FastStr, FastStr>>) -> bool {
    parameters
        .and_then(|p| p.get("table_type"))
        .is_some_and(|t| t.eq_ignore_ascii_case("ICEBERG"))
}

/// The Hive columns of a schema.
fn columns(schema: &Schema) -> Vec<FieldSchema> {
    schema
        .as_struct()
        .fields()
        .iter()
        .map(|f| FieldSchema {
            name: Some(f.name.clone().into()),
            r#type: Some(hive_type(&f.field_type).into()),
            comment: f.doc.clone().map(Into::into),
        })
        .collect()
}

/// The Hive table that points at an Iceberg table, as Iceberg's `HiveCatalog` writes it.
pub(super) fn hive_table(
    db: &str,
    name: &str,
    metadata: &TableMetadata,
    metadata_location: &str,
) -> hive_metastore::Table {
    let cols = columns(metadata.current_schema());
    let sd = StorageDescriptor {
        location: Some(metadata.location().to_owned().into()),
        cols: Some(cols),
        input_format: Some("org.apache.hadoop.mapred.FileInputFormat".into()),
        output_format: Some("org.apache.hadoop.mapred.FileOutputFormat".into()),
        serde_info: Some(SerDeInfo {
            serialization_lib: Some("org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let parameters = AHashMap::from([
        (FastStr::from("EXTERNAL"), FastStr::from("TRUE")),
        (FastStr::from("table_type"), FastStr::from("ICEBERG")),
        (
            FastStr::from("metadata_location"),
            FastStr::from(metadata_location.to_owned()),
        ),
    ]);
    // The metastore's times are i32 seconds; the metadata's last update is the table's time.
    let time = i32::try_from(metadata.last_updated_ms() / 1000).unwrap_or(i32::MAX);
    let owner = metadata
        .properties()
        .get("owner")
        .cloned()
        .unwrap_or_else(|| "bcn".into());
    hive_metastore::Table {
        table_name: Some(name.to_owned().into()),
        db_name: Some(db.to_owned().into()),
        table_type: Some("EXTERNAL_TABLE".into()),
        owner: Some(owner.into()),
        create_time: Some(time),
        last_access_time: Some(time),
        sd: Some(sd),
        parameters: Some(parameters),
        ..Default::default()
    }
}

/// The Hive column type of an Iceberg type (Iceberg's `HiveSchemaUtil`, Hive 2 flavour).
pub(super) fn hive_type(t: &Type) -> String {
    match t {
        Type::Primitive(p) => match p {
            PrimitiveType::Boolean => "boolean".into(),
            PrimitiveType::Int => "int".into(),
            PrimitiveType::Long => "bigint".into(),
            PrimitiveType::Float => "float".into(),
            PrimitiveType::Double => "double".into(),
            PrimitiveType::Date => "date".into(),
            PrimitiveType::Timestamp
            | PrimitiveType::Timestamptz
            | PrimitiveType::TimestampNs
            | PrimitiveType::TimestamptzNs => "timestamp".into(),
            PrimitiveType::Time | PrimitiveType::String | PrimitiveType::Uuid => "string".into(),
            PrimitiveType::Binary | PrimitiveType::Fixed(_) => "binary".into(),
            PrimitiveType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        },
        Type::Struct(s) => {
            let fields: Vec<String> = s
                .fields()
                .iter()
                .map(|f| format!("{}:{}", f.name, hive_type(&f.field_type)))
                .collect();
            format!("struct<{}>", fields.join(","))
        }
        Type::List(l) => format!("array<{}>", hive_type(&l.element_field.field_type)),
        Type::Map(m) => format!(
            "map<{},{}>",
            hive_type(&m.key_field.field_type),
            hive_type(&m.value_field.field_type)
        ),
    }
}
