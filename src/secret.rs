//! Secret values, kept out of everything bcn writes.
//!
//! Credentials reach dependencies (the AWS SDK, opendal, catalog clients) whose `Debug` output
//! and trace logs print them as they are. Instead of trusting every dependency, bcn registers
//! each secret value once — every value a plan reference (`${ENV}`, `${file:...}`) resolves
//! to, every plan value under a key that names a secret, the password of a URL, and the AWS
//! credentials of the environment — and every line written to stderr (logs), stdout (results)
//! and reports goes through [`redact`].

use std::borrow::Cow;
use std::io::Write;
use std::sync::RwLock;

/// Values shorter than this are not redacted: they would blank out ordinary words.
const MIN_LEN: usize = 4;

/// What replaces a secret.
pub const MASK: &str = "***";

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers `value` as a secret, from now on redacted everywhere.
pub fn register(value: &str) {
    let value = value.trim();
    if value.len() < MIN_LEN {
        return;
    }
    let mut secrets = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !secrets.iter().any(|s| s == value) {
        secrets.push(value.to_owned());
        // Longest first, so that a secret containing another is masked whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }
}

/// Whether a plan key names a secret (`secret_access_key`, `token`, `Authorization`, ...).
pub fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "token",
        "password",
        "credential",
        "authorization",
        "passphrase",
    ]
    .iter()
    .any(|word| key.contains(word))
}

/// Registers the password of a URL (`postgres://user:pass@host/db`), if it has one.
pub fn register_url_password(value: &str) {
    if let Ok(url) = url::Url::parse(value)
        && let Some(password) = url.password()
    {
        register(password);
        if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
            register(&decoded);
        }
    }
}

/// Registers the AWS credentials of the environment, which the SDKs read by themselves.
pub fn register_environment() {
    for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        #[expect(
            clippy::disallowed_methods,
            reason = "these values are only registered for redaction"
        )]
        let value = std::env::var(name);
        if let Ok(value) = value {
            register(&value);
        }
    }
}

/// `text` with every registered secret replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut out = Cow::Borrowed(text);
    for secret in secrets.iter() {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// A `tracing` writer to stderr that redacts every line and never fails: a closed stderr
/// (`bcn ... 2>&1 | head -1`) must not stop the work.
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let _ = std::io::stderr().lock().write_all(redact(&text).as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = Self;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_masked() {
        register("hunter2-secret-value");
        register("ab");
        assert_eq!(
            redact("key=hunter2-secret-value; ab").as_ref(),
            "key=***; ab"
        );
        register_url_password("postgres://bcn:pg%2Fpass-word@127.0.0.1/db");
        assert_eq!(redact("pg/pass-word pg%2Fpass-word").as_ref(), "*** ***");
        assert!(is_secret_key("secret_access_key"));
        assert!(is_secret_key("Authorization"));
        assert!(!is_secret_key("endpoint"));
    }
}
