//! Forget: remove snapshots, named or chosen by a retention policy. Planned first, carried out
//! second, as prune is.
//!
//! [`plan`] reads the repository and changes nothing: the [`ForgetPlan`] it returns holds, per
//! group, every snapshot with the policy's verdict and reasons, the snapshots to remove, and the
//! snapshot objects that could not be read (a policy cannot judge those, so they stay).
//! A dry run shows the plan; [`execute`] removes exactly the plan's snapshots with
//! [`Repository::remove_snapshot`]. Removing a snapshot frees no data by itself: prune does.
//!
//! # Retention policies
//!
//! [`apply`] takes one group of snapshots ([`plan`] groups them by host and paths) and a
//! [`KeepPolicy`], and decides for every snapshot whether it is kept, and why.
//!
//! The rules follow restic's `forget --keep-*` options:
//!
//! * Snapshots are processed newest first (ties: lower input index first).
//! * `last` keeps the `n` newest snapshots.
//! * `hourly`, `daily`, `weekly`, `monthly`, `yearly` each walk the snapshots
//!   newest first and keep the newest snapshot of every calendar bucket they
//!   have not seen yet, until `n` buckets have been kept. Only buckets that
//!   contain a snapshot are counted. Buckets: hour = year-month-day-hour,
//!   day = year-month-day, week = ISO 8601 week-year + ISO week (Monday to
//!   Sunday, so late December can belong to week 1 of the next year),
//!   month = year-month, year = year.
//! * If a count rule still has buckets left when it reaches the oldest
//!   snapshot of the group, that oldest snapshot is kept as well (restic
//!   ≥ 0.16, restic PR #4366), so a young history is not cut short.
//! * `tags` keeps every snapshot carrying at least one of the listed tags; the
//!   empty tag `""` matches snapshots that have no tags at all (as restic's
//!   `--keep-tag ''`).
//! * `within` keeps every snapshot strictly newer than
//!   `newest snapshot time - within`.
//! * The rules are ORed; a kept snapshot lists every rule that kept it, in
//!   restic's order: tag, within, last, hourly, daily, weekly, monthly, yearly.
//! * An empty policy (see [`KeepPolicy::is_empty`]) keeps everything: [`apply`]
//!   then returns `Keep(vec![])` for every snapshot. Refusing to run with an
//!   empty policy is the CLI's job, as restic prints "no policy was specified,
//!   no snapshots will be removed".
//!
//! Deliberate differences from restic:
//!
//! * Buckets are computed in each snapshot's own recorded UTC offset, which is
//!   deterministic and independent of the machine's time zone; restic uses the
//!   local zone of the process running `forget`. Because of that, with mixed
//!   offsets the bucket sequence need not be monotonic, so a bucket is counted
//!   once per group (a set of seen buckets) instead of restic's "differs from
//!   the previously kept bucket"; for a single offset both are identical.
//! * Counts are plain `u32`, `0` meaning "not set". restic ≥ 0.16's
//!   `unlimited` (-1) is not supported (use a large count instead).
//! * `tags` are single tags ORed together; restic's comma-separated tag lists
//!   that must all be present (`--keep-tag a,b`) are not supported.
//! * `within` is a fixed [`chrono::Duration`]; see [`parse_within`] for how
//!   years and months are converted. "Newest" is the newest snapshot of the
//!   group, whereas restic ignores snapshots dated in the future ([`apply`]
//!   is pure and does not read the clock). A zero or negative `within` counts as
//!   not set.
//! * The restic ≥ 0.17 output marks the extra oldest snapshot as e.g.
//!   "oldest daily snapshot"; here it is reported with the plain rule reason
//!   ([`KeepReason::Daily`]).
//! * The `--keep-within-{hourly,daily,...}` options are not implemented.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Timelike};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::Repository;
use crate::snapshot::{Snapshot, SnapshotFilter};

/// What to forget.
#[derive(Debug, Clone)]
pub enum ForgetRequest {
    /// These snapshots, in this order: `latest`, full IDs or unique ID prefixes (at least 4
    /// hex digits). IDs and prefixes are resolved by name without reading the snapshot, so a
    /// damaged one can be removed.
    Snapshots(Vec<String>),
    /// Every snapshot `filter` selects that `policy` does not keep, judged per group of host
    /// and paths. An empty policy keeps everything ([`KeepPolicy::is_empty`]).
    Policy {
        policy: KeepPolicy,
        filter: SnapshotFilter,
    },
    /// Every snapshot judged by the policy of the first entry of `by_tag` whose tag it
    /// carries, else by `default`; per policy, group of host and paths. For a vault whose
    /// items (tagged `item:ID`) have retention rules of their own.
    Policies {
        default: KeepPolicy,
        by_tag: Vec<(String, KeepPolicy)>,
    },
}

/// What [`execute`] will do. [`plan`] makes it without changing the repository.
#[derive(Debug, Default)]
pub struct ForgetPlan {
    /// The policy's verdicts, one group per host and sorted paths, in that order; empty when
    /// snapshots were named.
    pub groups: Vec<ForgetGroup>,
    /// The snapshots [`execute`] removes, in the order they were decided.
    pub remove: Vec<Id>,
    /// Snapshot objects that cannot be read (object name, why). A policy cannot judge them,
    /// so they are kept; naming one removes it.
    pub damaged: Vec<(String, Error)>,
}

impl ForgetPlan {
    /// How many of the judged snapshots stay.
    pub fn kept(&self) -> usize {
        self.groups
            .iter()
            .map(|g| g.snapshots.len())
            .sum::<usize>()
            .saturating_sub(self.remove.len())
    }
}

/// The snapshots of one host with one set of paths: a policy judges each group on its own,
/// as restic does by default.
#[derive(Debug, Clone)]
pub struct ForgetGroup {
    pub host: String,
    /// Sorted.
    pub paths: Vec<String>,
    /// Oldest first.
    pub snapshots: Vec<Verdict>,
}

/// One snapshot and what the policy decided for it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub id: Id,
    pub snapshot: Snapshot,
    pub decision: Decision,
}

/// What [`execute`] did.
#[derive(Debug, Default)]
pub struct ForgetReport {
    /// The snapshots removed, in plan order.
    pub removed: Vec<Id>,
}

/// Decides what `request` removes. Reads snapshots (all of them for a policy, only their
/// names for IDs and prefixes) and writes nothing.
pub fn plan(repo: &Repository, request: &ForgetRequest) -> Result<ForgetPlan> {
    match request {
        ForgetRequest::Snapshots(specs) => Ok(ForgetPlan {
            remove: specs
                .iter()
                .map(|spec| resolve(repo, spec))
                .collect::<Result<_>>()?,
            ..Default::default()
        }),
        ForgetRequest::Policy { policy, filter } => {
            plan_policy(repo, |s| filter.matches(s).then_some((0, policy)))
        }
        ForgetRequest::Policies { default, by_tag } => plan_policy(repo, |s| {
            by_tag
                .iter()
                .position(|(tag, _)| s.tags.contains(tag))
                .map_or((0, default), |i| (i + 1, &by_tag[i].1))
                .into()
        }),
    }
}

/// The snapshot `spec` names. Only `latest` reads snapshots: it has to compare their times.
fn resolve(repo: &Repository, spec: &str) -> Result<Id> {
    if spec == "latest" {
        Ok(repo.find_snapshot(spec, &SnapshotFilter::default())?.0)
    } else {
        repo.snapshot_name(spec)
    }
}

/// Which policy judges, host and sorted paths: a policy judges the snapshots that share
/// them together.
type GroupKey = (usize, String, Vec<String>);
/// A group's policy and its snapshots.
type Group<'p> = (&'p KeepPolicy, Vec<(Id, Snapshot)>);

/// Judges every snapshot `select` gives a policy to (with a number naming the policy); the
/// others are not considered.
fn plan_policy<'p>(
    repo: &Repository,
    select: impl Fn(&Snapshot) -> Option<(usize, &'p KeepPolicy)>,
) -> Result<ForgetPlan> {
    let list = repo.list_snapshots()?;
    let mut groups: BTreeMap<GroupKey, Group<'p>> = BTreeMap::new();
    for (id, snapshot) in list.snapshots {
        let Some((n, policy)) = select(&snapshot) else {
            continue;
        };
        let mut paths = snapshot.paths.clone();
        paths.sort();
        groups
            .entry((n, snapshot.hostname.clone(), paths))
            .or_insert_with(|| (policy, Vec::new()))
            .1
            .push((id, snapshot));
    }
    let mut plan = ForgetPlan {
        damaged: list.damaged,
        ..Default::default()
    };
    for ((_, host, paths), (policy, members)) in groups {
        let candidates: Vec<Candidate<'_>> = members
            .iter()
            .map(|(_, s)| Candidate {
                time: s.time,
                tags: &s.tags,
            })
            .collect();
        let decisions = apply(&candidates, policy);
        let snapshots = members
            .into_iter()
            .zip(decisions)
            .map(|((id, snapshot), decision)| {
                if decision == Decision::Remove {
                    plan.remove.push(id);
                }
                Verdict {
                    id,
                    snapshot,
                    decision,
                }
            })
            .collect();
        plan.groups.push(ForgetGroup {
            host,
            paths,
            snapshots,
        });
    }
    Ok(plan)
}

/// Removes the snapshots `plan` names, in order. Stops at the first failure: the snapshots
/// before it are gone, the rest are still there.
pub fn execute(repo: &Repository, plan: &ForgetPlan) -> Result<ForgetReport> {
    let mut report = ForgetReport::default();
    for id in &plan.remove {
        repo.remove_snapshot(id)?;
        report.removed.push(*id);
    }
    Ok(report)
}

/// Which snapshots to keep. All-default means "no policy" (see
/// [`KeepPolicy::is_empty`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KeepPolicy {
    /// Keep the `n` newest snapshots (0 = not set).
    pub last: u32,
    /// Keep the newest snapshot of each of the `n` newest hours that have one.
    pub hourly: u32,
    /// Keep the newest snapshot of each of the `n` newest days that have one.
    pub daily: u32,
    /// Keep the newest snapshot of each of the `n` newest ISO weeks that have one.
    pub weekly: u32,
    /// Keep the newest snapshot of each of the `n` newest months that have one.
    pub monthly: u32,
    /// Keep the newest snapshot of each of the `n` newest years that have one.
    pub yearly: u32,
    /// Keep every snapshot that has any of these tags (`""` = untagged snapshots).
    pub tags: Vec<String>,
    /// Keep snapshots newer than (newest snapshot time - within). Zero or
    /// negative counts as not set.
    pub within: Option<chrono::Duration>,
}

impl KeepPolicy {
    /// True when no rule is set; applying such a policy removes nothing.
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.tags.is_empty()
            && self.active_within().is_none()
    }

    fn active_within(&self) -> Option<chrono::Duration> {
        self.within.filter(|w| *w > chrono::Duration::zero())
    }
}

/// What the policy needs to know about one snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    pub time: DateTime<FixedOffset>,
    pub tags: &'a [String],
}

/// The verdict for one snapshot. `Keep` lists every rule that keeps it; the
/// list is empty only when the policy is empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Keep(Vec<KeepReason>),
    Remove,
}

/// A rule that keeps a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KeepReason {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Tag,
    Within,
}

impl fmt::Display for KeepReason {
    /// restic's wording. restic appends the tag list ("has tags [a]") and the
    /// duration ("within 7d"); a caller wanting that output can append them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeepReason::Last => "last snapshot",
            KeepReason::Hourly => "hourly snapshot",
            KeepReason::Daily => "daily snapshot",
            KeepReason::Weekly => "weekly snapshot",
            KeepReason::Monthly => "monthly snapshot",
            KeepReason::Yearly => "yearly snapshot",
            KeepReason::Tag => "has tags",
            KeepReason::Within => "within",
        })
    }
}

/// Identifies the bucket a snapshot falls into for one count rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BucketKey {
    /// `last`: every snapshot is its own bucket.
    Position(usize),
    /// Calendar buckets, unused trailing fields are zero.
    Calendar(i32, u32, u32, u32),
}

/// One count rule while walking the snapshots.
struct CountRule {
    reason: KeepReason,
    remaining: u32,
    seen: HashSet<BucketKey>,
}

impl CountRule {
    fn new(reason: KeepReason, count: u32) -> Self {
        CountRule {
            reason,
            remaining: count,
            seen: HashSet::new(),
        }
    }

    /// The bucket of `time` (in its own UTC offset) for this rule.
    fn key(&self, time: &DateTime<FixedOffset>, position: usize) -> BucketKey {
        let local = time.naive_local();
        let (year, month, day, hour) = (local.year(), local.month(), local.day(), local.hour());
        match self.reason {
            KeepReason::Hourly => BucketKey::Calendar(year, month, day, hour),
            KeepReason::Daily => BucketKey::Calendar(year, month, day, 0),
            KeepReason::Weekly => {
                let week = local.iso_week();
                BucketKey::Calendar(week.year(), week.week(), 0, 0)
            }
            KeepReason::Monthly => BucketKey::Calendar(year, month, 0, 0),
            KeepReason::Yearly => BucketKey::Calendar(year, 0, 0, 0),
            KeepReason::Last | KeepReason::Tag | KeepReason::Within => {
                BucketKey::Position(position)
            }
        }
    }
}

fn has_tag(snapshot_tags: &[String], wanted: &str) -> bool {
    if wanted.is_empty() {
        snapshot_tags.is_empty()
    } else {
        snapshot_tags.iter().any(|t| t == wanted)
    }
}

/// Applies the policy to one group of snapshots (the caller groups by host and
/// paths). Returns one decision per candidate, in the same order as the input
/// (input order arbitrary; the function sorts internally newest first, ties
/// broken by input index, lower index counting as newer).
///
/// Calendar buckets are computed in each snapshot's own recorded UTC offset
/// (deterministic, independent of the machine's time zone), unlike restic,
/// which uses the local zone of the process. An empty policy keeps every
/// snapshot with an empty reason list.
pub fn apply(candidates: &[Candidate<'_>], policy: &KeepPolicy) -> Vec<Decision> {
    if policy.is_empty() {
        return vec![Decision::Keep(Vec::new()); candidates.len()];
    }

    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| candidates[b].time.cmp(&candidates[a].time).then(a.cmp(&b)));
    let Some(&newest) = order.first() else {
        return Vec::new();
    };
    let oldest_position = order.len() - 1;

    // `Some(None)`: the subtraction left chrono's range, so everything is within.
    let within_cutoff = policy
        .active_within()
        .map(|w| candidates[newest].time.checked_sub_signed(w));

    let mut rules = [
        CountRule::new(KeepReason::Last, policy.last),
        CountRule::new(KeepReason::Hourly, policy.hourly),
        CountRule::new(KeepReason::Daily, policy.daily),
        CountRule::new(KeepReason::Weekly, policy.weekly),
        CountRule::new(KeepReason::Monthly, policy.monthly),
        CountRule::new(KeepReason::Yearly, policy.yearly),
    ];

    let mut decisions = vec![Decision::Remove; candidates.len()];
    for (position, &index) in order.iter().enumerate() {
        let candidate = &candidates[index];
        let mut reasons = Vec::new();

        if policy.tags.iter().any(|t| has_tag(candidate.tags, t)) {
            reasons.push(KeepReason::Tag);
        }

        if let Some(cutoff) = within_cutoff
            && cutoff.is_none_or(|cutoff| candidate.time > cutoff)
        {
            reasons.push(KeepReason::Within);
        }

        for rule in &mut rules {
            if rule.remaining == 0 {
                continue;
            }
            let key = rule.key(&candidate.time, position);
            let new_bucket = rule.seen.insert(key);
            if new_bucket || position == oldest_position {
                rule.remaining -= 1;
                reasons.push(rule.reason);
            }
        }

        if !reasons.is_empty() {
            decisions[index] = Decision::Keep(reasons);
        }
    }
    decisions
}

/// Parses durations like "2y5m7d3h" (restic's keep-within syntax): one or more
/// `<number><unit>` pairs, units `y`, `m`, `d`, `h` in any order, each at most
/// once; surrounding whitespace is ignored.
///
/// The result is a fixed duration: `y` = 365 days, `m` = 30 days, `d` = 24
/// hours, `h` = 1 hour. restic instead steps back calendar years, months and
/// days from the newest snapshot in local time (`1m` from 31 March is
/// 2 March), so the cutoff can differ from restic's by about a day per year or
/// month, and by an hour across a DST change.
///
/// Stricter than restic: an empty string (restic: "not set"), a repeated unit
/// (restic: the last one wins) and negative numbers (rejected by restic's CLI)
/// are errors.
pub fn parse_within(s: &str) -> Result<chrono::Duration, String> {
    const HOURS_PER_DAY: i64 = 24;
    let text = s.trim();
    if text.is_empty() {
        return Err("empty duration, expected something like \"2y5m7d3h\"".to_string());
    }

    let mut total_hours: i64 = 0;
    let mut units_seen = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if rest.starts_with('-') {
            return Err(format!("negative durations are not allowed: {text:?}"));
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "expected a number at {rest:?} in duration {text:?}"
            ));
        }
        let number: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("number too large in duration {text:?}"))?;
        let mut after = rest[digits..].chars();
        let unit = after.next().ok_or_else(|| {
            format!("no unit after number {number} in duration {text:?} (use y, m, d or h)")
        })?;
        let hours_per_unit = match unit {
            'y' => 365 * HOURS_PER_DAY,
            'm' => 30 * HOURS_PER_DAY,
            'd' => HOURS_PER_DAY,
            'h' => 1,
            other => {
                return Err(format!(
                    "invalid unit {other:?} after number {number} in duration {text:?} (use y, m, d or h)"
                ));
            }
        };
        if units_seen.contains(unit) {
            return Err(format!("unit {unit:?} given twice in duration {text:?}"));
        }
        units_seen.push(unit);
        total_hours = number
            .checked_mul(hours_per_unit)
            .and_then(|h| total_hours.checked_add(h))
            .ok_or_else(|| format!("duration {text:?} is too large"))?;
        rest = after.as_str();
    }

    chrono::Duration::try_hours(total_hours)
        .ok_or_else(|| format!("duration {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(rfc3339: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(rfc3339).expect("test timestamp")
    }

    fn untagged(times: &[&str]) -> Vec<Candidate<'static>> {
        times
            .iter()
            .map(|t| Candidate {
                time: at(t),
                tags: &[],
            })
            .collect()
    }

    fn kept(decisions: &[Decision]) -> Vec<bool> {
        decisions
            .iter()
            .map(|d| matches!(d, Decision::Keep(_)))
            .collect()
    }

    fn keep(reasons: &[KeepReason]) -> Decision {
        Decision::Keep(reasons.to_vec())
    }

    fn tags(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keep_daily_keeps_the_newest_days() {
        let times: Vec<String> = (1..=10)
            .map(|d| format!("2024-01-{d:02}T12:00:00Z"))
            .collect();
        let refs: Vec<&str> = times.iter().map(String::as_str).collect();
        let policy = KeepPolicy {
            daily: 3,
            ..Default::default()
        };
        let decisions = apply(&untagged(&refs), &policy);
        let mut expected = vec![Decision::Remove; 7];
        expected.extend(vec![keep(&[KeepReason::Daily]); 3]);
        assert_eq!(decisions, expected);
    }

    #[test]
    fn same_day_keeps_only_the_newer() {
        let policy = KeepPolicy {
            daily: 1,
            ..Default::default()
        };
        let forward = untagged(&["2024-05-01T08:00:00Z", "2024-05-01T20:00:00Z"]);
        assert_eq!(
            apply(&forward, &policy),
            vec![Decision::Remove, keep(&[KeepReason::Daily])]
        );
        // Input order must not matter.
        let backward = untagged(&["2024-05-01T20:00:00Z", "2024-05-01T08:00:00Z"]);
        assert_eq!(
            apply(&backward, &policy),
            vec![keep(&[KeepReason::Daily]), Decision::Remove]
        );
    }

    #[test]
    fn oldest_snapshot_is_kept_while_counts_remain() {
        // restic PR #4366 / issue #4806: keep-hourly 24 with three snapshots,
        // two in the same hour, keeps all three because the count is not used up.
        let candidates = untagged(&[
            "2024-05-17T09:36:51Z",
            "2024-05-17T09:41:06Z",
            "2024-05-17T11:00:00Z",
        ]);
        let policy = KeepPolicy {
            hourly: 24,
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![keep(&[KeepReason::Hourly]); 3]
        );
        // With the count used up by the two newer hours, the oldest goes.
        let policy = KeepPolicy {
            hourly: 2,
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                Decision::Remove,
                keep(&[KeepReason::Hourly]),
                keep(&[KeepReason::Hourly])
            ]
        );
    }

    #[test]
    fn weekly_uses_iso_weeks_across_the_year_boundary() {
        // 2024-12-28 Sat and 2024-12-29 Sun are in ISO week 2024-W52;
        // 2024-12-31 Tue and 2025-01-04 Sat are both in ISO week 2025-W01.
        let candidates = untagged(&[
            "2024-12-28T10:00:00Z",
            "2024-12-29T10:00:00Z",
            "2024-12-31T10:00:00Z",
            "2025-01-04T10:00:00Z",
        ]);
        let policy = KeepPolicy {
            weekly: 2,
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                Decision::Remove,
                keep(&[KeepReason::Weekly]),
                Decision::Remove,
                keep(&[KeepReason::Weekly]),
            ]
        );
    }

    #[test]
    fn monthly_and_yearly_buckets() {
        let candidates = untagged(&[
            "2022-06-15T00:00:00Z", // 0: year 2022 (oldest)
            "2022-12-31T23:00:00Z", // 1: newest of 2022
            "2023-11-02T00:00:00Z", // 2: Nov 2023, newest of 2023
            "2024-01-05T00:00:00Z", // 3: Jan 2024 (older)
            "2024-01-20T00:00:00Z", // 4: Jan 2024, newest of 2024
            "2024-02-01T00:00:00Z", // 5: Feb 2024 (newest overall)
        ]);
        let policy = KeepPolicy {
            monthly: 2,
            yearly: 3,
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                Decision::Remove,
                keep(&[KeepReason::Yearly]),
                keep(&[KeepReason::Yearly]),
                Decision::Remove,
                keep(&[KeepReason::Monthly]),
                keep(&[KeepReason::Monthly, KeepReason::Yearly]),
            ]
        );
    }

    #[test]
    fn keep_last_with_shuffled_input_and_ties() {
        let candidates = untagged(&[
            "2024-01-03T00:00:00Z",
            "2024-01-05T00:00:00Z",
            "2024-01-01T00:00:00Z",
            "2024-01-04T00:00:00Z",
            "2024-01-02T00:00:00Z",
        ]);
        let policy = KeepPolicy {
            last: 3,
            ..Default::default()
        };
        assert_eq!(
            kept(&apply(&candidates, &policy)),
            vec![true, true, false, true, false]
        );

        // Equal times: the lower input index counts as newer.
        let tied = untagged(&["2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"]);
        let policy = KeepPolicy {
            last: 1,
            ..Default::default()
        };
        assert_eq!(
            apply(&tied, &policy),
            vec![keep(&[KeepReason::Last]), Decision::Remove]
        );
    }

    #[test]
    fn keep_tag_matches_any_listed_tag_and_empty_means_untagged() {
        let (a, b, none) = (tags(&["a"]), tags(&["b", "c"]), tags(&[]));
        let time = at("2024-01-01T00:00:00Z");
        let candidates = [
            Candidate { time, tags: &a },
            Candidate { time, tags: &b },
            Candidate { time, tags: &none },
        ];
        let policy = KeepPolicy {
            tags: tags(&["c", "x"]),
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![Decision::Remove, keep(&[KeepReason::Tag]), Decision::Remove]
        );
        let policy = KeepPolicy {
            tags: tags(&[""]),
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![Decision::Remove, Decision::Remove, keep(&[KeepReason::Tag])]
        );
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_snapshot_and_strict() {
        let candidates = untagged(&[
            "2024-01-08T12:00:00Z", // exactly 2 days before the newest: not newer
            "2024-01-08T12:00:01Z",
            "2024-01-10T12:00:00Z",
            "2024-01-01T00:00:00Z",
        ]);
        let policy = KeepPolicy {
            within: Some(chrono::Duration::days(2)),
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                Decision::Remove,
                keep(&[KeepReason::Within]),
                keep(&[KeepReason::Within]),
                Decision::Remove,
            ]
        );
    }

    #[test]
    fn a_snapshot_kept_by_several_rules_lists_them_all_in_restic_order() {
        let t = tags(&["x"]);
        let candidates = [
            Candidate {
                time: at("2024-03-01T10:00:00Z"),
                tags: &[],
            },
            Candidate {
                time: at("2024-03-01T12:00:00Z"),
                tags: &t,
            },
        ];
        let policy = KeepPolicy {
            last: 1,
            hourly: 1,
            daily: 1,
            weekly: 1,
            monthly: 1,
            yearly: 1,
            tags: tags(&["x"]),
            within: Some(chrono::Duration::hours(1)),
        };
        use KeepReason::*;
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                Decision::Remove,
                keep(&[Tag, Within, Last, Hourly, Daily, Weekly, Monthly, Yearly]),
            ]
        );
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let candidates = untagged(&["2024-01-01T00:00:00Z", "2023-01-01T00:00:00Z"]);
        let policy = KeepPolicy::default();
        assert!(policy.is_empty());
        assert_eq!(
            apply(&candidates, &policy),
            vec![Decision::Keep(Vec::new()); 2]
        );
        // A zero or negative `within` is "not set", like restic's zero duration.
        for within in [chrono::Duration::zero(), chrono::Duration::hours(-1)] {
            let policy = KeepPolicy {
                within: Some(within),
                ..Default::default()
            };
            assert!(policy.is_empty());
            assert_eq!(
                apply(&candidates, &policy),
                vec![Decision::Keep(Vec::new()); 2]
            );
        }
        assert!(
            !KeepPolicy {
                yearly: 1,
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            !KeepPolicy {
                tags: tags(&[""]),
                ..Default::default()
            }
            .is_empty()
        );
        assert!(
            !KeepPolicy {
                within: Some(chrono::Duration::hours(1)),
                ..Default::default()
            }
            .is_empty()
        );
    }

    #[test]
    fn no_candidates_no_decisions() {
        let policy = KeepPolicy {
            last: 3,
            ..Default::default()
        };
        assert_eq!(apply(&[], &policy), Vec::<Decision>::new());
    }

    #[test]
    fn buckets_use_each_snapshots_own_offset() {
        // newer: 23:30 on 1 March at +00:00; older: 00:30 on 2 March at +02:00
        // (22:30Z on 1 March). In their own offsets these are two different
        // days; in UTC they would share 1 March.
        let candidates = untagged(&[
            "2024-03-01T23:30:00+00:00",
            "2024-03-02T00:30:00+02:00",
            "2024-02-20T12:00:00+00:00",
        ]);
        let policy = KeepPolicy {
            daily: 2,
            ..Default::default()
        };
        assert_eq!(
            apply(&candidates, &policy),
            vec![
                keep(&[KeepReason::Daily]),
                keep(&[KeepReason::Daily]),
                Decision::Remove
            ]
        );
    }

    #[test]
    fn a_bucket_is_counted_once_even_when_offsets_interleave_it() {
        // Newest first, the days in their own offsets are 03-01, 03-02, 03-01,
        // 02-01, 01-01. The second 03-01 snapshot is not a new bucket.
        let candidates = untagged(&[
            "2024-03-01T23:30:00+00:00",
            "2024-03-02T00:30:00+02:00",
            "2024-03-01T20:00:00+00:00",
            "2024-02-01T12:00:00+00:00",
            "2024-01-01T12:00:00+00:00",
        ]);
        let policy = KeepPolicy {
            daily: 3,
            ..Default::default()
        };
        assert_eq!(
            kept(&apply(&candidates, &policy)),
            vec![true, true, false, true, false]
        );
    }

    #[test]
    fn reason_display_matches_restic_wording() {
        use KeepReason::*;
        let shown: Vec<String> = [Last, Hourly, Daily, Weekly, Monthly, Yearly, Tag, Within]
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            shown,
            [
                "last snapshot",
                "hourly snapshot",
                "daily snapshot",
                "weekly snapshot",
                "monthly snapshot",
                "yearly snapshot",
                "has tags",
                "within",
            ]
        );
    }

    #[test]
    fn parse_within_accepts_restic_syntax() {
        let day = chrono::Duration::days(1);
        assert_eq!(
            parse_within("2y5m7d3h"),
            Ok(day * (2 * 365 + 5 * 30 + 7) + chrono::Duration::hours(3))
        );
        assert_eq!(parse_within("36h"), Ok(chrono::Duration::hours(36)));
        assert_eq!(parse_within(" 7d "), Ok(day * 7));
        assert_eq!(
            parse_within("3h1y"),
            Ok(day * 365 + chrono::Duration::hours(3))
        );
        assert_eq!(parse_within("0d"), Ok(chrono::Duration::zero()));
    }

    #[test]
    fn parse_within_rejects_malformed_input() {
        for bad in [
            "",
            "   ",
            "d",
            "5",
            "5x",
            "-1d",
            "1d-2h",
            "1d1d",
            "1.5d",
            "1 d",
            "7D",
            "1w",
            "99999999999999999999y",
            "9223372036854775807h",
        ] {
            assert!(parse_within(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    // ---- plan and execute ----

    mod plan_and_execute {
        use super::*;
        use crate::storage::FileKind;

        fn repo() -> (tempfile::TempDir, Repository) {
            let dir = tempfile::tempdir().unwrap();
            let repo = crate::testutil::local_repo(dir.path());
            (dir, repo)
        }

        /// Saves a snapshot record; forget never reads the tree it points to.
        fn snapshot(repo: &Repository, host: &str, paths: &[&str], time: &str) -> Id {
            repo.save_snapshot(&Snapshot {
                time: at(time),
                tree: Id::random(),
                paths: tags(paths),
                hostname: host.into(),
                username: String::new(),
                tags: Vec::new(),
                parent: None,
                excludes: Vec::new(),
                program_version: String::new(),
                summary: None,
            })
            .unwrap()
        }

        /// A snapshot object that does not decrypt, as a hostile backup token can write.
        fn damaged_snapshot(repo: &Repository) -> Id {
            let id = Id::random();
            let mut body = crate::format::Magic::Snapshot.header().to_vec();
            body.extend_from_slice(&[0xAB; 300]);
            repo.storage()
                .put(FileKind::Snapshot, &id.to_hex(), body)
                .unwrap();
            id
        }

        /// Every stored object by kind, name and size.
        fn objects(repo: &Repository) -> Vec<(FileKind, String, u64)> {
            FileKind::ALL
                .into_iter()
                .flat_map(|kind| {
                    repo.storage()
                        .list(kind)
                        .unwrap()
                        .into_iter()
                        .map(move |o| (kind, o.name, o.size))
                })
                .collect()
        }

        fn keep_last(n: u32) -> ForgetRequest {
            ForgetRequest::Policy {
                policy: KeepPolicy {
                    last: n,
                    ..Default::default()
                },
                filter: SnapshotFilter::default(),
            }
        }

        fn listed(repo: &Repository) -> Vec<Id> {
            let mut ids: Vec<Id> = repo
                .list_snapshots()
                .unwrap()
                .snapshots
                .into_iter()
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            ids
        }

        #[test]
        fn a_plan_changes_nothing_and_comes_out_the_same_twice() {
            let (_dir, repo) = repo();
            snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");
            snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
            damaged_snapshot(&repo);
            let before = objects(&repo);

            let first = plan(&repo, &keep_last(1)).unwrap();
            let second = plan(&repo, &keep_last(1)).unwrap();

            assert_eq!(
                objects(&repo),
                before,
                "planning wrote or removed something"
            );
            assert_eq!(first.remove, second.remove);
            assert_eq!(first.remove.len(), 1);
            assert_eq!(first.damaged.len(), 1);
        }

        #[test]
        fn groups_are_by_host_and_sorted_paths_and_every_verdict_has_its_reasons() {
            let (_dir, repo) = repo();
            let old = snapshot(&repo, "a", &["/y", "/x"], "2024-01-01T00:00:00Z");
            let new = snapshot(&repo, "a", &["/x", "/y"], "2024-01-02T00:00:00Z");
            let other = snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");

            let p = plan(&repo, &keep_last(1)).unwrap();

            let verdicts = |g: &ForgetGroup| -> Vec<(Id, Decision)> {
                g.snapshots
                    .iter()
                    .map(|v| (v.id, v.decision.clone()))
                    .collect()
            };
            let last = Decision::Keep(vec![KeepReason::Last]);
            assert_eq!(p.groups.len(), 2);
            let (a, b) = (&p.groups[0], &p.groups[1]);
            assert_eq!((a.host.as_str(), &a.paths), ("a", &tags(&["/x", "/y"])));
            assert_eq!(
                verdicts(a),
                vec![(old, Decision::Remove), (new, last.clone())]
            );
            assert_eq!((b.host.as_str(), &b.paths), ("b", &tags(&["/x"])));
            assert_eq!(verdicts(b), vec![(other, last)]);
            assert_eq!(p.remove, vec![old]);
        }

        #[test]
        fn the_filter_leaves_other_snapshots_out_of_the_plan() {
            let (_dir, repo) = repo();
            snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
            snapshot(&repo, "b", &["/x"], "2024-01-02T00:00:00Z");
            let request = ForgetRequest::Policy {
                policy: KeepPolicy {
                    last: 1,
                    ..Default::default()
                },
                filter: SnapshotFilter {
                    hosts: vec!["a".into()],
                    ..Default::default()
                },
            };

            let p = plan(&repo, &request).unwrap();

            assert_eq!(p.groups.len(), 1);
            assert_eq!(p.groups[0].host, "a");
            assert!(p.remove.is_empty());
        }

        #[test]
        fn execute_removes_exactly_the_planned_snapshots() {
            let (_dir, repo) = repo();
            let a1 = snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            let a2 = snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");
            let a3 = snapshot(&repo, "a", &["/x"], "2024-01-03T00:00:00Z");
            let b1 = snapshot(&repo, "b", &["/x"], "2024-01-01T00:00:00Z");
            let bad = damaged_snapshot(&repo);
            let p = plan(&repo, &keep_last(1)).unwrap();
            assert_eq!(p.remove, vec![a1, a2]);

            let report = execute(&repo, &p).unwrap();

            assert_eq!(report.removed, p.remove);
            let mut kept = vec![a3, b1];
            kept.sort();
            assert_eq!(listed(&repo), kept);
            let names: Vec<String> = repo
                .storage()
                .list(FileKind::Snapshot)
                .unwrap()
                .into_iter()
                .map(|o| o.name)
                .collect();
            assert!(names.contains(&bad.to_hex()), "a policy cannot judge it");
            assert_eq!(names.len(), 3);
        }

        #[test]
        fn a_damaged_snapshot_named_by_id_is_removed_without_being_read() {
            let (_dir, repo) = repo();
            let good = snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            let bad = damaged_snapshot(&repo);
            let request = ForgetRequest::Snapshots(vec![bad.to_hex()[..12].to_string()]);

            let p = plan(&repo, &request).unwrap();
            assert_eq!(p.remove, vec![bad]);
            assert!(p.groups.is_empty() && p.damaged.is_empty());
            execute(&repo, &p).unwrap();

            assert!(repo.list_snapshots().unwrap().damaged.is_empty());
            assert_eq!(listed(&repo), vec![good]);
        }

        #[test]
        fn latest_names_the_newest_readable_snapshot() {
            let (_dir, repo) = repo();
            snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            let newest = snapshot(&repo, "b", &["/y"], "2024-02-01T00:00:00Z");
            damaged_snapshot(&repo);

            let p = plan(&repo, &ForgetRequest::Snapshots(vec!["latest".into()])).unwrap();

            assert_eq!(p.remove, vec![newest]);
        }

        #[test]
        fn an_unknown_or_ambiguous_name_plans_nothing() {
            let (_dir, repo) = repo();
            snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            let before = objects(&repo);
            for spec in ["0000000000", "xyz", "ab"] {
                let request = ForgetRequest::Snapshots(vec![spec.into()]);
                assert!(plan(&repo, &request).is_err(), "{spec}");
            }
            assert_eq!(objects(&repo), before);
        }

        #[test]
        fn an_empty_policy_removes_nothing() {
            let (_dir, repo) = repo();
            snapshot(&repo, "a", &["/x"], "2024-01-01T00:00:00Z");
            snapshot(&repo, "a", &["/x"], "2024-01-02T00:00:00Z");

            let p = plan(&repo, &keep_last(0)).unwrap();

            assert!(p.remove.is_empty());
            assert_eq!(p.groups[0].snapshots.len(), 2);
        }
    }

    // ---- properties ----

    /// (seconds after the base instant, offset in quarter hours, tags)
    type RawSnapshot = (i64, i32, Vec<String>);

    fn arb_snapshots() -> impl Strategy<Value = Vec<RawSnapshot>> {
        // One time scale per group so that hour/day/week buckets actually collide.
        prop_oneof![
            Just(6 * 3600i64),
            Just(10 * 86400),
            Just(120 * 86400),
            Just(1100 * 86400)
        ]
        .prop_flat_map(|span| {
            prop::collection::vec(
                (
                    0..span,
                    -48i32..=56,
                    prop::sample::subsequence(vec!["a".to_string(), "b".to_string()], 0..=2),
                ),
                0..40,
            )
        })
    }

    fn arb_policy() -> impl Strategy<Value = KeepPolicy> {
        (
            prop::array::uniform6(0u32..6),
            prop::sample::subsequence(vec!["a".to_string(), String::new()], 0..=2),
            prop::option::of(0i64..2000),
        )
            .prop_map(|(counts, tags, within_hours)| KeepPolicy {
                last: counts[0],
                hourly: counts[1],
                daily: counts[2],
                weekly: counts[3],
                monthly: counts[4],
                yearly: counts[5],
                tags,
                within: within_hours.map(chrono::Duration::hours),
            })
    }

    fn materialize(raw: &[RawSnapshot]) -> Vec<Candidate<'_>> {
        let base = at("2022-12-20T00:00:00Z").timestamp();
        raw.iter()
            .map(|(secs, quarters, tags)| {
                let offset = FixedOffset::east_opt(quarters * 900).expect("offset in range");
                let time = DateTime::from_timestamp(base + secs, 0)
                    .expect("time in range")
                    .with_timezone(&offset);
                Candidate { time, tags }
            })
            .collect()
    }

    fn count_mut(policy: &mut KeepPolicy, field: usize) -> &mut u32 {
        match field {
            0 => &mut policy.last,
            1 => &mut policy.hourly,
            2 => &mut policy.daily,
            3 => &mut policy.weekly,
            4 => &mut policy.monthly,
            _ => &mut policy.yearly,
        }
    }

    proptest! {
        #[test]
        fn one_decision_per_candidate(raw in arb_snapshots(), policy in arb_policy()) {
            let candidates = materialize(&raw);
            let decisions = apply(&candidates, &policy);
            prop_assert_eq!(decisions.len(), candidates.len());
            // Reasons are empty exactly when the policy is empty.
            for d in &decisions {
                if let Decision::Keep(reasons) = d {
                    prop_assert_eq!(reasons.is_empty(), policy.is_empty());
                }
            }
        }

        #[test]
        fn keep_last_alone_keeps_min_n_len(raw in arb_snapshots(), n in 1u32..50) {
            let candidates = materialize(&raw);
            let policy = KeepPolicy { last: n, ..Default::default() };
            let decisions = apply(&candidates, &policy);
            let kept_count = kept(&decisions).iter().filter(|k| **k).count();
            prop_assert_eq!(kept_count, (n as usize).min(candidates.len()));
        }

        #[test]
        fn newest_is_kept_by_every_count_rule(raw in arb_snapshots(), policy in arb_policy()) {
            let candidates = materialize(&raw);
            let newest = (0..candidates.len())
                .max_by(|&a, &b| candidates[a].time.cmp(&candidates[b].time).then(b.cmp(&a)));
            let decisions = apply(&candidates, &policy);
            if let Some(newest) = newest {
                let counts = [
                    (policy.last, KeepReason::Last),
                    (policy.hourly, KeepReason::Hourly),
                    (policy.daily, KeepReason::Daily),
                    (policy.weekly, KeepReason::Weekly),
                    (policy.monthly, KeepReason::Monthly),
                    (policy.yearly, KeepReason::Yearly),
                ];
                for (count, reason) in counts {
                    if count > 0 {
                        match &decisions[newest] {
                            Decision::Keep(reasons) => prop_assert!(reasons.contains(&reason)),
                            Decision::Remove => prop_assert!(false, "newest snapshot removed"),
                        }
                    }
                }
            } else {
                prop_assert!(decisions.is_empty());
            }
        }

        #[test]
        fn raising_a_count_never_removes_a_kept_snapshot(
            raw in arb_snapshots(),
            policy in arb_policy(),
            field in 0usize..6,
            extra in 1u32..5,
        ) {
            // The empty policy keeps everything by definition, so it is excluded.
            prop_assume!(!policy.is_empty());
            let candidates = materialize(&raw);
            let before = kept(&apply(&candidates, &policy));
            let mut raised = policy.clone();
            *count_mut(&mut raised, field) += extra;
            let after = kept(&apply(&candidates, &raised));
            for (i, (b, a)) in before.iter().zip(&after).enumerate() {
                prop_assert!(!b || *a, "snapshot {} was kept before raising field {}", i, field);
            }
        }

        #[test]
        fn input_order_does_not_matter_for_distinct_times(
            (raw, permutation) in arb_snapshots().prop_flat_map(|raw| {
                let n = raw.len();
                (Just(raw), Just((0..n).collect::<Vec<usize>>()).prop_shuffle())
            }),
            policy in arb_policy(),
        ) {
            let candidates = materialize(&raw);
            let mut instants: Vec<_> = candidates.iter().map(|c| c.time.timestamp()).collect();
            instants.sort_unstable();
            instants.dedup();
            prop_assume!(instants.len() == candidates.len());
            let shuffled: Vec<Candidate<'_>> = permutation.iter().map(|&i| candidates[i]).collect();
            let original = apply(&candidates, &policy);
            let permuted = apply(&shuffled, &policy);
            for (position, &i) in permutation.iter().enumerate() {
                prop_assert_eq!(&permuted[position], &original[i]);
            }
        }
    }
}
