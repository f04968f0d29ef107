//! The plan as written in YAML. These doc comments are user documentation: they become the
//! `description` of `schema/plan.schema.json`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::secret::Secret;

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
    /// How entries are backed up, by name. Entries without a strategy get the defaults.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub strategies: BTreeMap<String, RawStrategy>,
    /// What `bcn apply` backs up: one entry per repository.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<RawBackup>,
    /// Reports rendered after each entry of `bcn apply`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reports: Vec<RawReport>,
    /// Notifications sent when entries start, succeed or fail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<RawNotification>,
    /// Prometheus metrics, written after every `bcn apply` run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<RawMetrics>,
    /// The HTTP API of `bcn serve`: who may call it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<RawApi>,
}

/// The HTTP API of `bcn serve`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    /// Bearer tokens and what each may do.
    #[serde(default)]
    pub tokens: Vec<RawApiToken>,
    /// The job history (an `SQLite` file), relative to the plan. Default: `bcn-jobs.db` next to
    /// the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs_db: Option<String>,
}

/// One API token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApiToken {
    /// Who holds it (in the job history and logs; the token itself never is).
    pub name: String,
    /// The token, by reference (`${ENV}`, `${file:...}`); or give `token_sha256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The hex SHA-256 of the token, so that the plan holds no secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// `viewer` (reads), `operator` (also backs up and verifies) or `admin` (also restores,
    /// forgets and runs gc).
    pub role: RawRole,
    /// Entries this token may act on (globs); default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<String>>,
    /// Repositories this token may act on (globs); default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repositories: Option<Vec<String>>,
}

/// An API role.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RawRole {
    /// Reads.
    Viewer,
    /// Reads, backs up, verifies.
    Operator,
    /// Everything.
    Admin,
}

/// Where metrics go.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// A Prometheus text-format file, replaced atomically after every run (`node_exporter`'s
    /// textfile collector reads `*.prom` files of its directory). Relative to the plan.
    pub textfile: String,
}

/// A backup strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStrategy {
    /// `incremental` (default: copy only files the repository lacks) or `full` (copy and
    /// checksum every file again, as a fresh base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RawMode>,
    /// `all` (default: every snapshot's files, so time travel and refs survive) or `current`
    /// (only the current snapshot; restore keeps only that snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshots: Option<RawSnapshots>,
    /// An entry is due when its newest PIT is older than this (`30m`, `6h`, `1d`, `1w`).
    /// Without it, every `bcn apply` runs the entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Which PITs to keep; the others are forgotten after each backup. Without it, every PIT
    /// is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<RawRetention>,
    /// Commit the PIT even when some tables fail; they are recorded as FAILED with their
    /// reason. Default `false`: any failure commits nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_partial: Option<bool>,
    /// With `mode: incremental`: make a full backup (every file copied and checksummed again)
    /// when the repository's newest full PIT is older than this (`7d`), so one timer drives
    /// incremental and periodic full backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_every: Option<String>,
    /// Verify the entry's repository on its own cadence: `bcn apply` runs `bcn verify` after
    /// the backup, or alone when only the verification is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<RawVerify>,
    /// Stop an entry that runs longer than this (`6h`), as a signal would: it fails as
    /// interrupted (nothing committed but a PIT commit already under way), its failure is
    /// notified and counted, and the next entry starts. A run stuck on a hung disk, mount or
    /// connection then fails loudly instead of never ending. Without it, no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A strategy's verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// Due when the repository's newest verification is older than this (`1d`, `1w`).
    /// Without it, every `bcn apply` that runs the entry verifies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Also read stored files and compare their SHA-256: `all`, a random percentage (`10%`),
    /// or `1/7`: a seventh each time, rotating, so seven verifications read every file once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_data: Option<String>,
    /// Also restore the newest PIT into a scratch catalog and read every table back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_test: Option<bool>,
}

/// Backup mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawMode {
    /// Copy only files the repository lacks.
    Incremental,
    /// Copy and checksum every file again.
    Full,
}

/// Which snapshots' files a backup keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawSnapshots {
    /// Every snapshot.
    All,
    /// The current snapshot only.
    Current,
}

/// Retention: a PIT is kept when any rule keeps it; the newest PIT is always kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Keep the newest N PITs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    /// Keep the newest PIT of each of the last N hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest PIT of each of the last N days that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<u32>,
    /// Keep the newest PIT of each of the last N ISO weeks that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest PIT of each of the last N months that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<u32>,
    /// Keep every PIT taken within this long of the newest one (`7d`, `36h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<String>,
}

/// One entry of `bcn apply`: a scope of a catalog backed up into one repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackup {
    /// Unique name, for `--only` and reports.
    pub name: String,
    /// The source catalog.
    pub catalog: String,
    /// Back up one database only (namespace, `a.b` when nested).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Back up one table of `database` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The repository (its scope is fixed by the first backup).
    pub repository: String,
    /// The strategy; default: incremental, all snapshots, every run, keep everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// The categories this entry takes. Default: `global` and `ephemeral`: `local` data (kept
    /// apart as sensitive) is backed up only by entries that name it. A table whose category
    /// this entry does not take is not backed up here (EXCLUDED if it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<RawCategory>>,
    /// Commands run around the entry by `bcn apply`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hooks: Option<RawHooks>,
}

/// Commands around an entry, each an argument list (`["pg_dump", "-f", "/x"]`). They get
/// `BCN_ENTRY` in their environment; `after` hooks also `BCN_STATUS` (`succeeded`, `partial`,
/// `failed`, `locked`, `skipped`), `BCN_PIT` and `BCN_ERROR` when there is one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHooks {
    /// Run before the backup, in order; one that fails (or times out) fails the entry, and
    /// nothing is backed up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<Vec<String>>,
    /// Run after the entry, whatever happened (its outcome is in the environment); a failure
    /// is a note in the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<Vec<String>>,
    /// The longest one hook may run before it is killed (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// A report written after each entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawReport {
    /// `text`, `markdown` (built in) or the path of a Handlebars template (relative to the
    /// plan). Templates receive the entry's JSON report.
    pub template: String,
    /// Output path (relative to the plan), itself a template: `{{entry}}`, `{{pit}}`,
    /// `{{date}}` (YYYY-MM-DD), `{{time}}` (HHMMSS), `{{status}}`.
    pub output: String,
}

/// A notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotification {
    /// When to send it: any of `start`, `success`, `failure`.
    pub on: Vec<RawEvent>,
    /// POST the entry's JSON report to this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<RawWebhook>,
    /// Run this command (program and arguments, no shell) with the JSON report on stdin and
    /// `BCN_EVENT`, `BCN_ENTRY`, `BCN_STATUS` in its environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
}

/// An entry event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawEvent {
    /// The entry starts.
    Start,
    /// The entry committed its PIT.
    Success,
    /// The entry failed (or was partial).
    Failure,
    /// The entry's scheduled verification found damage (or could not run).
    VerifyFailure,
}

/// A webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// The URL (`${ENV}` references allowed).
    pub url: Secret,
    /// Extra headers, e.g. `Authorization: "Bearer ${HOOK_TOKEN}"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Secret>,
    /// Seconds before the request is abandoned. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
}

/// An Iceberg catalog connection. Every type takes `properties` (passed to the catalog and its
/// `FileIO` as they are) and an `s3` block for the warehouse's files. Credentials belong in
/// `${ENV}` or `${file:/path}` references, never in the plan.
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
        /// Extra properties passed to the catalog and its `FileIO`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, Secret>,
        /// S3 settings of the warehouse's files (`s3.*` `FileIO` properties).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3: Option<RawCatalogS3>,
    },
    /// An Iceberg REST catalog (Polaris, Lakekeeper, Gravitino, Nessie, Unity, ...). Plain
    /// `http://` only in this version: `https://` needs a TLS-enabled build.
    Rest {
        /// Base URI of the REST API, without `/v1`: `http://127.0.0.1:8181`.
        uri: String,
        /// Warehouse: a location (`s3://bucket/wh`, `file:///...`) or the name some servers
        /// expect. A location is also the default root of restored tables.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        warehouse: Option<String>,
        /// Path prefix of every route after `/v1/` (most servers send it in their config).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
        /// Bearer token, e.g. `${REST_TOKEN}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
        /// OAuth 2 client credentials `client_id:client_secret`, e.g. `${REST_CREDENTIAL}`;
        /// exchanged for a token at `oauth2_server_uri`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        credential: Option<Secret>,
        /// OAuth 2 token endpoint; default: the catalog's `/v1/oauth/tokens`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        oauth2_server_uri: Option<String>,
        /// OAuth 2 scope; default `catalog`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scope: Option<String>,
        /// Extra HTTP headers sent with every request (`X-Tenant: a`).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        headers: BTreeMap<String, Secret>,
        /// Extra properties passed to the catalog and its `FileIO`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, Secret>,
        /// S3 settings of the warehouse's files, when the server does not vend them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3: Option<RawCatalogS3>,
    },
    /// AWS Glue Data Catalog. Databases are single-level.
    Glue {
        /// Warehouse location, `s3://bucket/prefix`; the default root of restored tables.
        warehouse: String,
        /// AWS region. Default: from the AWS configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        region: Option<String>,
        /// Glue endpoint URL, for a Glue-compatible server. Without `s3.endpoint`, the table
        /// files are read and written through this endpoint too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        endpoint: Option<String>,
        /// The AWS account id of the catalog, when it is not the caller's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        catalog_id: Option<String>,
        /// AWS profile name (from `~/.aws/config`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile: Option<String>,
        /// Access key id, e.g. `${AWS_ACCESS_KEY_ID}`. Default: the AWS configuration.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        access_key_id: Option<Secret>,
        /// Secret access key, e.g. `${file:/run/secrets/aws}`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret_access_key: Option<Secret>,
        /// Session token, for temporary credentials.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session_token: Option<Secret>,
        /// Extra properties passed to the catalog and its `FileIO`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, Secret>,
        /// S3 settings of the warehouse's files. Default: the Glue credentials, region and
        /// endpoint.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3: Option<RawCatalogS3>,
    },
    /// Hive Metastore (Thrift). Databases are single-level; non-Iceberg tables are skipped.
    Hms {
        /// Thrift address: `thrift://host:9083` or `host:9083`.
        uri: String,
        /// Warehouse location (`s3://bucket/prefix`, a path or `file:///...`); the default root
        /// of restored tables.
        warehouse: String,
        /// Thrift transport: `buffered` (default) or `framed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thrift_transport: Option<RawThriftTransport>,
        /// Extra properties passed to the catalog and its `FileIO`.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        properties: BTreeMap<String, Secret>,
        /// S3 settings of the warehouse's files.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s3: Option<RawCatalogS3>,
    },
}

/// Thrift transport of a Hive Metastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawThriftTransport {
    /// Unframed (the Hive Metastore default).
    Buffered,
    /// Framed (`hive.metastore.thrift.framed.transport.enabled`).
    Framed,
}

/// S3 settings of a catalog's warehouse, turned into the `s3.*` properties of its `FileIO`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawCatalogS3 {
    /// Endpoint URL of an S3-compatible server (`s3.endpoint`); default: AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region (`s3.region`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style addressing (`s3.path-style-access`), needed by most S3-compatible servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Access key id (`s3.access-key-id`), e.g. `${AWS_ACCESS_KEY_ID}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<Secret>,
    /// Secret access key (`s3.secret-access-key`), e.g. `${file:/run/secrets/s3}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// Session token (`s3.session-token`), for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
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
    /// Settings of an `s3://` repository. Without them the standard AWS configuration
    /// (environment, profile) is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<RawS3>,
    /// Client-side encryption of everything bcn writes to the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<RawEncryption>,
    /// Refuse the plan when this repository has no `encryption` (for repositories that take
    /// `local` data). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_encryption: Option<bool>,
}

/// Client-side encryption of a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEncryption {
    /// The key, by reference: `${file:/run/secrets/bcn}` or `${ENV}`. A passphrase (at least 8
    /// characters, stretched with Argon2id), or `raw:` followed by the base64 of 32 random
    /// bytes. Any key added with `bcn key add` opens the repository too.
    pub key: Secret,
}

/// S3 settings. Secrets belong in `${ENV}` or `${file:/path}` references, never in the plan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    /// Endpoint URL of an S3-compatible server (`MinIO`, ...); default: AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Region. Default: from the AWS configuration, else `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`), needed by most S3-compatible servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Access key id, e.g. `${AWS_ACCESS_KEY_ID}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key, e.g. `${file:/run/secrets/s3}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<Secret>,
    /// Session token, for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
    /// Write every record and stored file immutable for a while (S3 Object Lock; the bucket
    /// must have been created with Object Lock enabled). Locks are not retained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<RawObjectLock>,
    /// Server-side encryption of every object bcn writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sse: Option<RawSse>,
    /// How long one attempt of a request waits for the server to begin its answer, the
    /// request's own body included (`30s`, `5m`); then it is retried. Default `2m`
    /// (`CopyObject`, which S3-compatible servers may answer only once the copy is done: at
    /// least 30 minutes). Without it a connection the network silently dropped would wait for
    /// ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_timeout: Option<String>,
}

/// S3 Object Lock retention of what bcn writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawObjectLock {
    /// `governance` (users with `s3:BypassGovernanceRetention` may still delete) or
    /// `compliance` (nobody may, not even the account's root, until the date).
    pub mode: RawLockMode,
    /// Days every object stays undeletable after it is written.
    pub days: u32,
}

/// An S3 Object Lock mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawLockMode {
    /// Deletable by users allowed to bypass governance retention.
    Governance,
    /// Deletable by nobody until the retention date.
    Compliance,
}

/// S3 server-side encryption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSse {
    /// `aws:kms`, `aws:kms:dsse` or `AES256`.
    pub algorithm: String,
    /// The KMS key (id or ARN) for `aws:kms`; default: the account's S3 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
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
