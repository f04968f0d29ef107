//! Rewriting of absolute paths inside the files of an Iceberg table, for a restore to a
//! different location.
//!
//! Everything here works in memory: bytes in, bytes out. Four kinds of file hold absolute
//! paths: the table metadata JSON, manifest lists (Avro), manifests (Avro), position delete
//! files (Parquet) and deletion vectors (Puffin, see [`puffin`]). Data files and statistics
//! (Puffin) files are copied verbatim.
//!
//! Avro files are rewritten without decoding their records (see [`avro`]): the header of the
//! input (writer schema JSON, codec, user metadata and sync marker) is copied byte for byte,
//! and in the data blocks only the bytes of the fields that change are replaced, so fields
//! this code does not know about survive exactly. Only the *physical* encoding of the writer
//! schema drives the walk: apache-avro 0.21 decodes a `fixed(16)` with logical type `uuid` as
//! if it were a length-prefixed string, which would corrupt manifests of tables partitioned by
//! a `uuid` column.

mod avro;
mod deletes;
mod manifest;
mod metadata;
mod paths;
pub(crate) mod puffin;
#[cfg(test)]
mod tests;

use parquet::errors::ParquetError;

pub(crate) use deletes::rewrite_position_delete_file;
pub(crate) use manifest::{live_manifest_files, rewrite_manifest, rewrite_manifest_list};
pub(crate) use metadata::{path_properties, rewrite_table_metadata};
pub(crate) use paths::{PathRewriter, RootMapping};
pub(crate) use puffin::{is_puffin, rewrite_deletion_vectors};

/// Field id of the `file_path` column of position delete files, also the key of its bounds
/// in manifests.
pub(crate) const DELETE_FILE_PATH_FIELD_ID: i32 = 2_147_483_546;

/// An error while rewriting the paths of a table file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum RewriteError {
    /// A path does not lie under the source table location.
    #[error("path {path} is outside the table location {location}")]
    OutsideLocation {
        /// The path found in the file.
        path: String,
        /// The source table location.
        location: String,
    },
    /// The table metadata is not valid JSON, or could not be serialized again.
    #[error("parsing table metadata json: {0}")]
    MetadataJson(#[from] serde_json::Error),
    /// A field of the table metadata does not have the expected type.
    #[error("table metadata field {field} {problem}")]
    MetadataField {
        /// Where the field is, e.g. `snapshots[2].manifest-list`.
        field: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An Avro file could not be decoded.
    #[error("reading avro {file}: {source}")]
    AvroRead {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// The decoding error.
        #[source]
        source: apache_avro::Error,
    },
    /// The data blocks of an Avro file are malformed.
    #[error("reading avro {file}: {problem}")]
    AvroData {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// What is wrong, and where.
        problem: String,
    },
    /// The header of an Avro file is malformed or uses an unsupported codec.
    #[error("reading avro {file} header: {problem}")]
    AvroHeader {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// An Avro record lacks a field, or the field does not have the expected type.
    #[error("avro {file} record {index}: field {field} {problem}")]
    AvroField {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// Index of the record in the file, from 0.
        index: usize,
        /// Name of the field, e.g. `data_file.file_path`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An Avro file could not be encoded again.
    #[error("writing avro {file}: {source}")]
    AvroWrite {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// The encoding error.
        #[source]
        source: apache_avro::Error,
    },
    /// An Avro block could not be compressed.
    #[error("writing avro {file}: {problem}")]
    AvroEncode {
        /// `manifest` or `manifest list`.
        file: &'static str,
        /// What failed.
        problem: String,
    },
    /// A position delete file could not be read.
    #[error("reading parquet position delete file: {0}")]
    ParquetRead(#[source] ParquetError),
    /// A position delete file could not be written.
    #[error("writing parquet position delete file: {0}")]
    ParquetWrite(#[source] ParquetError),
    /// A position delete file has no usable `file_path` column.
    #[error("parquet position delete file: column file_path {problem}")]
    DeleteFilePathColumn {
        /// What is wrong with it.
        problem: String,
    },
    /// A deletion-vector (Puffin) file is malformed or cannot be rewritten.
    #[error("puffin deletion vector file: {problem}")]
    Puffin {
        /// What is wrong with it.
        problem: String,
    },
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------
