//! When scheduled work is due: a calendar expression, read in a tenant's IANA time zone.
//!
//! Two notations are accepted, both well known to administrators:
//!
//! - systemd / Proxmox Backup Server calendar events, the subset schedules use:
//!   `[WEEKDAYS] [*-*-*] HOURS:MINUTES[:00]` and the names `minutely`, `hourly`, `daily`,
//!   `weekly` (Monday 00:00), `monthly` (the 1st, 00:00), `yearly`/`annually`. WEEKDAYS is a
//!   list of `mon`..`sun` (or full names) and ranges `mon..fri`; HOURS and MINUTES are `*`,
//!   numbers, ranges `8..17`, lists `2,22` and repetitions `0/15` (from 0, every 15) or
//!   `8..18/2`. Examples: `mon..fri 22:00`, `*:0/15`, `sat,sun 03:30`, `2,14:00`.
//! - cron, five fields (minute hour day-of-month month day-of-week), as Vixie cron reads
//!   them, with croner's extensions (`L`, `#`, `W`): `0 22 * * 1-5`.
//!
//! Both are evaluated by the `croner` crate over local wall-clock time. Daylight saving time
//! is handled as people expect of a wall-clock schedule:
//!
//! - a wall time that happens twice when the clocks go back runs once, at its first
//!   occurrence (so `*:0/15` makes no runs in the repeated hour);
//! - a wall time that the clocks skip runs as late as the clocks jumped: `02:30` on the
//!   night the clocks go from 02:00 to 03:00 runs at 03:30.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset as _, TimeZone, Utc};
pub use chrono_tz::{TZ_VARIANTS, Tz};

/// A parsed schedule. Keeps the text it was written as.
#[derive(Clone, Debug)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    /// Reads a calendar event or a cron expression; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the schedule is empty".into());
        }
        if text.len() > 200 {
            return Err("the schedule is longer than 200 characters".into());
        }
        let fields: Vec<&str> = text.split_whitespace().collect();
        let cron_text = if fields.len() == 5 {
            fields.join(" ")
        } else {
            calendar_to_cron(&text.to_ascii_lowercase())?
        };
        let cron = croner::Cron::from_str(&cron_text)
            .map_err(|e| format!("{text:?} is not a schedule: {e}"))?;
        let schedule = Schedule {
            text: text.to_string(),
            cron,
        };
        // A pattern that can never match (30 February) is refused here, not found out later.
        let probe = DateTime::<Utc>::from_timestamp(0, 0).expect("the epoch");
        if schedule.next_after(probe, Tz::UTC).is_none() {
            return Err(format!("{text:?} never happens"));
        }
        Ok(schedule)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `after`, with the schedule read in `tz`. `None` when
    /// there is none before the year 5000, where the evaluator stops looking (a pattern that
    /// never happens walks all those years, about 0.1 s in a release build, once, when it is
    /// refused).
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        // Wall-clock time at `after`, as a naive time carried in a UTC value: the evaluator
        // then walks wall-clock time without any zone rules of its own.
        // Runs fall on whole seconds: the evaluator keeps the fraction of its start, so the
        // start is taken at the whole second (its run, if any, is not after `after`).
        let whole = DateTime::<Utc>::from_timestamp(after.timestamp(), 0)?;
        let mut wall = whole.with_timezone(&tz).naive_local();
        // More than one round only while stepping through wall times of a repeated hour
        // that already happened (at most one per minute of the fold).
        for _ in 0..200 {
            let next = self
                .cron
                .find_next_occurrence(&Utc.from_utc_datetime(&wall), false)
                .ok()?
                .naive_utc();
            let at = match tz.from_local_datetime(&next) {
                LocalResult::Single(t) => t,
                // Twice: the first occurrence only.
                LocalResult::Ambiguous(first, _) => first,
                // Skipped: as late as the clocks jumped (the offset before the jump, read
                // two days earlier: far enough before the jump in every zone, UTC-12 to
                // UTC+14, and clocks never change twice in two days).
                LocalResult::None => {
                    let before = tz.offset_from_utc_datetime(&(next - Duration::days(2)));
                    let utc: NaiveDateTime =
                        next - Duration::seconds(before.fix().local_minus_utc() as i64);
                    tz.from_utc_datetime(&utc)
                }
            }
            .with_timezone(&Utc);
            if at > after {
                return Some(at);
            }
            // The wall time was reached in the first pass of a repeated hour: look further.
            wall = next;
        }
        None
    }
}

/// The next time of the schedule `text` strictly after `after_ms` (Unix milliseconds) in
/// the zone `time_zone`, in Unix milliseconds; `None` when the schedule does not read or
/// never comes. A zone that does not read (one that stopped being a zone) counts as UTC.
pub fn next_after_ms(text: &str, time_zone: &str, after_ms: i64) -> Option<i64> {
    let tz = parse_time_zone(time_zone)
        .or_else(|_| parse_time_zone("UTC"))
        .ok()?;
    let after = DateTime::<Utc>::from_timestamp_millis(after_ms)?;
    Schedule::parse(text)
        .ok()?
        .next_after(after, tz)
        .map(|t| t.timestamp_millis())
}

/// Reads an IANA time zone name such as `Europe/Amsterdam` or `UTC`.
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("{name:?} is not an IANA time zone (like Europe/Amsterdam)"))
}

/// Translates the calendar-event subset into a cron expression.
fn calendar_to_cron(text: &str) -> Result<String, String> {
    let named = match text {
        "minutely" => Some("* * * * *"),
        "hourly" => Some("0 * * * *"),
        "daily" => Some("0 0 * * *"),
        "weekly" => Some("0 0 * * 1"),
        "monthly" => Some("0 0 1 * *"),
        "yearly" | "annually" => Some("0 0 1 1 *"),
        _ => None,
    };
    if let Some(n) = named {
        return Ok(n.to_string());
    }
    let mut weekdays = "*".to_string();
    let mut time = None;
    for token in text.split_whitespace() {
        if token.contains(':') {
            if time.is_some() {
                return Err(format!("{text:?} names two times"));
            }
            time = Some(token);
        } else if token == "*-*-*" {
            // Every day: the only date part schedules accept.
        } else if token.contains('-') {
            return Err(format!(
                "{text:?}: only the date part *-*-* is accepted (use cron for days of the month)"
            ));
        } else if weekdays == "*" && time.is_none() {
            weekdays = weekday_list(token)?;
        } else {
            return Err(format!("{text:?}: unexpected {token:?}"));
        }
    }
    let time = time.unwrap_or("00:00");
    let parts: Vec<&str> = time.split(':').collect();
    let (hours, minutes) = match parts.as_slice() {
        [h, m] => (h, m),
        [h, m, s] if s.trim_start_matches('0').is_empty() => (h, m),
        [_, _, _] => return Err(format!("{text:?}: schedules run on whole minutes")),
        _ => return Err(format!("{text:?}: a time is HOURS:MINUTES")),
    };
    let hours = field(hours, 23, "hour")?;
    let minutes = field(minutes, 59, "minute")?;
    Ok(format!("{minutes} {hours} * * {weekdays}"))
}

/// `mon..fri`, `sat,sun`, `monday` into cron day-of-week numbers (Sunday 0).
fn weekday_list(token: &str) -> Result<String, String> {
    let day = |s: &str| -> Result<u32, String> {
        const NAMES: [&str; 7] = [
            "sunday",
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
        ];
        NAMES
            .iter()
            .position(|n| s.len() >= 3 && n.starts_with(s))
            .map(|i| i as u32)
            .ok_or_else(|| format!("{s:?} is not a weekday"))
    };
    let mut out = Vec::new();
    for item in token.split(',') {
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                // mon..sun wraps past Saturday in systemd's week (Monday first).
                if a <= b {
                    out.push(format!("{a}-{b}"));
                } else if b == 0 {
                    out.push(format!("{a}-6"));
                    out.push("0".into());
                } else {
                    return Err(format!("{item:?}: the range runs backwards"));
                }
            }
            None => out.push(day(item)?.to_string()),
        }
    }
    Ok(out.join(","))
}

/// One of HOURS or MINUTES: `*`, `5`, `8..17`, `0/15`, `8..18/2`, lists of these.
fn field(text: &str, max: u32, what: &str) -> Result<String, String> {
    if text == "*" {
        return Ok("*".into());
    }
    let num = |s: &str| -> Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| format!("{s:?} is not a valid {what} (0 to {max})"))
    };
    let mut out = Vec::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step = num(s)?;
                if step == 0 {
                    return Err(format!("{item:?}: a repetition of 0"));
                }
                (r, Some(step))
            }
            None => (item, None),
        };
        let (from, to) = match range.split_once("..") {
            Some((a, b)) => (num(a)?, num(b)?),
            None if range == "*" => (0, max),
            // `0/15`: from 0 to the end, every 15.
            None if step.is_some() => (num(range)?, max),
            None => {
                let n = num(range)?;
                (n, n)
            }
        };
        if from > to {
            return Err(format!("{item:?}: the range runs backwards"));
        }
        out.push(match step {
            Some(s) => format!("{from}-{to}/{s}"),
            None if from == to => from.to_string(),
            None => format!("{from}-{to}"),
        });
    }
    Ok(out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn next(expr: &str, after: &str, tz: &str) -> String {
        Schedule::parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .next_after(utc(after), parse_time_zone(tz).unwrap())
            .unwrap()
            .to_rfc3339()
    }

    /// Each expression, a moment, and the next run after it, worked out by hand.
    #[test]
    fn next_runs_match_a_table_worked_out_by_hand() {
        let table = [
            // 2026-12-02 is a Wednesday; Amsterdam is UTC+1 in winter.
            (
                "daily",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-03T00:00:00+00:00",
            ),
            (
                "daily",
                "2026-12-02T10:00:00Z",
                "Europe/Amsterdam",
                "2026-12-02T23:00:00+00:00",
            ),
            (
                "hourly",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-02T11:00:00+00:00",
            ),
            // A start with a fraction of a second: runs are on whole seconds all the same.
            (
                "hourly",
                "2026-12-02T10:30:00.976Z",
                "UTC",
                "2026-12-02T11:00:00+00:00",
            ),
            (
                "*:0/15",
                "2026-12-02T10:00:00.500Z",
                "UTC",
                "2026-12-02T10:15:00+00:00",
            ),
            (
                "weekly",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-07T00:00:00+00:00",
            ),
            (
                "monthly",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2027-01-01T00:00:00+00:00",
            ),
            (
                "yearly",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2027-01-01T00:00:00+00:00",
            ),
            (
                "mon..fri 22:00",
                "2026-12-02T10:00:00Z",
                "Europe/Amsterdam",
                "2026-12-02T21:00:00+00:00",
            ),
            // Friday 23:00 local: the next weekday run is Monday.
            (
                "mon..fri 22:00",
                "2026-12-04T22:00:00Z",
                "Europe/Amsterdam",
                "2026-12-07T21:00:00+00:00",
            ),
            (
                "sat,sun 03:30",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-05T03:30:00+00:00",
            ),
            (
                "*:0/15",
                "2026-12-02T10:07:00Z",
                "UTC",
                "2026-12-02T10:15:00+00:00",
            ),
            (
                "*:0/15",
                "2026-12-02T10:45:00Z",
                "UTC",
                "2026-12-02T11:00:00+00:00",
            ),
            (
                "2,14:00",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-02T14:00:00+00:00",
            ),
            (
                "8..18/2:30",
                "2026-12-02T10:31:00Z",
                "UTC",
                "2026-12-02T12:30:00+00:00",
            ),
            (
                "*-*-* 06:00:00",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2026-12-03T06:00:00+00:00",
            ),
            (
                "sun 01:00",
                "2026-12-02T10:00:00Z",
                "America/New_York",
                "2026-12-06T06:00:00+00:00",
            ),
            (
                "0 22 * * 1-5",
                "2026-12-04T22:00:00Z",
                "Europe/Amsterdam",
                "2026-12-07T21:00:00+00:00",
            ),
            (
                "30 4 1 * *",
                "2026-12-02T10:00:00Z",
                "UTC",
                "2027-01-01T04:30:00+00:00",
            ),
            // Kolkata is UTC+5:30.
            (
                "daily",
                "2026-12-02T10:00:00Z",
                "Asia/Kolkata",
                "2026-12-02T18:30:00+00:00",
            ),
        ];
        for (expr, after, tz, want) in table {
            assert_eq!(next(expr, after, tz), want, "{expr} after {after} in {tz}");
        }
    }

    #[test]
    fn a_skipped_wall_time_runs_as_late_as_the_clocks_jumped() {
        // Far east of UTC as well: 2026-10-04 in Sydney, 02:00 AEST (UTC+10) becomes 03:00
        // AEDT; 2026-09-27 in Auckland, 02:00 NZST (UTC+12) becomes 03:00 NZDT. 02:30 runs
        // at 03:30, not at 01:30 (before the jump, and with a 01:30 run, one run lost).
        assert_eq!(
            next("02:30", "2026-10-03T00:00:00Z", "Australia/Sydney"),
            "2026-10-03T16:30:00+00:00"
        );
        assert_eq!(
            next("02:30", "2026-09-26T00:00:00Z", "Pacific/Auckland"),
            "2026-09-26T14:30:00+00:00"
        );
        // 2026-03-29 in Amsterdam: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        let ams = "Europe/Amsterdam";
        assert_eq!(
            next("02:30", "2026-03-28T12:00:00Z", ams),
            "2026-03-29T01:30:00+00:00"
        );
        // The day after, 02:30 exists again (CEST, UTC+2).
        assert_eq!(
            next("02:30", "2026-03-29T01:30:00Z", ams),
            "2026-03-30T00:30:00+00:00"
        );
        // Every 15 minutes: 01:45 CET, then the skipped 02:00 at 03:00 CEST, then 03:15.
        assert_eq!(
            next("*:0/15", "2026-03-29T00:45:00Z", ams),
            "2026-03-29T01:00:00+00:00"
        );
        assert_eq!(
            next("*:0/15", "2026-03-29T01:00:00Z", ams),
            "2026-03-29T01:15:00+00:00"
        );
        // A daily run before the change keeps its wall time after it.
        assert_eq!(
            next("daily", "2026-03-28T12:00:00Z", ams),
            "2026-03-28T23:00:00+00:00"
        );
        assert_eq!(
            next("daily", "2026-03-28T23:00:00Z", ams),
            "2026-03-29T22:00:00+00:00"
        );
    }

    #[test]
    fn a_wall_time_that_happens_twice_runs_once() {
        // 2026-10-25 in Amsterdam: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 happens
        // at 00:30 UTC and again at 01:30 UTC.
        let ams = "Europe/Amsterdam";
        assert_eq!(
            next("02:30", "2026-10-24T12:00:00Z", ams),
            "2026-10-25T00:30:00+00:00"
        );
        assert_eq!(
            next("02:30", "2026-10-25T00:30:00Z", ams),
            "2026-10-26T01:30:00+00:00"
        );
        // Every 15 minutes: no runs in the repeated hour, 02:45 CEST then 03:00 CET.
        assert_eq!(
            next("*:0/15", "2026-10-25T00:45:00Z", ams),
            "2026-10-25T02:00:00+00:00"
        );
        // Asked from inside the repeated hour (02:10 CET): its wall times already happened.
        assert_eq!(
            next("*:0/15", "2026-10-25T01:10:00Z", ams),
            "2026-10-25T02:00:00+00:00"
        );
        assert_eq!(
            next("minutely", "2026-10-25T01:10:00Z", ams),
            "2026-10-25T02:00:00+00:00"
        );
        assert_eq!(
            next("daily", "2026-10-24T12:00:00Z", ams),
            "2026-10-24T22:00:00+00:00"
        );
        assert_eq!(
            next("daily", "2026-10-24T22:00:00Z", ams),
            "2026-10-25T23:00:00+00:00"
        );
    }

    #[test]
    fn what_is_not_a_schedule_is_refused_with_a_reason() {
        for bad in [
            "",
            "sometimes",
            "25:00",
            "12:60",
            "mon..fry 10:00",
            "fri..mon 10:00",
            "10:00 11:00",
            "*:0/0",
            "12:00:30",
            "2026-01-01 10:00",
            "0 22 * *",
            "0 0 30 2 *",
            "* * * * * * * *",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_time_zone("Europe/Amsterdam").is_ok());
        assert!(parse_time_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn next_after_ms_reads_the_schedule_and_zone_and_falls_back_to_utc() {
        let ms = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        let after = ms("2026-12-07T00:00:00Z");
        assert_eq!(
            next_after_ms("daily", "Asia/Tokyo", after),
            Some(ms("2026-12-07T15:00:00Z"))
        );
        assert_eq!(
            next_after_ms("daily", "Mars/Olympus", after),
            Some(ms("2026-12-08T00:00:00Z"))
        );
        assert_eq!(next_after_ms("someday", "UTC", after), None);
    }

    #[test]
    fn weekday_ranges_may_wrap_to_sunday() {
        // sat..sun: Saturday and Sunday (systemd's week starts on Monday).
        assert_eq!(
            next("sat..sun 09:00", "2026-12-05T10:00:00Z", "UTC"),
            "2026-12-06T09:00:00+00:00"
        );
        assert_eq!(
            next("sat..sun 09:00", "2026-12-06T10:00:00Z", "UTC"),
            "2026-12-12T09:00:00+00:00"
        );
    }
}
