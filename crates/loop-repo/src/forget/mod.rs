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
    /// hex digits). `latest` is the newest snapshot `filter` selects. IDs and prefixes are
    /// resolved by name without reading the snapshot, so a damaged one can be removed; with a
    /// filter the snapshot is read, and one the filter does not select is refused (nothing
    /// is removed).
    Snapshots {
        specs: Vec<String>,
        filter: SnapshotFilter,
    },
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
    /// The snapshots the plan removes that a retention lock keeps for now (see
    /// [`Error::Held`](crate::Error::Held)); a later run removes them once it has passed.
    pub held: Vec<Id>,
}

/// Decides what `request` removes. Reads snapshots (all of them for a policy, only their
/// names for IDs and prefixes) and writes nothing.
pub fn plan(repo: &Repository, request: &ForgetRequest) -> Result<ForgetPlan> {
    match request {
        ForgetRequest::Snapshots { specs, filter } => Ok(ForgetPlan {
            remove: specs
                .iter()
                .map(|spec| resolve(repo, spec, filter))
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

/// The snapshot `spec` names. Only `latest`, or a name given with a filter, reads
/// snapshots: `latest` compares their times, and a filter has to be checked.
fn resolve(repo: &Repository, spec: &str, filter: &SnapshotFilter) -> Result<Id> {
    if spec == "latest" {
        return Ok(repo.find_snapshot(spec, filter)?.0);
    }
    let id = repo.snapshot_name(spec)?;
    if !filter.is_empty() && !filter.matches(&repo.load_snapshot(&id)?) {
        return Err(Error::Invalid(format!(
            "snapshot {} is not one the host, path and tag filters select; nothing was removed",
            id.short()
        )));
    }
    Ok(id)
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

/// Removes the snapshots `plan` names, in order. A snapshot a retention lock holds is kept
/// and listed in [`ForgetReport::held`]. Stops at the first other failure: the snapshots
/// before it are gone, the rest are still there.
pub fn execute(repo: &Repository, plan: &ForgetPlan) -> Result<ForgetReport> {
    let mut report = ForgetReport::default();
    for id in &plan.remove {
        match repo.remove_snapshot(id) {
            Ok(()) => report.removed.push(*id),
            Err(e) if e.is_held() => report.held.push(*id),
            Err(e) => return Err(e),
        }
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
mod tests;
