//! Files written in the directory of their final name, which they take only once complete:
//! the repository's bulk objects and a restore's table files.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use fs_err::os::unix::fs::OpenOptionsExt as _;

use super::TMP_PREFIX;

/// Who may read what is written: the repository's files are its owner's alone (like
/// restic's: a repository holds the tables' data); a restored table's files and directories
/// take the user's umask, like any other file the table's writers make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Files `0600`, new directories `0700`.
    Owner,
    /// Files `0666` and directories `0777`, less the umask.
    Umask,
}

impl Access {
    fn file_mode(self) -> u32 {
        match self {
            Self::Owner => 0o600,
            Self::Umask => 0o666,
        }
    }

    fn dir_mode(self) -> u32 {
        match self {
            Self::Owner => 0o700,
            Self::Umask => 0o777,
        }
    }
}

/// A temporary file that is removed when dropped, unless it was renamed into place. Futures
/// can be cancelled at any `.await`; this keeps cancelled writes from leaving files behind.
#[derive(Debug)]
pub(crate) struct TempFile(Option<PathBuf>);

impl TempFile {
    pub(crate) fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    /// The file was renamed or linked into place (or is gone): nothing to remove.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }

    /// Renames the file to `dest`; on failure it is still removed when the guard drops.
    pub(crate) fn rename_to(mut self, dest: &Path) -> std::io::Result<()> {
        let from = self.0.take().unwrap_or_default();
        if let Err(e) = fs_err::rename(&from, dest) {
            self.0 = Some(from);
            return Err(e);
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = fs_err::remove_file(path);
        }
    }
}

/// Runs `create` (which makes a file in `dir`), and once more after creating `dir` when it
/// is missing: no `stat` of the directory per file, nor a `mkdir` of one that exists (which
/// locks its parent like a new name would).
fn in_dir<T>(
    dir: &Path,
    access: Access,
    create: impl Fn() -> std::io::Result<T>,
) -> std::io::Result<T> {
    match create() {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            create_dir(dir, access)?;
            create()
        }
        done => done,
    }
}

/// Creates `dir` and its parents (with `access`'s mode).
fn create_dir(dir: &Path, access: Access) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(access.dir_mode())
        .create(dir)
        .map_err(|e| std::io::Error::new(e.kind(), format!("creating {}: {e}", dir.display())))
}

/// A temporary name in the directory of `dest`.
fn temporary_name(dest: &Path) -> PathBuf {
    dest.with_file_name(format!("{TMP_PREFIX}{}", uuid::Uuid::new_v4().simple()))
}

/// A new temporary file, readable and writable, in the directory of `dest` (created if
/// missing), removed when the returned guard drops unless renamed or disarmed.
pub(crate) fn temp_beside(
    dest: &Path,
    access: Access,
) -> std::io::Result<(TempFile, std::fs::File)> {
    let tmp = TempFile(Some(temporary_name(dest)));
    let file = in_dir(dest.parent().unwrap_or(Path::new("/")), access, || {
        fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(access.file_mode())
            .open(tmp.path())
    })?;
    Ok((tmp, file.into_parts().0))
}

/// Whether files can be made without a name and named later (`O_TMPFILE`, linked through
/// `/proc/self/fd`): Linux with `/proc` mounted.
static UNNAMED: LazyLock<bool> =
    LazyLock::new(|| cfg!(target_os = "linux") && Path::new("/proc/self/fd").is_dir());

/// A file being written in the directory of its final name, which it takes only once complete.
/// Where the filesystem allows, it has no name until then (`O_TMPFILE`): creating it changes no
/// directory, naming it is one link (many copies into one directory contend a third as much
/// for its lock as with a temporary name created and renamed into place), and a killed
/// process leaves nothing behind. Elsewhere it is a temporary name beside the final one,
/// renamed into place. Open for reading and writing.
#[derive(Debug)]
pub(crate) enum Unfinished {
    /// No name yet.
    Unnamed(std::fs::File),
    /// A temporary name, removed on drop unless renamed.
    Named(TempFile, std::fs::File),
}

impl Unfinished {
    /// A new file for `dest`, whose directory is created if missing.
    pub(crate) fn beside(dest: &Path, access: Access) -> std::io::Result<Self> {
        use rustix::fs::{Mode, OFlags};
        if *UNNAMED {
            let dir = dest.parent().unwrap_or(Path::new("/"));
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            let open = || {
                rustix::fs::open(dir, flags, Mode::from_raw_mode(access.file_mode()))
                    .map_err(std::io::Error::from)
            };
            match in_dir(dir, access, open) {
                Ok(fd) => return Ok(Self::Unnamed(std::fs::File::from(fd))),
                // The filesystem has no unnamed files.
                Err(e)
                    if matches!(
                        rustix::io::Errno::from_io_error(&e),
                        Some(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR)
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        let (tmp, file) = temp_beside(dest, access)?;
        Ok(Self::Named(tmp, file))
    }

    /// The open file.
    pub(crate) fn file(&mut self) -> &mut std::fs::File {
        match self {
            Self::Unnamed(file) | Self::Named(_, file) => file,
        }
    }

    /// The open file, to read or sync.
    pub(crate) fn open(&self) -> &std::fs::File {
        match self {
            Self::Unnamed(file) | Self::Named(_, file) => file,
        }
    }

    /// Gives the complete file its name `dest`, replacing a file there (the caller decided
    /// that it may).
    pub(crate) fn finish(self, dest: &Path) -> std::io::Result<()> {
        let (tmp, file) = match self {
            Self::Unnamed(file) => match link_unnamed(&file, dest) {
                Err(rustix::io::Errno::EXIST) => {
                    // Replaced: linked under a temporary name, renamed over the old file.
                    let tmp = TempFile(Some(temporary_name(dest)));
                    link_unnamed(&file, tmp.path())?;
                    (tmp, file)
                }
                linked => return linked.map_err(std::io::Error::from),
            },
            Self::Named(tmp, file) => (tmp, file),
        };
        drop(file);
        tmp.rename_to(dest)
    }

    /// Gives the complete file its name `dest` unless that name is taken: whether it did (a
    /// link, which never replaces; the file goes when it did not).
    pub(crate) fn finish_new(self, dest: &Path) -> std::io::Result<bool> {
        let linked = match &self {
            Self::Unnamed(file) => link_unnamed(file, dest).map_err(std::io::Error::from),
            // The temporary name goes with the guard.
            Self::Named(tmp, _) => std::fs::hard_link(tmp.path(), dest),
        };
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Whether an unnamed file can be linked by its descriptor alone (`AT_EMPTY_PATH`), which
/// older kernels allow only with `CAP_DAC_READ_SEARCH`; until refused once.
static LINK_BY_FD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Gives the unnamed `file` the name `to` (never replacing one): by its descriptor where the
/// kernel allows, through `/proc/self/fd` elsewhere (a path to resolve on every call).
fn link_unnamed(file: &std::fs::File, to: &Path) -> rustix::io::Result<()> {
    use rustix::fs::{AtFlags, CWD, linkat};
    use std::os::fd::AsRawFd as _;
    use std::sync::atomic::Ordering;
    if LINK_BY_FD.load(Ordering::Relaxed) {
        match linkat(file, "", CWD, to, AtFlags::EMPTY_PATH) {
            // How the kernel refuses a link by descriptor to a process without the capability.
            Err(rustix::io::Errno::NOENT | rustix::io::Errno::PERM) => {
                LINK_BY_FD.store(false, Ordering::Relaxed);
            }
            linked => return linked,
        }
    }
    let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
    linkat(CWD, fd.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW)
}
