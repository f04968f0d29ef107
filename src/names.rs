//! Checks on names and relative paths that end up in catalog identifiers, table locations and
//! repository keys.
//!
//! Everything that comes from a repository or a catalog — a table name read from a PIT
//! record, a path read from a file list — is untrusted: a table may be named `../../x` in a
//! catalog that allows it, and a record may be damaged or tampered with. These checks are the
//! one gate such values pass before they become a location or a key.

/// The longest name that can be a directory on every filesystem and object store bcn writes to.
pub const MAX_NAME_BYTES: usize = 255;

/// Refuses names that cannot be a database or table directory anywhere bcn writes them:
/// empty, `.` or `..`, containing `/` or `\`, control characters, or `%` (a storage layer that
/// percent-decodes paths would turn `a%2F..` into a separator), or longer than 255 bytes.
pub fn check(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("is empty".to_owned())
    } else if name == "." || name == ".." {
        Some("is a relative path component".to_owned())
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator".to_owned())
    } else if name.chars().any(char::is_control) {
        Some("contains a control character".to_owned())
    } else if name.contains('%') {
        Some("contains `%`, which storage layers may decode into a path separator".to_owned())
    } else if name.len() > MAX_NAME_BYTES {
        Some(format!(
            "is {} bytes long, more than a directory name may have ({MAX_NAME_BYTES})",
            name.len()
        ))
    } else {
        None
    };
    match problem {
        Some(p) => Err(format!("invalid name {name:?}: it {p}")),
        None => Ok(()),
    }
}

/// `name` with control characters written as escapes (`tab\there`), for messages and logs:
/// a raw newline in a table name would split a log line and hide what follows.
pub fn escape_control(name: &str) -> std::borrow::Cow<'_, str> {
    if name.chars().any(char::is_control) {
        std::borrow::Cow::Owned(
            name.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Splits `a.b` into namespace parts, checking each.
pub fn parse_namespace(value: &str) -> Result<Vec<String>, String> {
    let parts: Vec<String> = value.split('.').map(str::to_owned).collect();
    for part in &parts {
        check(part).map_err(|e| format!("database `{value}`: {e}"))?;
    }
    Ok(parts)
}

/// Whether `rel` is a relative path that stays below the directory it is joined to, both as
/// written and after percent-decoding (some storage layers decode `%2e%2e%2f`): no empty, `.`
/// or `..` segment, no leading `/`, no `\`, no control character.
pub fn is_contained_relative(rel: &str) -> bool {
    !rel.starts_with('/') && !rel.split('/').any(str::is_empty) && !may_escape(rel)
}

/// Whether the path tail `rest` could climb out of the directory it is appended to, as written
/// or after percent-decoding: a `.` or `..` segment, a `\`, or a control character. Empty
/// segments (`a//b`) do not climb and are allowed here.
pub fn may_escape(rest: &str) -> bool {
    let climbs = |form: &str| {
        form.contains('\\')
            || form.chars().any(char::is_control)
            || form
                .split('/')
                .any(|segment| segment == "." || segment == "..")
    };
    // Checked for every path a restore rewrites: decoded only when there is something to decode.
    climbs(rest)
        || (rest.contains('%')
            && climbs(&percent_encoding::percent_decode_str(rest).decode_utf8_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused() {
        let long = "x".repeat(256);
        for bad in [
            "", ".", "..", "a/b", "a\\b", "a\nb", "a\tb", "a\u{7}", "a%2Fb", "../x", &long,
        ] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check("events_2024").is_ok());
        assert!(check("données-été").is_ok());
        assert!(check(&"y".repeat(255)).is_ok());
        assert_eq!(parse_namespace("a.b").unwrap(), vec!["a", "b"]);
        assert!(parse_namespace("a..b").is_err());
    }

    #[test]
    fn relative_paths_must_stay_below() {
        for good in [
            "data/a.parquet",
            "data/cat=a%2Fb/x.parquet",
            "metadata/snap-1.avro",
        ] {
            assert!(is_contained_relative(good), "{good}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a\\..\\b",
            "%2e%2e/x",
            "a%2F..%2F..%2Fx",
            "a/\n/b",
        ] {
            assert!(!is_contained_relative(bad), "{bad:?}");
        }
    }
}
