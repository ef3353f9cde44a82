//! Outgoing e-mail: an SMTP client (lettre) and the worker that drains the outbox.
//!
//! Handlers never talk to SMTP. They queue a row in `mail_outbox` in the same transaction
//! as the change that calls for mail ([`crate::db::outbox::enqueue`]) and wake the worker.
//! The worker makes each message when it sends it (see [`messages`]), so secrets such as
//! invite tokens exist only as hashes in the database and in the message itself. A relay
//! that is down or refuses delays mail, never loses it: the message is retried with a
//! growing delay for `mail.give_up_hours`.

mod billing;
mod marketing;
mod messages;
mod notices;
mod reset;
mod signup;
pub mod smtp;

use std::time::Duration;

pub use billing::money;
pub use smtp::{Mailer, naming_no_address};

use crate::db::outbox;
use crate::state::AppState;

/// How long a sender holds a message it took at least (a node that dies lets it go after
/// this); longer when a batch's sends may take longer (see [`claim_ms`]).
const CLAIM_MS: i64 = 5 * 60_000;
/// Messages taken at a time (sent one after another).
const BATCH: i64 = 5;

/// The claim on a batch: long enough for each of its messages to take the whole of
/// `mail.timeout_seconds`, so no other node sends a message again while this one still may.
fn claim_ms(state: &AppState) -> i64 {
    let send = state.mailer.timeout().as_millis() as i64;
    CLAIM_MS.max(BATCH * send + 60_000)
}
/// The first retry waits this long; each further one twice as long, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 15_000;
const MAX_BACKOFF_MS: i64 = 3_600_000;

/// Drains the outbox until the task is dropped: at once when woken, else every
/// `mail.poll_seconds`.
pub async fn run_outbox(state: AppState) {
    let poll = Duration::from_secs(state.config.mail.poll_seconds);
    if !state.mailer.configured() {
        if let Ok(n @ 1..) = outbox::queued(&state.db.pool).await {
            tracing::warn!(
                messages = n,
                "mail waits in the outbox: no mail.host is configured"
            );
        }
        return;
    }
    loop {
        if let Err(e) = drain(&state).await {
            tracing::warn!(error = %e, "sending queued mail");
        }
        tokio::select! {
            _ = state.mail_wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

async fn drain(state: &AppState) -> Result<(), crate::db::DbError> {
    loop {
        let now = state.now();
        let due = outbox::take_due(&state.db.pool, now, claim_ms(state), BATCH).await?;
        if due.is_empty() {
            return Ok(());
        }
        for q in due {
            deliver(state, &q).await?;
        }
    }
}

async fn deliver(state: &AppState, q: &outbox::Queued) -> Result<(), crate::db::DbError> {
    let pool = &state.db.pool;
    let composed = match q.kind {
        Some(outbox::MailKind::Invitation | outbox::MailKind::EmailChange) | None => {
            messages::compose(state, q).await?
        }
        Some(outbox::MailKind::Signup) => signup::compose(state, q).await?,
        Some(outbox::MailKind::PasswordReset) => reset::compose(state, q).await?,
        Some(outbox::MailKind::Announcement) => marketing::compose(state, q).await?,
        Some(outbox::MailKind::SubprocessorChange) => notices::compose(state, q).await?,
        Some(kind) => billing::compose(state, kind, q).await?,
    };
    let Some(m) = composed else {
        return outbox::finish(pool, &q.id, "dropped", None, state.now()).await;
    };
    match state
        .mailer
        .send(&m.to, &m.subject, m.text, m.unsubscribe.as_deref())
        .await
    {
        Ok(()) => {
            tracing::info!(mail = %q.id, kind = ?q.kind, "mail sent");
            outbox::finish(pool, &q.id, "sent", None, state.now()).await
        }
        Err(u) => {
            // A relay's refusal may name the address; the log and the outbox keep none.
            let e = naming_no_address(&u.message, std::slice::from_ref(&m.to));
            let now = state.now();
            if u.answer == smtp::Answer::Refused {
                tracing::warn!(mail = %q.id, error = %e, "the relay refused the mail for good");
                return outbox::finish(pool, &q.id, "failed", Some(&e), now).await;
            }
            let give_up = state.config.mail.give_up_hours as i64 * 3_600_000;
            if now - q.created_at >= give_up {
                tracing::error!(mail = %q.id, error = %e, "gave up sending mail");
                return outbox::finish(pool, &q.id, "failed", Some(&e), now).await;
            }
            let wait = backoff_ms(q.attempts);
            tracing::warn!(mail = %q.id, error = %e, retry_in_ms = wait, "mail not sent");
            outbox::retry_at(pool, &q.id, now + wait, &e).await
        }
    }
}

/// The wait after the `attempts`-th failed try.
fn backoff_ms(attempts: i64) -> i64 {
    crate::jobs::backoff_ms(FIRST_BACKOFF_MS, MAX_BACKOFF_MS, attempts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailConfig;

    #[test]
    fn retries_wait_longer_each_time_up_to_an_hour() {
        let waits: Vec<i64> = (1..=10).map(backoff_ms).collect();
        assert_eq!(&waits[..4], &[15_000, 30_000, 60_000, 120_000]);
        assert!(waits.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(backoff_ms(10), MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(i64::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn a_relay_needs_a_valid_sender() {
        let c = MailConfig {
            from: "not an address".into(),
            ..MailConfig::default()
        };
        assert!(Mailer::from_config(&c).is_err());
        assert!(
            !Mailer::from_config(&MailConfig::default())
                .unwrap()
                .configured()
        );
    }
}
