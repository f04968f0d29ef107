//! Catalogs: each type's keys, URLs, credentials and reserved properties.

use std::collections::BTreeMap;
use std::path::Path;

use crate::plan::raw::{RawCatalog, RawCatalogS3, RawThriftTransport};
use crate::plan::{
    AwsCredentials, CatalogKind, CatalogS3, CatalogSpec, Diagnostic, GlueConfig, HmsConfig,
    RestAuth, RestConfig, Secret, SqlConfig,
};

pub(super) fn catalog(
    path: &str,
    name: &str,
    raw: RawCatalog,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<CatalogSpec> {
    let before = diags.len();
    let mut check = Checker { path, base, diags };
    let kind = match raw {
        RawCatalog::Sql {
            uri,
            warehouse,
            catalog_name,
            properties,
            s3,
        } => {
            let uri = resolve_sql_uri(&uri, base)
                .map_err(|message| {
                    check.report(
                        "uri",
                        message,
                        "write `sqlite:///abs/path/catalog.db`, `sqlite://relative/path.db` or `postgres://user@host/db`",
                    );
                })
                .ok();
            let warehouse = warehouse.and_then(|w| check.location("warehouse", &w));
            let s3 = check.s3(s3);
            check.reserved(&properties, &["uri", "warehouse"]);
            CatalogKind::Sql(SqlConfig {
                uri: uri.unwrap_or_default(),
                warehouse,
                catalog_name: catalog_name.unwrap_or_else(|| name.to_owned()),
                properties,
                s3,
            })
        }
        RawCatalog::Rest {
            uri,
            warehouse,
            prefix,
            token,
            credential,
            oauth2_server_uri,
            scope,
            headers,
            properties,
            s3,
        } => {
            check.http_url(
                "uri",
                &uri,
                "write the catalog's base URL, e.g. `http://127.0.0.1:8181`",
            );
            if let Some(w) = &warehouse
                && w.contains("://")
            {
                check.location("warehouse", w);
            }
            let oauth2_keys = [
                ("oauth2_server_uri", oauth2_server_uri.is_some()),
                ("scope", scope.is_some()),
            ];
            let has_credential = credential.is_some();
            let auth = match (token, credential) {
                (Some(_), Some(_)) => {
                    check.report(
                        "token",
                        "`token` and `credential` are both set",
                        "keep one: a bearer token, or OAuth2 client credentials",
                    );
                    RestAuth::None
                }
                (Some(token), None) => RestAuth::Token(token),
                (None, Some(credential)) => RestAuth::OAuth2 {
                    credential,
                    server_uri: oauth2_server_uri.inspect(|u| {
                        check.http_url("oauth2_server_uri", u, "write the token endpoint URL");
                    }),
                    scope,
                },
                (None, None) => RestAuth::None,
            };
            if !has_credential {
                for (key, set) in oauth2_keys {
                    if set {
                        check.report(
                            key,
                            format!("`{key}` without `credential`"),
                            "add `credential: ${CLIENT_ID_AND_SECRET}` or remove the key",
                        );
                    }
                }
            }
            for header in headers.keys() {
                if header.is_empty() || !header.bytes().all(is_header_char) {
                    check.report(
                        &format!("headers.{header}"),
                        format!("invalid HTTP header name `{header}`"),
                        "use letters, digits and `-`",
                    );
                }
            }
            let prefix = prefix
                .map(|p| p.trim_matches('/').to_owned())
                .filter(|p| !p.is_empty());
            let s3 = check.s3(s3);
            check.reserved(
                &properties,
                &[
                    "uri",
                    "warehouse",
                    "prefix",
                    "token",
                    "credential",
                    "oauth2-server-uri",
                    "scope",
                ],
            );
            CatalogKind::Rest(RestConfig {
                uri: uri.trim().trim_end_matches('/').to_owned(),
                warehouse,
                prefix,
                auth,
                headers,
                properties,
                s3,
            })
        }
        RawCatalog::Glue {
            warehouse,
            region,
            endpoint,
            catalog_id,
            profile,
            access_key_id,
            secret_access_key,
            session_token,
            properties,
            s3,
        } => {
            let warehouse = check.location("warehouse", &warehouse).inspect(|w| {
                if !(w.starts_with("s3://") || w.starts_with("s3a://") || w.contains("${")) {
                    check.report(
                        "warehouse",
                        format!("a Glue warehouse must be on S3, not `{w}`"),
                        "write `s3://bucket/prefix`",
                    );
                }
            });
            if let Some(e) = &endpoint {
                check.http_url(
                    "endpoint",
                    e,
                    "write the Glue endpoint URL, e.g. `http://127.0.0.1:5000`",
                );
            }
            let credentials =
                check.credentials("", access_key_id, secret_access_key, session_token);
            if profile.is_some() && credentials.is_some() {
                check.report(
                    "profile",
                    "`profile` and `access_key_id` are both set",
                    "keep one: a profile, or static keys",
                );
            }
            let s3 = check.s3(s3);
            check.reserved(
                &properties,
                &[
                    "uri",
                    "warehouse",
                    "catalog_id",
                    "region_name",
                    "profile_name",
                    "aws_access_key_id",
                    "aws_secret_access_key",
                    "aws_session_token",
                ],
            );
            CatalogKind::Glue(GlueConfig {
                warehouse: warehouse.unwrap_or_default(),
                region,
                endpoint: endpoint.map(|e| e.trim().trim_end_matches('/').to_owned()),
                catalog_id,
                profile,
                credentials,
                properties,
                s3,
            })
        }
        RawCatalog::Hms {
            uri,
            warehouse,
            thrift_transport,
            properties,
            s3,
        } => {
            let address = match hms_address(&uri) {
                Ok(a) => a,
                Err(message) => {
                    check.report("uri", message, "write `thrift://host:9083` or `host:9083`");
                    String::new()
                }
            };
            let warehouse = check.location("warehouse", &warehouse);
            let s3 = check.s3(s3);
            check.reserved(&properties, &["uri", "warehouse", "thrift_transport"]);
            CatalogKind::Hms(HmsConfig {
                address,
                warehouse: warehouse.unwrap_or_default(),
                framed: thrift_transport == Some(RawThriftTransport::Framed),
                properties,
                s3,
            })
        }
    };
    (diags.len() == before).then(|| CatalogSpec {
        name: name.to_owned(),
        kind,
    })
}

/// Collects the diagnostics of one catalog, keyed below its YAML path.
struct Checker<'a> {
    path: &'a str,
    base: &'a Path,
    diags: &'a mut Vec<Diagnostic>,
}

impl Checker<'_> {
    fn report(&mut self, key: &str, message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::new(
            format!("{}.{key}", self.path),
            message,
            hint,
        ));
    }

    fn location(&mut self, key: &str, value: &str) -> Option<String> {
        crate::location::Location::parse(value, self.base)
            .map(|location| location.as_str().to_owned())
            .map_err(|e| {
                self.report(
                    key,
                    e.to_string(),
                    "use a path, `file:///...` or `s3://bucket/prefix`",
                );
            })
            .ok()
    }

    /// An `http(s)://` URL; unresolved `${...}` references (`bcn validate`) are accepted.
    fn http_url(&mut self, key: &str, value: &str, hint: &str) {
        let value = value.trim();
        if value.contains("${") {
            return;
        }
        let ok = url::Url::parse(value)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !ok {
            self.report(key, format!("`{value}` is not an http(s) URL"), hint);
        }
    }

    fn credentials(
        &mut self,
        prefix: &str,
        access_key_id: Option<Secret>,
        secret_access_key: Option<Secret>,
        session_token: Option<Secret>,
    ) -> Option<AwsCredentials> {
        match (access_key_id, secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token,
            }),
            (None, None) => {
                if session_token.is_some() {
                    self.report(
                        &format!("{prefix}session_token"),
                        "`session_token` without `access_key_id` and `secret_access_key`",
                        "add the keys the token belongs to, or remove it",
                    );
                }
                None
            }
            (id, _) => {
                let missing = if id.is_some() {
                    "secret_access_key"
                } else {
                    "access_key_id"
                };
                self.report(
                    &format!("{prefix}{missing}"),
                    format!("`{missing}` is missing"),
                    "give both `access_key_id` and `secret_access_key` (as `${ENV}` or `${file:/path}` references), or neither",
                );
                None
            }
        }
    }

    fn s3(&mut self, raw: Option<RawCatalogS3>) -> Option<CatalogS3> {
        let raw = raw?;
        if let Some(e) = &raw.endpoint {
            self.http_url(
                "s3.endpoint",
                e,
                "write the S3 endpoint URL, e.g. `http://127.0.0.1:9000`",
            );
        }
        let credentials = self.credentials(
            "s3.",
            raw.access_key_id,
            raw.secret_access_key,
            raw.session_token,
        );
        Some(CatalogS3 {
            endpoint: raw
                .endpoint
                .map(|e| e.trim().trim_end_matches('/').to_owned()),
            region: raw.region,
            path_style: raw.path_style,
            credentials,
        })
    }

    /// `properties` may not set what a typed key of the catalog sets.
    fn reserved(&mut self, properties: &BTreeMap<String, Secret>, keys: &[&str]) {
        for key in properties.keys() {
            let typed = keys.contains(&key.as_str()) || key.starts_with("header.");
            if typed {
                self.report(
                    &format!("properties.{key}"),
                    format!("`{key}` is set by a key of the catalog itself"),
                    "use the catalog's own key (see `bcn schema`) instead of `properties`",
                );
            }
        }
    }
}

/// Characters of an HTTP header name (RFC 9110 `tchar`).
fn is_header_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The `host:port` of a Hive Metastore URI (`thrift://host:port` or `host:port`).
fn hms_address(uri: &str) -> Result<String, String> {
    let uri = uri.trim();
    if uri.contains("${") {
        return Ok(uri.to_owned());
    }
    let rest = match uri.split_once("://") {
        Some(("thrift", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!("unsupported scheme `{scheme}` in `{uri}`"));
        }
        None => uri,
    };
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(rest.to_owned())
        }
        _ => Err(format!("`{uri}` names no host and port")),
    }
}

/// Resolves a SQL catalog URI; relative `SQLite` paths become absolute against `base`.
pub(crate) fn resolve_sql_uri(uri: &str, base: &Path) -> Result<String, String> {
    let uri = uri.trim();
    if uri.starts_with("postgres://") || uri.starts_with("postgresql://") {
        return Ok(uri.to_owned());
    }
    let Some(rest) = uri.strip_prefix("sqlite:") else {
        return Err(format!("unsupported SQL catalog URI `{uri}`"));
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (file, query) = rest
        .split_once('?')
        .map_or((rest, None), |(f, q)| (f, Some(q)));
    if file.is_empty() || file == ":memory:" {
        return Err(format!("SQLite URI `{uri}` names no database file"));
    }
    let abs = base.join(file);
    let mut out = format!("sqlite://{}", abs.display());
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}
