//! Notifications: events become e-mail and webhook deliveries.
//!
//! Events are raised in the transaction of what they report (`db::notify::raise`), or by
//! the checks ([`checks`]) that look at what happened: jobs that ended badly, items
//! without a recent success, devices that went quiet, vaults near their quota, and summary
//! reports that came due. Raising an event queues one delivery per target that hears it.
//! Each node's notifier ([`run_notifier`]) takes due deliveries under a short claim (so a
//! delivery is tried by one node at a time) and sends them; a relay or receiver that fails
//! delays a delivery (15 s, doubling, at most an hour between tries) until
//! `notify.give_up_hours`, and never loses it.

mod checks;
pub mod email;
pub mod targets;
pub mod webhook;

pub use checks::next_summary;

use std::time::Duration;

use loop_api::{DeliveryState, EventKind, TargetKind};

use crate::db::notify_sending::{self as sending, Outcome, Taken};
use crate::db::{DbResult, tenants};
use crate::state::AppState;

/// How long a sender holds a delivery it took.
const CLAIM_MS: i64 = 2 * 60_000;
/// Deliveries taken at a time.
const BATCH: i64 = 20;
/// Of them, at most this many of one tenant's.
const PER_TENANT: i64 = 5;
const FIRST_BACKOFF_MS: i64 = 15_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// The context a webhook secret is wrapped under.
pub fn secret_context(target_id: &str) -> String {
    crate::keys::webhook_secret_context(target_id)
}

/// Runs until the task is dropped: the job check and the sender at once when woken, else
/// every `notify.poll_seconds`; the other checks every `notify.check_seconds`.
pub async fn run_notifier(state: AppState) {
    let poll = Duration::from_secs(state.config.notify.poll_seconds);
    let check_ms = state.config.notify.check_seconds as i64 * 1000;
    let mut last_check: Option<i64> = None;
    loop {
        let now = state.now();
        let all = last_check.is_none_or(|t| now - t >= check_ms);
        if let Err(e) = pass(&state, all).await {
            tracing::warn!(error = %e, "notifications");
        }
        if all {
            last_check = Some(now);
        }
        tokio::select! {
            _ = state.notify_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// One pass: raise the events of jobs that ended (and, with `all`, of every other check),
/// then send what is due. Public so that tests can drive it with the server's test clock.
pub async fn pass(state: &AppState, all: bool) -> DbResult<()> {
    checks::ended_jobs(state).await?;
    if all {
        checks::periodic(state).await?;
    }
    send_due(state).await
}

async fn send_due(state: &AppState) -> DbResult<()> {
    loop {
        // An e-mail's sends start within `mail.timeout_seconds`, and the last may take as
        // long again; a webhook's try takes at most `notify.webhook_timeout_seconds`.
        let claim = CLAIM_MS
            .max(2 * state.mailer.timeout().as_millis() as i64 + 60_000)
            .max(state.webhooks.timeout().as_millis() as i64 + 60_000);
        let due =
            sending::take_due(&state.db.pool, state.now(), claim, (BATCH, PER_TENANT)).await?;
        if due.is_empty() {
            return Ok(());
        }
        // A batch goes out at once: a receiver or relay that is slow to fail holds up only
        // its own batch, within its claim; and as a batch holds at most `PER_TENANT` of a
        // tenant's deliveries, one tenant's silent receivers delay another tenant's by at
        // most one try.
        let tries = due.iter().map(|d| async move {
            let result = send(state, d).await;
            record(state, d, result).await
        });
        for r in futures_util::future::join_all(tries).await {
            r?;
        }
    }
}

/// A try that succeeded: the receiver's status, and what the tenant should know of it (an
/// e-mail recipient the relay refused for good).
struct Delivered {
    status: Option<u16>,
    note: Option<String>,
}

/// A try that failed: why, and the receiver's status if it answered.
struct Failure {
    message: String,
    status: Option<u16>,
    /// Trying again cannot help (the target is gone or disabled).
    for_good: bool,
}

impl Failure {
    fn retry(message: String) -> Failure {
        Failure {
            message,
            status: None,
            for_good: false,
        }
    }
}

async fn send(state: &AppState, d: &Taken) -> Result<Delivered, Failure> {
    let t = &d.target.target;
    if !t.enabled {
        return Err(Failure {
            message: "the target is disabled".into(),
            status: None,
            for_good: true,
        });
    }
    let tenant = tenants::tenant_by_id(&state.db.pool, &d.event.tenant_id)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "reading a delivery's tenant");
            Failure::retry("the database failed; trying again".into())
        })?;
    let (tenant_name, tz) = tenant
        .map(|t| (t.tenant.name, t.tenant.time_zone))
        .unwrap_or_else(|| (d.event.tenant_id.clone(), "UTC".into()));
    match t.kind {
        TargetKind::Email => {
            let settings = t
                .email
                .as_ref()
                .ok_or_else(|| Failure::retry("no settings".into()))?;
            let m = email::compose(&d.event, &tenant_name, &tz, settings.language);
            let mut to = settings.recipients.clone();
            let mut restricted = Vec::new();
            if d.event.kind == EventKind::SummaryReport {
                // A summary report is more than the service needs: people whose processing
                // is restricted are left out of it.
                restricted =
                    crate::db::privacy::restricted_among(&state.db.pool, &t.tenant_id, &to)
                        .await
                        .map_err(|e| {
                            tracing::warn!(error = %e, "reading restricted recipients");
                            Failure::retry("the database failed; trying again".into())
                        })?;
                to.retain(|a| !restricted.contains(a));
                if to.is_empty() {
                    return Err(Failure {
                        message: "every recipient's processing is restricted".into(),
                        status: None,
                        for_good: true,
                    });
                }
            }
            send_each(state, d, &settings.recipients, &restricted, &m).await
        }
        TargetKind::Webhook => {
            let url = t
                .webhook
                .as_ref()
                .map(|w| w.url.as_str())
                .unwrap_or_default();
            let wrapped = d.target.secret_wrapped.as_deref().unwrap_or_default();
            let key = state
                .master
                .unwrap(&secret_context(&t.id), wrapped)
                .map_err(|_| Failure {
                    message: "the target's secret does not open".into(),
                    status: None,
                    for_good: true,
                })?;
            let body = serde_json::to_vec(&serde_json::json!({
                "delivery_id": d.id,
                "target_id": t.id,
                "tenant": { "id": d.event.tenant_id, "name": tenant_name },
                "event": d.event,
            }))
            .expect("an event serializes");
            state
                .webhooks
                .post(webhook::Post {
                    url,
                    secret: key.expose(),
                    delivery_id: &d.id,
                    event_kind: d.event.kind.as_str(),
                    body,
                    timestamp: state.now().div_euclid(1000),
                })
                .await
                .map(|status| Delivered {
                    status: Some(status),
                    note: None,
                })
                .map_err(|e| Failure {
                    message: e.message,
                    status: e.status,
                    for_good: false,
                })
        }
    }
}

/// Sends `m` to each of `recipients` on its own (none sees the others' addresses), but
/// those left out and those who already have it (`d.recipients_done`, kept after each
/// one). A recipient the relay refuses for good is done with, and named by its place in
/// the delivery's note; one refused for now waits for the next try, as do the rest when
/// the relay does not answer or the try has taken `mail.timeout_seconds`.
async fn send_each(
    state: &AppState,
    d: &Taken,
    recipients: &[String],
    left_out: &[String],
    m: &email::Mail,
) -> Result<Delivered, Failure> {
    use crate::mail::smtp::Answer;
    let started = tokio::time::Instant::now();
    // Places count in the list as it was: once it changed, everyone left is tried again
    // (someone may get it twice; nobody is skipped).
    let of = fingerprint(recipients);
    let (mut done, mut refused) = if d.recipients_of == Some(of) {
        (d.recipients_done, d.refused.clone())
    } else {
        (0, Vec::new())
    };
    let mut later = Vec::new();
    let place = |answer: &str| crate::mail::naming_no_address(answer, recipients);
    for (i, to) in recipients.iter().enumerate().take(63) {
        let bit = 1i64 << i;
        if done & bit != 0 || left_out.contains(to) {
            continue;
        }
        if started.elapsed() >= state.mailer.timeout() {
            later.push(format!("recipient {}: not tried yet", i + 1));
            continue;
        }
        let sending = state
            .mailer
            .send_alternative(to, &m.subject, m.text.clone(), m.html.clone());
        if let Err(u) = sending.await {
            match u.answer {
                Answer::Refused => refused.push(place(&u.message)),
                Answer::Later => {
                    later.push(place(&u.message));
                    continue;
                }
                // The relay itself failed: the rest wait for the next try.
                Answer::None => return Err(Failure::retry(place(&u.message))),
            }
        }
        done |= bit;
        // Kept at once, so a try cut short sends nobody the message twice.
        sending::recipients_done(&state.db.pool, &d.id, (of, done), &refused)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "recording a recipient's delivery");
                Failure::retry("the database failed; trying again".into())
            })?;
    }
    let sent = (done.count_ones() as usize).saturating_sub(refused.len());
    let note = (!refused.is_empty()).then(|| format!("refused for good: {}", refused.join("; ")));
    if !later.is_empty() {
        let mut message = later.join("; ");
        if let Some(n) = &note {
            message = format!("{message}; {n}");
        }
        let give_up = state.config.notify.give_up_hours as i64 * 3_600_000;
        if sent > 0 && state.now() - d.created_at >= give_up {
            // The others have it: the delivery ends, naming whom it never reached.
            let note = Some(format!("given up on: {message}"));
            return Ok(Delivered { status: None, note });
        }
        return Err(Failure::retry(message));
    }
    if sent == 0 {
        return Err(Failure {
            message: note.unwrap_or_else(|| "no recipient is left".into()),
            status: None,
            for_good: true,
        });
    }
    Ok(Delivered { status: None, note })
}

/// A fingerprint of a recipient list: its order and addresses.
fn fingerprint(recipients: &[String]) -> i64 {
    let mut h = blake3::Hasher::new();
    for r in recipients {
        h.update(r.as_bytes()).update(b"\n");
    }
    let b = h.finalize();
    i64::from_le_bytes(b.as_bytes()[..8].try_into().expect("eight bytes"))
}

async fn record(state: &AppState, d: &Taken, result: Result<Delivered, Failure>) -> DbResult<()> {
    let now = state.now();
    let pool = &state.db.pool;
    match result {
        Ok(done) => {
            tracing::info!(delivery = %d.id, target = %d.target.target.id, "notification sent");
            let o = Outcome {
                state: DeliveryState::Succeeded,
                error: done.note.as_deref(),
                status: done.status,
                retry_at: None,
            };
            sending::record_try(pool, &d.id, &o, now).await
        }
        Err(f) => {
            let give_up = state.config.notify.give_up_hours as i64 * 3_600_000;
            let over = f.for_good || now - d.created_at >= give_up;
            let retry_at = (!over).then(|| {
                now + crate::jobs::backoff_ms(FIRST_BACKOFF_MS, MAX_BACKOFF_MS, d.attempts)
            });
            tracing::warn!(
                delivery = %d.id, target = %d.target.target.id, error = %f.message,
                retry_at = ?retry_at, "notification not delivered"
            );
            let o = Outcome {
                state: if over {
                    DeliveryState::Failed
                } else {
                    DeliveryState::Queued
                },
                error: Some(&f.message),
                status: f.status,
                retry_at,
            };
            sending::record_try(pool, &d.id, &o, now).await
        }
    }
}
