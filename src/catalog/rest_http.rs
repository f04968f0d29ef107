//! The REST catalog endpoints iceberg-catalog-rest does not offer: views, and the server's
//! default location for a new table (a staged create, which commits nothing).
//!
//! Requests carry what the plan gives the catalog: the prefix (or the one the server's
//! `/v1/config` sets), the bearer token (given, or fetched with the `OAuth2` client credentials)
//! and the extra headers.

use std::collections::BTreeMap;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value as JsonValue, json};
use tokio::sync::OnceCell;

use crate::plan::{RestAuth, RestConfig, Secret};

/// How long one request may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_mins(1);

/// A REST catalog reached over plain HTTP requests.
pub struct RestHttp {
    client: reqwest::Client,
    uri: String,
    warehouse: Option<String>,
    prefix: Option<String>,
    auth: RestAuth,
    headers: BTreeMap<String, Secret>,
    /// Resolved on first use: the routes' base and the request headers.
    session: OnceCell<Session>,
}

struct Session {
    /// `<uri>/v1/` or `<uri>/v1/<prefix>/`.
    base: String,
    headers: HeaderMap,
    /// Endpoints the server advertises; empty when it does not say.
    endpoints: Vec<String>,
    /// The warehouse the server's configuration names, when it is a location.
    warehouse: Option<String>,
}

impl std::fmt::Debug for RestHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestHttp")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

/// One view as the server returns it.
#[derive(Debug, Clone)]
pub struct LoadedView {
    /// Where its current metadata file is.
    pub metadata_location: String,
    /// The metadata itself.
    pub metadata: JsonValue,
}

impl RestHttp {
    /// A client for the REST catalog `config`; nothing is sent yet.
    pub fn new(config: &RestConfig) -> Option<Self> {
        let RestConfig {
            uri,
            warehouse,
            prefix,
            auth,
            headers,
            ..
        } = config;
        Some(Self {
            client: reqwest::Client::builder().timeout(TIMEOUT).build().ok()?,
            uri: uri.trim_end_matches('/').to_owned(),
            warehouse: warehouse.clone(),
            prefix: prefix.clone(),
            auth: auth.clone(),
            headers: headers.clone(),
            session: OnceCell::new(),
        })
    }

    async fn session(&self) -> Result<&Session, String> {
        self.session.get_or_try_init(|| self.connect()).await
    }

    async fn connect(&self) -> Result<Session, String> {
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("header name `{name}` is not valid"))?;
            let mut value = HeaderValue::try_from(value.expose())
                .map_err(|_| format!("the value of header `{name}` is not valid"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let token = match &self.auth {
            RestAuth::None => None,
            RestAuth::Token(token) => Some(token.expose().to_owned()),
            RestAuth::OAuth2 {
                credential,
                server_uri,
                scope,
            } => Some(
                self.oauth_token(
                    credential.expose(),
                    server_uri.as_deref(),
                    scope.as_deref(),
                    &headers,
                )
                .await?,
            ),
        };
        if let Some(token) = token {
            let mut value = HeaderValue::try_from(format!("Bearer {token}"))
                .map_err(|_| "the catalog token is not a valid header value".to_owned())?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut request = self
            .client
            .get(format!("{}/v1/config", self.uri))
            .headers(headers.clone());
        if let Some(w) = &self.warehouse {
            request = request.query(&[("warehouse", w)]);
        }
        let config: JsonValue = send(request).await?.unwrap_or_default();
        let prefix = config
            .pointer("/overrides/prefix")
            .and_then(JsonValue::as_str)
            .map(str::to_owned)
            .or_else(|| self.prefix.clone())
            .filter(|p| !p.is_empty());
        let endpoints = config
            .get("endpoints")
            .and_then(JsonValue::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(JsonValue::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let warehouse = ["/overrides/warehouse", "/defaults/warehouse"]
            .iter()
            .find_map(|p| config.pointer(p).and_then(JsonValue::as_str))
            .filter(|w| w.contains(":/"))
            .map(|w| w.trim_end_matches('/').to_owned());
        Ok(Session {
            warehouse,
            base: match prefix {
                Some(p) => format!("{}/v1/{}/", self.uri, p.trim_matches('/')),
                None => format!("{}/v1/", self.uri),
            },
            headers,
            endpoints,
        })
    }

    async fn oauth_token(
        &self,
        credential: &str,
        server_uri: Option<&str>,
        scope: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<String, String> {
        let (id, secret) = credential.split_once(':').unwrap_or(("", credential));
        let url = server_uri.map_or_else(|| format!("{}/v1/oauth/tokens", self.uri), str::to_owned);
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_secret", secret),
            ("scope", scope.unwrap_or("catalog")),
        ];
        if !id.is_empty() {
            form.push(("client_id", id));
        }
        let answer: Option<JsonValue> =
            send(self.client.post(url).headers(headers.clone()).form(&form)).await?;
        answer
            .as_ref()
            .and_then(|a| a.get("access_token"))
            .and_then(JsonValue::as_str)
            .map(str::to_owned)
            .ok_or_else(|| "the OAuth2 token endpoint answered without an access_token".into())
    }

    async fn call(
        &self,
        method: Method,
        route: &str,
        body: Option<&JsonValue>,
    ) -> Result<Option<JsonValue>, String> {
        let session = self.session().await?;
        let mut request = self
            .client
            .request(method, format!("{}{route}", session.base))
            .headers(session.headers.clone());
        if let Some(body) = body {
            request = request.json(body);
        }
        send(request).await
    }

    /// Whether the server advertises `endpoint` (`"POST /v1/{prefix}/..."`); servers that
    /// advertise nothing are assumed to have it.
    async fn offers(&self, endpoint: &str) -> Result<bool, String> {
        let session = self.session().await?;
        Ok(session.endpoints.is_empty() || session.endpoints.iter().any(|e| e == endpoint))
    }

    /// The warehouse location the server's configuration gives clients, if any.
    pub async fn warehouse_location(&self) -> Result<Option<String>, String> {
        Ok(self.session().await?.warehouse.clone())
    }

    /// Whether the server has the view endpoints at all.
    pub async fn has_views(&self) -> Result<bool, String> {
        self.offers("GET /v1/{prefix}/namespaces/{namespace}/views")
            .await
    }

    /// The location the server gives a new table `name` in `namespace`, from a staged create
    /// (which commits nothing); `None` when the server cannot stage.
    pub async fn default_table_location(
        &self,
        namespace: &[String],
        name: &str,
    ) -> Result<Option<String>, String> {
        let body = json!({
            "name": name,
            "schema": {"type": "struct", "schema-id": 0, "fields": []},
            "stage-create": true,
        });
        let answer = self
            .call(
                Method::POST,
                &format!("namespaces/{}/tables", ns_path(namespace)),
                Some(&body),
            )
            .await?;
        Ok(answer
            .as_ref()
            .and_then(|a| a.pointer("/metadata/location"))
            .and_then(JsonValue::as_str)
            .map(|l| l.trim_end_matches('/').to_owned()))
    }

    /// The names of the views of `namespace`.
    pub async fn list_views(&self, namespace: &[String]) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut route = format!("namespaces/{}/views", ns_path(namespace));
            if let Some(token) = &page {
                route.push_str("?pageToken=");
                route.push_str(&seg(token));
            }
            let answer = self
                .call(Method::GET, &route, None)
                .await?
                .unwrap_or_default();
            if let Some(ids) = answer.get("identifiers").and_then(JsonValue::as_array) {
                names.extend(
                    ids.iter()
                        .filter_map(|id| id.get("name").and_then(JsonValue::as_str))
                        .map(str::to_owned),
                );
            }
            page = answer
                .get("next-page-token")
                .and_then(JsonValue::as_str)
                .filter(|t| !t.is_empty())
                .map(str::to_owned);
            if page.is_none() {
                break;
            }
        }
        names.sort();
        Ok(names)
    }

    /// Loads the view `name` of `namespace`; `None` when there is no such view.
    pub async fn load_view(
        &self,
        namespace: &[String],
        name: &str,
    ) -> Result<Option<LoadedView>, String> {
        let route = format!("namespaces/{}/views/{}", ns_path(namespace), seg(name));
        match self.call(Method::GET, &route, None).await {
            Ok(Some(answer)) => {
                let location = answer
                    .get("metadata-location")
                    .and_then(JsonValue::as_str)
                    .ok_or("the server's answer has no metadata-location")?
                    .to_owned();
                let metadata = answer.get("metadata").cloned().unwrap_or_default();
                Ok(Some(LoadedView {
                    metadata_location: location,
                    metadata,
                }))
            }
            Ok(None) => Err("the server's answer has no body".into()),
            Err(e) if e.starts_with("404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Registers the view metadata file at `metadata_location` as `name`: through
    /// `register-view` when the server offers it, else by creating the view from the metadata.
    pub async fn register_view(
        &self,
        namespace: &[String],
        name: &str,
        metadata_location: &str,
        metadata: &JsonValue,
    ) -> Result<(), String> {
        let ns = ns_path(namespace);
        if self
            .offers("POST /v1/{prefix}/namespaces/{namespace}/register-view")
            .await?
        {
            let body = json!({"name": name, "metadata-location": metadata_location});
            let registered = self
                .call(
                    Method::POST,
                    &format!("namespaces/{ns}/register-view"),
                    Some(&body),
                )
                .await;
            match registered {
                Ok(_) => return Ok(()),
                // Advertised by servers that did not say: fall back to a create.
                Err(e)
                    if !(e.starts_with("404") || e.starts_with("405") || e.starts_with("501")) =>
                {
                    return Err(e);
                }
                Err(_) => {}
            }
        }
        let body = create_view_body(name, metadata)?;
        self.call(Method::POST, &format!("namespaces/{ns}/views"), Some(&body))
            .await
            .map(drop)
    }

    /// Drops the view `name` (its metadata files stay).
    pub async fn drop_view(&self, namespace: &[String], name: &str) -> Result<(), String> {
        let route = format!("namespaces/{}/views/{}", ns_path(namespace), seg(name));
        self.call(Method::DELETE, &route, None).await.map(drop)
    }
}

/// The `CreateViewRequest` that makes a view equal to `metadata` (its current version).
fn create_view_body(name: &str, metadata: &JsonValue) -> Result<JsonValue, String> {
    let current = metadata
        .get("current-version-id")
        .and_then(JsonValue::as_i64)
        .ok_or("the view metadata has no current-version-id")?;
    let version = metadata
        .get("versions")
        .and_then(JsonValue::as_array)
        .and_then(|v| {
            v.iter()
                .find(|v| v.get("version-id").and_then(JsonValue::as_i64) == Some(current))
        })
        .ok_or("the view metadata lacks its current version")?;
    let schema_id = version.get("schema-id").and_then(JsonValue::as_i64);
    let schema = metadata
        .get("schemas")
        .and_then(JsonValue::as_array)
        .and_then(|s| {
            s.iter()
                .find(|s| s.get("schema-id").and_then(JsonValue::as_i64) == schema_id)
        })
        .ok_or("the view metadata lacks the schema of its current version")?;
    Ok(json!({
        "name": name,
        "location": metadata.get("location"),
        "schema": schema,
        "view-version": version,
        "properties": metadata.get("properties").cloned().unwrap_or_else(|| json!({})),
    }))
}

/// Sends `request`; the JSON body of a success (`None` when empty), or the status and the
/// server's message.
async fn send(request: reqwest::RequestBuilder) -> Result<Option<JsonValue>, String> {
    let response = request.send().await.map_err(|e| {
        // reqwest's errors name the URL only; say what kind of failure it was.
        if e.is_timeout() {
            "no answer in time".to_owned()
        } else if e.is_connect() {
            "cannot connect".to_owned()
        } else {
            format!("request failed: {}", crate::error::error_chain(&e))
        }
    })?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?;
    if status.is_success() {
        if body.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        return serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("the answer is not JSON: {e}"));
    }
    let message = serde_json::from_slice::<JsonValue>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .and_then(JsonValue::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
    Err(format!("{} {message}", status.as_u16()))
}

/// A namespace in a route: levels joined by the unit separator, percent-encoded.
fn ns_path(namespace: &[String]) -> String {
    seg(&namespace.join("\u{1f}"))
}

/// Everything but the unreserved characters of RFC 3986 is percent-encoded in a route.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_names_are_encoded_for_routes() {
        assert_eq!(ns_path(&["a".into(), "b c".into()]), "a%1Fb%20c");
        assert_eq!(seg("v/1"), "v%2F1");
    }

    #[test]
    fn a_create_request_carries_the_current_version_and_its_schema() {
        let metadata = json!({
            "view-uuid": "u", "format-version": 1, "location": "file:///w/db/v",
            "current-version-id": 2,
            "schemas": [{"schema-id": 0, "type": "struct", "fields": []},
                        {"schema-id": 1, "type": "struct", "fields": []}],
            "versions": [{"version-id": 1, "schema-id": 0}, {"version-id": 2, "schema-id": 1}],
            "properties": {"k": "v"}
        });
        let body = create_view_body("v", &metadata).unwrap();
        assert_eq!(body["view-version"]["version-id"], 2);
        assert_eq!(body["schema"]["schema-id"], 1);
        assert_eq!(body["location"], "file:///w/db/v");
        let broken = json!({"current-version-id": 3, "versions": []});
        assert!(create_view_body("v", &broken).is_err());
    }
}
