//! When an entry, its periodic full backup and its verification are due: pure decisions over
//! what the repository records (read once per entry by [`super::entry::EntryRun`]).

use chrono::{DateTime, Duration, Utc};

/// A decision and the words a reviewer reads for it.
pub(super) type Due = (bool, String);

/// Whether the entry is due: no PIT yet, the newest older than `interval`, or `force`.
pub(super) fn entry_due(
    newest_pit: Option<DateTime<Utc>>,
    interval: Option<Duration>,
    force: bool,
    now: DateTime<Utc>,
) -> Due {
    let Some(newest) = newest_pit else {
        return (true, "no PIT yet".into());
    };
    let age = now - newest;
    let age_text = human(age);
    match interval {
        _ if force => (true, format!("--force (newest PIT {age_text} old)")),
        None => (true, "no interval: every run".into()),
        Some(interval) if age >= interval => (
            true,
            format!("newest PIT is {age_text} old, interval {}", human(interval)),
        ),
        Some(interval) => (
            false,
            format!(
                "newest PIT is {age_text} old, interval {}: due in {}",
                human(interval),
                human(interval - age)
            ),
        ),
    }
}

/// Whether an incremental strategy's periodic full backup is due: the newest full PIT is
/// older than `every`, or there is none. `first` when the repository does not exist yet.
pub(super) fn full_due(
    first: bool,
    newest_full: Option<DateTime<Utc>>,
    every: Duration,
    now: DateTime<Utc>,
) -> Due {
    if first {
        return (false, "the first backup copies everything anyway".into());
    }
    match newest_full {
        None => (
            true,
            format!("full: no full PIT yet, full_every {}", human(every)),
        ),
        Some(at) if now - at >= every => (
            true,
            format!(
                "full: newest full PIT is {} old, full_every {}",
                human(now - at),
                human(every)
            ),
        ),
        Some(at) => (
            false,
            format!(
                "incremental: newest full PIT is {} old, full_every {}: full in {}",
                human(now - at),
                human(every),
                human(every - (now - at))
            ),
        ),
    }
}

/// Whether the entry's verification is due, from the newest recorded verification (when it
/// started, and whether it was clean).
pub(super) fn verify_due(
    last: Option<(DateTime<Utc>, bool)>,
    interval: Option<Duration>,
    force: bool,
    now: DateTime<Utc>,
) -> Due {
    let Some((started_at, clean)) = last else {
        return (true, "never verified".into());
    };
    let age = now - started_at;
    let outcome = if clean { "clean" } else { "found damage" };
    match interval {
        _ if force => (
            true,
            format!("--force (last {} ago, {outcome})", human(age)),
        ),
        None => (true, "no interval: every run".into()),
        Some(interval) if age >= interval => (
            true,
            format!(
                "last {} ago ({outcome}), interval {}",
                human(age),
                human(interval)
            ),
        ),
        Some(interval) => (
            false,
            format!(
                "last {} ago ({outcome}), interval {}: due in {}",
                human(age),
                human(interval),
                human(interval - age)
            ),
        ),
    }
}

/// A duration in words, to the second.
pub(super) fn human(d: Duration) -> String {
    let seconds = u64::try_from(d.num_seconds()).unwrap_or(0);
    humantime::format_duration(std::time::Duration::from_secs(seconds)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_follow_the_recorded_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let hours = |h| now - Duration::hours(h);
        let day = Some(Duration::days(1));
        assert!(entry_due(None, day, false, now).0);
        let (due, why) = entry_due(Some(hours(2)), day, false, now);
        assert!(!due);
        assert_eq!(why, "newest PIT is 2h old, interval 1day: due in 22h");
        assert!(entry_due(Some(hours(2)), day, true, now).0, "--force");
        assert!(entry_due(Some(hours(25)), day, false, now).0);
        assert!(!full_due(true, None, Duration::days(7), now).0, "first run");
        assert!(full_due(false, None, Duration::days(7), now).0);
        assert!(!full_due(false, Some(hours(24)), Duration::days(7), now).0);
        let (due, why) = verify_due(Some((hours(1), false)), day, false, now);
        assert!(!due);
        assert!(why.contains("found damage"), "{why}");
        assert!(verify_due(None, day, false, now).0);
    }
}
