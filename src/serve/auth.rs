//! Who is calling: a bearer token from the plan's `api.tokens`, compared by SHA-256 in
//! constant time, with its role and the entries and repositories it may act on.

use axum::http::{HeaderMap, StatusCode, header};
use globset::{Glob, GlobSet, GlobSetBuilder};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::ApiError;
use crate::plan::{ApiRole, ApiToken, Plan};

/// The caller of one request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) name: String,
    pub(crate) role: ApiRole,
    entries: Option<GlobSet>,
    repositories: Option<GlobSet>,
}

fn globs(patterns: Option<&Vec<String>>) -> Option<GlobSet> {
    let patterns = patterns?;
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        if let Ok(glob) = Glob::new(p) {
            builder.add(glob);
        }
    }
    builder.build().ok()
}

impl Caller {
    /// The built-in scheduler, which acts for the plan itself.
    pub(crate) fn system() -> Self {
        Self {
            name: "scheduler".into(),
            role: ApiRole::Admin,
            entries: None,
            repositories: None,
        }
    }

    fn of(token: &ApiToken) -> Self {
        Self {
            name: token.name.clone(),
            role: token.role,
            entries: globs(token.entries.as_ref()),
            repositories: globs(token.repositories.as_ref()),
        }
    }

    /// The caller, from the request's `Authorization: Bearer` header (401 otherwise).
    pub(crate) fn from_headers(plan: &Plan, headers: &HeaderMap) -> Result<Self, ApiError> {
        let unauthorized = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token is required (Authorization: Bearer TOKEN)",
            )
        };
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let tokens = plan.api().map(|a| a.tokens.as_slice()).unwrap_or_default();
        // Every token is compared, whichever matches, so timing tells nothing.
        let mut found = None;
        for t in tokens {
            if bool::from(t.sha256.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        found.map(Self::of).ok_or_else(unauthorized)
    }

    /// Refuses (403) a caller whose role is below `role`.
    pub(crate) fn require(&self, role: ApiRole, what: &str) -> Result<(), ApiError> {
        if self.role >= role {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "token `{}` ({}) may not {what}: it needs the {} role",
                self.name,
                role_name(self.role),
                role_name(role)
            ),
        ))
    }

    /// Whether the caller may see or act on entry `name`.
    pub(crate) fn may_entry(&self, name: &str) -> bool {
        self.entries.as_ref().is_none_or(|g| g.is_match(name))
    }

    /// Whether the caller may see or act on repository `name`.
    pub(crate) fn may_repository(&self, name: &str) -> bool {
        self.repositories.as_ref().is_none_or(|g| g.is_match(name))
    }

    /// Refuses (403) an entry or repository outside the caller's globs.
    pub(crate) fn scope(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            return Ok(());
        }
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("token `{}` may not act on {what}", self.name),
        ))
    }
}

pub(crate) fn role_name(role: ApiRole) -> &'static str {
    match role {
        ApiRole::Viewer => "viewer",
        ApiRole::Operator => "operator",
        ApiRole::Admin => "admin",
    }
}
