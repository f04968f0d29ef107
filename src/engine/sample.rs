//! A small sample lakehouse, written with iceberg-rust's own writers, for the quickstart and
//! for tests that need a catalog without any other client.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use iceberg::spec::{DataFileFormat, NestedField, PrimitiveType, Schema, Type};
use iceberg::table::Table;
use iceberg::transaction::{ApplyTransactionAction, Transaction};
use iceberg::writer::base_writer::data_file_writer::DataFileWriterBuilder;
use iceberg::writer::file_writer::ParquetWriterBuilder;
use iceberg::writer::file_writer::location_generator::{
    DefaultFileNameGenerator, DefaultLocationGenerator,
};
use iceberg::writer::file_writer::rolling_writer::RollingFileWriterBuilder;
use iceberg::writer::{IcebergWriter, IcebergWriterBuilder};
use iceberg::{Catalog, NamespaceIdent, TableCreation, TableIdent};
use parquet::file::properties::WriterProperties;

/// The sample's database.
pub(crate) const SAMPLE_DATABASE: &str = "demo";

/// Creates the sample tables in `catalog` unless the sample database exists. Returns the
/// tables created (empty when the sample was already there).
pub(crate) async fn create_sample(catalog: &dyn Catalog) -> iceberg::Result<Vec<String>> {
    let ns = NamespaceIdent::new(SAMPLE_DATABASE.into());
    if catalog.namespace_exists(&ns).await? {
        return Ok(Vec::new());
    }
    catalog
        .create_namespace(
            &ns,
            HashMap::from([("owner".into(), "bcn quickstart".into())]),
        )
        .await?;

    let events = create(catalog, &ns, "events", event_schema()).await?;
    let events = append(catalog, events, event_batch(0..5)?).await?;
    let events = append(catalog, events, event_batch(5..12)?).await?;
    append(catalog, events, event_batch(12..20)?).await?;

    let customers = create(catalog, &ns, "customers", customer_schema()).await?;
    let customers = append(
        catalog,
        customers,
        customer_batch(&[(1, "Ada", "DE"), (2, "Grace", "US")])?,
    )
    .await?;
    append(catalog, customers, customer_batch(&[(3, "Edsger", "NL")])?).await?;

    Ok(vec![
        format!("{SAMPLE_DATABASE}.events"),
        format!("{SAMPLE_DATABASE}.customers"),
    ])
}

async fn create(
    catalog: &dyn Catalog,
    ns: &NamespaceIdent,
    name: &str,
    schema: Schema,
) -> iceberg::Result<Table> {
    let creation = TableCreation::builder()
        .name(name.into())
        .schema(schema)
        .build();
    catalog.create_table(ns, creation).await?;
    catalog
        .load_table(&TableIdent::new(ns.clone(), name.into()))
        .await
}

fn event_schema() -> Schema {
    Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "kind", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "amount", Type::Primitive(PrimitiveType::Double)).into(),
        ])
        .build()
        .unwrap_or_else(|_| unreachable!("a fixed, valid schema"))
}

fn customer_schema() -> Schema {
    Schema::builder()
        .with_fields(vec![
            NestedField::required(1, "id", Type::Primitive(PrimitiveType::Long)).into(),
            NestedField::optional(2, "name", Type::Primitive(PrimitiveType::String)).into(),
            NestedField::optional(3, "country", Type::Primitive(PrimitiveType::String)).into(),
        ])
        .build()
        .unwrap_or_else(|_| unreachable!("a fixed, valid schema"))
}

fn batch(schema: &Schema, columns: Vec<ArrayRef>) -> iceberg::Result<RecordBatch> {
    let arrow = Arc::new(iceberg::arrow::schema_to_arrow_schema(schema)?);
    RecordBatch::try_new(arrow, columns)
        .map_err(|e| iceberg::Error::new(iceberg::ErrorKind::DataInvalid, e.to_string()))
}

fn event_batch(ids: std::ops::Range<i64>) -> iceberg::Result<RecordBatch> {
    let kinds = ["click", "view", "purchase"];
    #[expect(clippy::cast_precision_loss, reason = "small sample values")]
    let amounts: Vec<f64> = ids.clone().map(|i| i as f64 * 1.25).collect();
    batch(
        &event_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.map(|i| kinds[usize::try_from(i).unwrap_or(0) % 3]),
            )),
            Arc::new(Float64Array::from(amounts)),
        ],
    )
}

fn customer_batch(rows: &[(i64, &str, &str)]) -> iceberg::Result<RecordBatch> {
    batch(
        &customer_schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
}

/// Writes `batch` as one Parquet data file and commits it as a fast append.
async fn append(catalog: &dyn Catalog, table: Table, batch: RecordBatch) -> iceberg::Result<Table> {
    let parquet = ParquetWriterBuilder::new(
        WriterProperties::default(),
        table.metadata().current_schema().clone(),
    );
    let rolling = RollingFileWriterBuilder::new_with_default_file_size(
        parquet,
        table.file_io().clone(),
        DefaultLocationGenerator::new(table.metadata())?,
        DefaultFileNameGenerator::new(
            "data".into(),
            Some(uuid::Uuid::new_v4().to_string()),
            DataFileFormat::Parquet,
        ),
    );
    let mut writer = DataFileWriterBuilder::new(rolling).build(None).await?;
    writer.write(batch).await?;
    let files = writer.close().await?;
    let tx = Transaction::new(&table);
    let tx = tx.fast_append().add_data_files(files).apply(tx)?;
    tx.commit(catalog).await
}
