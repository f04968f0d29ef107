use super::catalog::resolve_sql_uri;
use super::*;
use crate::plan::{CatalogKind, HmsConfig, RestAuth, RestConfig};

#[test]
fn sqlite_uris_resolve_against_the_plan() {
    let base = Path::new("/plans");
    assert_eq!(
        resolve_sql_uri("sqlite://lake/c.db", base).unwrap(),
        "sqlite:///plans/lake/c.db"
    );
    assert_eq!(
        resolve_sql_uri("sqlite:///abs/c.db?mode=rwc", base).unwrap(),
        "sqlite:///abs/c.db?mode=rwc"
    );
    assert_eq!(
        resolve_sql_uri("sqlite:c.db", base).unwrap(),
        "sqlite:///plans/c.db"
    );
    assert!(resolve_sql_uri("sqlite::memory:", base).is_err());
    assert!(resolve_sql_uri("mysql://x", base).is_err());
}

#[test]
fn categories_take_the_most_specific_treatment() {
    let raw = RawCategories {
        default: None,
        global: vec!["*.*".into()],
        local: vec!["crm.*".into()],
        ephemeral: vec!["*.staging_*".into()],
        ignore: vec!["tmp.*".into()],
    };
    let mut diags = Vec::new();
    let c = categories(&raw, &mut diags);
    assert!(diags.is_empty());
    assert_eq!(c.category("tmp.x"), Category::Ignore);
    assert_eq!(c.category("crm.staging_a"), Category::Ephemeral);
    assert_eq!(c.category("crm.users"), Category::Local);
    assert_eq!(c.category("sales.orders"), Category::Global);
}

fn catalogs(yaml: &str) -> Result<BTreeMap<String, Arc<CatalogSpec>>, Vec<Diagnostic>> {
    let raw: RawPlan = serde_saphyr::from_str(yaml).unwrap();
    validate(raw, Path::new("/plans")).map(|p| p.catalogs)
}

#[test]
fn every_catalog_type_validates() {
    let c = catalogs(
        r"
catalogs:
  rest:
    type: rest
    uri: http://127.0.0.1:8181/
    warehouse: lake
    prefix: /ws/
    credential: id:secret
    scope: catalog
    headers: { X-Tenant: a }
  glue:
    type: glue
    warehouse: s3://lake/wh
    region: eu-west-1
    endpoint: http://127.0.0.1:5000
    access_key_id: AKIA
    secret_access_key: topsecret
    s3: { endpoint: 'http://127.0.0.1:5000', path_style: true }
  hms:
    type: hms
    uri: thrift://127.0.0.1:9083
    warehouse: wh
    thrift_transport: framed
  sql:
    type: sql
    uri: sqlite://c.db
    s3: { region: us-east-1, access_key_id: a, secret_access_key: b }
",
    )
    .unwrap();
    let CatalogKind::Rest(RestConfig {
        uri, prefix, auth, ..
    }) = &c["rest"].kind
    else {
        panic!("{:?}", c["rest"]);
    };
    assert_eq!(uri, "http://127.0.0.1:8181");
    assert_eq!(prefix.as_deref(), Some("ws"));
    assert!(matches!(auth, RestAuth::OAuth2 { scope: Some(s), .. } if s == "catalog"));
    let CatalogKind::Hms(HmsConfig {
        address,
        warehouse,
        framed,
        ..
    }) = &c["hms"].kind
    else {
        panic!("{:?}", c["hms"]);
    };
    assert_eq!(address, "127.0.0.1:9083");
    assert_eq!(warehouse, "file:///plans/wh");
    assert!(framed);
    assert_eq!(c["glue"].kind.warehouse_location(), Some("s3://lake/wh"));
    assert!(c["glue"].kind.single_level_namespaces());
    assert_eq!(
        c["rest"].kind.warehouse_location(),
        None,
        "a warehouse name"
    );
    // Debug output carries no secret.
    let debug = format!("{c:?}");
    for secret in ["id:secret", "topsecret", "AKIA", "X-Tenant: a"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn catalog_mistakes_are_reported_with_their_paths() {
    let diags = catalogs(
        r"
catalogs:
  r:
    type: rest
    uri: localhost:8181
    token: t
    credential: c
    headers: { 'bad header': x }
    properties: { uri: http://x }
  g:
    type: glue
    warehouse: /local/wh
    access_key_id: a
    s3: { endpoint: ftp://x, session_token: t }
  h:
    type: hms
    uri: thrift://metastore
    warehouse: s3://b/wh
  o:
    type: rest
    uri: http://h
    scope: catalog
",
    )
    .unwrap_err();
    let paths: Vec<&str> = diags.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "catalogs.g.warehouse",
            "catalogs.g.secret_access_key",
            "catalogs.g.s3.endpoint",
            "catalogs.g.s3.session_token",
            "catalogs.h.uri",
            "catalogs.o.scope",
            "catalogs.r.uri",
            "catalogs.r.token",
            "catalogs.r.headers.bad header",
            "catalogs.r.properties.uri",
        ],
        "{diags:#?}"
    );
    assert!(diags.iter().all(|d| !d.hint.is_empty()));
}

#[test]
fn unresolved_references_pass_syntax_only_validation() {
    catalogs(
        r"
catalogs:
  h:
    type: hms
    uri: ${HMS_URI}
    warehouse: s3://b/wh
  r:
    type: rest
    uri: ${REST_URI}
    token: ${REST_TOKEN}
",
    )
    .unwrap();
}
