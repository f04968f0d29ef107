//! Repositories: locations, S3 settings and encryption.

use std::path::Path;

use crate::location::Location;
use crate::plan::raw::RawRepository;
use crate::plan::{Diagnostic, RepositorySpec};

pub(super) fn repository(
    path: &str,
    name: &str,
    raw: RawRepository,
    base: &Path,
    diags: &mut Vec<Diagnostic>,
) -> Option<RepositorySpec> {
    match Location::repository(&raw.location, base) {
        Ok(location) => {
            if raw.s3.is_some() && !location.is_s3() {
                diags.push(Diagnostic::new(
                    format!("{path}.s3"),
                    "S3 settings on a repository that is not on S3",
                    "remove `s3:` or use an `s3://bucket/prefix` location",
                ));
            }
            let encryption = raw.encryption.and_then(|e| {
                let key = e.key.expose();
                crate::secret::register(key);
                if key.contains("${") {
                    // Checked once the reference is resolved.
                    return crate::store::crypto::UserKey::new("unresolved reference").ok();
                }
                crate::store::crypto::UserKey::new(key)
                    .map_err(|err| {
                        diags.push(Diagnostic::new(
                            format!("{path}.encryption.key"),
                            err.to_string(),
                            "give the key by reference, e.g. `key: \"${file:/run/secrets/bcn}\"`",
                        ));
                    })
                    .ok()
            });
            let require_encryption = raw.require_encryption.unwrap_or(false);
            if require_encryption
                && encryption.is_none()
                && !diags
                    .iter()
                    .any(|d| d.path.starts_with(&format!("{path}.encryption")))
            {
                diags.push(Diagnostic::new(
                    format!("{path}.require_encryption"),
                    "the repository requires encryption but has no `encryption`",
                    "add `encryption: { key: \"${file:/run/secrets/bcn}\" }` (a new repository), or back this data up into an encrypted repository",
                ));
            }
            let read_timeout = raw.s3.as_ref().and_then(|s| {
                super::entry::limit_at(
                    &format!("{path}.s3.read_timeout"),
                    s.read_timeout.as_deref(),
                    "write a duration such as `30s` or `5m`",
                    "would fail every request (without `read_timeout`, 2 minutes)",
                    diags,
                )
                .and_then(|t| t.to_std().ok())
            });
            Some(RepositorySpec {
                name: name.to_owned(),
                location,
                description: raw.description,
                encryption,
                require_encryption,
                s3: raw.s3.map(|s| crate::store::S3Options {
                    endpoint: s.endpoint,
                    region: s.region,
                    path_style: s.path_style.unwrap_or(false),
                    access_key_id: s.access_key_id,
                    secret_access_key: s.secret_access_key,
                    session_token: s.session_token,
                    object_lock: s.object_lock.map(|l| crate::store::ObjectLock {
                        compliance: l.mode == crate::plan::raw::RawLockMode::Compliance,
                        days: l.days,
                    }),
                    sse: s.sse.map(|e| (e.algorithm, e.kms_key_id)),
                    read_timeout,
                }),
            })
        }
        Err(e) => {
            diags.push(Diagnostic::new(
                format!("{path}.location"),
                e.to_string(),
                "use a path, `file:///...` or `s3://bucket/prefix`",
            ));
            None
        }
    }
}
