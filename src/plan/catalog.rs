//! The catalogs of a plan: one config struct per catalog type, secrets kept in [`Secret`].
//!
//! Each catalog module opens its own config (`sql::open(name, &SqlConfig, ..)`), so no code
//! matches a [`CatalogKind`] it does not expect, and every `Debug` is derived: what may hold a
//! credential (tokens, keys, header and property values) prints as `<redacted>`.

use std::collections::BTreeMap;

pub use crate::secret::Secret;

/// Extra catalog and `FileIO` properties: keys are printed, values never (they may hold keys).
pub type Properties = BTreeMap<String, Secret>;

/// A catalog declared in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogSpec {
    /// The plan's name for it.
    pub name: String,
    /// How to reach it.
    pub kind: CatalogKind,
}

/// Catalog connection settings, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum CatalogKind {
    /// A SQL catalog (`SQLite`, `PostgreSQL`).
    Sql(SqlConfig),
    /// An Iceberg REST catalog.
    Rest(RestConfig),
    /// AWS Glue.
    Glue(GlueConfig),
    /// Hive Metastore.
    Hms(HmsConfig),
}

/// A SQL catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlConfig {
    /// Database URI, absolute; its password is registered for redaction.
    pub uri: String,
    /// Warehouse location, absolute.
    pub warehouse: Option<String>,
    /// Name inside the SQL database.
    pub catalog_name: String,
    /// Extra catalog and `FileIO` properties.
    pub properties: Properties,
    /// S3 settings of the warehouse.
    pub s3: Option<CatalogS3>,
}

/// An Iceberg REST catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct RestConfig {
    /// Base URI.
    pub uri: String,
    /// Warehouse location or name.
    pub warehouse: Option<String>,
    /// Route prefix.
    pub prefix: Option<String>,
    /// Authentication.
    pub auth: RestAuth,
    /// Extra HTTP headers.
    pub headers: BTreeMap<String, Secret>,
    /// Extra catalog and `FileIO` properties.
    pub properties: Properties,
    /// S3 settings of the warehouse.
    pub s3: Option<CatalogS3>,
}

/// AWS Glue.
#[derive(Debug, Clone, PartialEq)]
pub struct GlueConfig {
    /// Warehouse location (`s3://`).
    pub warehouse: String,
    /// Region.
    pub region: Option<String>,
    /// Glue endpoint override.
    pub endpoint: Option<String>,
    /// Catalog (account) id.
    pub catalog_id: Option<String>,
    /// AWS profile.
    pub profile: Option<String>,
    /// Static credentials.
    pub credentials: Option<AwsCredentials>,
    /// Extra catalog and `FileIO` properties.
    pub properties: Properties,
    /// S3 settings of the warehouse.
    pub s3: Option<CatalogS3>,
}

/// A Hive Metastore.
#[derive(Debug, Clone, PartialEq)]
pub struct HmsConfig {
    /// Thrift address, `host:port`.
    pub address: String,
    /// Warehouse location, absolute.
    pub warehouse: String,
    /// Framed Thrift transport instead of buffered.
    pub framed: bool,
    /// Extra catalog and `FileIO` properties.
    pub properties: Properties,
    /// S3 settings of the warehouse.
    pub s3: Option<CatalogS3>,
}

impl CatalogKind {
    /// The plan's `type` of this catalog.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Sql(_) => "sql",
            Self::Rest(_) => "rest",
            Self::Glue(_) => "glue",
            Self::Hms(_) => "hms",
        }
    }

    /// The warehouse when it is a location (a REST warehouse may be a mere name).
    pub fn warehouse_location(&self) -> Option<&str> {
        match self {
            Self::Sql(c) => c.warehouse.as_deref(),
            Self::Rest(c) => c.warehouse.as_deref().filter(|w| w.contains(":/")),
            Self::Glue(c) => Some(&c.warehouse),
            Self::Hms(c) => Some(&c.warehouse),
        }
    }

    /// Whether namespaces are single-level (Glue databases, Hive databases).
    pub fn single_level_namespaces(&self) -> bool {
        matches!(self, Self::Glue(_) | Self::Hms(_))
    }

    /// Where the catalog is reached, for messages: its URI, endpoint or address.
    pub fn address(&self) -> &str {
        match self {
            Self::Sql(c) => &c.uri,
            Self::Rest(c) => &c.uri,
            Self::Glue(c) => c.endpoint.as_deref().unwrap_or("AWS"),
            Self::Hms(c) => &c.address,
        }
    }

    /// The extra properties and the warehouse's S3 settings, which every type has.
    pub fn properties_and_s3(&self) -> (&Properties, Option<&CatalogS3>) {
        match self {
            Self::Sql(c) => (&c.properties, c.s3.as_ref()),
            Self::Rest(c) => (&c.properties, c.s3.as_ref()),
            Self::Glue(c) => (&c.properties, c.s3.as_ref()),
            Self::Hms(c) => (&c.properties, c.s3.as_ref()),
        }
    }
}

/// How bcn authenticates to a REST catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestAuth {
    /// No authentication.
    None,
    /// A bearer token.
    Token(Secret),
    /// OAuth 2 client credentials.
    OAuth2 {
        /// `client_id:client_secret`.
        credential: Secret,
        /// Token endpoint, when not the catalog's.
        server_uri: Option<String>,
        /// Scope, when not `catalog`.
        scope: Option<String>,
    },
}

/// Static AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsCredentials {
    /// Access key id.
    pub access_key_id: Secret,
    /// Secret access key.
    pub secret_access_key: Secret,
    /// Session token.
    pub session_token: Option<Secret>,
}

/// S3 settings of a catalog's warehouse, references resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogS3 {
    /// Endpoint URL.
    pub endpoint: Option<String>,
    /// Region.
    pub region: Option<String>,
    /// Path-style addressing.
    pub path_style: Option<bool>,
    /// Static credentials.
    pub credentials: Option<AwsCredentials>,
}

/// `properties` as the plain map a catalog builder takes.
pub fn exposed(properties: &Properties) -> std::collections::HashMap<String, String> {
    properties
        .iter()
        .map(|(k, v)| (k.clone(), v.expose().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_no_credential_header_or_property_value() {
        let kind = CatalogKind::Rest(RestConfig {
            uri: "http://127.0.0.1:8181".into(),
            warehouse: Some("lake".into()),
            prefix: None,
            auth: RestAuth::OAuth2 {
                credential: "id:hunter2-credential".into(),
                server_uri: None,
                scope: None,
            },
            headers: BTreeMap::from([("X-Api-Key".into(), "hunter2-header".into())]),
            properties: BTreeMap::from([(
                "s3.secret-access-key".into(),
                "hunter2-property".into(),
            )]),
            s3: Some(CatalogS3 {
                credentials: Some(AwsCredentials {
                    access_key_id: "AKIAHUNTER2".into(),
                    secret_access_key: "hunter2-s3".into(),
                    session_token: Some("hunter2-token".into()),
                }),
                ..CatalogS3::default()
            }),
        });
        let printed = format!("{kind:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("X-Api-Key"), "keys are shown: {printed}");
        assert!(printed.contains("http://127.0.0.1:8181"), "{printed}");
    }
}
