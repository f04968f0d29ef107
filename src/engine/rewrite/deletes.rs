//! Position delete files (Parquet): the `file_path` column, with the writer's settings kept.

use std::sync::Arc;

use super::{DELETE_FILE_PATH_FIELD_ID, PathRewriter, RewriteError};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, LargeStringArray, RecordBatch, StringArray, StringViewArray};
use arrow_schema::{DataType, Schema as ArrowSchema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::errors::ParquetError;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;

/// Rewrites the `file_path` column (field id 2147483546, else the column named `file_path`)
/// of a position delete Parquet file, value by value.
///
/// Every other column, the Parquet schema (with field ids), the key-value metadata and the
/// compression codec of each column are kept, and so are the row group boundaries.
///
/// # Errors
///
/// When the file cannot be read, has no string `file_path` column, or holds a path outside
/// the source location.
pub(crate) fn rewrite_position_delete_file(
    parquet: impl Into<Bytes>,
    rw: &PathRewriter,
) -> Result<Vec<u8>, RewriteError> {
    let parquet: Bytes = parquet.into();
    let reader_metadata = ArrowReaderMetadata::load(&parquet, ArrowReaderOptions::new())
        .map_err(RewriteError::ParquetRead)?;
    let schema = Arc::clone(reader_metadata.schema());
    let column = file_path_column(&schema)?;
    let metadata = Arc::clone(reader_metadata.metadata());
    let options = ArrowWriterOptions::new()
        .with_properties(writer_properties(&metadata))
        .with_skip_arrow_metadata(true)
        .with_parquet_schema(metadata.file_metadata().schema_descr().clone());
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), Arc::clone(&schema), options)
        .map_err(RewriteError::ParquetWrite)?;
    for row_group in 0..metadata.num_row_groups() {
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(
            parquet.clone(),
            reader_metadata.clone(),
        )
        .with_row_groups(vec![row_group])
        .build()
        .map_err(RewriteError::ParquetRead)?;
        for batch in reader {
            let batch = batch.map_err(|e| RewriteError::ParquetRead(e.into()))?;
            let batch = rewrite_batch(&batch, column, rw)?;
            writer.write(&batch).map_err(RewriteError::ParquetWrite)?;
        }
        writer.flush().map_err(RewriteError::ParquetWrite)?;
    }
    writer.into_inner().map_err(RewriteError::ParquetWrite)
}

/// Index of the `file_path` column: by field id, else by name.
fn file_path_column(schema: &ArrowSchema) -> Result<usize, RewriteError> {
    let id = DELETE_FILE_PATH_FIELD_ID.to_string();
    let fields = schema.fields();
    fields
        .iter()
        .position(|field| field.metadata().get("PARQUET:field_id") == Some(&id))
        .or_else(|| fields.iter().position(|field| field.name() == "file_path"))
        .ok_or_else(|| RewriteError::DeleteFilePathColumn {
            problem: "is missing (no field id 2147483546)".to_owned(),
        })
}

/// Writer properties that keep the key-value metadata and per-column compression of the input
/// and never split a row group.
fn writer_properties(metadata: &ParquetMetaData) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_key_value_metadata(metadata.file_metadata().key_value_metadata().cloned())
        .set_max_row_group_row_count(None)
        .set_max_row_group_bytes(None);
    if let Some(row_group) = metadata.row_groups().first() {
        for column in row_group.columns() {
            builder =
                builder.set_column_compression(column.column_path().clone(), column.compression());
        }
    }
    builder.build()
}

/// A copy of `batch` with column `column` rewritten.
fn rewrite_batch(
    batch: &RecordBatch,
    column: usize,
    rw: &PathRewriter,
) -> Result<RecordBatch, RewriteError> {
    let mut columns = batch.columns().to_vec();
    columns[column] = rewrite_path_array(&columns[column], rw)?;
    RecordBatch::try_new(batch.schema(), columns)
        .map_err(|e| RewriteError::ParquetWrite(ParquetError::ArrowError(e.to_string())))
}

/// Rewrites every path of a string array, keeping nulls and the array type.
fn rewrite_path_array(array: &ArrayRef, rw: &PathRewriter) -> Result<ArrayRef, RewriteError> {
    let rewrite = |path: Option<&str>| path.map(|path| rw.rewrite(path)).transpose();
    Ok(match array.data_type() {
        DataType::Utf8 => Arc::new(
            array
                .as_string::<i32>()
                .iter()
                .map(rewrite)
                .collect::<Result<StringArray, _>>()?,
        ),
        DataType::LargeUtf8 => Arc::new(
            array
                .as_string::<i64>()
                .iter()
                .map(rewrite)
                .collect::<Result<LargeStringArray, _>>()?,
        ),
        DataType::Utf8View => Arc::new(
            array
                .as_string_view()
                .iter()
                .map(rewrite)
                .collect::<Result<StringViewArray, _>>()?,
        ),
        other => {
            return Err(RewriteError::DeleteFilePathColumn {
                problem: format!("has type {other}, not a string"),
            });
        }
    })
}
