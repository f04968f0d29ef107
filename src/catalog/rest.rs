//! Iceberg REST catalogs through iceberg-catalog-rest.
//!
//! Plain `http://` only: the crate's reqwest is built without TLS here, and turning TLS on
//! needs a process-wide rustls crypto provider (see the README, "Catalogs").

use std::collections::HashMap;
use std::sync::Arc;

use iceberg::CatalogBuilder;
use iceberg::io::StorageFactory;
use iceberg_catalog_rest::RestCatalogBuilder;

use super::{CatalogError, OpenCatalog, base_props, file_io, rest_http, unreachable};
use crate::plan::{CatalogSpec, RestAuth, RestConfig};

pub(super) async fn open(
    spec: &CatalogSpec,
    config: &RestConfig,
    factory: Arc<dyn StorageFactory>,
) -> Result<OpenCatalog, CatalogError> {
    let props = props(config);
    let catalog = RestCatalogBuilder::default()
        .with_storage_factory(factory)
        .load(spec.name.clone(), props.clone())
        .await
        .map_err(|e| unreachable(spec, super::chain(&e)))?;
    let mut opened = OpenCatalog::new(spec, Arc::new(catalog), file_io(&props));
    opened.rest = rest_http::RestHttp::new(config).map(Arc::new);
    Ok(opened)
}

/// The builder's properties: passthrough first, then the `s3` block, then the typed keys.
fn props(config: &RestConfig) -> HashMap<String, String> {
    let RestConfig {
        uri,
        warehouse,
        prefix,
        auth,
        headers,
        properties,
        s3,
    } = config;
    let mut props = base_props(properties, s3.as_ref());
    props.insert("uri".into(), uri.clone());
    if let Some(w) = warehouse {
        props.insert("warehouse".into(), w.clone());
    }
    if let Some(p) = prefix {
        props.insert("prefix".into(), p.clone());
    }
    match auth {
        RestAuth::None => {}
        RestAuth::Token(token) => {
            props.insert("token".into(), token.expose().to_owned());
        }
        RestAuth::OAuth2 {
            credential,
            server_uri,
            scope,
        } => {
            props.insert("credential".into(), credential.expose().to_owned());
            if let Some(u) = server_uri {
                props.insert("oauth2-server-uri".into(), u.clone());
            }
            if let Some(s) = scope {
                props.insert("scope".into(), s.clone());
            }
        }
    }
    for (name, value) in headers {
        props.insert(format!("header.{name}"), value.expose().to_owned());
    }
    props
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn plan_keys_become_rest_properties() {
        let kind = RestConfig {
            uri: "http://127.0.0.1:8181".into(),
            warehouse: Some("lake".into()),
            prefix: Some("ws".into()),
            auth: RestAuth::OAuth2 {
                credential: "id:secret".into(),
                server_uri: Some("http://idp/token".into()),
                scope: None,
            },
            headers: BTreeMap::from([("X-Tenant".into(), "a".into())]),
            properties: BTreeMap::from([("client.timeout".into(), "5".into())]),
            s3: None,
        };
        let mut got: Vec<String> = props(&kind)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                "client.timeout=5",
                "credential=id:secret",
                "header.X-Tenant=a",
                "oauth2-server-uri=http://idp/token",
                "prefix=ws",
                "uri=http://127.0.0.1:8181",
                "warehouse=lake",
            ]
        );
    }
}
