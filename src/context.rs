//! Time and identity for a run, injectable so that tests are deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// The time part of a PIT id.
const PIT_TIME_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

/// The time a PIT id was made from.
pub fn pit_id_time(id: &str) -> Option<DateTime<Utc>> {
    let time = id.split('-').next()?;
    chrono::NaiveDateTime::parse_from_str(time, PIT_TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Files of one table a backup holds in memory by default: a few MiB of entries.
pub const FILES_IN_MEMORY: usize = 20_000;

/// Where a run takes its clock from, and how much of a table a backup holds in memory.
#[derive(Debug, Clone)]
pub struct Context {
    clock: Clock,
    files_in_memory: usize,
}

#[derive(Debug, Clone)]
enum Clock {
    System,
    /// A fixed start that advances one second per reading, so ids stay unique and ordered.
    Fixed(Arc<AtomicI64>),
}

impl Default for Context {
    fn default() -> Self {
        Self::system()
    }
}

impl Context {
    /// The real clock.
    pub fn system() -> Self {
        Self {
            clock: Clock::System,
            files_in_memory: FILES_IN_MEMORY,
        }
    }

    /// A clock that starts at `start` and advances one second per reading.
    pub fn fixed(start: DateTime<Utc>) -> Self {
        Self {
            clock: Clock::Fixed(Arc::new(AtomicI64::new(start.timestamp()))),
            files_in_memory: FILES_IN_MEMORY,
        }
    }

    /// The same, holding `n` files of a table in memory in a backup (see
    /// [`Context::files_in_memory`]).
    #[must_use]
    pub fn with_files_in_memory(mut self, n: usize) -> Self {
        self.files_in_memory = n.max(1);
        self
    }

    /// How many files of one table a backup holds in memory before it sorts and merges the
    /// rest through temporary files.
    pub fn files_in_memory(&self) -> usize {
        self.files_in_memory
    }

    /// The current time.
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the system clock"
    )]
    pub fn now(&self) -> DateTime<Utc> {
        match &self.clock {
            Clock::System => Utc::now(),
            Clock::Fixed(secs) => {
                let s = secs.fetch_add(1, Ordering::SeqCst);
                DateTime::from_timestamp(s, 0).unwrap_or_default()
            }
        }
    }

    /// A new PIT id for a backup started at `at`: `YYYYMMDDTHHMMSS.mmmZ-xxxxxx`, sortable by
    /// time, unique by a random suffix, and always sorting after `parent` (ids are compared as
    /// strings, so two backups within one millisecond must still come out in order).
    pub fn new_pit_id(&self, at: DateTime<Utc>, parent: Option<&str>) -> String {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let mut time = at;
        if let Some(parent_time) = parent.and_then(pit_id_time).filter(|p| time <= *p) {
            time = parent_time + chrono::Duration::milliseconds(1);
        }
        format!("{}-{suffix}", time.format(PIT_TIME_FORMAT))
    }

    /// A new random run id.
    pub fn new_run_id(&self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// This host's name, for lock records.
pub fn hostname() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| fs_err::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pit_ids_sort_after_their_parent_even_within_a_millisecond() {
        let ctx = Context::system();
        let at = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let first = ctx.new_pit_id(at, None);
        assert_eq!(pit_id_time(&first), Some(at));
        let mut previous = first;
        for _ in 0..50 {
            let next = ctx.new_pit_id(at, Some(&previous));
            assert!(next > previous, "{next} <= {previous}");
            previous = next;
        }
    }
}
