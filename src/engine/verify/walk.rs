//! The walk of one PIT: every record, file list, stored metadata and file it references,
//! checked for presence, size and (with `--read-data`) checksum.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures::{StreamExt, stream};
use iceberg::spec::{Manifest, ManifestList, ManifestStatus, TableMetadata};

use super::{Origin, Problem, Reclaimable, Subset};
use crate::engine::EngineError;
use crate::engine::transfer::{self, maybe_gunzip, sha256_hex};
use crate::repo::records::{FileEntry, FileList, ObjectKind, PitRecord, TableRecord};
use crate::repo::{Repository, layout, lock};

/// What to do about a table state that cannot be restored.
const REPAIR: &str = "the table cannot be restored from this PIT; an older or newer PIT may still hold it, and a full backup (`bcn backup --full`) copies the live table again";

/// What to do when the store could not be read (a transient fault, or storage trouble).
const UNREADABLE: &str =
    "the store could not be read; run verify again, and check the repository's storage";

/// What to do about stored metadata and a file list that disagree.
const REPAIR_LIST: &str = "the file list or the stored metadata of this table is damaged; a full backup (`bcn backup --full`) stores the table anew";

/// State of one verification run.
pub(super) struct Walk<'a> {
    pub(super) repo: &'a Repository,
    /// Every object under `tables/`, by its listed name, with its size.
    pub(super) objects: HashMap<String, u64>,
    /// How the listing names an object.
    pub(super) names: crate::store::ListedNames,
    /// Every stored file referenced: its file-list entry and where it was first seen.
    pub(super) referenced: HashMap<String, (FileEntry, Origin)>,
    /// File lists and metadata keys of the table states checked.
    pub(super) records: HashSet<String>,
    /// Manifests and manifest lists parsed so far, with the paths each references.
    pub(super) parsed: HashMap<String, Arc<Vec<String>>>,
    pub(super) problems: Vec<Problem>,
    pub(super) tables_checked: usize,
    /// A PIT record or file list could not be read: what is referenced is not known.
    pub(super) unreadable: bool,
}

impl Walk<'_> {
    /// The stored size of the object `key`, if it is stored.
    fn object_size(&self, key: &str) -> Option<&u64> {
        self.objects.get(&(self.names)(key))
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

    /// Checks the state of `table` that `pit` points at, once per `(key, stored_in)`.
    pub(super) async fn check_table(&mut self, pit: &PitRecord, table: &TableRecord) {
        let Some(stored_in) = &table.stored_in else {
            return;
        };
        let list_key = layout::filelist(&table.key, stored_in);
        if !self.records.insert(list_key.clone()) {
            return;
        }
        let metadata_key = layout::table_metadata(&table.key, stored_in);
        self.records.insert(metadata_key.clone());
        self.tables_checked += 1;
        let origin = Origin {
            pit: pit.id.clone(),
            table: crate::names::escape_control(&table.name.to_string()).into_owned(),
        };
        // The parts of the list are its objects too, reachable even when one is damaged.
        let list = match self.repo.load_filelist_header(&table.key, stored_in).await {
            Ok(header) => {
                self.records.extend(
                    (0..header.parts.len())
                        .map(|n| layout::filelist_part(&table.key, stored_in, n)),
                );
                self.repo
                    .load_filelist_entries(&table.key, stored_in, header)
                    .await
            }
            Err(e) => Err(e),
        };
        let list = match list {
            Ok(list) => list,
            Err(e) => {
                self.unreadable = true;
                self.problem(
                    &origin,
                    Some(&list_key),
                    crate::error::error_chain(&e),
                    REPAIR,
                );
                return;
            }
        };
        let metadata = match self.repo.load_table_metadata(&table.key, stored_in).await {
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
        for entry in &list.files {
            let key = layout::table_file(&table.key, &entry.rel);
            match self.object_size(&key) {
                None => self.problem(
                    &origin,
                    Some(&key),
                    format!("stored file {key} ({}) is missing", entry.path),
                    REPAIR,
                ),
                Some(size) if *size != entry.size => self.problem(
                    &origin,
                    Some(&key),
                    format!(
                        "stored file {key} has {size} bytes, its file list records {}",
                        entry.size
                    ),
                    REPAIR,
                ),
                Some(_) => {}
            }
            self.referenced
                .entry(key)
                .or_insert_with(|| (entry.clone(), origin.clone()));
        }
        self.walk_metadata(&origin, &table.key, &list, &metadata)
            .await;
    }

    /// Walks the stored Iceberg metadata and reports every file it reaches that the file
    /// list does not hold, or that cannot be parsed.
    async fn walk_metadata(
        &mut self,
        origin: &Origin,
        table_key: &str,
        list: &FileList,
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
        let by_path: HashMap<&str, &FileEntry> =
            list.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let mut missing: BTreeMap<String, &'static str> = BTreeMap::new();
        let snapshots: Vec<_> = if list.current_snapshot_only {
            metadata.current_snapshot().cloned().into_iter().collect()
        } else {
            metadata.snapshots().cloned().collect()
        };
        let version = metadata.format_version();
        for snapshot in snapshots {
            let Some(entry) = by_path.get(snapshot.manifest_list()) else {
                missing.insert(snapshot.manifest_list().to_owned(), "manifest list");
                continue;
            };
            let Some(manifests) = self
                .references(origin, table_key, entry, Some(version))
                .await
            else {
                continue;
            };
            for manifest in manifests.iter() {
                let Some(entry) = by_path.get(manifest.as_str()) else {
                    missing.insert(manifest.clone(), "manifest");
                    continue;
                };
                let Some(files) = self.references(origin, table_key, entry, None).await else {
                    continue;
                };
                for file in files.iter() {
                    if !by_path.contains_key(file.as_str()) {
                        missing.insert(file.clone(), "data or delete file");
                    }
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
            if kept && !by_path.contains_key(path.as_str()) {
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
    }

    /// The paths a manifest list (`Some(format version)`) or a manifest (`None`) references:
    /// its manifests, or its live data and delete files. Each is read and parsed once per run
    /// and remembered, since many PITs and tables share them; `None` when it is missing or has
    /// the wrong size (reported already) or cannot be read or parsed (reported here).
    pub(super) async fn references(
        &mut self,
        origin: &Origin,
        table_key: &str,
        entry: &FileEntry,
        list_version: Option<iceberg::spec::FormatVersion>,
    ) -> Option<Arc<Vec<String>>> {
        let key = layout::table_file(table_key, &entry.rel);
        if let Some(paths) = self.parsed.get(&key) {
            return Some(paths.clone());
        }
        if self.object_size(&key) != Some(&entry.size) {
            return None;
        }
        let bytes = match self.repo.store().get(&key).await {
            Ok(bytes) => bytes,
            Err(e) => {
                self.problem(
                    origin,
                    Some(&key),
                    crate::error::error_chain(&e),
                    UNREADABLE,
                );
                return None;
            }
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
        match parsed {
            Ok(paths) => {
                let paths = Arc::new(paths);
                self.parsed.insert(key, paths.clone());
                Some(paths)
            }
            Err(e) => {
                let what = if list_version.is_some() {
                    "manifest list"
                } else {
                    "manifest"
                };
                let problem = format!(
                    "{what} {key} does not parse: {}",
                    crate::error::error_chain(&e)
                );
                self.problem(origin, Some(&key), problem, REPAIR_LIST);
                None
            }
        }
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
        let reached: HashSet<String> = (self.referenced.keys())
            .chain(&self.records)
            .map(|key| (self.names)(key))
            .collect();
        let unreferenced: Vec<u64> = self
            .objects
            .iter()
            .filter(|(name, _)| !reached.contains(*name))
            .map(|(_, size)| *size)
            .collect();
        Ok(Some(Reclaimable {
            objects: unreferenced.len(),
            bytes: unreferenced.iter().sum(),
        }))
    }

    /// Reads the selected stored files, each once, and compares their SHA-256.
    pub(super) async fn read_data(
        &mut self,
        subset: Subset,
        salt: &str,
        concurrency: usize,
        observer: &dyn crate::engine::Observer,
    ) -> (usize, u64) {
        observer.event(&crate::engine::Event::TableStarted {
            table: "reading stored files",
        });
        let store = self.repo.store().clone();
        let selected: Vec<(String, FileEntry, Origin)> = self
            .referenced
            .iter()
            .filter(|(key, (entry, _))| {
                subset.selects(key, salt) && self.object_size(key) == Some(&entry.size)
            })
            .map(|(key, (entry, origin))| (key.clone(), entry.clone(), origin.clone()))
            .collect();
        let results: Vec<_> = stream::iter(selected)
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
        let (mut files, mut bytes) = (0, 0);
        for (key, entry, origin, sum) in results {
            match sum {
                Ok(sum) if sum == entry.sha256 => {
                    files += 1;
                    bytes += entry.size;
                }
                Ok(sum) => {
                    files += 1;
                    bytes += entry.size;
                    self.problem(
                        &origin,
                        Some(&key),
                        format!(
                            "stored file {key} ({}) is damaged: its content has SHA-256 {sum}, the file list records {}",
                            entry.path, entry.sha256
                        ),
                        "the copy is lost for every PIT that references it; a full backup (`bcn backup --full`) copies it again while the live table still has it",
                    );
                }
                Err(e) => self.problem(
                    &origin,
                    Some(&key),
                    crate::error::error_chain(&e),
                    UNREADABLE,
                ),
            }
        }
        (files, bytes)
    }
}
