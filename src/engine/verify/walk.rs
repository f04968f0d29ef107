//! The walk of one PIT: every record, file list, stored metadata and file it references,
//! checked for presence, size and (with `--read-data`) checksum.
//!
//! Its memory does not hold what it walks: the listing is kept as a digest and a size per
//! object, file lists are read a part at a time, a parsed manifest is remembered by the
//! digests of the paths it references, and the files to read wait in a queue of bounded
//! length: ~65 bytes a file (measured between 20,040 and 100,200 files).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use iceberg::spec::{FormatVersion, Manifest, ManifestList, ManifestStatus, TableMetadata};

use super::{Origin, Problem, Reclaimable, Subset};
use crate::engine::EngineError;
use crate::engine::files::{PathDigest, path_digest};
use crate::engine::transfer::{self, maybe_gunzip, sha256_hex};
use crate::repo::records::{FileEntry, FileKind, FileList, ObjectKind, PitRecord, TableRecord};
use crate::repo::{Repository, layout, lock};
use crate::store::{BackupStore, ListedNames};

/// What to do about a table state that cannot be restored.
const REPAIR: &str = "the table cannot be restored from this PIT; an older or newer PIT may still hold it, and a full backup (`bcn backup --full`) copies the live table again";

/// What to do when the store could not be read (a transient fault, or storage trouble).
const UNREADABLE: &str =
    "the store could not be read; run verify again, and check the repository's storage";

/// What to do about stored metadata and a file list that disagree.
const REPAIR_LIST: &str = "the file list or the stored metadata of this table is damaged; a full backup (`bcn backup --full`) stores the table anew";

/// Files waiting to be read (`--read-data`) before they are read together.
const READ_QUEUE: usize = 1024;

/// The objects under `tables/`: by the digest of their listed names ([`path_digest`]), sorted,
/// each with its size and whether a checked table state reaches it.
pub(super) struct Objects {
    sizes: Vec<(PathDigest, u64)>,
    reached: Vec<bool>,
}

impl Objects {
    /// Lists the objects under `tables/`, a page at a time.
    pub(super) async fn list(store: &dyn BackupStore) -> Result<Self, EngineError> {
        let mut sizes = Vec::new();
        let mut pages = store.list_pages(layout::TABLES_PREFIX);
        while let Some(page) = pages.try_next().await? {
            sizes.extend(page.iter().map(|o| (path_digest(&o.key), o.size)));
        }
        sizes.sort_unstable();
        sizes.dedup_by_key(|(digest, _)| *digest);
        sizes.shrink_to_fit();
        let reached = vec![false; sizes.len()];
        Ok(Self { sizes, reached })
    }

    /// The index of the object listed as `name`.
    fn find(&self, name: &PathDigest) -> Option<usize> {
        self.sizes.binary_search_by(|(d, _)| d.cmp(name)).ok()
    }

    /// Marks object `i` reached; whether it was not before.
    fn reach(&mut self, i: usize) -> bool {
        !std::mem::replace(&mut self.reached[i], true)
    }
}

/// `--read-data`: which files to read, and those waiting to be.
pub(super) struct Reading<'a> {
    subset: Subset,
    salt: String,
    concurrency: usize,
    observer: &'a dyn crate::engine::Observer,
    queue: Vec<(String, FileEntry, Arc<Origin>)>,
    pub(super) files: usize,
    pub(super) bytes: u64,
}

impl<'a> Reading<'a> {
    pub(super) fn new(
        subset: Subset,
        salt: String,
        concurrency: usize,
        observer: &'a dyn crate::engine::Observer,
    ) -> Self {
        Self {
            subset,
            salt,
            concurrency,
            observer,
            queue: Vec::new(),
            files: 0,
            bytes: 0,
        }
    }
}

/// State of one verification run.
pub(super) struct Walk<'a> {
    repo: &'a Repository,
    /// Every object under `tables/`.
    objects: Objects,
    /// How the listing names an object.
    names: ListedNames,
    /// Referenced stored files that are not stored, by the digest of their listed names.
    missing: HashSet<PathDigest>,
    /// Distinct stored files referenced, and their bytes.
    pub(super) files_checked: usize,
    pub(super) bytes_checked: u64,
    /// The file-list entry of each stored file a problem names (the first one seen), for
    /// `--repair`.
    pub(super) damaged: HashMap<String, FileEntry>,
    /// The file lists of the table states checked (each is checked once).
    lists: HashSet<String>,
    /// Manifests and manifest lists parsed so far, by the digest of their keys, with the
    /// digests of the paths each references.
    parsed: HashMap<PathDigest, Arc<Vec<PathDigest>>>,
    pub(super) problems: Vec<Problem>,
    /// A PIT record or file list could not be read: what is referenced is not known.
    unreadable: bool,
    /// `--read-data`.
    pub(super) reading: Option<Reading<'a>>,
}

impl<'a> Walk<'a> {
    pub(super) fn new(
        repo: &'a Repository,
        objects: Objects,
        names: ListedNames,
        problems: Vec<Problem>,
        reading: Option<Reading<'a>>,
    ) -> Self {
        let unreadable = !problems.is_empty();
        Self {
            repo,
            objects,
            names,
            missing: HashSet::new(),
            files_checked: 0,
            bytes_checked: 0,
            damaged: HashMap::new(),
            lists: HashSet::new(),
            parsed: HashMap::new(),
            problems,
            unreadable,
            reading,
        }
    }

    /// Manifests and manifest lists parsed.
    pub(super) fn manifests_read(&self) -> usize {
        self.parsed.len()
    }

    /// Distinct table states checked.
    pub(super) fn tables_checked(&self) -> usize {
        self.lists.len()
    }

    /// The index of the stored object `key`, if it is stored.
    fn object(&self, key: &str) -> Option<usize> {
        self.objects.find(&path_digest(&(self.names)(key)))
    }

    /// The stored size of the object `key`, if it is stored.
    fn object_size(&self, key: &str) -> Option<u64> {
        self.object(key).map(|i| self.objects.sizes[i].1)
    }

    pub(super) fn problem(
        &mut self,
        origin: &Origin,
        key: Option<&str>,
        problem: String,
        hint: &str,
    ) {
        self.problems.push(Problem {
            pit: Some(origin.pit.clone()),
            table: Some(origin.table.clone()),
            key: key.map(str::to_owned),
            problem,
            hint: hint.to_owned(),
        });
    }

    /// A problem of the stored file `key`, whose file-list entry is `entry`.
    fn file_problem(
        &mut self,
        origin: &Origin,
        key: &str,
        entry: &FileEntry,
        problem: String,
        hint: &str,
    ) {
        self.problem(origin, Some(key), problem, hint);
        if !self.damaged.contains_key(key) {
            self.damaged.insert(
                key.to_owned(),
                FileEntry {
                    refs: None,
                    ..entry.clone()
                },
            );
        }
    }

    /// Checks the state of `table` that `pit` points at, once per `(key, stored_in)`.
    pub(super) async fn check_table(&mut self, pit: &PitRecord, table: &TableRecord) {
        let Some(stored_in) = &table.stored_in else {
            return;
        };
        let list_key = layout::filelist(&table.key, stored_in);
        if !self.lists.insert(list_key.clone()) {
            return;
        }
        let metadata_key = layout::table_metadata(&table.key, stored_in);
        self.reach(&list_key);
        self.reach(&metadata_key);
        let origin = Arc::new(Origin {
            pit: pit.id.clone(),
            table: crate::names::escape_control(&table.name.to_string()).into_owned(),
        });
        let repo = self.repo;
        let list = match repo.load_filelist_header(&table.key, stored_in).await {
            Ok(header) => header,
            Err(e) => return self.unreadable_list(&origin, &list_key, &e),
        };
        // The parts of the list are its objects too, reachable even when one is damaged.
        for n in 0..list.parts.len() {
            self.reach(&layout::filelist_part(&table.key, stored_in, n));
        }
        // The list a part at a time (as the whole list was read before the metadata): each
        // file checked, its path kept as a digest, and the manifest lists, manifests and
        // statistics files (few) kept whole for the walk.
        let mut paths: Vec<PathDigest> = Vec::new();
        let mut metadata_files: HashMap<PathDigest, FileEntry> = HashMap::new();
        let mut parts = std::pin::pin!(repo.filelist_parts(&table.key, stored_in, &list));
        while let Some(part) = parts.next().await {
            let part = match part {
                Ok(part) => part,
                Err(e) => return self.unreadable_list(&origin, &list_key, &e),
            };
            for entry in part.iter() {
                self.check_file(&origin, &table.key, entry);
                self.read_queued(false).await;
                let digest = path_digest(&entry.path);
                paths.push(digest);
                if !matches!(
                    entry.kind,
                    FileKind::Data | FileKind::PositionDeletes | FileKind::EqualityDeletes
                ) {
                    metadata_files.insert(
                        digest,
                        FileEntry {
                            refs: None,
                            ..entry.clone()
                        },
                    );
                }
            }
        }
        let metadata = match repo.load_table_metadata(&table.key, stored_in).await {
            Ok(raw) if sha256_hex(&raw) == list.metadata_sha256 => raw,
            Ok(_) => {
                let problem = format!(
                    "stored metadata {metadata_key} does not match the SHA-256 its file list records"
                );
                self.problem(&origin, Some(&metadata_key), problem, REPAIR);
                return;
            }
            Err(e) => {
                self.problem(
                    &origin,
                    Some(&metadata_key),
                    crate::error::error_chain(&e),
                    REPAIR,
                );
                return;
            }
        };
        if table.kind == ObjectKind::View {
            // A view is its metadata file: nothing else to reach.
            if let Err(e) = crate::engine::backup::view::ViewFacts::parse(&metadata) {
                let problem = format!("stored view metadata {metadata_key} does not read: {e}");
                self.problem(&origin, Some(&metadata_key), problem, REPAIR);
            }
            return;
        }
        paths.sort_unstable();
        let files = ListedFiles {
            paths,
            metadata: metadata_files,
        };
        self.walk_metadata(&origin, &table.key, &list, &files, &metadata)
            .await;
    }

    /// The file list `list_key` (or one of its parts) does not read: what it references is
    /// not known.
    fn unreadable_list(&mut self, origin: &Origin, list_key: &str, e: &crate::repo::RepoError) {
        self.unreadable = true;
        self.problem(origin, Some(list_key), crate::error::error_chain(e), REPAIR);
    }

    /// Marks the object `key` reached, if it is stored.
    fn reach(&mut self, key: &str) {
        if let Some(i) = self.object(key) {
            self.objects.reach(i);
        }
    }

    /// Checks that the stored file of `entry` is there with its size; the first time it is
    /// seen, counts it and (`--read-data`) queues it to be read.
    fn check_file(&mut self, origin: &Arc<Origin>, table_key: &str, entry: &FileEntry) {
        let key = layout::table_file(table_key, &entry.rel);
        let name = path_digest(&(self.names)(&key));
        let Some(i) = self.objects.find(&name) else {
            let problem = format!("stored file {key} ({}) is missing", entry.path);
            self.file_problem(origin, &key, entry, problem, REPAIR);
            if self.missing.insert(name) {
                self.files_checked += 1;
                self.bytes_checked += entry.size;
            }
            return;
        };
        let size = self.objects.sizes[i].1;
        if size != entry.size {
            let problem = format!(
                "stored file {key} has {size} bytes, its file list records {}",
                entry.size
            );
            self.file_problem(origin, &key, entry, problem, REPAIR);
        }
        if !self.objects.reach(i) {
            return;
        }
        self.files_checked += 1;
        self.bytes_checked += entry.size;
        if let Some(reading) = &mut self.reading
            && size == entry.size
            && reading.subset.selects(&key, &reading.salt)
        {
            let entry = FileEntry {
                refs: None,
                ..entry.clone()
            };
            reading.queue.push((key, entry, origin.clone()));
        }
    }

    /// Walks the stored Iceberg metadata and reports every file it reaches that the file
    /// list (`files`) does not hold, or that cannot be parsed.
    async fn walk_metadata(
        &mut self,
        origin: &Origin,
        table_key: &str,
        list: &FileList,
        files: &ListedFiles,
        raw: &[u8],
    ) {
        let metadata_key = layout::table_metadata(table_key, &list.pit);
        let metadata: TableMetadata = match maybe_gunzip(raw)
            .map_err(|e| e.to_string())
            .and_then(|json| serde_json::from_slice(&json).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => {
                let problem = format!("stored metadata {metadata_key} does not parse: {e}");
                self.problem(origin, Some(&metadata_key), problem, REPAIR_LIST);
                return;
            }
        };
        let mut missing: BTreeMap<String, &'static str> = BTreeMap::new();
        let snapshots: Vec<_> = if list.current_snapshot_only {
            metadata.current_snapshot().cloned().into_iter().collect()
        } else {
            metadata.snapshots().cloned().collect()
        };
        let version = metadata.format_version();
        // Snapshots share manifests: each is looked at once per table state.
        let mut walked: HashSet<PathDigest> = HashSet::new();
        // What references unlisted files that could not be named: (kind, path, why).
        let mut unnamed: Vec<(&str, String, String)> = Vec::new();
        for snapshot in snapshots {
            let Some(list_entry) = files.metadata.get(&path_digest(snapshot.manifest_list()))
            else {
                missing.insert(snapshot.manifest_list().to_owned(), "manifest list");
                continue;
            };
            let Some(manifests) = self
                .references(origin, table_key, list_entry, Some(version))
                .await
            else {
                continue;
            };
            let mut lacking = false;
            for manifest in manifests.iter() {
                let Some(entry) = files.metadata.get(manifest) else {
                    lacking = true;
                    continue;
                };
                if !walked.insert(*manifest) {
                    continue;
                }
                let Some(referenced) = self.references(origin, table_key, entry, None).await else {
                    continue;
                };
                if !referenced.iter().all(|path| files.holds(path)) {
                    match self.unlisted(table_key, entry, None, files).await {
                        Ok(paths) => {
                            for path in paths {
                                missing.insert(path, "data or delete file");
                            }
                        }
                        Err(why) => unnamed.push(("manifest", entry.path.clone(), why)),
                    }
                }
            }
            if lacking {
                match self
                    .unlisted(table_key, list_entry, Some(version), files)
                    .await
                {
                    Ok(paths) => {
                        for path in paths {
                            missing.insert(path, "manifest");
                        }
                    }
                    Err(why) => unnamed.push(("manifest list", list_entry.path.clone(), why)),
                }
            }
        }
        let current = metadata.current_snapshot_id();
        let stats = metadata
            .statistics_iter()
            .map(|s| (s.snapshot_id, &s.statistics_path))
            .chain(
                metadata
                    .partition_statistics_iter()
                    .map(|s| (s.snapshot_id, &s.statistics_path)),
            );
        for (snapshot, path) in stats {
            let kept = !list.current_snapshot_only || Some(snapshot) == current;
            if kept && !files.holds(&path_digest(path)) {
                missing.insert(path.clone(), "statistics file");
            }
        }
        let list_key = layout::filelist(table_key, &list.pit);
        for (path, kind) in missing {
            let problem = format!(
                "the stored metadata references {kind} {path}, which file list {list_key} does not hold"
            );
            self.problem(origin, Some(&list_key), problem, REPAIR_LIST);
        }
        for (kind, path, why) in unnamed {
            let problem = format!(
                "the stored {kind} {path} references files that file list {list_key} does not hold; reading it again to name them failed: {why}"
            );
            self.problem(origin, Some(&list_key), problem, REPAIR_LIST);
        }
    }

    /// The digests of the paths a manifest list (`Some(format version)`) or a manifest
    /// (`None`) references: its manifests, or its live data and delete files. Each is read
    /// and parsed once per run and remembered, since many PITs and tables share them; `None`
    /// when it is missing or has the wrong size (reported already) or cannot be read or
    /// parsed (reported here).
    async fn references(
        &mut self,
        origin: &Origin,
        table_key: &str,
        entry: &FileEntry,
        list_version: Option<FormatVersion>,
    ) -> Option<Arc<Vec<PathDigest>>> {
        let key = layout::table_file(table_key, &entry.rel);
        let digest = path_digest(&key);
        if let Some(paths) = self.parsed.get(&digest) {
            return Some(paths.clone());
        }
        match self.read_references(&key, entry, list_version).await? {
            Ok(paths) => {
                let paths = Arc::new(paths.iter().map(|p| path_digest(p)).collect::<Vec<_>>());
                self.parsed.insert(digest, paths.clone());
                Some(paths)
            }
            Err((problem, hint)) => {
                self.file_problem(origin, &key, entry, problem, hint);
                None
            }
        }
    }

    /// The paths the manifest list or manifest `entry` references that `files` does not
    /// hold: read again, to name them (only when some are missing); why they cannot be named
    /// when it does not read again.
    async fn unlisted(
        &mut self,
        table_key: &str,
        entry: &FileEntry,
        list_version: Option<FormatVersion>,
        files: &ListedFiles,
    ) -> Result<Vec<String>, String> {
        let key = layout::table_file(table_key, &entry.rel);
        match self.read_references(&key, entry, list_version).await {
            Some(Ok(paths)) => Ok(paths
                .into_iter()
                .filter(|path| !files.holds(&path_digest(path)))
                .collect()),
            Some(Err((why, _))) => Err(why),
            None => Err(format!(
                "{key} is not stored with the {} bytes this file list records",
                entry.size
            )),
        }
    }

    /// Reads and parses the manifest list or manifest `entry` stored at `key`: the paths it
    /// references, or a problem and its hint; `None` when it is missing or has the wrong size.
    async fn read_references(
        &self,
        key: &str,
        entry: &FileEntry,
        list_version: Option<FormatVersion>,
    ) -> Option<Result<Vec<String>, (String, &'static str)>> {
        if self.object_size(key) != Some(entry.size) {
            return None;
        }
        // Held while parsed: the process's bound on metadata in memory.
        let _room = transfer::metadata_room(Some(entry.size)).await;
        let bytes = match self.repo.store().get(key).await {
            Ok(bytes) => bytes,
            Err(e) => return Some(Err((crate::error::error_chain(&e), UNREADABLE))),
        };
        let parsed: iceberg::Result<Vec<String>> = match list_version {
            Some(version) => ManifestList::parse_with_version(&bytes, version).map(|list| {
                list.entries()
                    .iter()
                    .map(|m| m.manifest_path.clone())
                    .collect()
            }),
            None => Manifest::parse_avro(&bytes).map(|manifest| {
                manifest
                    .entries()
                    .iter()
                    .filter(|f| f.status() != ManifestStatus::Deleted)
                    .map(|f| f.file_path().to_owned())
                    .collect()
            }),
        };
        Some(parsed.map_err(|e| {
            let what = if list_version.is_some() {
                "manifest list"
            } else {
                "manifest"
            };
            let problem = format!(
                "{what} {key} does not parse: {}",
                crate::error::error_chain(&e)
            );
            (problem, REPAIR_LIST)
        }))
    }

    /// Objects under `tables/` that no checked table state references. Only for a run over
    /// every PIT, with no damaged record, and no backup running.
    pub(super) async fn reclaimable(
        &self,
        all_pits: bool,
    ) -> Result<Option<Reclaimable>, EngineError> {
        if !all_pits || self.unreadable || lock::read_lock(self.repo).await?.is_some() {
            return Ok(None);
        }
        let (mut objects, mut bytes) = (0, 0);
        for (i, (_, size)) in self.objects.sizes.iter().enumerate() {
            if !self.objects.reached[i] {
                objects += 1;
                bytes += size;
            }
        }
        Ok(Some(Reclaimable { objects, bytes }))
    }

    /// `--read-data`: reads the queued files (with `all`, every one; else only a full queue),
    /// each once, and compares their SHA-256.
    pub(super) async fn read_queued(&mut self, all: bool) {
        let Some(reading) = &mut self.reading else {
            return;
        };
        if reading.queue.is_empty() || (!all && reading.queue.len() < READ_QUEUE) {
            return;
        }
        let queue = std::mem::take(&mut reading.queue);
        let (observer, concurrency) = (reading.observer, reading.concurrency);
        let store = self.repo.store().clone();
        let results: Vec<_> = stream::iter(queue)
            .map(|(key, entry, origin)| {
                let store = store.clone();
                async move {
                    let sum = transfer::hash_stored(store.as_ref(), &key, entry.size).await;
                    observer.event(&crate::engine::Event::FileCopied {
                        table: &origin.table,
                        bytes: entry.size,
                    });
                    (key, entry, origin, sum)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for (key, entry, origin, sum) in results {
            match sum {
                Ok(sum) => {
                    if let Some(reading) = &mut self.reading {
                        reading.files += 1;
                        reading.bytes += entry.size;
                    }
                    if sum != entry.sha256 {
                        let problem = format!(
                            "stored file {key} ({}) is damaged: its content has SHA-256 {sum}, the file list records {}",
                            entry.path, entry.sha256
                        );
                        self.file_problem(
                            &origin,
                            &key,
                            &entry,
                            problem,
                            "the copy is lost for every PIT that references it; a full backup (`bcn backup --full`) copies it again while the live table still has it",
                        );
                    }
                }
                Err(e) => {
                    self.file_problem(
                        &origin,
                        &key,
                        &entry,
                        crate::error::error_chain(&e),
                        UNREADABLE,
                    );
                }
            }
        }
    }
}

/// What the walk of a table state keeps of its file list: the digest of every path, sorted,
/// and the entries of its metadata files (manifest lists, manifests, statistics files).
struct ListedFiles {
    paths: Vec<PathDigest>,
    metadata: HashMap<PathDigest, FileEntry>,
}

impl ListedFiles {
    /// Whether the list holds the path of digest `path`.
    fn holds(&self, path: &PathDigest) -> bool {
        self.paths.binary_search(path).is_ok()
    }
}
