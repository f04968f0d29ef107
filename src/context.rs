//! Time and identity for a run, injectable so that tests are deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, Utc};

/// Where a run takes its clock from.
#[derive(Debug, Clone)]
pub struct Context {
    clock: Clock,
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
        }
    }

    /// A clock that starts at `start` and advances one second per reading.
    pub fn fixed(start: DateTime<Utc>) -> Self {
        Self {
            clock: Clock::Fixed(Arc::new(AtomicI64::new(start.timestamp()))),
        }
    }

    /// The current time.
    #[allow(
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

    /// A new PIT id for a backup started at `at`: sortable by time, unique by a random suffix.
    pub fn new_pit_id(&self, at: DateTime<Utc>) -> String {
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        format!("{}-{suffix}", at.format("%Y%m%dT%H%M%SZ"))
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
