//! S3 answers as [`StoreError`]s: a kind callers can act on, and a message naming what S3
//! said, the bucket where it matters, and what to check.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::MAX_ATTEMPTS;
use crate::store::{StoreError, StoreErrorKind};

/// What the operation errors of aws-sdk-s3 have in common.
pub(super) trait S3Error: ProvideErrorMetadata + std::error::Error + 'static {}
impl<E: ProvideErrorMetadata + std::error::Error + 'static> S3Error for E {}

/// The bucket and the store's URL: what every error names.
#[derive(Debug, Clone)]
pub(super) struct Place {
    pub(super) bucket: String,
    pub(super) url: String,
}

impl Place {
    /// An error of `kind` for `op` on `key`, whose source says `why`.
    pub(super) fn fail(
        &self,
        kind: StoreErrorKind,
        op: &'static str,
        key: &str,
        why: String,
    ) -> StoreError {
        StoreError::new(kind, op, key, &self.url, Some(why.into()))
    }

    /// An SDK error as a [`StoreError`].
    pub(super) fn err<E: S3Error>(
        &self,
        op: &'static str,
        key: &str,
        e: &SdkError<E>,
    ) -> StoreError {
        let (kind, why) = classify(&self.bucket, e);
        self.fail(kind, op, key, why)
    }

    /// The error for a bucket that `HeadBucket` did not find.
    pub(super) fn no_bucket(&self, op: &'static str, key: &str) -> StoreError {
        let why = no_bucket(&self.bucket, "S3 answered 404 to HeadBucket");
        self.fail(StoreErrorKind::Other, op, key, why)
    }
}

/// The HTTP status of S3's answer, if there was one.
pub(super) fn status<E>(e: &SdkError<E>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// Whether `e` is S3's answer to two conditional writes of one key at once.
pub(super) fn is_conflict<E: S3Error>(e: &SdkError<E>) -> bool {
    e.code() == Some("ConditionalRequestConflict")
}

/// `e` and its sources, as `outer: inner: innermost` (without repeats).
pub(super) fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut shown = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_shown = cause.to_string();
        if !shown.ends_with(&cause_shown) {
            shown = format!("{shown}: {cause_shown}");
        }
        source = cause.source();
    }
    shown
}

fn no_bucket(bucket: &str, answer: &str) -> String {
    format!("bucket `{bucket}` does not exist (create it first, or check the name): {answer}")
}

/// The kind of an SDK error, and a message for people.
fn classify<E: S3Error>(bucket: &str, e: &SdkError<E>) -> (StoreErrorKind, String) {
    use StoreErrorKind::{AlreadyExists, NotFound, Other, PermissionDenied, Transient};
    let answer = match status(e) {
        Some(status) => [e.code(), e.message()]
            .into_iter()
            .flatten()
            .fold(format!("S3 answered {status}"), |all, part| {
                all + " " + part
            }),
        // No answer: a connection, timeout or signing failure, told with all its causes.
        None => causes(e),
    };
    let retried = || format!("{answer} (after {MAX_ATTEMPTS} attempts)");
    match (e.code(), status(e)) {
        (Some("NoSuchBucket"), _) => (Other, no_bucket(bucket, &answer)),
        (Some("NoSuchKey" | "NotFound"), _) | (None, Some(404)) => (NotFound, answer),
        (Some("PreconditionFailed" | "ConditionalRequestConflict"), _) | (_, Some(412)) => {
            (AlreadyExists, format!("the object exists: {answer}"))
        }
        (Some("ExpiredToken" | "TokenRefreshRequired"), _) => {
            let expired = "the credentials have expired (a session token's lifetime ended): \
                           give fresh ones, or leave them to the AWS chain (a role, an SSO \
                           profile), which renews them";
            (PermissionDenied, format!("{expired}: {answer}"))
        }
        (Some("RequestTimeTooSkewed"), _) => {
            let skewed = "this machine's clock is more than 15 minutes off the server's: set it \
                          right (NTP), as S3 refuses requests signed at the wrong time";
            (PermissionDenied, format!("{skewed}: {answer}"))
        }
        (Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch"), _)
        | (_, Some(403)) => {
            let denied = "access denied: the credentials were refused or may not use bucket";
            (PermissionDenied, format!("{denied} `{bucket}`: {answer}"))
        }
        (Some("SlowDown" | "Throttling" | "RequestTimeout" | "InternalError"), _)
        | (_, Some(429 | 500..=599)) => (Transient, retried()),
        (_, None) if matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_)) => {
            (Transient, retried())
        }
        _ => (Other, answer),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::config::http::HttpResponse;
    use aws_sdk_s3::error::{ErrorMetadata, SdkError};
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::primitives::SdkBody;

    use super::*;

    /// S3's answer `status` with its error `code` and `message`, as the SDK hands it over.
    fn answer(status: u16, code: &str, message: &str) -> SdkError<GetObjectError> {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let response = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(GetObjectError::generic(meta), response)
    }

    #[test]
    fn expired_credentials_and_a_skewed_clock_say_what_to_do() {
        let (kind, why) = classify(
            "b",
            &answer(400, "ExpiredToken", "The provided token has expired."),
        );
        assert_eq!(kind, StoreErrorKind::PermissionDenied);
        assert!(why.starts_with("the credentials have expired"), "{why}");
        assert!(
            why.ends_with("S3 answered 400 ExpiredToken The provided token has expired."),
            "{why}"
        );
        let (kind, why) = classify(
            "b",
            &answer(403, "RequestTimeTooSkewed", "The difference is too large."),
        );
        assert_eq!(kind, StoreErrorKind::PermissionDenied);
        assert!(
            why.starts_with("this machine's clock is more than 15 minutes off"),
            "{why}"
        );
        let (_, why) = classify("b", &answer(403, "AccessDenied", "Access Denied"));
        assert!(why.starts_with("access denied"), "{why}");
    }
}
