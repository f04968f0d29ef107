//! The plan as written in YAML. These doc comments are user documentation: they become the
//! `description` of `schema/plan.schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A bcn plan: which catalogs to read, where backups go, and how tables are categorised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "bcn plan")]
pub struct RawPlan {
    /// Plan format version. Only `1` exists; omit it or write `1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Iceberg catalogs, by the name commands and entries refer to them with.
    #[serde(default)]
    pub catalogs: BTreeMap<String, RawCatalog>,
    /// Backup repositories, by name.
    #[serde(default)]
    pub repositories: BTreeMap<String, RawRepository>,
    /// How tables are sorted into categories by `database.table` glob patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<RawCategories>,
}

/// An Iceberg catalog connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum RawCatalog {
    /// A SQL catalog (the JDBC catalog schema shared with Java and pyiceberg), on `SQLite` or
    /// `PostgreSQL`.
    Sql {
        /// Database URI: `sqlite:///abs/path/catalog.db`, `sqlite://relative/to/plan.db`, or
        /// `postgres://user@host/db`. Relative `SQLite` paths are relative to the plan file.
        uri: String,
        /// Default warehouse location for new tables: a path (relative to the plan file),
        /// `file:///...` or `s3://bucket/prefix`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warehouse: Option<String>,
        /// Name of the catalog inside the SQL database (the `catalog_name` column), when it
        /// differs from the plan's name for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalog_name: Option<String>,
        /// Extra properties passed to the catalog and its `FileIO` (for example `s3.endpoint`,
        /// `s3.region`, `s3.path-style-access`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, String>,
    },
}

/// A backup repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRepository {
    /// Where it lives: a path (relative to the plan file), `file:///...` or `s3://bucket/prefix`.
    pub location: String,
    /// Free text shown by `bcn describe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Table categories. Patterns are globs on `database.table` (`*` matches any characters, `.`
/// included). A table matched by several categories takes the first of: `ignore`,
/// `ephemeral`, `local`, `global`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCategories {
    /// Category of tables no pattern matches. Default: `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<RawCategory>,
    /// Structure and data; configuration and other non-sensitive tables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub global: Vec<String>,
    /// Structure and data; sensitive user data, typically sent to its own repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<String>,
    /// Structure only (schema, partition spec, sort order, properties); restore creates the
    /// table empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ephemeral: Vec<String>,
    /// Neither backed up nor reported as deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore: Vec<String>,
}

/// A table category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawCategory {
    /// Structure and data.
    Global,
    /// Structure and data, sensitive.
    Local,
    /// Structure only.
    Ephemeral,
    /// Not backed up.
    Ignore,
}
