//! Mail waiting to go out (`mail_outbox`). A row says what to send to which user; the
//! message itself, with any secret it carries, is made only when it is sent.
//!
//! Any number of server nodes may drain the outbox: a node takes a row by a conditional
//! update that sets a short claim, and only the node whose update changed the row sends it.

use sqlx::AnyPool;

use super::{DbResult, Tx, col};

/// What a queued message is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    /// An invitation to the user's address (or, when that address already has an account,
    /// a notice to its owner).
    Invitation,
    /// A confirmation request to the user's pending new address.
    EmailChange,
    /// The subscription's trial ends soon and no payment method is on file.
    TrialEnding,
    /// An invoice was issued (`invoice_id`).
    InvoiceIssued,
    /// An invoice was not paid by its due date (`invoice_id`).
    PaymentFailed,
    /// The subscription is suspended.
    Suspended,
    /// The tenant's data is deleted soon.
    DeletionSoon,
    /// The tenant's data was deleted (`tenant_name`).
    DeletionDone,
    /// A sign-up's confirmation code (`signup_id`; the row's `user_id` is the sign-up's).
    Signup,
    /// The provider's product news (`announcement_id`): marketing, so sent only while the
    /// user consents and is not restricted.
    Announcement,
    /// The provider's sub-processor register changed (`change`, `name`, `purpose`,
    /// `location`): a notice to the controllers' admins.
    SubprocessorChange,
    /// A password reset code to an active user, asked for on the reset page or the API.
    PasswordReset,
    /// The subscription's payment method was removed at the payment processor: the next
    /// invoice cannot be charged until one is added.
    PaymentMethodRemoved,
}

impl MailKind {
    const NAMES: [(MailKind, &'static str); 13] = [
        (MailKind::Invitation, "invitation"),
        (MailKind::EmailChange, "email_change"),
        (MailKind::TrialEnding, "trial_ending"),
        (MailKind::InvoiceIssued, "invoice_issued"),
        (MailKind::PaymentFailed, "payment_failed"),
        (MailKind::Suspended, "suspended"),
        (MailKind::DeletionSoon, "deletion_soon"),
        (MailKind::DeletionDone, "deletion_done"),
        (MailKind::Signup, "signup"),
        (MailKind::Announcement, "announcement"),
        (MailKind::SubprocessorChange, "subprocessor_change"),
        (MailKind::PasswordReset, "password_reset"),
        (MailKind::PaymentMethodRemoved, "payment_method_removed"),
    ];

    pub fn as_str(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, name)| name)
    }

    fn parse(s: &str) -> Option<MailKind> {
        Self::NAMES
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(k, _)| *k)
    }
}

/// A queued message, taken by one sender.
#[derive(Clone, Debug)]
pub struct Queued {
    pub id: String,
    pub kind: Option<MailKind>,
    pub user_id: String,
    /// What the message is about beyond its kind (an invoice's ID, ...).
    pub params: serde_json::Value,
    pub attempts: i64,
    pub created_at: i64,
}

/// Queues a message in the caller's transaction, so it goes out exactly when the change
/// that asks for it commits. Earlier queued messages of the same kind for the same user
/// are dropped: only the newest invitation or confirmation is worth sending.
pub async fn enqueue(tx: &mut Tx, kind: MailKind, user_id: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "UPDATE mail_outbox SET state = 'dropped', finished_at = $1
         WHERE user_id = $2 AND kind = $3 AND state = 'queued'",
    )
    .bind(now)
    .bind(user_id)
    .bind(kind.as_str())
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, user_id, state, attempts, created_at, next_attempt_at)
         VALUES ($1, $2, $3, 'queued', 0, $4, $4)",
    )
    .bind(crate::domain::new_id("ml"))
    .bind(kind.as_str())
    .bind(user_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues a message with `params` in the caller's transaction; unlike [`enqueue`], earlier
/// messages stay (each invoice, each warning is its own message).
pub async fn enqueue_with(
    tx: &mut Tx,
    kind: MailKind,
    user_id: &str,
    params: &serde_json::Value,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO mail_outbox (id, kind, user_id, params, state, attempts, created_at,
                                  next_attempt_at)
         VALUES ($1, $2, $3, $4, 'queued', 0, $5, $5)",
    )
    .bind(crate::domain::new_id("ml"))
    .bind(kind.as_str())
    .bind(user_id)
    .bind(params.to_string())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes the records of messages that finished (sent, dropped, failed) before `before`;
/// what still waits stays. Returns how many went.
pub async fn forget_finished(pool: &AnyPool, before: i64) -> DbResult<u64> {
    let r = sqlx::query("DELETE FROM mail_outbox WHERE state <> 'queued' AND finished_at < $1")
        .bind(before)
        .execute(pool)
        .await?;
    Ok(r.rows_affected())
}

/// Takes up to `limit` due messages for `claim_ms`, counting an attempt on each.
pub async fn take_due(
    pool: &AnyPool,
    now: i64,
    claim_ms: i64,
    limit: i64,
) -> DbResult<Vec<Queued>> {
    let mut out = Vec::new();
    for id in super::take_queued(pool, super::Queue::Mail, now, claim_ms, limit).await? {
        let row = sqlx::query("SELECT * FROM mail_outbox WHERE id = $1")
            .bind(&id)
            .fetch_one(pool)
            .await?;
        out.push(Queued {
            id,
            kind: MailKind::parse(&col::<String>(&row, "kind")?),
            user_id: col(&row, "user_id")?,
            params: super::col_json(&row, "params")?,
            attempts: col(&row, "attempts")?,
            created_at: col(&row, "created_at")?,
        });
    }
    Ok(out)
}

/// Ends a message: `sent`, `dropped` (nothing to send any more) or `failed` (gave up).
pub async fn finish(
    pool: &AnyPool,
    id: &str,
    state: &str,
    error: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE mail_outbox SET state = $1, finished_at = $2, claimed_until = NULL,
            last_error = COALESCE($3, last_error) WHERE id = $4",
    )
    .bind(state)
    .bind(now)
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a message back for another try at `at`.
pub async fn retry_at(pool: &AnyPool, id: &str, at: i64, error: &str) -> DbResult<()> {
    sqlx::query(
        "UPDATE mail_outbox SET next_attempt_at = $1, claimed_until = NULL, last_error = $2
         WHERE id = $3 AND state = 'queued'",
    )
    .bind(at)
    .bind(error)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Counts of messages by state, for the log and the tests' observers.
pub async fn queued(pool: &AnyPool) -> DbResult<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM mail_outbox WHERE state = 'queued'")
        .fetch_one(pool)
        .await?;
    Ok(col(&row, "n")?)
}

/// Deletes the mail queued for, or sent to, a user.
pub async fn delete_of_user(tx: &mut Tx, user_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM mail_outbox WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
