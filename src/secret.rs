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

/// A value that is never printed: its `Debug` writes `<redacted>`, and only [`Secret::expose`]
/// gives it out, where it is handed to a client. Plan values that may hold credentials
/// (tokens, keys, header and property values) are kept in it, so that redaction does not
/// depend on each struct's `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

/// In the plan's schema a secret is the string it is written as.
impl schemars::JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        String::json_schema(generator)
    }
}

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value itself, for the one place that hands it over.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

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
    fn a_secret_is_never_debug_printed() {
        let secret = Secret::new("hunter2-secret-value");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(
            format!("{:?}", Some(&secret)),
            "Some(<redacted>)",
            "an optional secret is hidden too"
        );
        assert_eq!(secret.expose(), "hunter2-secret-value");
    }

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
