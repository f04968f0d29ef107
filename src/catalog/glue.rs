//! AWS Glue through iceberg-catalog-glue.
//!
//! The crate derives the table files' S3 settings from the Glue ones when `s3.*` keys are
//! absent (keys, region, and the Glue endpoint as S3 endpoint); [`file_io_props`] applies the
//! same rule, so that restored files are written where the catalog will read them.

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg::io::StorageFactory;
use iceberg_catalog_glue::GlueCatalogBuilder;

use super::{CatalogError, OpenCatalog, base_props, file_io, unreachable};
use crate::plan::{CatalogSpec, GlueConfig, Secret};

pub(super) async fn open(
    spec: &CatalogSpec,
    config: &GlueConfig,
    factory: Arc<dyn StorageFactory>,
) -> Result<OpenCatalog, CatalogError> {
    let props = props(config);
    let catalog = GlueCatalogBuilder::default()
        .with_storage_factory(factory)
        .load(spec.name.clone(), props.clone())
        .await
        .map_err(|e| unreachable(spec, super::chain(&e)))?;
    Ok(OpenCatalog::new(
        spec,
        Arc::new(catalog),
        file_io(&file_io_props(&props)),
    ))
}

/// The builder's properties: passthrough first, then the `s3` block, then the typed keys.
fn props(config: &GlueConfig) -> HashMap<String, String> {
    let GlueConfig {
        warehouse,
        region,
        endpoint,
        catalog_id,
        profile,
        credentials,
        properties,
        s3,
    } = config;
    let mut props = base_props(properties, s3.as_ref());
    props.insert("warehouse".into(), warehouse.clone());
    let mut put = |key: &str, value: Option<&str>| {
        if let Some(v) = value {
            props.insert(key.to_owned(), v.to_owned());
        }
    };
    put("uri", endpoint.as_deref());
    put("catalog_id", catalog_id.as_deref());
    put("region_name", region.as_deref());
    put("profile_name", profile.as_deref());
    if let Some(c) = credentials {
        put("aws_access_key_id", Some(c.access_key_id.expose()));
        put("aws_secret_access_key", Some(c.secret_access_key.expose()));
        put(
            "aws_session_token",
            c.session_token.as_ref().map(Secret::expose),
        );
    }
    props
}

/// The table files' properties, as iceberg-catalog-glue derives them.
fn file_io_props(props: &HashMap<String, String>) -> HashMap<String, String> {
    let mut out = props.clone();
    for (s3_key, glue_key) in [
        ("s3.access-key-id", "aws_access_key_id"),
        ("s3.secret-access-key", "aws_secret_access_key"),
        ("s3.session-token", "aws_session_token"),
        ("s3.region", "region_name"),
        ("s3.endpoint", "uri"),
    ] {
        if !out.contains_key(s3_key)
            && let Some(v) = props.get(glue_key)
        {
            out.insert(s3_key.to_owned(), v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::plan::{AwsCredentials, CatalogS3};

    fn kind(s3: Option<CatalogS3>) -> GlueConfig {
        GlueConfig {
            warehouse: "s3://lake/wh".into(),
            region: Some("eu-west-1".into()),
            endpoint: Some("http://127.0.0.1:5000".into()),
            catalog_id: None,
            profile: None,
            credentials: Some(AwsCredentials {
                access_key_id: "id".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            }),
            properties: BTreeMap::new(),
            s3,
        }
    }

    #[test]
    fn files_go_through_the_glue_settings_unless_s3_says_otherwise() {
        let io = file_io_props(&props(&kind(None)));
        assert_eq!(io["s3.endpoint"], "http://127.0.0.1:5000");
        assert_eq!(io["s3.region"], "eu-west-1");
        assert_eq!(io["s3.access-key-id"], "id");
        let s3 = CatalogS3 {
            endpoint: Some("http://127.0.0.1:9000".into()),
            ..CatalogS3::default()
        };
        let io = file_io_props(&props(&kind(Some(s3))));
        assert_eq!(io["s3.endpoint"], "http://127.0.0.1:9000");
        assert_eq!(io["aws_access_key_id"], "id");
    }
}
