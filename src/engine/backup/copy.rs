//! The files of a table's backup, streamed: the walk's files sorted by relative path
//! ([`Found`], spilled to temporary files beyond a bound), merged with the earlier file list
//! read a part at a time; for each file whether the repository holds it already (the earlier
//! list has it, or an interrupted run left it) or it must be copied ([`FilePlan`]); each
//! reused, copied server-side on one S3 service, or streamed and checksummed, several at
//! once; the entries written out in order, and the file list staged a part at a time. A table
//! of any number of files takes a bounded amount of memory, but for 20 bytes a file for the
//! references between them.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};

use futures::stream::FuturesUnordered;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::engine::files::{PathDigest, Refs, TableFile, path_digest};
use crate::engine::transfer::{self, TransferError, file_to_store, hash_stored};
use crate::engine::{Event, TableError, error_chain};
use crate::plan::BackupMode;
use crate::repo::layout;
use crate::repo::records::{FileEntry, FileKind, FileList};

use super::spill::Spill;
use super::table::{Added, Run, Stored, TableJob};

/// Small local files copied into the repository by one task of the blocking pool: one
/// hand-off between the runtime and the pool for them all, where each had its own.
const BATCH: usize = 32;

/// A file the walk found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Found {
    /// Its path relative to the table's location ([`layout::relative_file_path`]).
    rel: String,
    /// Its absolute path.
    path: String,
    kind: FileKind,
    /// The size the metadata records, else for a metadata file the size read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// For a metadata file read while walking, the SHA-256 of the bytes read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sha256: Option<[u8; 32]>,
}

impl Found {
    /// A file an earlier file list holds, as a manifest not read again references it.
    fn earlier(entry: &FileEntry) -> Self {
        Self {
            rel: entry.rel.clone(),
            path: entry.path.clone(),
            kind: entry.kind,
            size: Some(entry.size),
            sha256: None,
        }
    }
}

/// The order of a file list: by relative path, then path.
fn file_order(a: &Found, b: &Found) -> Ordering {
    a.rel.cmp(&b.rel).then_with(|| a.path.cmp(&b.path))
}

/// A table's files as its metadata walk hands them out, gathered for storing.
pub(super) struct WalkedFiles {
    location: String,
    /// The files found (a file several manifests hold comes once per manifest).
    found: Spill<Found>,
    /// What each manifest list and manifest references, by path.
    refs: HashMap<String, Refs>,
    /// The earlier file list whose entries are reused, with its length.
    earlier: Option<(FileList, u32)>,
    /// The entries of the earlier list that a manifest not read again references.
    carried: Bits,
}

impl WalkedFiles {
    /// Files of the table at `location`, to be merged with `earlier` (a file list and its
    /// number of entries), `held` of them held in memory.
    pub(super) fn new(location: &str, earlier: Option<(FileList, u32)>, held: usize) -> Self {
        let len = earlier.as_ref().map_or(0, |(_, len)| *len);
        Self {
            location: location.to_owned(),
            found: Spill::sorted(held, file_order),
            refs: HashMap::new(),
            earlier,
            carried: Bits::new(len),
        }
    }

    /// Takes a batch of the walk.
    pub(super) fn add(&mut self, files: Vec<TableFile>) -> std::io::Result<()> {
        for mut file in files {
            if let Some(refs) = file.refs.take() {
                if let Refs::Earlier(indices) = &refs {
                    for &i in indices {
                        self.carried.set(i);
                    }
                }
                self.refs.insert(file.path.clone(), refs);
            }
            self.found.push(Found {
                rel: layout::relative_file_path(&self.location, &file.path),
                path: file.path,
                kind: file.kind,
                size: file.expected_size,
                sha256: file.walked_sha256,
            })?;
        }
        Ok(())
    }
}

/// A set of indices below a bound.
struct Bits(Vec<u64>);

impl Bits {
    fn new(len: u32) -> Self {
        Self(vec![0; (len as usize).div_ceil(64)])
    }

    /// Sets `i`; one beyond the bound (a damaged reference) is left out.
    fn set(&mut self, i: u32) {
        if let Some(word) = self.0.get_mut(i as usize / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0)
    }
}

/// What a backup does with one file of a table.
enum FilePlan {
    /// The earlier file list has it, with this entry.
    Known(FileEntry),
    /// The repository holds it (left by an interrupted run): checksummed there.
    InRepository {
        /// The file as the walk found it.
        file: Found,
        /// Its size in the repository.
        size: u64,
    },
    /// To be copied.
    Copy {
        /// The file as the walk found it.
        file: Found,
        /// `bcn verify` marked the stored copy damaged: it is replaced.
        damaged: bool,
    },
}

/// One entry of the new file list, at `index`: a file the walk found or one a manifest not
/// read again references, and the earlier list's entry for it.
struct Candidate {
    index: u32,
    file: Found,
    earlier: Option<FileEntry>,
}

/// The files of the new file list in order: the walk's files merged with the entries of the
/// earlier list that manifests not read again reference. Each is given its index in the new
/// list, which [`Indices`] records by path and by earlier index.
struct Candidates<'a, F: Iterator, P> {
    found: std::iter::Peekable<F>,
    /// The earlier list's parts, and the entries left of the one being read with their
    /// indices.
    parts: Option<P>,
    earlier: VecDeque<(u32, FileEntry)>,
    next_earlier: u32,
    carried: &'a Bits,
    ready: VecDeque<Candidate>,
    indices: Indices,
}

/// Where the entries of the new list went: to resolve what manifests reference.
struct Indices {
    next: u32,
    /// Every entry by its path's digest; sorted once complete.
    by_digest: Vec<(PathDigest, u32)>,
    /// The entries taken from the earlier list, by their index there (`u32::MAX`: not taken).
    by_earlier: Vec<u32>,
}

impl Indices {
    /// The new indices of what `refs` names: `None` when one is not in the new list.
    fn resolve(&self, refs: &Refs) -> Option<Vec<u32>> {
        match refs {
            Refs::Paths(digests) => digests
                .iter()
                .map(|d| {
                    let at = self.by_digest.binary_search_by(|(x, _)| x.cmp(d)).ok()?;
                    Some(self.by_digest[at].1)
                })
                .collect(),
            Refs::Earlier(indices) => indices
                .iter()
                .map(|&i| {
                    self.by_earlier
                        .get(i as usize)
                        .copied()
                        .filter(|&n| n != u32::MAX)
                })
                .collect(),
        }
    }
}

impl<'a, F, P, E> Candidates<'a, F, P>
where
    F: Iterator<Item = std::io::Result<Found>>,
    P: futures::Stream<Item = Result<E, crate::repo::RepoError>> + Unpin,
    E: Into<Vec<FileEntry>>,
{
    /// The merge of `found` (sorted) with the earlier list's `parts` (of `earlier_len`
    /// entries), of which `carried` are still referenced.
    fn new(found: F, parts: Option<P>, carried: &'a Bits, earlier_len: u32) -> Self {
        Self {
            found: found.peekable(),
            parts,
            earlier: VecDeque::new(),
            next_earlier: 0,
            carried,
            ready: VecDeque::new(),
            indices: Indices {
                next: 0,
                by_digest: Vec::new(),
                by_earlier: vec![u32::MAX; earlier_len as usize],
            },
        }
    }

    /// The first entry of the earlier list not taken yet.
    async fn earlier_head(&mut self) -> Result<Option<&FileEntry>, TableError> {
        while self.earlier.is_empty() {
            let Some(parts) = self.parts.as_mut() else {
                return Ok(None);
            };
            match parts.try_next().await.map_err(|e| TableError::repo(&e))? {
                Some(part) => {
                    for entry in part.into() {
                        self.earlier.push_back((self.next_earlier, entry));
                        self.next_earlier += 1;
                    }
                }
                None => self.parts = None,
            }
        }
        Ok(self.earlier.front().map(|(_, e)| e))
    }

    async fn next(&mut self) -> Result<Option<Candidate>, TableError> {
        loop {
            if let Some(ready) = self.ready.pop_front() {
                return Ok(Some(ready));
            }
            if let Some(Err(e)) = self.found.next_if(Result::is_err) {
                return Err(spill_error("reading back", &e));
            }
            // The least relative path left on either side, and every file at it.
            let found_rel = self
                .found
                .peek()
                .and_then(|f| Some(f.as_ref().ok()?.rel.clone()));
            let earlier_rel = self.earlier_head().await?.map(|e| e.rel.clone());
            let rel = match (found_rel, earlier_rel) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => return Ok(None),
            };
            let mut found: Vec<Found> = Vec::new();
            while let Some(Ok(f)) = self
                .found
                .next_if(|f| f.as_ref().is_ok_and(|f| f.rel == rel))
            {
                if found.last().is_none_or(|last| last.path != f.path) {
                    found.push(f);
                }
            }
            let mut earlier: Vec<(u32, FileEntry)> = Vec::new();
            while self.earlier_head().await?.is_some_and(|e| e.rel == rel) {
                earlier.extend(self.earlier.pop_front());
            }
            if self.earlier_head().await?.is_some_and(|e| e.rel < rel) {
                return Err(TableError::Damaged(
                    "the earlier file list of the table is not in order; run `bcn verify`".into(),
                ));
            }
            // Matched by path (files of one relative path are one, but for odd spellings).
            earlier.sort_by(|a, b| a.1.path.cmp(&b.1.path));
            let mut earlier = earlier.into_iter().peekable();
            let mut found = found.into_iter().peekable();
            loop {
                let order = match (found.peek(), earlier.peek()) {
                    (Some(f), Some((_, e))) => f.path.cmp(&e.path),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => break,
                };
                let (f, e) = match order {
                    Ordering::Less => (found.next(), None),
                    Ordering::Greater => (None, earlier.next()),
                    Ordering::Equal => (found.next(), earlier.next()),
                };
                let file = match (f, &e) {
                    (Some(f), _) => f,
                    (None, Some((i, e))) if self.carried.contains(*i) => Found::earlier(e),
                    // An earlier entry no manifest of this walk references is not in the
                    // table any more.
                    (None, _) => continue,
                };
                let index = self.indices.next;
                self.indices.next += 1;
                self.indices
                    .by_digest
                    .push((path_digest(&file.path), index));
                if let Some((i, _)) = &e
                    && let Some(slot) = self.indices.by_earlier.get_mut(*i as usize)
                {
                    *slot = index;
                }
                self.ready.push_back(Candidate {
                    index,
                    file,
                    earlier: e.map(|(_, e)| e),
                });
            }
        }
    }
}

/// A temporary file holding part of a table's file list failed (`doing`: writing, reading
/// back).
pub(super) fn spill_error(doing: &str, e: &std::io::Error) -> TableError {
    TableError::Io(format!(
        "{doing} the table's file list in a temporary file (TMPDIR): {}",
        error_chain(e)
    ))
}

impl TableJob<'_> {
    /// Stores the files of a table the repository lacks (or, for a dry run, says what it
    /// would store), and stages its file list `list`. Returns the list's number of files and
    /// bytes, and what was added.
    pub(super) async fn store_files(
        &self,
        file_io: &iceberg::io::FileIO,
        files: WalkedFiles,
        list: FileList,
    ) -> Result<(u64, u64, Added), TableError> {
        let WalkedFiles {
            found,
            refs,
            earlier,
            carried,
            ..
        } = files;
        let key = list.table_key.clone();
        let (earlier_list, earlier_len) = earlier.unzip();
        // A table's first backup, with nothing left by a stopped run: no file needs asking for.
        let unstored = earlier_list.is_none() && self.holds_none_of(&key).await;
        let parts = earlier_list
            .as_ref()
            .map(|l| Box::pin(self.repo.filelist_parts(&key, &l.pit, l)));
        let mut candidates =
            Candidates::new(found.into_iter(), parts, &carried, earlier_len.unwrap_or(0));
        // The entries in order, without what manifests reference yet: resolved once every
        // file has its index.
        let mut entries: Option<Spill<FileEntry>> =
            (self.run == Run::Store).then(|| Spill::in_order(self.files_in_memory));
        let mut done: BTreeMap<u32, FileEntry> = BTreeMap::new();
        let mut next_out = 0;
        let (mut count, mut bytes, mut added) = (0, 0, Added::default());
        let mut copying = FuturesUnordered::new();
        let concurrency = self.request.options.file_concurrency.max(1);
        let mut exhausted = false;
        // Small local files go to the store several at a time ([`BATCH`]); the candidate that
        // ended a batch waits here for the next.
        let batch_size = if concurrency == 1 { 1 } else { BATCH };
        let batched = |c: &Candidate| {
            self.run == Run::Store
                && c.file.size.is_some_and(crate::store::is_small)
                && transfer::local_path(&c.file.path).is_some()
        };
        let mut held: Option<Candidate> = None;
        loop {
            while !exhausted && copying.len() < concurrency {
                let next = if held.is_some() {
                    held.take()
                } else {
                    candidates.next().await?
                };
                let Some(first) = next else {
                    exhausted = true;
                    break;
                };
                let mut batch = vec![first];
                while batch.len() < batch_size && batched(&batch[0]) {
                    match candidates.next().await? {
                        Some(c) if batched(&c) => batch.push(c),
                        Some(c) => {
                            held = Some(c);
                            break;
                        }
                        None => {
                            exhausted = true;
                            break;
                        }
                    }
                }
                copying.push(self.store_candidates(&key, file_io, batch, unstored));
            }
            let Some(result) = copying.next().await else {
                break;
            };
            for (index, entry, stored) in result? {
                count += 1;
                bytes += entry.size;
                if stored != Stored::Reused {
                    added.files += 1;
                    added.bytes += entry.size;
                }
                if stored == Stored::ServerSide {
                    added.server_side += 1;
                }
                if let Some(entries) = entries.as_mut() {
                    // Out in order: files finish in any order.
                    done.insert(index, entry);
                    while let Some(entry) = done.remove(&next_out) {
                        entries
                            .push(entry)
                            .map_err(|e| spill_error("writing", &e))?;
                        next_out += 1;
                    }
                }
            }
        }
        if let Some(entries) = entries {
            let mut indices = candidates.indices;
            indices.by_digest.sort_unstable();
            let mut writer = self.repo.filelist_writer(list);
            for entry in entries.into_iter() {
                let mut entry = entry.map_err(|e| spill_error("reading back", &e))?;
                entry.refs = refs.get(&entry.path).and_then(|r| indices.resolve(r));
                writer.push(entry).await.map_err(|e| TableError::repo(&e))?;
            }
            writer.finish().await.map_err(|e| TableError::repo(&e))?;
        }
        Ok((count, bytes, added))
    }

    /// Whether the repository holds none of the files of the table `key` (the first page of
    /// a listing, instead of a question per file). Not known — a store that cannot list one
    /// table's files — is no.
    async fn holds_none_of(&self, key: &str) -> bool {
        use futures::TryStreamExt as _;
        let prefix = layout::table_file(key, "");
        let mut pages = self.repo.store().list_pages(&prefix);
        loop {
            match pages.try_next().await {
                Ok(Some(page)) if page.is_empty() => {}
                Ok(None) => return true,
                Ok(Some(_)) | Err(_) => return false,
            }
        }
    }

    /// Decides what to do with one file and does it (or, for a dry run, only decides).
    /// `unstored`: the repository holds none of the table's files.
    /// The local files among them to copy go to the store together, in one blocking task.
    async fn store_candidates(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        batch: Vec<Candidate>,
        unstored: bool,
    ) -> Result<Vec<(u32, FileEntry, Stored)>, TableError> {
        let mut done = Vec::with_capacity(batch.len());
        // The files to copy: their keys and local paths, and what the table says of them.
        let (mut files, mut walked) = (Vec::new(), Vec::new());
        for Candidate {
            index,
            file,
            earlier,
        } in batch
        {
            let plan = self.plan_file(key, file, earlier, unstored).await?;
            let (entry, stored) = match (self.run, plan) {
                (Run::Preview, plan) => preview_file(file_io, plan).await?,
                (Run::Store, FilePlan::Copy { file, damaged })
                    if let Some(local) = transfer::local_path(&file.path) =>
                {
                    files.push((layout::table_file(key, &file.rel), local));
                    walked.push((index, file, damaged));
                    continue;
                }
                (Run::Store, plan) => self.store_file(key, file_io, plan).await?,
            };
            done.push((index, entry, stored));
        }
        if walked.is_empty() {
            return Ok(done);
        }
        let stored = transfer::files_to_store(self.repo.store().as_ref(), &files).await;
        for (((index, file, damaged), (object, _)), result) in
            walked.into_iter().zip(&files).zip(stored)
        {
            let (size, sha256) = match result {
                Ok(copied) => copied,
                Err(e) => {
                    let e = TransferError::Store(e);
                    return Err(self.classify(file_io, &file.path, &e).await);
                }
            };
            let entry = self
                .check_copy(key, file, damaged, object, size, sha256)
                .await?;
            done.push((index, entry, Stored::Copied));
        }
        Ok(done)
    }

    /// Decides whether the repository holds `file` already; `earlier` is the earlier list's
    /// entry for it, `unstored` that the repository holds none of the table's files.
    async fn plan_file(
        &self,
        key: &str,
        file: Found,
        earlier: Option<FileEntry>,
        unstored: bool,
    ) -> Result<FilePlan, TableError> {
        let full = self.request.options.mode == BackupMode::Full;
        let object = layout::table_file(key, &file.rel);
        let damaged = self.damaged.contains(&object);
        let reusable = |size: u64| !full && !damaged && file.size.is_none_or(|e| e == size);
        if let Some(entry) = earlier.filter(|e| reusable(e.size)) {
            return Ok(FilePlan::Known(FileEntry {
                path: file.path,
                refs: None,
                ..entry
            }));
        }
        if full || unstored {
            // Copied whatever the repository holds, or it holds nothing: no need to ask.
            return Ok(FilePlan::Copy { file, damaged });
        }
        let stored = self
            .repo
            .store()
            .head(&object)
            .await
            .map_err(|e| TableError::io(&e))?;
        Ok(match stored.filter(|m| reusable(m.size)) {
            Some(meta) => FilePlan::InRepository {
                file,
                size: meta.size,
            },
            None => FilePlan::Copy { file, damaged },
        })
    }

    /// Makes sure one file is in the repository. Returns its entry and how it got there.
    async fn store_file(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        plan: FilePlan,
    ) -> Result<(FileEntry, Stored), TableError> {
        let store = self.repo.store().as_ref();
        let (file, damaged) = match plan {
            FilePlan::Known(entry) => return Ok((entry, Stored::Reused)),
            FilePlan::InRepository { file, size } => {
                let object = layout::table_file(key, &file.rel);
                let sha256 = hash_stored(store, &object, size)
                    .await
                    .map_err(|e| TableError::io(&e))?;
                if file.sha256.is_none_or(|w| hex::encode(w) == sha256) {
                    return Ok((entry(file, size, sha256), Stored::Reused));
                }
                // Not the metadata file walked: copied again (and checked against it).
                (file, true)
            }
            FilePlan::Copy { file, damaged } => (file, damaged),
        };
        let object = layout::table_file(key, &file.rel);
        if let Some(done) = self.copy_server_side(key, file_io, &file, &object).await? {
            self.healed(damaged, &object).await;
            return Ok(done);
        }
        let (size, sha256) = match file_to_store(file_io, &file.path, store, &object).await {
            Ok(done) => done,
            Err(e) => return Err(self.classify(file_io, &file.path, &e).await),
        };
        let entry = self
            .check_copy(key, file, damaged, &object, size, sha256)
            .await?;
        Ok((entry, Stored::Copied))
    }

    /// A file was copied into the repository as `object` (`size` bytes with SHA-256 `sha256`):
    /// checked against what the walk read of it, its entry.
    async fn check_copy(
        &self,
        key: &str,
        file: Found,
        damaged: bool,
        object: &str,
        size: u64,
        sha256: String,
    ) -> Result<FileEntry, TableError> {
        let store = self.repo.store().as_ref();
        if let Some(walked) = file.sha256.map(hex::encode)
            && walked != sha256
        {
            let _ = store.delete(object).await;
            return Err(TableError::Damaged(format!(
                "{} changed after it was read: its SHA-256 is now {sha256}, it was {walked} when the files it references were listed; Iceberg metadata files are never rewritten in place, so the file is damaged or something rewrote it; run the backup again once the table is sound",
                file.path
            )));
        }
        if file.size.is_some_and(|e| e != size) {
            let _ = store.delete(object).await;
            let e = TransferError::SizeMismatch {
                path: file.path,
                expected: file.size.unwrap_or(0),
                actual: size,
            };
            return Err(TableError::Damaged(e.to_string()));
        }
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        self.healed(damaged, object).await;
        Ok(entry(file, size, sha256))
    }

    /// A damaged object was copied again from the live table: its marker goes.
    async fn healed(&self, damaged: bool, object: &str) {
        if damaged {
            tracing::info!(
                object,
                "a damaged stored file was copied again from the live table"
            );
            if let Err(e) = self.repo.clear_damaged(object).await {
                tracing::warn!(object, error = %error_chain(&e), "could not remove the damage marker");
            }
        }
    }

    /// Copies a file on S3 into an S3 repository on the same service with a server-side copy
    /// (no bytes through bcn); `None` when that is not possible and the file must be streamed.
    /// The SHA-256 is the one S3 computed for the copy, or read back from the repository.
    async fn copy_server_side(
        &self,
        key: &str,
        file_io: &iceberg::io::FileIO,
        file: &Found,
        object: &str,
    ) -> Result<Option<(FileEntry, Stored)>, TableError> {
        /// `CopyObject` copies at most 5 GiB.
        const MAX_COPY: u64 = 5 << 30;
        let on_s3 = file.path.starts_with("s3://") || file.path.starts_with("s3a://");
        if !on_s3 || file.sha256.is_some() || file.size.is_none_or(|s| s > MAX_COPY) {
            return Ok(None);
        }
        let store = self.repo.store().as_ref();
        let endpoint = file_io.config().get("s3.endpoint").map(String::as_str);
        let (size, sha256) = match store.copy_from_s3(&file.path, endpoint, object).await {
            Ok(Some(copied)) => copied,
            Ok(None) => return Ok(None),
            Err(e) => {
                return Err(self
                    .classify(file_io, &file.path, &TransferError::Store(e))
                    .await);
            }
        };
        if file.size != Some(size) {
            let _ = store.delete(object).await;
            let e = TransferError::SizeMismatch {
                path: file.path.clone(),
                expected: file.size.unwrap_or(0),
                actual: size,
            };
            return Err(TableError::Damaged(e.to_string()));
        }
        let sha256 = if sha256.is_empty() {
            hash_stored(store, object, size)
                .await
                .map_err(|e| TableError::io(&e))?
        } else {
            sha256
        };
        self.observer.event(&Event::FileCopied {
            table: key,
            bytes: size,
        });
        Ok(Some((
            entry(file.clone(), size, sha256),
            Stored::ServerSide,
        )))
    }

    /// A copy failed: if the file is gone, the table moved on (retry); else it is fatal.
    async fn classify(
        &self,
        file_io: &iceberg::io::FileIO,
        path: &str,
        e: &TransferError,
    ) -> TableError {
        match file_io.exists(path).await {
            Ok(false) => TableError::Moved(format!("{path} vanished while it was copied")),
            _ => TableError::io(e),
        }
    }
}

/// What storing a file would add, without writing: its size as the metadata records it (or
/// read from the table's storage), no checksum.
async fn preview_file(
    file_io: &iceberg::io::FileIO,
    plan: FilePlan,
) -> Result<(FileEntry, Stored), TableError> {
    Ok(match plan {
        FilePlan::Known(entry) => (entry, Stored::Reused),
        FilePlan::InRepository { file, size } => (entry(file, size, String::new()), Stored::Reused),
        FilePlan::Copy { file, .. } => {
            let size = match file.size {
                Some(size) => size,
                None => transfer::file_size(file_io, &file.path)
                    .await
                    .map_err(|e| TableError::io(&e))?
                    .unwrap_or(0),
            };
            (entry(file, size, String::new()), Stored::Copied)
        }
    })
}

/// A file list entry.
fn entry(file: Found, size: u64, sha256: String) -> FileEntry {
    FileEntry {
        path: file.path,
        rel: file.rel,
        kind: file.kind,
        size,
        sha256,
        refs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(rel: &str, size: u64) -> Found {
        Found {
            rel: rel.to_owned(),
            path: format!("s3://b/t/{rel}"),
            kind: FileKind::Data,
            size: Some(size),
            sha256: None,
        }
    }

    fn earlier(rel: &str) -> FileEntry {
        FileEntry {
            path: format!("s3://b/t/{rel}"),
            rel: rel.to_owned(),
            kind: FileKind::Data,
            size: 1,
            sha256: "0".repeat(64),
            refs: None,
        }
    }

    /// The new list from the walk's files (spilled two at a time) and an earlier list of
    /// `a c d e g` in parts of two, of which a manifest not read again references `c` and `g`.
    #[tokio::test]
    async fn the_walk_and_the_earlier_list_merge_into_one_ordered_list() {
        let mut walked = Spill::sorted(2, file_order);
        for rel in ["f", "b", "d", "b", "a"] {
            walked.push(found(rel, 1)).unwrap();
        }
        let parts: Vec<Result<Vec<FileEntry>, crate::repo::RepoError>> = vec![
            Ok(vec![earlier("a"), earlier("c")]),
            Ok(vec![earlier("d"), earlier("e")]),
            Ok(vec![earlier("g")]),
        ];
        let mut carried = Bits::new(5);
        carried.set(1);
        carried.set(4);
        carried.set(99);
        let mut candidates = Candidates::new(
            walked.into_iter(),
            Some(futures::stream::iter(parts)),
            &carried,
            5,
        );
        let mut out = Vec::new();
        while let Some(c) = candidates.next().await.unwrap() {
            out.push((c.index, c.file.rel, c.earlier.map(|e| e.rel), c.file.size));
        }
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            out,
            vec![
                (0, "a".into(), some("a"), Some(1)),
                (1, "b".into(), None, Some(1)),
                (2, "c".into(), some("c"), Some(1)),
                (3, "d".into(), some("d"), Some(1)),
                (4, "f".into(), None, Some(1)),
                (5, "g".into(), some("g"), Some(1)),
            ],
            "`e` is not referenced any more; `b`, walked twice, comes once"
        );
        let mut indices = candidates.indices;
        indices.by_digest.sort_unstable();
        assert_eq!(
            indices.resolve(&Refs::Earlier(vec![1, 4])),
            Some(vec![2, 5])
        );
        assert_eq!(
            indices.resolve(&Refs::Earlier(vec![3])),
            None,
            "`e` is gone"
        );
        let digest = path_digest("s3://b/t/f");
        assert_eq!(indices.resolve(&Refs::Paths(vec![digest])), Some(vec![4]));
    }

    #[tokio::test]
    async fn an_earlier_list_out_of_order_is_refused() {
        let parts: Vec<Result<Vec<FileEntry>, crate::repo::RepoError>> =
            vec![Ok(vec![earlier("b"), earlier("a")])];
        let carried = Bits::new(2);
        let mut candidates = Candidates::new(
            Spill::sorted(2, file_order).into_iter(),
            Some(futures::stream::iter(parts)),
            &carried,
            2,
        );
        let e = loop {
            match candidates.next().await {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the disorder went unnoticed"),
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("not in order"), "{e}");
    }
}
