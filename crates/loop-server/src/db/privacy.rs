//! Privacy records: policy versions and acknowledgements, consent to marketing and its
//! history, one-click unsubscribe links, restriction of processing, announcements.

use loop_api::{MarketingConsent, PrivacyPolicy};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, time};

fn policy(row: &AnyRow) -> DbResult<PrivacyPolicy> {
    Ok(PrivacyPolicy {
        version: col(row, "version")?,
        url: col(row, "url")?,
        summary: col(row, "summary")?,
        published_at: time(col(row, "published_at")?),
    })
}

/// The version in force: the one published last.
pub async fn current_policy(pool: &AnyPool) -> DbResult<Option<PrivacyPolicy>> {
    let row = sqlx::query(
        "SELECT * FROM privacy_policies ORDER BY published_at DESC, version DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(policy).transpose()
}

/// Publishes a version (a version name already published is a unique violation).
pub async fn insert_policy(tx: &mut Tx, p: &PrivacyPolicy) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO privacy_policies (version, url, summary, published_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&p.version)
    .bind(&p.url)
    .bind(&p.summary)
    .bind(p.published_at.timestamp_millis())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The policy in force when `user_id` has not acknowledged it.
pub async fn policy_to_acknowledge(
    pool: &AnyPool,
    user_id: &str,
) -> DbResult<Option<PrivacyPolicy>> {
    let Some(p) = current_policy(pool).await? else {
        return Ok(None);
    };
    let row =
        sqlx::query("SELECT at FROM policy_acknowledgements WHERE user_id = $1 AND version = $2")
            .bind(user_id)
            .bind(&p.version)
            .fetch_optional(pool)
            .await?;
    Ok(row.is_none().then_some(p))
}

/// Records that `user_id` acknowledged `version` (once; a repeat keeps the first time).
pub async fn acknowledge(tx: &mut Tx, user_id: &str, version: &str, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO policy_acknowledgements (user_id, version, at) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, version) DO NOTHING",
    )
    .bind(user_id)
    .bind(version)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Who may change a consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The person, signed in.
    User,
    /// A marketing message's one-click unsubscribe link.
    Unsubscribe,
}

/// Sets the user's consent to marketing and records the change with the policy in force.
/// Returns false when it was already so, or when consent is given for a user who is not
/// active (disabled or erased meanwhile): nothing is recorded then.
pub async fn set_marketing_consent(
    tx: &mut Tx,
    user_id: &str,
    given: bool,
    policy_version: Option<&str>,
    via: Via,
    now: i64,
) -> DbResult<bool> {
    let changed = sqlx::query(
        "UPDATE users SET marketing_consent = $1, updated_at = $2
         WHERE id = $3 AND marketing_consent <> $1 AND (status = 'active' OR $1 = 0)",
    )
    .bind(i64::from(given))
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await?
    .rows_affected()
        == 1;
    if changed {
        sqlx::query(
            "INSERT INTO consent_changes (id, user_id, purpose, given, policy_version, via, at)
             VALUES ($1, $2, 'marketing', $3, $4, $5, $6)",
        )
        .bind(crate::domain::new_id("cc"))
        .bind(user_id)
        .bind(i64::from(given))
        .bind(policy_version)
        .bind(match via {
            Via::User => "user",
            Via::Unsubscribe => "unsubscribe",
        })
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(changed)
}

/// One recorded change of a consent.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConsentChange {
    pub purpose: String,
    pub given: bool,
    pub policy_version: Option<String>,
    pub via: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Every change of the user's consents, oldest first.
pub async fn consent_changes(pool: &AnyPool, user_id: &str) -> DbResult<Vec<ConsentChange>> {
    let rows = sqlx::query("SELECT * FROM consent_changes WHERE user_id = $1 ORDER BY at, id")
        .bind(user_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ConsentChange {
                purpose: col(r, "purpose")?,
                given: col::<i64>(r, "given")? != 0,
                policy_version: col(r, "policy_version")?,
                via: col(r, "via")?,
                at: time(col(r, "at")?),
            })
        })
        .collect()
}

/// The user's consent to marketing as it stands (`given` from the user row).
pub async fn marketing_consent(
    pool: &AnyPool,
    user_id: &str,
    given: bool,
) -> DbResult<MarketingConsent> {
    let last = consent_changes(pool, user_id).await?.pop();
    Ok(MarketingConsent {
        given,
        policy_version: last.as_ref().and_then(|c| c.policy_version.clone()),
        changed_at: last.map(|c| c.at),
    })
}

/// Keeps the keyed hash of an unsubscribe link mailed to `user_id`.
pub async fn insert_unsubscribe_link(
    pool: &AnyPool,
    token_hash: &str,
    user_id: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO unsubscribe_links (token_hash, user_id, created_at) VALUES ($1, $2, $3)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}

/// The user an unsubscribe link was mailed to.
pub async fn unsubscribe_link_user(pool: &AnyPool, token_hash: &str) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT user_id FROM unsubscribe_links WHERE token_hash = $1")
        .bind(token_hash)
        .fetch_optional(pool)
        .await?;
    Ok(row.as_ref().map(|r| col(r, "user_id")).transpose()?)
}

/// Restricts processing of the user's data (from `now`), or lifts the restriction. Returns
/// false when it was already so.
pub async fn set_restricted(
    tx: &mut Tx,
    user_id: &str,
    restricted: bool,
    now: i64,
) -> DbResult<bool> {
    let sql = if restricted {
        "UPDATE users SET restricted_at = $1, updated_at = $1
         WHERE id = $2 AND restricted_at IS NULL"
    } else {
        "UPDATE users SET restricted_at = NULL, updated_at = $1
         WHERE id = $2 AND restricted_at IS NOT NULL"
    };
    let r = sqlx::query(sql)
        .bind(now)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// The addresses among `emails`, on a target of `tenant_id`, that belong to people whose
/// processing is restricted: an account's holder (an address has one account), wherever
/// the target is, or someone invited into that tenant. An invitation elsewhere under the
/// same address says nothing about who reads this tenant's mail.
pub async fn restricted_among(
    pool: &AnyPool,
    tenant_id: &str,
    emails: &[String],
) -> DbResult<Vec<String>> {
    let mut out = Vec::new();
    for e in emails {
        let row = sqlx::query(
            "SELECT id FROM users WHERE email = $1 AND restricted_at IS NOT NULL
               AND (status <> 'invited' OR tenant_id = $2) LIMIT 1",
        )
        .bind(e)
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
        if row.is_some() {
            out.push(e.clone());
        }
    }
    Ok(out)
}

/// An announcement as stored.
#[derive(Clone, Debug)]
pub struct AnnouncementRow {
    pub id: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub recipients: i64,
}

/// Records an announcement and queues one message to every user who may receive
/// marketing: an account (not an invitation or a disabled user) of a tenant not erased,
/// with consent given and processing not restricted. Returns how many were queued.
pub async fn queue_announcement(
    tx: &mut Tx,
    id: &str,
    subject: &str,
    body: &str,
    sent_by: &str,
    now: i64,
) -> DbResult<u64> {
    let params = serde_json::json!({ "announcement_id": id }).to_string();
    let queued = sqlx::query(
        "INSERT INTO mail_outbox (id, kind, user_id, params, state, attempts, created_at,
                                  next_attempt_at)
         SELECT CAST($1 AS TEXT) || u.id, 'announcement', u.id, $2, 'queued', 0, $3, $3
         FROM users u JOIN tenants t ON t.id = u.tenant_id
         WHERE u.status = 'active' AND u.marketing_consent = 1 AND u.restricted_at IS NULL
           AND t.status <> 'erased'",
    )
    .bind(format!("{id}-"))
    .bind(params)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "INSERT INTO announcements (id, subject, body, sent_by, created_at, recipients)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(subject)
    .bind(body)
    .bind(sent_by)
    .bind(now)
    .bind(queued as i64)
    .execute(&mut **tx)
    .await?;
    Ok(queued)
}

pub async fn announcement_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<AnnouncementRow>> {
    let row = sqlx::query("SELECT * FROM announcements WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref()
        .map(|r| {
            Ok(AnnouncementRow {
                id: col(r, "id")?,
                subject: col(r, "subject")?,
                body: col(r, "body")?,
                created_at: col(r, "created_at")?,
                recipients: col(r, "recipients")?,
            })
        })
        .transpose()
}

/// How many records of each category of personal data the tenants at and below the tenant
/// path `path` hold, for the records of processing.
pub async fn personal_data_counts(pool: &AnyPool, path: &str) -> DbResult<Vec<(String, u64)>> {
    const CATEGORIES: &[(&str, &str)] = &[
        (
            "users: name, e-mail, business address, language",
            "users x JOIN tenants t ON t.id = x.tenant_id",
        ),
        (
            "sessions: times, IP address, browser, device",
            "sessions x JOIN tenants t ON t.id = x.tenant_id",
        ),
        (
            "audit events' IP addresses and browsers",
            "audit_personal x JOIN tenants t ON t.id = x.tenant_id",
        ),
        (
            "consents to marketing, given or withdrawn",
            "consent_changes x JOIN users u ON u.id = x.user_id JOIN tenants t ON t.id = u.tenant_id",
        ),
        (
            "privacy policy acknowledgements",
            "policy_acknowledgements x JOIN users u ON u.id = x.user_id
             JOIN tenants t ON t.id = u.tenant_id",
        ),
        (
            "notification targets (recipients' e-mail addresses)",
            "notify_targets x JOIN tenants t ON t.id = x.tenant_id",
        ),
        (
            "card payments: the processor's references and outcomes",
            "charges x JOIN tenants t ON t.id = x.tenant_id",
        ),
        (
            "data-subject requests",
            "subject_requests x JOIN tenants t ON t.id = x.tenant_id",
        ),
    ];
    let mut out = Vec::new();
    for (category, from) in CATEGORIES {
        // `from` is one of the constants above.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM {from} WHERE substr(t.path, 1, length($1)) = $1"
        )))
        .bind(path)
        .fetch_one(pool)
        .await?;
        out.push((category.to_string(), col::<i64>(&row, "n")?.max(0) as u64));
    }
    Ok(out)
}
