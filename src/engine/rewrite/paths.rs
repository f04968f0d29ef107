//! Where each path of a restored table goes: [`PathRewriter`] and the location forms it
//! treats as one.

use super::RewriteError;
use crate::location::{match_key, split_scheme};

/// Moves paths from one table location to another.
///
/// Matching is done on a normalized form ([`match_key`]): `file:/x`, `file:///x`, `file://localhost/x` and `/x`
/// are the same location, `s3a://` and `s3n://` are `s3://`, and scheme case does not matter.
/// The rewritten path always starts with the target location exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathRewriter {
    /// The source location as given, for messages.
    pub(super) from: String,
    /// The normalized source location, without trailing slash.
    from_normalized: String,
    /// The target location as given, without trailing slash.
    to: String,
    /// The normalized target location, without trailing slash.
    to_normalized: String,
    /// Roots outside the source location (`write.data.path`, files added from elsewhere):
    /// each normalized source root with its target, `<to>/_external/<n>`.
    external: Vec<(String, String)>,
    /// Every path stays where it is (`restore --original-location`).
    in_place: bool,
}

/// One root of a table's files and where a restore puts it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RootMapping {
    /// The source root.
    pub from: String,
    /// Its place in the restored table.
    pub to: String,
}

impl PathRewriter {
    /// Creates a rewriter from the source table location `from` to the target table location
    /// `to` (any URL form: `file:///..`, `file:/..`, `/..`, `s3://..`, `s3a://..`).
    #[must_use]
    pub(crate) fn new(from: &str, to: &str) -> Self {
        let to = to.trim_end_matches('/');
        Self {
            from: from.to_owned(),
            from_normalized: match_key(from).trim_end_matches('/').to_owned(),
            to: to.to_owned(),
            to_normalized: match_key(to).trim_end_matches('/').to_owned(),
            external: Vec::new(),
            in_place: false,
        }
    }

    /// A rewriter that keeps every path as it is, inside the location or not (in-place
    /// recovery); only paths that could climb (`..`) out of the location, or anywhere when
    /// outside it, are refused.
    #[must_use]
    pub(crate) fn in_place(location: &str) -> Self {
        let mut rw = Self::new(location, location);
        rw.in_place = true;
        rw
    }

    /// A rewriter that also maps files outside the source location: each root of `paths` that
    /// is not under it — one of `roots` (the table's `write.data.path` and friends) when the
    /// file lies there, else the file's directory — goes to `<to>/_external/<n>`, numbered in
    /// sorted order so that every restore of the table maps it alike.
    #[must_use]
    pub(crate) fn with_external<'a>(
        from: &str,
        to: &str,
        roots: &[String],
        paths: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut rw = Self::new(from, to);
        let roots: Vec<String> = roots
            .iter()
            .map(|r| match_key(r).trim_end_matches('/').to_owned())
            .filter(|r| !r.is_empty() && !rw.is_under(r))
            .collect();
        let mut external: Vec<String> = Vec::new();
        for path in paths {
            // A path that could climb (`..`) gets no root: it stays unmapped and its rewrite
            // fails, so a tampered path is refused rather than placed.
            let tail = split_scheme(path).map_or(path, |(_, rest)| rest);
            if rw.is_under(path) || crate::names::may_escape(tail) {
                continue;
            }
            let normalized = match_key(path);
            let root = roots
                .iter()
                .filter(|r| {
                    normalized
                        .strip_prefix(r.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                })
                .max_by_key(|r| r.len())
                .cloned()
                .or_else(|| normalized.rsplit_once('/').map(|(dir, _)| dir.to_owned()));
            if let Some(root) = root
                && !external.contains(&root)
            {
                external.push(root);
            }
        }
        external.sort();
        let to = rw.to.clone();
        rw.external = external
            .into_iter()
            .enumerate()
            .map(|(n, root)| (root, format!("{to}/_external/{n}")))
            .collect();
        rw
    }

    /// A rewriter with the external roots a restore plan decided ([`PathRewriter::external_roots`]).
    #[must_use]
    pub(crate) fn with_roots(from: &str, to: &str, roots: &[RootMapping]) -> Self {
        let mut rw = Self::new(from, to);
        rw.external = roots
            .iter()
            .map(|m| {
                (
                    match_key(&m.from).trim_end_matches('/').to_owned(),
                    m.to.clone(),
                )
            })
            .collect();
        rw
    }

    /// The roots outside the source location and where they go, for `restore --dry-run`.
    #[must_use]
    pub(crate) fn external_roots(&self) -> Vec<RootMapping> {
        self.external
            .iter()
            .map(|(from, to)| RootMapping {
                from: from.clone(),
                to: to.clone(),
            })
            .collect()
    }

    /// Rewrites `path`, which must lie under the source location, to the same place under the
    /// target location.
    ///
    /// # Errors
    ///
    /// [`RewriteError::OutsideLocation`] when `path` is not under the source location.
    pub(crate) fn rewrite(&self, path: &str) -> Result<String, RewriteError> {
        if self.in_place {
            // Under the recorded location, only the tail after it is checked (a location may
            // itself hold `..`: pyiceberg makes `<wh>/db/../../x` for a table named `../../x`);
            // a file outside it must not climb at all.
            if self.relative(path).is_some() {
                return Ok(path.to_owned());
            }
            let rest = split_scheme(path).map_or(path, |(_, rest)| rest);
            return if crate::names::may_escape(rest) {
                Err(RewriteError::OutsideLocation {
                    path: path.to_owned(),
                    location: self.from.clone(),
                })
            } else {
                Ok(path.to_owned())
            };
        }
        if let Some(rest) = self.relative(path) {
            return Ok(format!("{}{rest}", self.to));
        }
        let normalized = match_key(path);
        self.external
            .iter()
            .find_map(|(root, to)| {
                let rest = normalized.strip_prefix(root.as_str())?;
                ((rest.is_empty() || rest.starts_with('/')) && !crate::names::may_escape(rest))
                    .then(|| format!("{to}{rest}"))
            })
            .ok_or_else(|| RewriteError::OutsideLocation {
                path: path.to_owned(),
                location: self.from.clone(),
            })
    }

    /// Whether `path` lies under (or is) the source location or one of its external roots.
    #[must_use]
    pub(crate) fn is_under(&self, path: &str) -> bool {
        self.in_place
            || self.relative(path).is_some()
            || (!self.external.is_empty() && self.rewrite(path).is_ok())
    }

    /// Whether source and target are the same location and no external root is mapped, so
    /// that nothing needs rewriting.
    #[must_use]
    pub(crate) fn is_identity(&self) -> bool {
        self.from_normalized == self.to_normalized && self.external.is_empty()
    }

    /// The part of `path` after the source location: empty or starting with `/`. A tail that
    /// could climb out of the location (`/../x`, `/%2e%2e/x`) is not under it: a damaged or
    /// tampered path never becomes a target outside the restored table's location.
    fn relative(&self, path: &str) -> Option<String> {
        let normalized = match_key(path);
        let rest = normalized.strip_prefix(&self.from_normalized)?;
        ((rest.is_empty() || rest.starts_with('/')) && !crate::names::may_escape(rest))
            .then(|| rest.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// Table metadata JSON
// ---------------------------------------------------------------------------------------------
