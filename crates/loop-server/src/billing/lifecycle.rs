//! The subscription lifecycle's rules: given a subscription, the due date of its oldest
//! unpaid invoice and the time, what happens next. The timer applies one step at a time
//! until none is left, so a server that was down catches up in order.
//!
//! ```text
//! trial ──(trial ends, can pay)──────────────▶ active ──(period ends)──▶ invoice
//!   │                                           │  ▲
//!   │ (trial ends, no payment method)           │  └──(everything paid)── past-due
//!   ▼                                           ▼ (invoice due, unpaid)      │
//! suspended ◀──────────(due + suspend_after, unpaid)─────────────────────────┘
//!   │  ▲ └──(payment method added / everything paid)──▶ active (a new period)
//!   ▼
//! terminated: trial end + terminate_after, due + terminate_after, or the end the customer
//! chose (`ends_at`)
//! ```
//!
//! "Unpaid" and "paid" speak of what is overdue: an invoice past its suspension point
//! (due + suspend_after) suspends, and one that is open but not yet past it holds nothing
//! back. The termination follows the oldest unpaid invoice: paying the invoice that caused
//! a suspension while a later one is overdue too moves the termination to that one's date.
//!
//! A payment under way holds back what an unpaid invoice would do: while a charge is
//! pending at the processor (a bank debit takes days to settle), no suspension and no
//! termination for an unpaid invoice, for [`CHARGE_SETTLES_DAYS`] after the charge was made
//! and after the step fell due at most ([`waits_for_charge`]): new charges do not hold it
//! off for ever. And a suspension more than a day late leaves the customer
//! terminate_after − suspend_after days before the termination in full.

use loop_api::{LifecycleReason, SubscriptionState};

use crate::config::BillingConfig;
use crate::db::billing::SubRow;

const DAY_MS: i64 = 86_400_000;

/// How long a pending charge holds back a suspension or termination: a SEPA debit is
/// settled or returned within 14 business days, about 20 calendar days.
pub const CHARGE_SETTLES_DAYS: i64 = 21;

/// When `step` fell due, where a charge under way may hold it back: a suspension for an
/// unpaid invoice at its suspension point, a termination for one at its date.
pub fn fell_due(
    step: &Step,
    s: &SubRow,
    unpaid_due: Option<i64>,
    c: &BillingConfig,
) -> Option<i64> {
    match step {
        Step::Suspend {
            reason: LifecycleReason::Unpaid,
            ..
        } => unpaid_due.map(|due| due + i64::from(c.suspend_after_days) * DAY_MS),
        Step::Terminate {
            reason: LifecycleReason::Unpaid,
        } => s.terminate_at,
        _ => None,
    }
}

/// Whether `step`, which fell due at `fell_due` ([`fell_due`]), waits for a charge made at
/// `charge_made` and still pending at the processor: while the payment may still go
/// through, and no longer than [`CHARGE_SETTLES_DAYS`] after either.
pub fn waits_for_charge(fell_due: Option<i64>, charge_made: Option<i64>, now: i64) -> bool {
    let hold = CHARGE_SETTLES_DAYS * DAY_MS;
    match (fell_due, charge_made) {
        (Some(due), Some(made)) => now < made + hold && now < due + hold,
        _ => false,
    }
}

/// A mail that goes once per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warning {
    /// The trial ends in `warn_trial_days` and no payment method is on file.
    TrialEnding,
    /// The tenant's data is deleted in `warn_deletion_days` or less.
    DeletionSoon,
}

impl Warning {
    pub fn as_str(self) -> &'static str {
        match self {
            Warning::TrialEnding => "trial-ending",
            Warning::DeletionSoon => "deletion-soon",
        }
    }
}

/// The date of `s`'s deletion moved (an end chosen or withdrawn, a termination put off): a
/// warning given of the old date is not one of the new, which is warned of in its turn.
pub fn deletion_moved(s: &mut SubRow) {
    s.warned.retain(|w| w != Warning::DeletionSoon.as_str());
}

/// What happens next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// A billing period begins at `start` (the trial's end, or a reactivation).
    Activate {
        start: i64,
    },
    /// The period under way ended: its invoice is issued and the next period begins.
    Invoice,
    /// An invoice is unpaid after its due date.
    PastDue,
    /// Everything due is paid: active again.
    Paid,
    Suspend {
        reason: LifecycleReason,
        terminate_at: i64,
    },
    /// The invoice that suspended was paid, a later one is overdue too: the termination
    /// moves to that one's date.
    Postpone {
        terminate_at: i64,
    },
    Terminate {
        reason: LifecycleReason,
    },
    Warn(Warning),
}

/// Whether what suspended `s` is settled: a trial's end by a way to pay, every cause by no
/// invoice unpaid past its suspension point.
fn cleared(s: &SubRow, overdue: bool) -> bool {
    match s.reason {
        Some(LifecycleReason::TrialEnded) => s.can_pay() && !overdue,
        _ => !overdue,
    }
}

/// The next step for `s` at `now`; `unpaid_due` is the due date of its oldest unpaid
/// invoice.
pub fn next(s: &SubRow, unpaid_due: Option<i64>, now: i64, c: &BillingConfig) -> Option<Step> {
    use SubscriptionState::*;
    let days = |n: u32| i64::from(n) * DAY_MS;
    if s.state == Terminated {
        return None;
    }
    // A period that ended is billed first, also the last one before an end (but none that
    // began at or after the end, when the timer comes by more than a period late).
    let after_end = matches!((s.period_start, s.ends_at), (Some(p), Some(e)) if p >= e);
    if matches!(s.state, Active | PastDue)
        && s.period_end.is_some_and(|end| now >= end)
        && !after_end
    {
        return Some(Step::Invoice);
    }
    if s.ends_at.is_some_and(|at| now >= at) {
        return Some(Step::Terminate {
            reason: LifecycleReason::Ended,
        });
    }
    // A suspension whose cause was cleared is lifted, even where its termination date passed
    // before the timer came by: a customer who paid is not terminated. Billing resumes from
    // the start of the period the suspension interrupted (a trial had none: from now).
    let overdue = unpaid_due.is_some_and(|due| now >= due + days(c.suspend_after_days));
    if s.state == Suspended && cleared(s, overdue) {
        return Some(Step::Activate {
            start: s.period_start.unwrap_or(now),
        });
    }
    // Still suspended for an unpaid invoice, but the oldest one now is a later one (the
    // first was paid): it gets its full time before the termination, as it would have had
    // alone.
    if let (Suspended, Some(LifecycleReason::Unpaid), Some(due), Some(at)) =
        (s.state, s.reason, unpaid_due, s.terminate_at)
    {
        let owed = due + days(c.terminate_after_days);
        if owed > at {
            return Some(Step::Postpone { terminate_at: owed });
        }
    }
    if s.terminate_at.is_some_and(|at| now >= at) {
        return Some(Step::Terminate {
            reason: s.reason.unwrap_or(LifecycleReason::Unpaid),
        });
    }
    let warned = |w: Warning| s.warned.iter().any(|x| x == w.as_str());
    match s.state {
        Trial if now >= s.trial_ends_at => {
            return Some(if s.can_pay() {
                Step::Activate {
                    start: s.trial_ends_at,
                }
            } else {
                Step::Suspend {
                    reason: LifecycleReason::TrialEnded,
                    terminate_at: s.trial_ends_at + days(c.terminate_after_days),
                }
            });
        }
        Trial => {
            if !s.can_pay()
                && now >= s.trial_ends_at - days(c.warn_trial_days)
                && !warned(Warning::TrialEnding)
            {
                return Some(Step::Warn(Warning::TrialEnding));
            }
        }
        Active | PastDue => match unpaid_due {
            Some(due) if now >= due + days(c.suspend_after_days) => {
                // More than a day late (a charge that held it back, a server that was
                // down): the customer still gets the time between suspension and
                // termination in full.
                let on_time = due + days(c.terminate_after_days);
                let notice = c.terminate_after_days.saturating_sub(c.suspend_after_days);
                let late = now > due + days(c.suspend_after_days) + DAY_MS;
                return Some(Step::Suspend {
                    reason: LifecycleReason::Unpaid,
                    terminate_at: if late {
                        on_time.max(now + days(notice))
                    } else {
                        on_time
                    },
                });
            }
            Some(due) if now >= due && s.state == Active => return Some(Step::PastDue),
            // Nothing overdue any more (what is open falls due later): active again, so
            // that the next invoice to fall due is past due, and said so, in its turn.
            Some(due) if now < due && s.state == PastDue => return Some(Step::Paid),
            None if s.state == PastDue => return Some(Step::Paid),
            _ => {}
        },
        Suspended | Terminated => {}
    }
    let deletion = match (s.ends_at, s.terminate_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    if deletion.is_some_and(|at| now >= at - days(c.warn_deletion_days))
        && !warned(Warning::DeletionSoon)
    {
        return Some(Step::Warn(Warning::DeletionSoon));
    }
    None
}

/// One calendar month after `ms` (UTC; the 31st becomes the month's last day).
pub fn month_after(ms: i64) -> i64 {
    let at = crate::db::time(ms);
    at.checked_add_months(chrono::Months::new(1))
        .unwrap_or(at)
        .timestamp_millis()
}

/// The end of the period after `[start, end)`: a calendar month after `end`, on the billing
/// day the periods keep. A day a short month lacks became that month's last day (the 31st
/// gave February 28th), and the month after goes back to it (March 31st, not 28th).
pub fn period_after(start: i64, end: i64) -> i64 {
    use chrono::{Datelike as _, NaiveDate};
    let (from, at) = (crate::db::time(start), crate::db::time(end));
    // The billing day: the end's, unless the start's was later (the end's was cut short).
    let day = at.day().max(from.day());
    let next = at.checked_add_months(chrono::Months::new(1)).unwrap_or(at);
    let last_day = (28..=31)
        .rev()
        .find(|d| NaiveDate::from_ymd_opt(next.year(), next.month(), *d).is_some())
        .unwrap_or(28);
    next.with_day(day.min(last_day))
        .unwrap_or(next)
        .timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use loop_api::Collection;

    const T0: i64 = 1_780_000_000_000;

    fn trial() -> SubRow {
        SubRow::trial("tn_1", "pl_1", Collection::Card, T0, 14)
    }

    fn day(n: i64) -> i64 {
        T0 + n * DAY_MS
    }

    #[test]
    fn a_trial_without_a_payment_method_is_warned_suspended_and_terminated_on_its_days() {
        let c = BillingConfig::default();
        let mut s = trial();
        assert_eq!(next(&s, None, day(10), &c), None);
        assert_eq!(
            next(&s, None, day(11), &c),
            Some(Step::Warn(Warning::TrialEnding))
        );
        s.warned.push("trial-ending".into());
        assert_eq!(next(&s, None, day(11), &c), None);
        assert_eq!(
            next(&s, None, day(14), &c),
            Some(Step::Suspend {
                reason: LifecycleReason::TrialEnded,
                terminate_at: day(44)
            })
        );
        s.state = SubscriptionState::Suspended;
        s.reason = Some(LifecycleReason::TrialEnded);
        s.terminate_at = Some(day(44));
        s.warned.clear();
        assert_eq!(next(&s, None, day(36), &c), None);
        assert_eq!(
            next(&s, None, day(37), &c),
            Some(Step::Warn(Warning::DeletionSoon))
        );
        s.warned.push("deletion-soon".into());
        assert_eq!(next(&s, None, day(43), &c), None);
        assert_eq!(
            next(&s, None, day(44), &c),
            Some(Step::Terminate {
                reason: LifecycleReason::TrialEnded
            })
        );
        // A payment method before then reactivates at once.
        s.collection = Collection::Invoice;
        assert_eq!(
            next(&s, None, day(40), &c),
            Some(Step::Activate { start: day(40) })
        );
    }

    #[test]
    fn an_unpaid_invoice_makes_past_due_then_suspended_at_15_days_and_terminated_at_30() {
        let c = BillingConfig::default();
        let mut s = trial();
        s.collection = Collection::Invoice;
        assert_eq!(next(&s, None, day(11), &c), None, "no warning: it can pay");
        assert_eq!(
            next(&s, None, day(14), &c),
            Some(Step::Activate { start: day(14) })
        );
        s.state = SubscriptionState::Active;
        s.period_start = Some(day(14));
        s.period_end = Some(month_after(day(14)));
        let end = s.period_end.unwrap();
        assert_eq!(next(&s, None, end - 1, &c), None);
        assert_eq!(next(&s, None, end, &c), Some(Step::Invoice));
        s.period_start = Some(end);
        s.period_end = Some(month_after(end));
        let due = end + 14 * DAY_MS;
        assert_eq!(next(&s, Some(due), due - 1, &c), None);
        assert_eq!(next(&s, Some(due), due, &c), Some(Step::PastDue));
        s.state = SubscriptionState::PastDue;
        assert_eq!(next(&s, Some(due), due + 15 * DAY_MS - 1, &c), None);
        assert_eq!(
            next(&s, Some(due), due + 15 * DAY_MS, &c),
            Some(Step::Suspend {
                reason: LifecycleReason::Unpaid,
                terminate_at: due + 30 * DAY_MS
            })
        );
        // Paid while past due: active again; also while a later invoice is open but not yet
        // due (it is past due, and mailed, when it falls due).
        assert_eq!(next(&s, None, due + DAY_MS, &c), Some(Step::Paid));
        let later = due + 20 * DAY_MS;
        assert_eq!(next(&s, Some(later), due + DAY_MS, &c), Some(Step::Paid));
        s.state = SubscriptionState::Suspended;
        s.reason = Some(LifecycleReason::Unpaid);
        s.terminate_at = Some(due + 30 * DAY_MS);
        s.period_end = None;
        assert_eq!(
            next(&s, Some(due), due + 23 * DAY_MS, &c),
            Some(Step::Warn(Warning::DeletionSoon))
        );
        assert_eq!(
            next(&s, Some(due), due + 30 * DAY_MS, &c),
            Some(Step::Terminate {
                reason: LifecycleReason::Unpaid
            })
        );
        // Paid while suspended: active at once, billed from the start of the period the
        // suspension interrupted (its end, long past, is then invoiced at once).
        let interrupted = s.period_start.unwrap();
        assert_eq!(
            next(&s, None, due + 20 * DAY_MS, &c),
            Some(Step::Activate { start: interrupted })
        );
        // Paid, and the timer comes by only after the termination date: still active, not
        // terminated.
        assert_eq!(
            next(&s, None, due + 31 * DAY_MS, &c),
            Some(Step::Activate { start: interrupted })
        );
    }

    #[test]
    fn paying_the_invoice_that_suspended_leaves_a_later_one_its_own_time() {
        let c = BillingConfig::default();
        let mut s = trial();
        let first = day(60);
        s.state = SubscriptionState::Suspended;
        s.reason = Some(LifecycleReason::Unpaid);
        s.period_start = Some(day(44));
        s.terminate_at = Some(first + 30 * DAY_MS);
        s.warned.push("deletion-soon".into());
        // The first paid; the next one is open but not past its suspension point: active.
        let next_due = first + 31 * DAY_MS;
        assert_eq!(
            next(&s, Some(next_due), first + 29 * DAY_MS, &c),
            Some(Step::Activate { start: day(44) })
        );
        // The first paid; the next one is past its suspension point as well: still
        // suspended, terminated 30 days after that one's due date, warned again before.
        let next_due = first + 10 * DAY_MS;
        let now = first + 26 * DAY_MS;
        let postponed = next_due + 30 * DAY_MS;
        assert_eq!(
            next(&s, Some(next_due), now, &c),
            Some(Step::Postpone {
                terminate_at: postponed
            })
        );
        s.terminate_at = Some(postponed);
        s.warned.clear();
        assert_eq!(next(&s, Some(next_due), first + 30 * DAY_MS, &c), None);
        assert_eq!(
            next(&s, Some(next_due), postponed - 7 * DAY_MS, &c),
            Some(Step::Warn(Warning::DeletionSoon))
        );
        s.warned.push("deletion-soon".into());
        assert_eq!(
            next(&s, Some(next_due), postponed, &c),
            Some(Step::Terminate {
                reason: LifecycleReason::Unpaid
            })
        );
        // Never brought forward: an older invoice unpaid does not shorten the time.
        assert_eq!(next(&s, Some(first), postponed - DAY_MS, &c), None);
    }

    #[test]
    fn a_charge_under_way_holds_back_a_suspension_and_a_termination_for_a_while() {
        let c = BillingConfig::default();
        let mut s = trial();
        s.state = SubscriptionState::PastDue;
        s.period_start = Some(day(44));
        s.period_end = Some(day(400));
        let due = day(58);
        let made = due + 10 * DAY_MS;
        let suspend = next(&s, Some(due), due + 15 * DAY_MS, &c).unwrap();
        let point = fell_due(&suspend, &s, Some(due), &c);
        assert_eq!(point, Some(due + 15 * DAY_MS));
        assert!(waits_for_charge(point, Some(made), due + 15 * DAY_MS));
        assert!(!waits_for_charge(point, None, due + 15 * DAY_MS));
        // Held until the charge had its time: then suspended, with the notice in full.
        let late = made + CHARGE_SETTLES_DAYS * DAY_MS;
        assert!(!waits_for_charge(point, Some(made), late));
        // A charge made later holds no longer than the time after the suspension point.
        let later = point.unwrap() + CHARGE_SETTLES_DAYS * DAY_MS;
        assert!(waits_for_charge(point, Some(later - DAY_MS), later - 1));
        assert!(!waits_for_charge(point, Some(later - DAY_MS), later));
        assert_eq!(
            next(&s, Some(due), late, &c),
            Some(Step::Suspend {
                reason: LifecycleReason::Unpaid,
                terminate_at: late + 15 * DAY_MS
            })
        );
        let terminate = Step::Terminate {
            reason: LifecycleReason::Unpaid,
        };
        s.terminate_at = Some(late);
        assert_eq!(fell_due(&terminate, &s, Some(due), &c), Some(late));
        // What the customer chose, or a trial without a way to pay, waits for no charge.
        for reason in [LifecycleReason::Ended, LifecycleReason::TrialEnded] {
            assert_eq!(
                fell_due(&Step::Terminate { reason }, &s, Some(due), &c),
                None
            );
        }
        assert_eq!(fell_due(&Step::PastDue, &s, Some(due), &c), None);
    }

    #[test]
    fn a_subscription_the_customer_ended_terminates_at_its_end() {
        let c = BillingConfig::default();
        let mut s = trial();
        s.state = SubscriptionState::Active;
        s.collection = Collection::Invoice;
        s.period_end = Some(day(40));
        s.ends_at = Some(day(40));
        assert_eq!(
            next(&s, None, day(33), &c),
            Some(Step::Warn(Warning::DeletionSoon))
        );
        s.warned.push("deletion-soon".into());
        assert_eq!(next(&s, None, day(39), &c), None);
        assert_eq!(
            next(&s, None, day(40), &c),
            Some(Step::Invoice),
            "the last period is billed first"
        );
        s.period_start = Some(day(40));
        s.period_end = Some(month_after(day(40)));
        // Also when the timer comes by more than a month late: no period after the end is
        // billed.
        for late in [day(40), day(80)] {
            assert_eq!(
                next(&s, None, late, &c),
                Some(Step::Terminate {
                    reason: LifecycleReason::Ended
                })
            );
        }
        s.state = SubscriptionState::Terminated;
        assert_eq!(next(&s, None, day(400), &c), None);
    }

    #[test]
    fn a_month_is_a_calendar_month() {
        let ms = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_millis()
        };
        assert_eq!(
            month_after(ms("2027-01-31T10:00:00Z")),
            ms("2027-02-28T10:00:00Z")
        );
        assert_eq!(
            month_after(ms("2027-03-15T00:00:00Z")),
            ms("2027-04-15T00:00:00Z")
        );
        // Periods keep their billing day through short months.
        let mut period = (
            ms("2027-01-31T10:00:00Z"),
            month_after(ms("2027-01-31T10:00:00Z")),
        );
        let mut ends = vec![period.1];
        for _ in 0..4 {
            period = (period.1, period_after(period.0, period.1));
            ends.push(period.1);
        }
        let want = ["02-28", "03-31", "04-30", "05-31", "06-30"];
        let want: Vec<i64> = want
            .iter()
            .map(|d| ms(&format!("2027-{d}T10:00:00Z")))
            .collect();
        assert_eq!(ends, want);
        // A billing day every month has stays.
        let (s, e) = (ms("2027-01-28T00:00:00Z"), ms("2027-02-28T00:00:00Z"));
        assert_eq!(period_after(s, e), ms("2027-03-28T00:00:00Z"));
        assert_eq!(
            period_after(ms("2027-01-30T00:00:00Z"), e),
            ms("2027-03-30T00:00:00Z")
        );
    }
}
