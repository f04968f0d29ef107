//! Repositories, entries and the categories of tables.

use std::sync::Arc;

use globset::GlobSet;

use super::{CatalogSpec, Strategy};
use crate::location::Location;
use crate::repo::records::Category;

/// A repository declared in the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct RepositorySpec {
    /// The plan's name for it.
    pub name: String,
    /// Where it lives.
    pub location: Location,
    /// Free text.
    pub description: Option<String>,
    /// S3 settings, for `s3://` locations.
    pub s3: Option<crate::store::S3Options>,
    /// The key of an encrypted repository.
    pub encryption: Option<crate::store::crypto::UserKey>,
    /// The plan refuses to leave this repository without encryption.
    pub require_encryption: bool,
}

/// One entry of `bcn apply`.
#[derive(Debug, Clone)]
pub struct BackupEntry {
    /// Its unique name.
    pub name: String,
    /// The source catalog.
    pub catalog: Arc<CatalogSpec>,
    /// One database only.
    pub database: Option<Vec<String>>,
    /// One table of `database` only.
    pub table: Option<String>,
    /// The repository.
    pub repository: Arc<RepositorySpec>,
    /// The strategy.
    pub strategy: Arc<Strategy>,
    /// The categories it takes.
    pub categories: Vec<Category>,
    /// Commands run around it.
    pub hooks: Hooks,
}

/// Commands run around an entry.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Hooks {
    /// Before the backup; a failure fails the entry.
    pub before: Vec<Vec<String>>,
    /// After the entry, whatever happened.
    pub after: Vec<Vec<String>>,
    /// The longest one hook may run.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for Hooks {
    /// Program names only: arguments may hold secrets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let programs = |hooks: &[Vec<String>]| -> Vec<String> {
            hooks.iter().filter_map(|h| h.first().cloned()).collect()
        };
        f.debug_struct("Hooks")
            .field("before", &programs(&self.before))
            .field("after", &programs(&self.after))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Assigns categories to `database.table` names.
#[derive(Debug, Clone)]
pub struct Categorizer {
    pub(super) ordered: Vec<(Category, GlobSet)>,
    pub(super) default: Category,
}

impl Default for Categorizer {
    fn default() -> Self {
        Self {
            ordered: Vec::new(),
            default: Category::Global,
        }
    }
}

impl Categorizer {
    /// The category of `database.table`.
    pub fn category(&self, qualified: &str) -> Category {
        self.ordered
            .iter()
            .find(|(_, set)| set.is_match(qualified))
            .map_or(self.default, |(c, _)| *c)
    }
}
