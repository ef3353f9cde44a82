//! What the notification tables hold of a person, and its forgetting when they are erased:
//! their address on targets and in relays' answers, and the text of events about them.

use super::{DbResult, Tx, col};
use crate::domain::TenantScope;

/// Removes an address from the recipients of the e-mail targets of the tenants in `scope`
/// (a person's erasure); answers how many targets named it. Other tenants' targets are
/// theirs to change, even when they name the same address.
pub async fn remove_recipient(tx: &mut Tx, scope: &TenantScope, email: &str) -> DbResult<u64> {
    let Some((filter, values)) = super::tenants::scope_filter(scope) else {
        return Ok(0);
    };
    let sql = format!(
        "SELECT n.id, n.settings FROM notify_targets n JOIN tenants t ON t.id = n.tenant_id
         WHERE n.kind = 'email' AND ({filter})"
    );
    // Only constants and parameter numbers in the text; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in &values {
        query = query.bind(v);
    }
    let rows = query.fetch_all(&mut **tx).await?;
    let mut changed = 0;
    for row in rows {
        let id: String = col(&row, "id")?;
        let text: String = col(&row, "settings")?;
        let Ok(mut settings) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        let Some(list) = settings["recipients"].as_array_mut() else {
            continue;
        };
        let before = list.len();
        list.retain(|r| !r.as_str().is_some_and(|r| r.eq_ignore_ascii_case(email)));
        if list.len() == before {
            continue;
        }
        sqlx::query("UPDATE notify_targets SET settings = $1 WHERE id = $2")
            .bind(settings.to_string())
            .bind(&id)
            .execute(&mut **tx)
            .await?;
        changed += 1;
    }
    Ok(changed)
}

/// Forgets what events about user `user_id` say of them (a new device's browser, system and
/// name): each stays an event of its kind about that user, without its text or details.
/// Answers how many.
pub async fn forget_subject(tx: &mut Tx, user_id: &str) -> DbResult<u64> {
    let done = sqlx::query(
        "UPDATE events SET message = 'about a person who was erased', details = '{}'
         WHERE subject_kind = 'user' AND subject_id = $1",
    )
    .bind(user_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Takes `email` out of the relays' answers that deliveries of the targets of the tenants in
/// `scope` keep as their error (a relay that refused an address names it): the rest of the
/// answer stays, so the delivery still says why it failed. Answers how many.
pub async fn forget_address_in_errors(
    tx: &mut Tx,
    scope: &TenantScope,
    email: &str,
) -> DbResult<u64> {
    let Some((filter, values)) = super::tenants::scope_filter(scope) else {
        return Ok(0);
    };
    let sql = format!(
        "SELECT d.id, d.last_error, d.refused FROM deliveries d
              JOIN notify_targets n ON n.id = d.target_id JOIN tenants t ON t.id = n.tenant_id
         WHERE ({filter}) AND (d.last_error LIKE ${n} OR d.refused LIKE ${n})",
        n = values.len() + 1
    );
    // Only constants and parameter numbers in the text; every value is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for v in &values {
        query = query.bind(v);
    }
    // A first cut in SQL (`_` and `%` may match more); the exact test follows.
    let rows = query
        .bind(format!("%{email}%"))
        .fetch_all(&mut **tx)
        .await?;
    let mut n = 0;
    for r in &rows {
        let said: Option<String> = col(r, "last_error")?;
        let refused: Option<String> = col(r, "refused")?;
        let named = |t: &Option<String>| t.as_deref().is_some_and(|t| t.contains(email));
        if !named(&said) && !named(&refused) {
            continue;
        }
        let forget = |t: Option<String>| t.map(|t| t.replace(email, "(an erased address)"));
        sqlx::query("UPDATE deliveries SET last_error = $1, refused = $2 WHERE id = $3")
            .bind(forget(said))
            .bind(forget(refused))
            .bind(col::<String>(r, "id")?)
            .execute(&mut **tx)
            .await?;
        n += 1;
    }
    Ok(n)
}
