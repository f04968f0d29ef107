//! Error helpers shared by every layer.

/// What kind of failure an error is. The exit status of a command, the HTTP status of an API
/// call and the status of an `apply` entry are each derived from it, and only from it
/// (`EngineError::kind`, `RepoError::kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request or the plan is wrong; the message says how to fix it (exit 2, HTTP 400).
    Invalid,
    /// The request would overwrite what exists (exit 2, HTTP 409).
    Conflict,
    /// What the request names does not exist (exit 1, HTTP 404).
    NotFound,
    /// Another run holds the repository's lock; retry later (exit 75, HTTP 423).
    Locked,
    /// Some tables failed and the rest was committed (exit 3).
    Partial,
    /// Anything else: I/O, a catalog or storage that failed, damage (exit 1, HTTP 500).
    Failure,
}

/// Formats an error with its chain of causes on one line, skipping causes whose text the
/// message already contains (thiserror's `#[error(transparent)]` and wrappers that repeat
/// their source).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// How to go on after a failure whose message shows a cause the user can remove: a full disk
/// or an exhausted quota (as the OS words them, whichever layer passed the text on). Said once
/// per command or entry, beside the message.
pub fn hint(message: &str) -> Option<&'static str> {
    const FULL: [&str; 2] = ["(os error 28)", "(os error 122)"];
    FULL.iter().any(|full| message.contains(full)).then_some(
        "a disk (or quota) is full: free space on the one named and run again (a backup \
         reuses what it copied); in a repository, `bcn forget` then `bcn gc` free the files \
         of old PITs",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_disk_is_hinted_whatever_layer_said_it() {
        let full = std::io::Error::from_raw_os_error(28).to_string();
        assert!(super::hint(&format!("writing x: Unexpected => {full}")).is_some());
        let quota = std::io::Error::from_raw_os_error(122).to_string();
        assert!(super::hint(&quota).is_some());
        assert!(super::hint("No such file or directory (os error 2)").is_none());
    }
}
