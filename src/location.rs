//! Where things live: one [`Location`] type for repositories, warehouses and restore roots,
//! parsed once where a value enters bcn — a plan, the command line, an API request — with
//! relative paths resolved there, against the plan file's directory or the working directory,
//! and nowhere deeper.
//!
//! A location has two faces. Catalogs and table metadata get it as its owner wrote it
//! ([`Location::as_str`]: `s3a://` stays `s3a://`, `file://localhost/x` stays), because
//! Iceberg compares such strings as text. A repository is reached through what it names
//! ([`Location::kind`]), shown in its canonical form ([`Display`](std::fmt::Display):
//! `s3a://b` is `s3://b`, a path is `file:///path`).
//!
//! Paths read from table metadata are not parsed into a `Location`: there are millions of
//! them and their text must be kept. [`match_key`] compares them when restoring, and
//! [`crate::repo::layout::normalize_location`] names them in a repository (frozen: stored keys
//! depend on it).

use std::fmt;
use std::path::{Path, PathBuf};

/// What a [`Location`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory on a local (or mounted) filesystem.
    Local(PathBuf),
    /// In-process memory, for tests (`memory://name`).
    Memory(String),
    /// An S3 bucket and key prefix (`s3://bucket/prefix`, `s3a://`).
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/`.
        prefix: String,
    },
    /// Object storage bcn passes to catalogs but cannot hold a repository in (`s3n://`,
    /// `gs://`, `abfss://`, `oss://`, `s3://` without a bucket).
    Other {
        /// The URL scheme.
        scheme: String,
    },
}

/// A parsed location. See the module documentation.
#[derive(Clone, PartialEq, Eq)]
pub struct Location {
    kind: Kind,
    /// As catalogs get it: the value, with a relative path made a `file://` URL and trailing
    /// `/` removed.
    text: String,
}

/// A location that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// The URL scheme is not one bcn can store repositories in.
    #[error("unsupported repository scheme `{scheme}` in {url} (use a path, file://, or s3://)")]
    UnsupportedScheme {
        /// The scheme found.
        scheme: String,
        /// The whole value.
        url: String,
    },
    /// The URL scheme is not one of a table location.
    #[error("unsupported location scheme `{scheme}` in `{url}`")]
    UnsupportedTableScheme {
        /// The scheme found.
        scheme: String,
        /// The whole value.
        url: String,
    },
    /// The value is empty.
    #[error("empty location")]
    Empty,
    /// The value is malformed.
    #[error("invalid repository location `{0}`: {1}")]
    Invalid(String, &'static str),
}

/// Schemes a warehouse or table location may have.
const TABLE_SCHEMES: &[&str] = &["file", "s3", "s3a", "s3n", "gs", "abfss", "oss", "memory"];

impl Location {
    /// Parses a warehouse, table or restore-root location: `/abs`, `relative` (against
    /// `base`), `file:///abs`, `file:/abs`, `file://localhost/abs`, or a URL of one of the
    /// object stores Iceberg writes to (`s3`, `s3a`, `s3n`, `gs`, `abfss`, `oss`) or `memory`.
    pub fn parse(value: &str, base: &Path) -> Result<Self, LocationError> {
        let value = value.trim();
        if value.is_empty() {
            return Err(LocationError::Empty);
        }
        if let Some((scheme, rest)) = value.split_once("://") {
            if !TABLE_SCHEMES.contains(&scheme) {
                return Err(LocationError::UnsupportedTableScheme {
                    scheme: scheme.into(),
                    url: value.into(),
                });
            }
            let kind = match scheme {
                "file" => Kind::Local(local_path(rest)),
                "memory" if !rest.is_empty() => Kind::Memory(rest.to_owned()),
                "s3" | "s3a" => match rest.split_once('/').unwrap_or((rest, "")) {
                    ("", _) => Kind::Other {
                        scheme: scheme.into(),
                    },
                    (bucket, prefix) => Kind::S3 {
                        bucket: bucket.into(),
                        prefix: prefix.trim_matches('/').into(),
                    },
                },
                _ => Kind::Other {
                    scheme: scheme.into(),
                },
            };
            let text = value.trim_end_matches('/').to_owned();
            return Ok(Self { kind, text });
        }
        if let Some(rest) = value.strip_prefix("file:") {
            // Hive's `file:/abs`.
            let trimmed = rest.trim_start_matches('/').trim_end_matches('/');
            return Ok(Self {
                kind: Kind::Local(local_path(rest)),
                text: format!("file:///{trimmed}"),
            });
        }
        let path = base.join(value);
        let text = format!("file://{}", path.display())
            .trim_end_matches('/')
            .to_owned();
        Ok(Self {
            kind: Kind::Local(path),
            text,
        })
    }

    /// Parses a repository location: a path (relative ones against `base`), `file://`,
    /// `s3://bucket/prefix` (or `s3a://`), or `memory://name`.
    pub fn repository(value: &str, base: &Path) -> Result<Self, LocationError> {
        let trimmed = value.trim();
        let location = match Self::parse(value, base) {
            Ok(location) => location,
            Err(LocationError::Empty) => {
                return Err(LocationError::Invalid(trimmed.into(), "empty"));
            }
            Err(LocationError::UnsupportedTableScheme { scheme, url }) => {
                return Err(LocationError::UnsupportedScheme { scheme, url });
            }
            Err(e) => return Err(e),
        };
        match &location.kind {
            Kind::Other { scheme } if scheme == "s3" || scheme == "s3a" => Err(
                LocationError::Invalid(trimmed.into(), "missing bucket name"),
            ),
            Kind::Other { scheme } => Err(LocationError::UnsupportedScheme {
                scheme: scheme.clone(),
                url: trimmed.into(),
            }),
            _ => Ok(location),
        }
    }

    /// A local directory.
    pub fn local(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        let text = format!("file://{}", path.display())
            .trim_end_matches('/')
            .to_owned();
        Self {
            kind: Kind::Local(path),
            text,
        }
    }

    /// What the location names.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// Whether it is an S3 bucket (and prefix).
    pub fn is_s3(&self) -> bool {
        matches!(self.kind, Kind::S3 { .. })
    }

    /// The location as catalogs and table metadata get it: as written, a relative path made
    /// a `file://` URL, without a trailing `/`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// `file://` URLs: `file:///abs`, `file:/abs` and `file://localhost/abs` all mean `/abs`.
fn local_path(rest: &str) -> PathBuf {
    let path = rest.strip_prefix("localhost").unwrap_or(rest);
    if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        PathBuf::from(format!("/{path}"))
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The canonical form: `file:///path`, `s3://bucket/prefix`, `memory://name`; others as
/// written.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Local(p) => write!(f, "file://{}", p.display()),
            Kind::Memory(n) => write!(f, "memory://{n}"),
            Kind::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Kind::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Kind::Other { .. } => f.write_str(&self.text),
        }
    }
}

/// The key under which two paths of table metadata compare equal when they name the same
/// place: the scheme lower-cased, `s3a:`/`s3n:` as `s3:`, and `file:///x`, `file:/x` and
/// `file://localhost/x` as `/x`; the rest kept as it is (no trailing `/` removed).
pub fn match_key(path: &str) -> String {
    let Some((scheme, rest)) = split_scheme(path) else {
        return path.to_owned();
    };
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "file" => match_key_file(rest),
        "s3" | "s3a" | "s3n" => format!("s3:{rest}"),
        _ => format!("{scheme}:{rest}"),
    }
}

/// The local path of the part after `file:`, or `file:` and that part when it names a host.
fn match_key_file(rest: &str) -> String {
    if let Some(local) = rest.strip_prefix("//localhost/") {
        return format!("/{local}");
    }
    match rest.strip_prefix("//") {
        Some(after) if after.starts_with('/') => after.to_owned(),
        Some(_) => format!("file:{rest}"),
        None => rest.to_owned(),
    }
}

/// Splits `scheme:rest` when `path` starts with a URL scheme of at least two characters (so
/// that a Windows drive letter is not taken for one).
pub fn split_scheme(path: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = path.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = scheme.len() > 1
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_locations_in_every_form() {
        let base = Path::new("/plans");
        let cases = [
            ("/abs/repo", "file:///abs/repo"),
            ("rel/repo", "file:///plans/rel/repo"),
            ("file:///abs/repo", "file:///abs/repo"),
            ("file:/abs/repo", "file:///abs/repo"),
            ("file://localhost/abs/repo", "file:///abs/repo"),
            ("s3://bucket/a/b/", "s3://bucket/a/b"),
            ("s3a://bucket", "s3://bucket"),
            ("memory://x", "memory://x"),
        ];
        for (input, expected) in cases {
            let location = Location::repository(input, base).unwrap();
            assert_eq!(location.to_string(), expected, "{input}");
        }
        let refused = |v: &str| Location::repository(v, base).unwrap_err().to_string();
        assert_eq!(
            refused("gs://b/x"),
            "unsupported repository scheme `gs` in gs://b/x (use a path, file://, or s3://)"
        );
        assert!(refused("ftp://b/x").contains("unsupported repository scheme `ftp`"));
        assert!(refused("s3:///x").contains("missing bucket name"));
        assert!(refused("s3a://").contains("missing bucket name"));
        assert!(refused(" ").contains("empty"));
    }

    #[test]
    fn table_locations_keep_their_text() {
        let base = Path::new("/plans");
        let text = |v: &str| Location::parse(v, base).unwrap().as_str().to_owned();
        assert_eq!(text("wh"), "file:///plans/wh");
        assert_eq!(text("wh/"), "file:///plans/wh");
        assert_eq!(text("file:/abs/wh/"), "file:///abs/wh");
        assert_eq!(text("s3://b/wh"), "s3://b/wh");
        assert_eq!(text("s3a://b/wh/"), "s3a://b/wh");
        assert_eq!(text("gs://b/wh"), "gs://b/wh");
        assert_eq!(text("file://localhost/x"), "file://localhost/x");
        let parsed = Location::parse("s3a://b/wh", base).unwrap();
        assert!(parsed.is_s3());
        assert_eq!(parsed.to_string(), "s3://b/wh");
        assert_eq!(
            Location::parse("ftp://x", base).unwrap_err().to_string(),
            "unsupported location scheme `ftp` in `ftp://x`"
        );
        assert_eq!(
            Location::parse("  ", base).unwrap_err().to_string(),
            "empty location"
        );
    }

    #[test]
    fn match_keys_make_spellings_of_one_place_equal() {
        for same in [
            "file:///wh/t",
            "file:/wh/t",
            "file://localhost/wh/t",
            "/wh/t",
        ] {
            assert_eq!(match_key(same), "/wh/t", "{same}");
        }
        assert_eq!(match_key("S3A://b/x"), "s3://b/x");
        assert_eq!(match_key("s3n://b/x"), "s3://b/x");
        assert_eq!(match_key("file://host/x"), "file://host/x");
        assert_eq!(match_key("C:/x"), "C:/x");
    }
}
