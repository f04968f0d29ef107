//! The backup repository: bcn's on-disk format, its long-lived contract.
//!
//! A repository is a [`BackupStore`] holding the objects named in [`layout`], encoded as the
//! versioned records of [`records`]. Writes follow one order: table files, then per-table
//! metadata and file lists, then the PIT record last with create-if-absent. A PIT exists only
//! once its record exists; an interrupted backup leaves only files that the next run reuses.

pub mod layout;
pub mod lock;
pub mod records;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use crate::store::{BackupStore, StoreError, StoreErrorKind};
use records::{
    DecodeError, FORMAT_VERSION, FileList, Granularity, PitRecord, RepositoryManifest, Scope,
    decode, encode,
};

/// Errors of repository operations.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A record could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// No `bcn-repository.json` at the location.
    #[error("{url} is not a bcn repository (no {manifest})", manifest = layout::MANIFEST)]
    NotARepository {
        /// The repository URL.
        url: String,
    },
    /// The repository is encrypted and no key was given.
    #[error(
        "{url} is an encrypted repository and no key was given: set `encryption: {{ key: ... }}` on the repository in the plan, or pass --key-file FILE (or BCN_REPOSITORY_KEY)"
    )]
    KeyMissing {
        /// The repository URL.
        url: String,
    },
    /// A backup asked for a scope the repository does not hold.
    #[error(
        "repository {url} holds {held}; it cannot back up {requested} (a repository's scope is fixed when it is created): back up exactly what it holds (`bcn backup` with the --database/--table of its scope), or use another repository"
    )]
    ScopeMismatch {
        /// The repository URL.
        url: String,
        /// The fixed scope.
        held: Box<Scope>,
        /// The scope asked for.
        requested: Box<Scope>,
    },
    /// A first backup was pointed at a location that holds other things.
    #[error(
        "refusing to create a repository in {url}: it is not empty and holds no bcn repository ({manifest} is missing); choose an empty location (a repository that lost its {manifest} must have it put back, not be created anew)",
        manifest = layout::MANIFEST
    )]
    NotEmpty {
        /// The location.
        url: String,
    },
    /// The repository has no PIT yet.
    #[error("repository {url} has no PIT yet")]
    Empty {
        /// The repository URL.
        url: String,
    },
    /// No PIT matches the selector.
    #[error("no PIT {selector} in repository {url}")]
    PitNotFound {
        /// What was asked for.
        selector: String,
        /// The repository URL.
        url: String,
    },
    /// A PIT id prefix matches several PITs.
    #[error("PIT id prefix `{prefix}` is ambiguous in {url}: {matches}")]
    AmbiguousPit {
        /// The prefix.
        prefix: String,
        /// The repository URL.
        url: String,
        /// The PITs it matches.
        matches: String,
    },
    /// A PIT record is listed but its content names another PIT.
    #[error("PIT record {key} holds PIT {found}")]
    Mismatch {
        /// The key read.
        key: String,
        /// The id inside.
        found: String,
    },
    /// The exclusive lock is held.
    #[error(transparent)]
    Locked(#[from] Box<lock::LockedError>),
}

/// Which PIT a command means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PitSelector {
    /// The newest PIT.
    Latest,
    /// A PIT id, or an unambiguous prefix of one.
    Id(String),
    /// The newest PIT taken at or before this time.
    AtOrBefore(DateTime<Utc>),
}

impl PitSelector {
    /// Parses `latest`, an RFC 3339 time, `YYYY-MM-DD[ HH:MM[:SS]]` (UTC), or a PIT id.
    pub fn parse(value: &str) -> Self {
        let value = value.trim();
        if value.eq_ignore_ascii_case("latest") {
            return Self::Latest;
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(value) {
            return Self::AtOrBefore(t.with_timezone(&Utc));
        }
        for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
            if let Ok(t) = NaiveDateTime::parse_from_str(value, format) {
                return Self::AtOrBefore(Utc.from_utc_datetime(&t));
            }
        }
        if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
            // A bare date means the end of that day.
            let end = d.and_hms_opt(23, 59, 59).unwrap_or_default();
            return Self::AtOrBefore(Utc.from_utc_datetime(&end));
        }
        Self::Id(value.to_owned())
    }
}

impl std::fmt::Display for PitSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Latest => f.write_str("latest"),
            Self::Id(id) => write!(f, "`{id}`"),
            Self::AtOrBefore(t) => write!(f, "at or before {}", t.to_rfc3339()),
        }
    }
}

/// A PIT as found in the repository.
#[derive(Debug, Clone)]
pub enum PitEntry {
    /// Its record reads and checks.
    Readable(Box<PitRecord>),
    /// Its record cannot be read or fails its checks.
    Damaged {
        /// The PIT id (from its key).
        id: String,
        /// The record's key.
        key: String,
        /// Why it cannot be used.
        reason: String,
    },
}

impl RepoError {
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind;
        match self {
            Self::Locked(_) => ErrorKind::Locked,
            Self::ScopeMismatch { .. }
            | Self::NotEmpty { .. }
            | Self::KeyMissing { .. }
            | Self::AmbiguousPit { .. } => ErrorKind::Invalid,
            Self::NotARepository { .. } | Self::Empty { .. } | Self::PitNotFound { .. } => {
                ErrorKind::NotFound
            }
            // A damaged repository is a failure, never a usage error.
            _ => ErrorKind::Failure,
        }
    }
}

/// An opened repository.
#[derive(Debug, Clone)]
pub struct Repository {
    store: Arc<dyn BackupStore>,
    manifest: RepositoryManifest,
}

impl Repository {
    /// Opens an existing repository.
    pub async fn open(store: Arc<dyn BackupStore>) -> Result<Self, RepoError> {
        let bytes = match store.get(layout::MANIFEST).await {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => {
                let url = store.url().to_owned();
                // Only the plain store beneath an encrypted repository shows its marker.
                return Err(match store.head(crate::store::encrypted::MARKER).await {
                    Ok(Some(_)) => RepoError::KeyMissing { url },
                    _ => RepoError::NotARepository { url },
                });
            }
            Err(e) => return Err(e.into()),
        };
        let manifest = decode("repository manifest", layout::MANIFEST, &bytes)?;
        Ok(Self { store, manifest })
    }

    /// The repository that a first backup with `scope` would create, without writing it
    /// (dry runs plan against it).
    pub fn planned(store: Arc<dyn BackupStore>, scope: &Scope, now: DateTime<Utc>) -> Self {
        let manifest = RepositoryManifest {
            format_version: FORMAT_VERSION,
            repository_id: String::new(),
            granularity: scope.granularity(),
            scope: scope.clone(),
            created_at: now,
            created_by: crate::VERSION_STRING.to_owned(),
            record_checksums: true,
        };
        Self { store, manifest }
    }

    /// Opens the repository, creating it with `scope` when the location holds none. An existing
    /// repository must hold exactly `scope` (when given). Returns whether it was created.
    pub async fn open_or_init(
        store: Arc<dyn BackupStore>,
        scope: Option<&Scope>,
        now: DateTime<Utc>,
    ) -> Result<(Self, bool), RepoError> {
        match Self::open(store.clone()).await {
            Ok(repo) => {
                if let Some(scope) = scope {
                    repo.check_scope(scope)?;
                }
                Ok((repo, false))
            }
            Err(RepoError::NotARepository { url }) => {
                let Some(scope) = scope else {
                    return Err(RepoError::NotARepository { url });
                };
                if !store.is_empty().await? {
                    // Another first backup may have created it meanwhile.
                    return match Self::open(store.clone()).await {
                        Ok(repo) => repo.check_scope(scope).map(|()| (repo, false)),
                        Err(RepoError::NotARepository { .. }) => Err(RepoError::NotEmpty { url }),
                        Err(e) => Err(e),
                    };
                }
                let manifest = RepositoryManifest {
                    format_version: FORMAT_VERSION,
                    repository_id: uuid::Uuid::new_v4().to_string(),
                    granularity: scope.granularity(),
                    scope: scope.clone(),
                    created_at: now,
                    created_by: crate::VERSION_STRING.to_owned(),
                    record_checksums: true,
                };
                match store
                    .put_if_absent(layout::MANIFEST, encode(&manifest))
                    .await
                {
                    Ok(()) => Ok((Self { store, manifest }, true)),
                    // Another process created it first: use theirs, scope check included.
                    Err(e) if e.kind() == StoreErrorKind::AlreadyExists => {
                        Box::pin(Self::open_or_init(store, Some(scope), now)).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Decodes a record of this repository: in a repository whose records all carry their
    /// own checksum, a record without one has been edited (its checksum removed).
    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
        bytes: &[u8],
    ) -> Result<T, DecodeError> {
        records::decode_with(what, key, bytes, self.manifest.record_checksums)
    }

    /// Refuses any scope other than the repository's own.
    pub fn check_scope(&self, requested: &Scope) -> Result<(), RepoError> {
        if *requested == self.manifest.scope {
            Ok(())
        } else {
            Err(RepoError::ScopeMismatch {
                url: self.url().to_owned(),
                held: Box::new(self.manifest.scope.clone()),
                requested: Box::new(requested.clone()),
            })
        }
    }

    /// The storage.
    pub fn store(&self) -> &Arc<dyn BackupStore> {
        &self.store
    }

    /// The repository URL.
    pub fn url(&self) -> &str {
        self.store.url()
    }

    /// The manifest.
    pub fn manifest(&self) -> &RepositoryManifest {
        &self.manifest
    }

    /// The fixed scope.
    pub fn scope(&self) -> &Scope {
        &self.manifest.scope
    }

    /// The fixed granularity.
    pub fn granularity(&self) -> Granularity {
        self.manifest.granularity
    }

    /// Ids of every committed PIT, oldest first.
    pub async fn pit_ids(&self) -> Result<Vec<String>, RepoError> {
        let mut ids: Vec<String> = self
            .store
            .list(layout::PITS_PREFIX)
            .await?
            .iter()
            .filter_map(|o| layout::pit_id_of(&o.key).map(str::to_owned))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Reads one PIT record.
    pub async fn load_pit(&self, id: &str) -> Result<PitRecord, RepoError> {
        let key = layout::pit(id);
        let bytes = match self.store.get(&key).await {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(RepoError::PitNotFound {
                    selector: format!("`{id}`"),
                    url: self.url().to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let pit: PitRecord = self.decode("PIT record", &key, &bytes)?;
        if pit.id != id {
            return Err(RepoError::Mismatch { key, found: pit.id });
        }
        pit.check().map_err(|problem| DecodeError::Invalid {
            what: "PIT record",
            key,
            problem,
        })?;
        Ok(pit)
    }

    /// Every PIT record, oldest first; fails on the first one that cannot be read (for
    /// commands that must see every PIT, such as `gc`).
    pub async fn load_pits(&self) -> Result<Vec<PitRecord>, RepoError> {
        let mut pits = Vec::new();
        for id in self.pit_ids().await? {
            pits.push(self.load_pit(&id).await?);
        }
        Ok(pits)
    }

    /// Every PIT, oldest first, each readable or damaged: one unreadable record does not hide
    /// the others (`describe`, `list`, time-based `--pit`).
    pub async fn scan_pits(&self) -> Result<Vec<PitEntry>, RepoError> {
        let mut pits = Vec::new();
        for id in self.pit_ids().await? {
            pits.push(match self.load_pit(&id).await {
                Ok(pit) => PitEntry::Readable(Box::new(pit)),
                // Forgotten between the listing and the read: not a PIT any more.
                Err(RepoError::PitNotFound { .. }) => continue,
                Err(e) => PitEntry::Damaged {
                    key: layout::pit(&id),
                    id,
                    reason: crate::error::error_chain(&e),
                },
            });
        }
        Ok(pits)
    }

    /// The newest PIT, if any.
    pub async fn latest_pit(&self) -> Result<Option<PitRecord>, RepoError> {
        match self.pit_ids().await?.last() {
            Some(id) => Ok(Some(self.load_pit(id).await?)),
            None => Ok(None),
        }
    }

    /// Finds the PIT a selector means.
    pub async fn resolve_pit(&self, selector: &PitSelector) -> Result<PitRecord, RepoError> {
        let ids = self.pit_ids().await?;
        if ids.is_empty() {
            return Err(RepoError::Empty {
                url: self.url().to_owned(),
            });
        }
        let not_found = || RepoError::PitNotFound {
            selector: selector.to_string(),
            url: self.url().to_owned(),
        };
        match selector {
            PitSelector::Latest => self.load_pit(ids.last().ok_or_else(not_found)?).await,
            PitSelector::Id(id) => {
                if ids.contains(id) {
                    return self.load_pit(id).await;
                }
                let matches: Vec<&String> =
                    ids.iter().filter(|i| i.starts_with(id.as_str())).collect();
                match matches.as_slice() {
                    [one] => self.load_pit(one).await,
                    [] => Err(not_found()),
                    many => Err(RepoError::AmbiguousPit {
                        prefix: id.clone(),
                        url: self.url().to_owned(),
                        matches: many
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
            PitSelector::AtOrBefore(time) => {
                // Ids sort by time, but the record's own start time is what counts. A damaged
                // record is passed over (and said), so that it does not hide older PITs.
                for id in ids.iter().rev() {
                    let pit = match self.load_pit(id).await {
                        Ok(pit) => pit,
                        Err(e @ (RepoError::Decode(_) | RepoError::Mismatch { .. })) => {
                            tracing::warn!(
                                pit = %id,
                                error = %crate::error::error_chain(&e),
                                "passing over a damaged PIT"
                            );
                            continue;
                        }
                        Err(e) => return Err(e),
                    };
                    if pit.started_at <= *time {
                        return Ok(pit);
                    }
                }
                Err(not_found())
            }
        }
    }

    /// Reads a table's file list with every entry held at once (its parts into
    /// [`FileList::files`]): for tests. bcn reads a list a part at a time
    /// ([`Repository::filelist_parts`]), so that a list of any length takes one part of memory.
    #[cfg(test)]
    pub(crate) async fn load_filelist(
        &self,
        table_key: &str,
        pit: &str,
    ) -> Result<FileList, RepoError> {
        use futures::TryStreamExt as _;
        let mut list = self.load_filelist_header(table_key, pit).await?;
        // Not sized from the counts the list records: a tampered count must not allocate.
        let files: Vec<records::FileEntry> = self
            .filelist_parts(table_key, pit, &list)
            .map_ok(std::borrow::Cow::into_owned)
            .try_concat()
            .await?;
        list.files = files;
        Ok(list)
    }

    /// The entries of part `n` of `list`, the file list of `table_key` as of `pit`, checked
    /// against what the list records of it.
    pub async fn load_filelist_part(
        &self,
        table_key: &str,
        pit: &str,
        list: &FileList,
        n: usize,
    ) -> Result<Vec<records::FileEntry>, RepoError> {
        let key = layout::filelist_part(table_key, pit, n);
        let Some(part) = list.parts.get(n) else {
            return Err(DecodeError::Invalid {
                what: "file list",
                key: layout::filelist(table_key, pit),
                problem: format!("it has no part {n}"),
            }
            .into());
        };
        let bytes = self.store.get(&key).await?;
        Ok(records::decode_part(&key, part, &bytes)?)
    }

    /// The entries of `list`, the file list of `table_key` as of `pit` read with
    /// [`Repository::load_filelist_header`], a part at a time: its entries inline (format
    /// v1), or each part read and checked in turn.
    pub fn filelist_parts<'a>(
        &'a self,
        table_key: &'a str,
        pit: &'a str,
        list: &'a FileList,
    ) -> impl futures::Stream<Item = Result<std::borrow::Cow<'a, [records::FileEntry]>, RepoError>> + 'a
    {
        use futures::StreamExt as _;
        use std::borrow::Cow;
        let inline = list
            .parts
            .is_empty()
            .then_some(Ok(Cow::Borrowed(list.files.as_slice())));
        futures::stream::iter(inline).chain(futures::stream::iter(0..list.parts.len()).then(
            move |n| async move {
                self.load_filelist_part(table_key, pit, list, n)
                    .await
                    .map(Cow::Owned)
            },
        ))
    }

    /// Stages `list`, the file list of a PIT being written, with the entries it holds (see
    /// [`FileListWriter`]).
    pub async fn stage_filelist(&self, mut list: FileList) -> Result<(), RepoError> {
        let entries = std::mem::take(&mut list.files);
        let mut writer = self.filelist_writer(list);
        for entry in entries {
            writer.push(entry).await?;
        }
        writer.finish().await
    }

    /// Stages the file list `list` (of a PIT being written) with the entries pushed to the
    /// writer, in `rel` order: in parts of [`records::PART_FILES`], each staged once full,
    /// then the list that records them; durable with the PIT record that references them
    /// (see [`Repository::commit_pit`]). A list of any length takes one part of memory.
    pub fn filelist_writer(&self, mut list: FileList) -> FileListWriter<'_> {
        list.format_version = FORMAT_VERSION;
        list.files.clear();
        list.parts.clear();
        FileListWriter {
            repo: self,
            list,
            part: Vec::new(),
        }
    }

    /// Reads a table's file list as stored: entries inline (format v1) or only the
    /// [`FileList::parts`] that hold them.
    pub async fn load_filelist_header(
        &self,
        table_key: &str,
        pit: &str,
    ) -> Result<FileList, RepoError> {
        let key = layout::filelist(table_key, pit);
        let bytes = self.store.get(&key).await?;
        let list: FileList = self.decode("file list", &key, &bytes)?;
        list.check().map_err(|problem| DecodeError::Invalid {
            what: "file list",
            key,
            problem,
        })?;
        Ok(list)
    }

    /// Reads a table's stored metadata JSON (verbatim, possibly gzip-compressed).
    pub async fn load_table_metadata(
        &self,
        table_key: &str,
        pit: &str,
    ) -> Result<Bytes, RepoError> {
        Ok(self
            .store
            .get(&layout::table_metadata(table_key, pit))
            .await?)
    }

    /// Objects marked damaged by `bcn verify` (unreadable markers are skipped with a warning).
    pub async fn damaged_objects(&self) -> Result<std::collections::HashSet<String>, RepoError> {
        let mut keys = std::collections::HashSet::new();
        for object in self.store.list(layout::DAMAGED_PREFIX).await? {
            match self
                .store
                .get(&object.key)
                .await
                .map_err(RepoError::from)
                .and_then(|b| {
                    Ok(decode::<records::DamageRecord>(
                        "damage marker",
                        &object.key,
                        &b,
                    )?)
                }) {
                Ok(marker) => {
                    keys.insert(marker.key);
                }
                Err(e) => {
                    tracing::warn!(marker = %object.key, error = %crate::error::error_chain(&e), "unreadable damage marker");
                }
            }
        }
        Ok(keys)
    }

    /// Records one verification run.
    pub async fn record_verification(
        &self,
        record: &records::VerificationRecord,
    ) -> Result<(), RepoError> {
        Ok(self
            .store
            .put(&layout::verification(&record.id), encode(record))
            .await?)
    }

    /// Every verification run recorded, oldest first (unreadable records are skipped).
    pub async fn verifications(&self) -> Result<Vec<records::VerificationRecord>, RepoError> {
        let mut out = Vec::new();
        for object in self.store.list(layout::VERIFICATIONS_PREFIX).await? {
            let bytes = self.store.get(&object.key).await?;
            match decode::<records::VerificationRecord>("verification record", &object.key, &bytes)
            {
                Ok(record) => out.push(record),
                Err(e) => {
                    tracing::warn!(key = %object.key, error = %e, "unreadable verification record");
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Marks `key` damaged.
    pub async fn mark_damaged(
        &self,
        key: &str,
        problem: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let marker = records::DamageRecord {
            format_version: FORMAT_VERSION,
            key: key.to_owned(),
            problem: problem.to_owned(),
            found_at: now,
        };
        Ok(self
            .store
            .put(&layout::damaged(key), encode(&marker))
            .await?)
    }

    /// Removes the damage marker of `key` (the object is good again).
    pub async fn clear_damaged(&self, key: &str) -> Result<(), RepoError> {
        // The healed object first becomes durable.
        self.store.sync().await?;
        Ok(self.store.delete(&layout::damaged(key)).await?)
    }

    /// The newest PIT whose record reads, and the ids of damaged PITs newer than it: a
    /// backup compares against it, so that nothing new points into a damaged PIT.
    pub async fn newest_readable_pit(&self) -> Result<(Option<PitRecord>, Vec<String>), RepoError> {
        let mut damaged = Vec::new();
        for id in self.pit_ids().await?.iter().rev() {
            match self.load_pit(id).await {
                Ok(pit) => return Ok((Some(pit), damaged)),
                Err(RepoError::PitNotFound { .. }) => {}
                Err(e @ (RepoError::Decode(_) | RepoError::Mismatch { .. })) => {
                    tracing::warn!(pit = %id, error = %crate::error::error_chain(&e), "the newest PIT is damaged; comparing against an older one");
                    damaged.push(id.clone());
                }
                Err(e) => return Err(e),
            }
        }
        Ok((None, damaged))
    }

    /// Commits a PIT: its record is created if absent, and only then does the PIT exist.
    pub async fn commit_pit(&self, pit: &PitRecord) -> Result<(), RepoError> {
        // Everything the record references is durable before the record exists.
        self.store.sync().await?;
        Ok(self
            .store
            .put_if_absent(&layout::pit(&pit.id), encode(pit))
            .await?)
    }
}

/// Stages a file list a part at a time ([`Repository::filelist_writer`]).
pub struct FileListWriter<'a> {
    repo: &'a Repository,
    list: FileList,
    part: Vec<records::FileEntry>,
}

impl FileListWriter<'_> {
    /// Adds the next entry (in `rel` order); stages the part it fills.
    pub async fn push(&mut self, entry: records::FileEntry) -> Result<(), RepoError> {
        self.part.push(entry);
        if self.part.len() >= records::PART_FILES {
            self.stage_part().await?;
        }
        Ok(())
    }

    async fn stage_part(&mut self) -> Result<(), RepoError> {
        use sha2::Digest as _;
        let n = self.list.parts.len();
        let bytes = records::encode_part(&self.part);
        self.list.parts.push(records::FileListPart {
            files: self.part.len() as u64,
            size: bytes.len() as u64,
            sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        });
        self.part.clear();
        self.repo
            .store
            .put_staged(
                &layout::filelist_part(&self.list.table_key, &self.list.pit, n),
                Bytes::from(bytes),
            )
            .await?;
        Ok(())
    }

    /// Stages the last part and the list.
    pub async fn finish(mut self) -> Result<(), RepoError> {
        if !self.part.is_empty() {
            self.stage_part().await?;
        }
        let key = layout::filelist(&self.list.table_key, &self.list.pit);
        Ok(self.repo.store.put_staged(&key, encode(&self.list)).await?)
    }
}

#[cfg(test)]
mod tests;
