//! Retention math: which PITs a policy keeps, and why. Pure: times come in, decisions go out,
//! so the rules are tested with fixed clocks.
//!
//! The rules are restic's: `keep_last` keeps the newest N; `keep_hourly` / `daily` / `weekly`
//! / `monthly` keep the newest PIT of each of the last N periods that have one; `keep_within`
//! keeps every PIT within a duration of the newest. A PIT is kept when any rule keeps it. The
//! newest PIT is always kept, and an empty policy keeps everything.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serialize;

use crate::plan::Retention;

/// What the policy decided for one PIT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// The PIT id.
    pub pit: String,
    /// Its time.
    pub time: DateTime<Utc>,
    /// Whether it stays.
    pub keep: bool,
    /// Every rule that keeps it, or why it goes.
    pub reasons: Vec<String>,
}

/// A period key: the calendar bucket a time falls in.
type Bucket = (i32, u32, u32);

/// A periodic rule: its name, its count, and how a time maps to its period.
type Period = (&'static str, Option<u32>, fn(DateTime<Utc>) -> Bucket);

/// Applies `policy` to `pits` (id and time, any order); returns decisions newest first.
pub(crate) fn decide(pits: &[(String, DateTime<Utc>)], policy: &Retention) -> Vec<Decision> {
    let mut sorted: Vec<&(String, DateTime<Utc>)> = pits.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    let mut decisions: Vec<Decision> = sorted
        .iter()
        .map(|(pit, time)| Decision {
            pit: pit.clone(),
            time: *time,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    let Some(newest) = decisions.first().map(|d| d.time) else {
        return decisions;
    };
    if policy.is_empty() {
        for d in &mut decisions {
            keep(d, "no retention policy".into());
        }
        return decisions;
    }
    keep(&mut decisions[0], "newest PIT".into());
    if let Some(n) = policy.keep_last {
        for (i, d) in decisions.iter_mut().take(n as usize).enumerate() {
            keep(d, format!("last {}/{n}", i + 1));
        }
    }
    let periods: [Period; 4] = [
        ("hourly", policy.keep_hourly, |t| {
            (t.year(), t.ordinal(), t.hour() + 1)
        }),
        ("daily", policy.keep_daily, |t| (t.year(), t.ordinal(), 0)),
        ("weekly", policy.keep_weekly, |t| {
            (t.iso_week().year(), t.iso_week().week(), 0)
        }),
        ("monthly", policy.keep_monthly, |t| (t.year(), t.month(), 0)),
    ];
    for (name, count, bucket) in periods {
        let Some(n) = count else { continue };
        let mut last = None;
        let mut kept = 0;
        for d in &mut decisions {
            let b = bucket(d.time);
            if last != Some(b) && kept < n {
                kept += 1;
                keep(d, format!("{name} {kept}/{n}"));
            }
            last = Some(b);
        }
    }
    if let Some(within) = policy.keep_within {
        let span = humantime::format_duration(within.to_std().unwrap_or_default()).to_string();
        for d in &mut decisions {
            if newest - d.time <= within {
                keep(d, format!("within {span} of the newest"));
            }
        }
    }
    for d in &mut decisions {
        if !d.keep {
            d.reasons.push("no rule keeps it".into());
        }
    }
    decisions
}

fn keep(d: &mut Decision, reason: String) {
    d.keep = true;
    d.reasons.push(reason);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    /// Two PITs a day (02:00 and 14:00) from March 1 to March 20.
    fn twice_daily() -> Vec<(String, DateTime<Utc>)> {
        (1..=20)
            .flat_map(|d| [2, 14].map(|h| (format!("p{d:02}-{h:02}"), at(d, h))))
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<&str> {
        decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| d.pit.as_str())
            .collect()
    }

    #[test]
    fn an_empty_policy_keeps_everything() {
        let pits = twice_daily();
        assert_eq!(
            kept(&decide(&pits, &Retention::default())).len(),
            pits.len()
        );
    }

    #[test]
    fn keep_last_keeps_the_newest_n() {
        let policy = Retention {
            keep_last: Some(3),
            ..Retention::default()
        };
        assert_eq!(
            kept(&decide(&twice_daily(), &policy)),
            ["p20-14", "p20-02", "p19-14"]
        );
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day() {
        let policy = Retention {
            keep_daily: Some(3),
            ..Retention::default()
        };
        let decisions = decide(&twice_daily(), &policy);
        assert_eq!(kept(&decisions), ["p20-14", "p19-14", "p18-14"]);
        assert_eq!(decisions[0].reasons, ["newest PIT", "daily 1/3"]);
        assert_eq!(decisions[1].reasons, ["no rule keeps it"]);
    }

    #[test]
    fn weekly_and_monthly_use_calendar_periods() {
        // March 2026: the 16th is a Monday, so the 16th–20th, 9th–15th and 2nd–8th are weeks.
        let policy = Retention {
            keep_weekly: Some(3),
            keep_monthly: Some(2),
            ..Retention::default()
        };
        let decisions = decide(&twice_daily(), &policy);
        assert_eq!(kept(&decisions), ["p20-14", "p15-14", "p08-14"]);
        let monthly: Vec<&str> = decisions
            .iter()
            .filter(|d| d.reasons.iter().any(|r| r.starts_with("monthly")))
            .map(|d| d.pit.as_str())
            .collect();
        assert_eq!(monthly, ["p20-14"], "all in one month: one monthly keeper");
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_pit() {
        let policy = Retention {
            keep_within: Some(chrono::Duration::hours(24)),
            ..Retention::default()
        };
        assert_eq!(
            kept(&decide(&twice_daily(), &policy)),
            ["p20-14", "p20-02", "p19-14"]
        );
    }

    #[test]
    fn the_newest_pit_always_stays() {
        let policy = Retention {
            keep_hourly: Some(1),
            ..Retention::default()
        };
        let one = vec![("only".to_owned(), at(1, 0))];
        assert_eq!(kept(&decide(&one, &policy)), ["only"]);
        assert!(decide(&[], &policy).is_empty());
    }
}
