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

mod plan_and_execute;

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
