//! Checks on names that users type and that end up in catalog identifiers and paths.

/// Refuses names that cannot be a database or table name anywhere bcn writes them: empty,
/// `.` or `..`, containing `/` or `\`, or control characters.
pub fn check(name: &str) -> Result<(), String> {
    let problem = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is a relative path component")
    } else if name.contains('/') || name.contains('\\') {
        Some("contains a path separator")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        None
    };
    match problem {
        Some(p) => Err(format!("invalid name {name:?}: it {p}")),
        None => Ok(()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\nb", "a\u{7}"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
        assert!(check("events_2024").is_ok());
        assert_eq!(parse_namespace("a.b").unwrap(), vec!["a", "b"]);
        assert!(parse_namespace("a..b").is_err());
    }
}
