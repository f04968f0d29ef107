//! The S3 client, built from the standard AWS configuration with a repository's settings
//! over it, and the headers every write carries (Object Lock retention, server-side
//! encryption).

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{Credentials, Region};
use aws_sdk_s3::primitives::DateTime;
use aws_sdk_s3::types::{ObjectLockMode, ServerSideEncryption};

use super::MAX_ATTEMPTS;
use crate::store::S3Options;

/// Loads the AWS configuration (environment, profile) and applies `options` over it.
pub(super) async fn build_client(options: &S3Options) -> Client {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(options.read_timeout.unwrap_or(super::READ_TIMEOUT))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry)
        .timeout_config(timeouts);
    if let Some(region) = &options.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(endpoint) = &options.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let (Some(id), Some(secret)) = (&options.access_key_id, &options.secret_access_key) {
        let token = options
            .session_token
            .as_ref()
            .map(|t| t.expose().to_owned());
        loader =
            loader.credentials_provider(Credentials::new(id, secret.expose(), token, None, "bcn"));
    }
    let shared = loader.load().await;
    // An endpoint from the environment is an S3-compatible server, which mostly cannot serve
    // virtual-host-style requests (`bucket.127.0.0.1`).
    let env_endpoint = options.endpoint.is_none() && shared.endpoint_url().is_some();
    let mut config = aws_sdk_s3::config::Builder::from(&shared)
        .force_path_style(options.path_style || env_endpoint);
    if shared.region().is_none() {
        config = config.region(Region::from_static("us-east-1"));
    }
    Client::from_conf(config.build())
}

/// Keys under these prefixes are bcn's bookkeeping, deleted as part of normal work (locks
/// released, damage markers cleared, verification records replaced): never retained.
const UNRETAINED: [&str; 3] = ["locks/", "damaged/", "verifications/"];

/// What every write carries: Object Lock retention (for `key`, unless bookkeeping) and
/// server-side encryption.
#[derive(Debug, Clone, Default)]
pub(super) struct WriteHeaders {
    pub(super) lock: Option<(ObjectLockMode, DateTime)>,
    pub(super) sse: Option<(ServerSideEncryption, Option<String>)>,
}

impl WriteHeaders {
    pub(super) fn for_key(options: &S3Options, key: &str) -> Self {
        let lock = options
            .object_lock
            .filter(|_| !UNRETAINED.iter().any(|p| key.starts_with(p)))
            .map(|l| {
                #[expect(
                    clippy::disallowed_methods,
                    reason = "S3 counts retention from the real time of the write"
                )]
                let now = std::time::SystemTime::now();
                let until = now + std::time::Duration::from_secs(u64::from(l.days) * 86_400);
                let mode = if l.compliance {
                    ObjectLockMode::Compliance
                } else {
                    ObjectLockMode::Governance
                };
                (mode, DateTime::from(until))
            });
        let sse = options
            .sse
            .as_ref()
            .map(|(algorithm, key)| (ServerSideEncryption::from(algorithm.as_str()), key.clone()));
        Self { lock, sse }
    }
}
