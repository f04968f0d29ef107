//! Strategies: how an entry is backed up, verified and thinned out.

/// Whether a backup reuses what the repository already holds. Shared by `bcn backup` and the
/// plan's strategies; recorded in each PIT as [`BackupMode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackupMode {
    /// Copy only files the repository does not have yet.
    #[default]
    Incremental,
    /// Copy and checksum every file again (a fresh base).
    Full,
}

impl BackupMode {
    /// `incremental` or `full`, as PIT records and plans write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incremental => "incremental",
            Self::Full => "full",
        }
    }
}

/// Which snapshots' files a backup keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotSelection {
    /// Every snapshot in the metadata (time travel and refs keep working).
    #[default]
    All,
    /// Only the current snapshot.
    Current,
}

impl SnapshotSelection {
    /// `all` or `current`, as PIT records and plans write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Current => "current",
        }
    }
}

/// How an entry is backed up.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// The plan's name for it (`default` for the built-in one).
    pub name: String,
    /// Incremental, or copy and checksum every file again.
    pub mode: BackupMode,
    /// Which snapshots' files to keep.
    pub snapshots: SnapshotSelection,
    /// An entry is due when its newest PIT is older than this.
    pub interval: Option<chrono::Duration>,
    /// Which PITs to keep.
    pub retention: Retention,
    /// Commit the PIT even when some tables fail.
    pub allow_partial: bool,
    /// Scheduled verification.
    pub verify: Option<VerifyPolicy>,
    /// A full backup when the newest full PIT is older than this.
    pub full_every: Option<chrono::Duration>,
    /// An entry running longer than this is stopped as interrupted.
    pub timeout: Option<chrono::Duration>,
}

/// A strategy's scheduled verification.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyPolicy {
    /// Due when the newest verification is older than this; `None`: every run.
    pub interval: Option<chrono::Duration>,
    /// Stored files to read; for [`Subset::Slice`], apply rotates `k` itself.
    pub read_data: Option<Subset>,
    /// Restore the newest PIT into a scratch catalog and read it back.
    pub restore_test: bool,
}

/// Which stored files a verification reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Subset {
    /// Every file.
    All,
    /// A random fraction, in percent (0 < p ≤ 100), drawn anew each run.
    Percent(f64),
    /// Slice `k` of `t` fixed slices (1 ≤ k ≤ t): over `t` runs with k = 1..t, every file is
    /// read exactly once.
    Slice {
        /// Which slice, from 1.
        k: u32,
        /// How many slices.
        t: u32,
    },
}

impl Subset {
    /// Parses `all`, `10%` or `3/7`.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let invalid = || {
            format!(
                "invalid subset `{value}`: write `all`, a percentage such as `10%`, or a slice such as `3/7`"
            )
        };
        if value.eq_ignore_ascii_case("all") {
            return Ok(Self::All);
        }
        if let Some(p) = value.strip_suffix('%') {
            let p: f64 = p.trim().parse().map_err(|_| invalid())?;
            return if p > 0.0 && p <= 100.0 {
                Ok(Self::Percent(p))
            } else {
                Err(format!(
                    "subset {value}: the percentage must be above 0 and at most 100"
                ))
            };
        }
        if let Some((k, t)) = value.split_once('/') {
            let (k, t): (u32, u32) = (
                k.trim().parse().map_err(|_| invalid())?,
                t.trim().parse().map_err(|_| invalid())?,
            );
            return if k >= 1 && k <= t {
                Ok(Self::Slice { k, t })
            } else {
                Err(format!(
                    "subset {value}: the slice must be between 1 and {t}"
                ))
            };
        }
        Err(invalid())
    }
}

impl std::fmt::Display for Subset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Percent(p) => write!(f, "{p}%"),
            Self::Slice { k, t } => write!(f, "{k}/{t}"),
        }
    }
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            name: "default".into(),
            mode: BackupMode::Incremental,
            snapshots: SnapshotSelection::All,
            interval: None,
            retention: Retention::default(),
            allow_partial: false,
            verify: None,
            full_every: None,
            timeout: None,
        }
    }
}

/// A retention policy (restic-style): a PIT is kept when any rule keeps it, and the newest
/// PIT is always kept. An empty policy keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    /// Keep the newest N PITs.
    pub keep_last: Option<u32>,
    /// Keep the newest PIT of each of the last N hours with one.
    pub keep_hourly: Option<u32>,
    /// Keep the newest PIT of each of the last N days with one.
    pub keep_daily: Option<u32>,
    /// Keep the newest PIT of each of the last N ISO weeks with one.
    pub keep_weekly: Option<u32>,
    /// Keep the newest PIT of each of the last N months with one.
    pub keep_monthly: Option<u32>,
    /// Keep every PIT within this long of the newest one.
    #[serde(serialize_with = "serialize_duration")]
    pub keep_within: Option<chrono::Duration>,
}

#[expect(
    clippy::ref_option,
    reason = "the signature serde's serialize_with requires"
)]
fn serialize_duration<S: serde::Serializer>(
    d: &Option<chrono::Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&format!("{}s", d.num_seconds())),
        None => s.serialize_none(),
    }
}

impl Retention {
    /// True when no rule is set: nothing is ever forgotten.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}
