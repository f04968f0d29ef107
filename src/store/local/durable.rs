//! Durability primitives of the local store: background fsync (`WriteBehind`), naming
//! waiting objects once durable, directory syncs, and the hashing copy. The files themselves
//! are `unfinished`'s.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::path::{Path, PathBuf};

use super::COPY_BUFFER;
use super::unfinished::Unfinished;

/// Threads that fsync at once: fsync waits on the device, not the CPU, and a device takes
/// many requests together. The bound is the whole process's, whatever `--jobs`: the
/// blocking tasks that make files durable ([`durably`]) and, apart, the helper threads they
/// fan out to ([`in_parallel`]). With a bound for each table instead, a restore of 1,000
/// small tables at `--jobs 64` peaked at 170 threads (109 with this one, 61 with the
/// runtime's bound on blocking threads too: `cli::BLOCKING_THREADS`).
const SYNC_THREADS: usize = 16;

/// Blocking tasks making files durable at once in the process ([`durably`]).
static SYNC_TASKS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(SYNC_THREADS);

/// Helper threads [`in_parallel`] may still start in the process: each call takes what is
/// free (none when none is) and works on its own thread too.
static SPARE_SYNC_THREADS: AtomicUsize = AtomicUsize::new(SYNC_THREADS);

/// Runs `sync` (making files durable) on the blocking pool, once one of the process's
/// [`SYNC_THREADS`] is free.
pub(crate) async fn durably<T: Send + 'static>(
    sync: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    let _permit = SYNC_TASKS.acquire().await.map_err(std::io::Error::other)?;
    tokio::task::spawn_blocking(sync)
        .await
        .map_err(std::io::Error::other)?
}

/// Files smaller than this are not fsynced one by one as they are written but together, when
/// the batch is made durable ([`WriteBehind::wait`]): for a small file the fsync is mostly a
/// journal commit of its own, and the device has little to write in the background.
const SMALL_FILE: u64 = 256 * 1024;

/// From this many paths on, [`sync_files`] makes them durable with one `syncfs` per
/// filesystem instead of one fsync each (which costs a journal commit apiece: restoring
/// 100,000 small files spent more time in fsync than in everything else together).
pub(super) const SYNCFS_FROM: usize = 256;

/// fsyncs files in the background as they are written, on the process's [`SYNC_THREADS`], so
/// that making a batch durable later waits only for what is still in flight, and the device
/// writes while the next files are read and hashed. Small files wait for
/// [`WriteBehind::wait`], which makes them durable together.
#[derive(Debug, Default)]
pub(crate) struct WriteBehind {
    inflight: Mutex<Vec<tokio::task::JoinHandle<std::io::Result<()>>>>,
    small: Mutex<Small>,
}

/// The small files waiting for [`WriteBehind::wait`]: their paths, or once there are enough of
/// them for one `syncfs` ([`SYNCFS_FROM`]) only their directories (a restore of 100,000 files
/// need not hold another 100,000 paths).
#[derive(Debug, Default)]
pub(super) struct Small {
    pub(super) files: Vec<PathBuf>,
    pub(super) dirs: BTreeSet<PathBuf>,
}

impl Small {
    pub(super) fn push(&mut self, file: PathBuf) {
        if self.dirs.is_empty() && self.files.len() + 1 < SYNCFS_FROM {
            self.files.push(file);
            return;
        }
        for file in self.files.drain(..).chain(std::iter::once(file)) {
            let dir = directory_of(&file);
            if !self.dirs.contains(dir) {
                self.dirs.insert(dir.to_path_buf());
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// Makes them durable.
    pub(super) fn sync(&self) -> std::io::Result<()> {
        if self.dirs.is_empty() {
            sync_files(&self.files)
        } else {
            syncfs_of(self.dirs.iter().map(PathBuf::as_path))
        }
    }
}

/// Whether a file of `size` bytes is made durable together with the others
/// ([`SMALL_FILE`]) rather than fsynced on its own in the background.
pub(crate) fn is_small(size: u64) -> bool {
    size < SMALL_FILE
}

impl WriteBehind {
    /// Starts making the complete file at `path` (of `size` bytes) durable; it keeps that name
    /// until [`WriteBehind::wait`]. A large file's fsync starts now, in the background; a small
    /// one waits for the others.
    pub(crate) fn start(&self, path: PathBuf, size: u64) {
        if size < SMALL_FILE {
            self.small
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(path);
            return;
        }
        // A file replaced or deleted meanwhile has nothing left to make durable (a waiting
        // object that vanished fails its naming instead).
        self.in_background(move || fsync_if_present(&path));
    }

    /// Starts the fsync of `file`, a large file open for writing (a handle of its own, closed
    /// once synced), in the background. Whether a file is large enough: [`is_small`].
    pub(crate) fn start_open(&self, file: std::fs::File) {
        self.in_background(move || file.sync_all());
    }

    /// Runs `sync` on the blocking pool ([`durably`]), to be waited for by
    /// [`WriteBehind::wait`].
    fn in_background(&self, sync: impl FnOnce() -> std::io::Result<()> + Send + 'static) {
        let task = tokio::spawn(durably(sync));
        self.inflight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// Makes every file started so far durable: waits for the fsyncs in flight, then syncs
    /// the small files together ([`sync_files`]); the first error.
    pub(crate) async fn wait(&self) -> std::io::Result<()> {
        let tasks = std::mem::take(
            &mut *self
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let small = std::mem::take(
            &mut *self
                .small
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let mut first = Ok(());
        for task in tasks {
            let done = task.await.map_err(std::io::Error::other).and_then(|r| r);
            if first.is_ok() {
                first = done;
            }
        }
        if small.is_empty() {
            return first;
        }
        first.and(durably(move || small.sync()).await)
    }
}

/// Makes the files at `paths` durable (a file that is gone meanwhile has nothing left to
/// make durable): an fsync each, from up to [`SYNC_THREADS`] threads; from [`SYNCFS_FROM`]
/// files on, one `syncfs` per filesystem they are on, as `sync` does after `cp -r`. That also
/// writes whatever else is waiting on those filesystems, other programs' writes included: for
/// many small files it is still far quicker than a journal commit each. Since Linux 5.8
/// `syncfs` reports the write errors of the filesystem that nobody has been told of yet, as
/// fsync does for its file.
pub(super) fn sync_files(paths: &[PathBuf]) -> std::io::Result<()> {
    // A file is on the filesystem of its directory, and there are far fewer directories.
    sync_many(paths, directory_of)
}

/// The directory a file is in (`.` for a bare name).
fn directory_of(file: &Path) -> &Path {
    file.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// fsyncs the file or directory at `path`; one that is gone meanwhile has nothing left to
/// make durable.
fn fsync_if_present(path: &Path) -> std::io::Result<()> {
    match fs_err::File::open(path) {
        Ok(file) => file.sync_all(),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`sync_files`] for directories (each on its own filesystem: a mount point is not on its
/// parent's).
fn sync_dirs(dirs: &[PathBuf]) -> std::io::Result<()> {
    sync_many(dirs, |dir| dir)
}

/// Makes `paths` durable: an fsync each, or one `syncfs` for each filesystem that the
/// directories `directory` gives for them are on.
fn sync_many(paths: &[PathBuf], directory: impl Fn(&Path) -> &Path) -> std::io::Result<()> {
    if paths.len() < SYNCFS_FROM {
        return in_parallel(paths, |path| fsync_if_present(path));
    }
    syncfs_of(paths.iter().map(|p| directory(p)))
}

/// One `syncfs` for each filesystem the directories `dirs` are on (a directory that is gone
/// meanwhile has nothing left to make durable).
fn syncfs_of<'a>(dirs: impl IntoIterator<Item = &'a Path>) -> std::io::Result<()> {
    let dirs: BTreeSet<&Path> = dirs.into_iter().collect();
    let mut synced = HashSet::new();
    for dir in dirs {
        let handle = match fs_err::File::open(dir) {
            Ok(handle) => handle,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if synced.insert(handle.metadata()?.dev()) {
            rustix::fs::syncfs(&handle).map_err(|e| {
                std::io::Error::new(
                    std::io::Error::from(e).kind(),
                    format!("syncing the filesystem of {}: {e}", dir.display()),
                )
            })?;
        }
    }
    Ok(())
}

/// fsyncs a directory, so that the names in it are durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

/// Runs `work` on every item from this thread and as many of the process's spare sync
/// threads ([`SPARE_SYNC_THREADS`]) as there are items for; the first error wins (the items
/// no thread took by then are dropped).
fn in_parallel<T: Send>(
    items: impl IntoIterator<Item = T>,
    work: impl Fn(T) -> std::io::Result<()> + Sync,
) -> std::io::Result<()> {
    in_parallel_from(&SPARE_SYNC_THREADS, items, work)
}

/// [`in_parallel`] with helper threads taken from `spare`, and given back at the end.
fn in_parallel_from<T: Send>(
    spare: &AtomicUsize,
    items: impl IntoIterator<Item = T>,
    work: impl Fn(T) -> std::io::Result<()> + Sync,
) -> std::io::Result<()> {
    let items: Vec<T> = items.into_iter().collect();
    let helpers = SpareThreads::take(spare, items.len().saturating_sub(1));
    let queue = Mutex::new(items.into_iter());
    let next = || {
        queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next()
    };
    let drain = || {
        while let Some(item) = next() {
            work(item)?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..helpers.taken).map(|_| scope.spawn(drain)).collect();
        let own = drain();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a sync thread panicked")))
            })
            .fold(own, Result::and)
    })
}

/// Spare threads taken from a count, given back when dropped.
struct SpareThreads<'a> {
    from: &'a AtomicUsize,
    taken: usize,
}

impl<'a> SpareThreads<'a> {
    /// Takes up to `wanted` of the threads `from` has spare.
    fn take(from: &'a AtomicUsize, wanted: usize) -> Self {
        let mut taken = 0;
        let _ = from.fetch_update(Ordering::AcqRel, Ordering::Acquire, |spare| {
            taken = spare.min(wanted);
            Some(spare - taken)
        });
        Self { from, taken }
    }
}

impl Drop for SpareThreads<'_> {
    fn drop(&mut self) {
        self.from.fetch_add(self.taken, Ordering::AcqRel);
    }
}

/// fsyncs the directories `dirs` and every directory above them (new directories' entries
/// included), in parallel: once the files in them are durable, this makes their names
/// durable.
pub(crate) fn sync_dirs_and_above(dirs: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    let mut all = BTreeSet::new();
    for dir in dirs {
        let mut dir = Some(dir.as_path());
        while let Some(d) = dir.filter(|d| !d.as_os_str().is_empty()) {
            if !all.insert(d.to_path_buf()) {
                break;
            }
            dir = d.parent();
        }
    }
    let all: Vec<PathBuf> = all.into_iter().collect();
    sync_dirs(&all)
}

/// Gives complete objects their names under `root`, made durable first: the files whose data
/// is not known to be durable yet (`synced` false) with an fsync each or, from
/// [`SYNCFS_FROM`] on, one `syncfs` per filesystem; then every object linked (or renamed)
/// under its name, a thread per directory (up to [`SYNC_THREADS`]: names in one directory
/// wait for its lock one at a time anyway, and threads waiting on it spin), and every
/// directory on the way fsynced (new directories' entries included). An object not named
/// because of an error goes (an unnamed file with its handle, a temporary one removed).
pub(super) fn name_objects(
    root: &Path,
    objects: Vec<(String, Unfinished, bool)>,
) -> std::io::Result<()> {
    let mut by_dir: BTreeMap<PathBuf, Vec<(PathBuf, Unfinished, bool)>> = BTreeMap::new();
    for (key, file, synced) in objects {
        let target = root.join(key);
        by_dir
            .entry(directory_of(&target).to_path_buf())
            .or_default()
            .push((target, file, synced));
    }
    let unsynced: Vec<&std::fs::File> = by_dir
        .values()
        .flatten()
        .filter(|(.., synced)| !synced)
        .map(|(_, file, _)| file.open())
        .collect();
    if unsynced.len() < SYNCFS_FROM {
        in_parallel(unsynced, std::fs::File::sync_all)?;
    } else {
        syncfs_of(by_dir.keys().map(PathBuf::as_path))?;
    }
    let mut dirs = BTreeSet::new();
    for dir in by_dir.keys() {
        let mut dir = Some(dir.as_path());
        while let Some(d) = dir.filter(|d| d.starts_with(root)) {
            if !dirs.insert(d.to_path_buf()) {
                break;
            }
            dir = d.parent();
        }
    }
    in_parallel(by_dir.into_values(), |files| {
        files
            .into_iter()
            .try_for_each(|(target, file, _)| file.finish(&target))
    })?;
    let dirs: Vec<PathBuf> = dirs.into_iter().collect();
    sync_dirs(&dirs)
}

/// The copy buffer for a file of `size` bytes: at most [`COPY_BUFFER`], and no larger than the
/// file (one byte more, so that its end is read in one go). A restore of 100,000 small files
/// spent 6 % of its CPU zeroing 1 MiB buffers and more in the allocator.
fn buffer_size(size: u64) -> usize {
    usize::try_from(size.saturating_add(1)).map_or(COPY_BUFFER, |s| s.clamp(1, COPY_BUFFER))
}

/// Buffers of [`COPY_BUFFER`] bytes kept between copies, at most this many (as many as the
/// files a run copies at once, 16): a new one is zeroed before its first read (5 % of the CPU
/// of a backup or restore of files of ~1 MiB). Kept, they add nothing to the peak: they were
/// in use at once.
const KEPT_BUFFERS: usize = 16;

/// Copy buffers from [`KEPT_BUFFERS`] kept between copies, in the process.
static BUFFERS: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// A copy buffer of [`buffer_size`] bytes: for files of over [`SMALL_COPY`] bytes, one of the
/// kept full-size buffers (handed back to the pool when dropped); for smaller ones, a buffer
/// of their size, which costs little to zero.
struct CopyBuffer {
    buffer: Vec<u8>,
    len: usize,
}

impl CopyBuffer {
    fn for_size(size: u64) -> Self {
        let len = buffer_size(size);
        let buffer = if size > SMALL_COPY {
            BUFFERS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
                .unwrap_or_else(|| vec![0; COPY_BUFFER])
        } else {
            vec![0; len]
        };
        Self { buffer, len }
    }

    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buffer[..self.len]
    }
}

impl Drop for CopyBuffer {
    fn drop(&mut self) {
        if self.buffer.len() == COPY_BUFFER {
            let mut kept = BUFFERS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if kept.len() < KEPT_BUFFERS {
                kept.push(std::mem::take(&mut self.buffer));
            }
        }
    }
}

/// Files up to this size are copied through the buffer they are hashed in: one read and one
/// write, where the kernel's copy would take calls of its own for each chunk.
const SMALL_COPY: u64 = 64 * 1024;

/// Copies `from` into `to` (opened for reading too) from its position: the size and SHA-256
/// of what `to` then holds past it, for a caller that compares them with a checksum it already
/// has (a restore, with the record of the stored object). Files of over [`SMALL_COPY`] bytes
/// are copied a chunk of up to [`COPY_BUFFER`] at a time by the kernel (`copy_file_range`, as
/// `cp` does; `sendfile`, then reading and writing, where it cannot), so the bytes never pass
/// through a buffer of ours on their way out — writing from a user buffer into the page cache
/// was 40 % of a restore's CPU, against a quarter of that for the kernel's copy — and each
/// chunk is then read back from `to` for the checksum (from the page cache, where the
/// filesystem copied it; where it shares blocks instead, from the disk). Checking the copy
/// itself also catches a copy the kernel or filesystem got wrong.
///
/// Not for backups: their checksum must come from the source's bytes (see `copy_into`).
/// `size` is what `from` is expected to hold: files of up to [`SMALL_COPY`] bytes go through
/// the buffer instead (one read, one write).
pub(crate) fn copy_hashing_the_copy(
    from: std::fs::File,
    size: u64,
    to: &mut std::fs::File,
) -> std::io::Result<(u64, String)> {
    kernel_copy_hashing(from, size, to, Hashed::Copy)
}

/// Copies `from` into `to` from their positions: the size and SHA-256 of the source's bytes,
/// for a backup, whose record must hold the checksum of what it read, not of its copy (see
/// `copy_into`). Files of over [`SMALL_COPY`] bytes: each chunk of up to [`COPY_BUFFER`] is
/// read from `from` for the checksum (without moving its position), then copied by the kernel
/// from that same range (`copy_file_range`, as `cp` does). Writing a user buffer into the page
/// cache took three to four times the system CPU of the kernel's copy here (`perf`: 65 % of a
/// backup's samples when earlier outputs were kept, as the benchmark keeps them). Where the
/// filesystem shares blocks (`XFS`, `Btrfs`), the kernel's copy is a reflink, as `cp`'s is.
/// A copy the kernel or the filesystem gets wrong then disagrees with the recorded checksum,
/// and `bcn verify` finds it. A source that shrinks meanwhile fails the copy; one rewritten
/// in place between the read and the copy (Iceberg's files are written once) is also found
/// by `bcn verify`. `size` is what `from` is expected to hold: files of up to [`SMALL_COPY`]
/// bytes go through the buffer instead (one read, one write).
pub(crate) fn copy_hashing_the_source(
    from: std::fs::File,
    size: u64,
    to: &mut std::fs::File,
) -> std::io::Result<(u64, String)> {
    kernel_copy_hashing(from, size, to, Hashed::Source)
}

/// Which bytes a kernel copy's checksum is taken of.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hashed {
    /// Read back from the copy after each chunk ([`copy_hashing_the_copy`]).
    Copy,
    /// Read from the source before each chunk is copied ([`copy_hashing_the_source`]).
    Source,
}

/// [`copy_hashing_the_copy`] and [`copy_hashing_the_source`]: chunks of up to
/// [`COPY_BUFFER`] copied by the kernel, each hashed from the side `checksum_of` names.
fn kernel_copy_hashing(
    mut from: std::fs::File,
    size: u64,
    to: &mut std::fs::File,
    checksum_of: Hashed,
) -> std::io::Result<(u64, String)> {
    use sha2::Digest as _;
    use std::io::{Read as _, Seek as _};
    use std::os::unix::fs::FileExt as _;
    if size <= SMALL_COPY {
        return copy_hashing(&mut from, size, to);
    }
    let mut pooled = CopyBuffer::for_size(size);
    let buffer = pooled.as_mut();
    let mut hasher = sha2::Sha256::new();
    // Where the hashed side's bytes start (the copy moves the positions of both).
    let start = match checksum_of {
        Hashed::Copy => to.stream_position()?,
        Hashed::Source => from.stream_position()?,
    };
    let mut copied = 0u64;
    loop {
        let len = if checksum_of == Hashed::Source {
            // The chunk, read in full unless the file ends first (the position stays).
            let mut len = 0;
            while len < buffer.len() {
                match from.read_at(&mut buffer[len..], start + copied + len as u64) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            len as u64
        } else {
            buffer.len() as u64
        };
        if len == 0 {
            break; // The source's end, read.
        }
        let n = std::io::copy(&mut (&mut from).take(len), to)?;
        if n == 0 && checksum_of == Hashed::Copy {
            break; // The source's end, copied.
        }
        // At most the buffer's length.
        let chunk = &mut buffer[..usize::try_from(n).map_err(std::io::Error::other)?];
        match checksum_of {
            Hashed::Source if n != len => {
                return Err(std::io::Error::other(format!(
                    "the file changed while it was copied: {n} bytes copied where {len} were read"
                )));
            }
            Hashed::Source => {}
            Hashed::Copy => to.read_exact_at(chunk, start + copied)?,
        }
        hasher.update(&*chunk);
        copied += n;
    }
    Ok((copied, hex::encode(hasher.finalize())))
}

/// Copies `from` into `to` through one reused buffer, hashing on the way: the size and SHA-256.
/// `size` is what the source is expected to hold: the buffer is no larger than needed.
fn copy_hashing(
    from: &mut impl std::io::Read,
    size: u64,
    to: &mut impl std::io::Write,
) -> std::io::Result<(u64, String)> {
    hash_chunks(from, size, |chunk| to.write_all(chunk))
}

/// Reads `from` to its end through one buffer, handing each chunk to `each` after hashing it:
/// the size read and its SHA-256. `size` (what `from` is expected to hold) sizes the buffer.
fn hash_chunks(
    from: &mut impl std::io::Read,
    size: u64,
    mut each: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> std::io::Result<(u64, String)> {
    use sha2::Digest as _;
    let mut pooled = CopyBuffer::for_size(size);
    let buffer = pooled.as_mut();
    let mut hasher = sha2::Sha256::new();
    let mut read = 0u64;
    loop {
        let n = match from.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buffer[..n]);
        each(&buffer[..n])?;
        read += n as u64;
    }
    Ok((read, hex::encode(hasher.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spare sync threads: a call takes what is free (here none at first, all taken), still
    /// does all its work on its own thread, and gives back what it took, an error or not.
    #[test]
    fn files_are_synced_without_spare_threads_and_spare_threads_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..40).map(|i| dir.path().join(i.to_string())).collect();
        for path in &paths {
            fs_err::write(path, b"x").unwrap();
        }
        let spare = AtomicUsize::new(SYNC_THREADS);
        let synced = AtomicUsize::new(0);
        let count = |path: &PathBuf| {
            fsync_if_present(path)?;
            synced.fetch_add(1, Ordering::Relaxed);
            Ok(())
        };
        let all = SpareThreads::take(&spare, usize::MAX);
        assert_eq!(all.taken, SYNC_THREADS);
        in_parallel_from(&spare, &paths, count).unwrap();
        assert_eq!(synced.load(Ordering::Relaxed), paths.len());
        assert_eq!(spare.load(Ordering::Acquire), 0);
        drop(all);
        in_parallel_from(&spare, &paths, count).unwrap();
        assert_eq!(synced.load(Ordering::Relaxed), 2 * paths.len());
        assert_eq!(spare.load(Ordering::Acquire), SYNC_THREADS);
        let failing = |path: &PathBuf| {
            if path.ends_with("7") {
                Err(std::io::Error::other("the seventh"))
            } else {
                Ok(())
            }
        };
        let error = in_parallel_from(&spare, &paths, failing).unwrap_err();
        assert_eq!(error.to_string(), "the seventh");
        assert_eq!(spare.load(Ordering::Acquire), SYNC_THREADS);
    }
}
