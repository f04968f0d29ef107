//! `bcn key`: the keys of an encrypted repository.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;

use super::{ExitStatus, Printer, RepoArgs};
use crate::engine::EngineError;
use crate::location::Location;
use crate::store::EncryptedStore;
use crate::store::crypto::{Kdf, UserKey};

/// List, add or remove the keys that open an encrypted repository.
///
/// Every key opens the same master keys, so adding a key and removing the old one rotates it
/// without re-encrypting anything. The repository is opened with its current key: the plan's
/// `encryption.key`, --key-file, or `BCN_REPOSITORY_KEY`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// List the repository's keys (the one in use is marked)
    List {
        #[command(flatten)]
        repo: RepoArgs,
    },
    /// Add a key, read from a file (a passphrase, or `raw:` and the base64 of 32 bytes)
    Add {
        #[command(flatten)]
        repo: RepoArgs,
        /// The new key's file.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
    },
    /// Remove a key by id (never the one in use, nor the last)
    Remove {
        #[command(flatten)]
        repo: RepoArgs,
        /// The key's id, as `bcn key list` shows it.
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Serialize)]
struct KeyRow {
    id: String,
    created_at: chrono::DateTime<chrono::Utc>,
    created_by: String,
    kdf: &'static str,
    current: bool,
}

/// The repository as an encrypted store, opened with its current key.
fn open(repo: &RepoArgs) -> anyhow::Result<EncryptedStore> {
    let plan = repo.plan.load(&[repo.section()])?;
    let spec = plan.as_ref().and_then(|(p, _)| p.repository(&repo.repo));
    let key = match repo.user_key()? {
        Some(key) => Some(key),
        None => spec.as_ref().and_then(|s| s.encryption.clone()),
    };
    let Some(key) = key else {
        return Err(EngineError::invalid(format!(
            "`bcn key` needs the current key of {}: `encryption.key` on the repository in the plan, --key-file FILE, or BCN_REPOSITORY_KEY",
            repo.repo
        ))
        .into());
    };
    let inner = if let Some(spec) = &spec {
        spec.location
            .open_with(&spec.s3.clone().unwrap_or_default())
            .map_err(|e| EngineError::invalid(format!("repository `{}`: {e}", spec.name)))?
    } else {
        let cwd = std::env::current_dir().context("reading the working directory")?;
        Location::repository(&repo.repo, &cwd)
            .and_then(|l| l.open())
            .map_err(|e| EngineError::invalid(e.to_string()))?
    };
    Ok(EncryptedStore::new(inner, key))
}

pub(crate) async fn run(args: Args, printer: Printer) -> anyhow::Result<ExitStatus> {
    match args.action {
        Action::List { repo } => {
            let store = Arc::new(open(&repo)?);
            let current = store.current_key().await?;
            if !store.exists().await? {
                return Err(EngineError::invalid(format!(
                    "{} holds no encrypted repository yet: its first backup creates it",
                    store_url(&store)
                ))
                .into());
            }
            let mut rows: Vec<KeyRow> = store
                .key_files()
                .await?
                .into_iter()
                .map(|f| KeyRow {
                    current: f.id == current,
                    id: f.id,
                    created_at: f.created_at,
                    created_by: f.created_by,
                    kdf: match f.kdf {
                        Kdf::Argon2id { .. } => "argon2id",
                        Kdf::Raw { .. } => "raw",
                    },
                })
                .collect();
            rows.sort_by_key(|r| r.created_at);
            let json = serde_json::json!({ "repository": store_url(&store), "keys": rows });
            printer.result("key", &json, || {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            format!("{}{}", if r.current { "*" } else { " " }, r.id),
                            r.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                            r.kdf.to_owned(),
                            r.created_by.clone(),
                        ]
                    })
                    .collect();
                super::printer::table(&[" ID", "CREATED", "KDF", "BY"], &table)
            });
        }
        Action::Add { repo, new_key_file } => {
            let store = open(&repo)?;
            let text = fs_err::read_to_string(&new_key_file).context("reading --new-key-file")?;
            crate::secret::register(&text);
            let new = UserKey::new(&text)
                .map_err(|e| EngineError::invalid(format!("--new-key-file: {e}")))?;
            let id = store.add_key(&new).await?;
            let json = serde_json::json!({ "repository": store_url(&store), "added": id });
            printer.result("key", &json, || {
                format!("added key {id} to {}\n", store_url(&store))
            });
        }
        Action::Remove { repo, id } => {
            let store = open(&repo)?;
            store.remove_key(&id).await?;
            let json = serde_json::json!({ "repository": store_url(&store), "removed": id });
            printer.result("key", &json, || {
                format!("removed key {id} from {}\n", store_url(&store))
            });
        }
    }
    Ok(ExitStatus::Success)
}

fn store_url(store: &EncryptedStore) -> String {
    crate::store::BackupStore::url(store).to_owned()
}
