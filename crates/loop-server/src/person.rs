//! Erasing a person (GDPR Art. 17), on a controller's request: a user's name, e-mail,
//! business address, password, sessions (with their IP addresses and browsers), the IP
//! addresses and browsers the audit log holds about them, their role bindings, their
//! throttle records and their address on notification targets are removed; the user stays
//! as a pseudonym (`erased-ID@erased.invalid`, "Erased user"), so the audit events they
//! caused remain events of that pseudonymous actor. Those events' hashes cover only a salted
//! commitment to the personal data (docs/SECURITY.md, "Audit log"), so every chain still
//! verifies afterwards. On SQLite, deleted content is overwritten (`secure_delete`) and the
//! write-ahead log is checkpointed and truncated, so no copy stays in the database files.

use loop_api::{PersonErased, UserStatus};

use crate::db::audit::{self, NewEvent};
use crate::db::users::UserRow;
use crate::db::{self, DbResult, Tx};
use crate::domain::TenantScope;
use crate::error::ApiResult;
use crate::state::AppState;

pub use crate::db::users::pseudonym;

/// Erases `u`'s personal data in one transaction with `event` (the request, audited without
/// personal data), then clears the database files of copies.
pub async fn erase(state: &AppState, u: &UserRow, mut event: NewEvent) -> ApiResult<PersonErased> {
    let id = u.user.id.as_str();
    let email = u.user.email.clone();
    // The tenants whose targets may name them: theirs, and a partner's customers. (An
    // invitation's address may be another tenant's account: only its own tenant's targets.)
    let invited = u.user.status == UserStatus::Invited;
    let targets_of = match invited {
        true => TenantScope::One(u.user.tenant_id.clone()),
        false => db::tenants::subtree_of(&state.db.pool, &u.user.tenant_id).await?,
    };
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // First: that takes the user's row, so a sign-in or password change under way either
    // committed before (and what it wrote is erased below) or finds the pseudonym.
    db::users::pseudonymise(&mut tx, id, &pseudonym(id), now).await?;
    let mut ips = db::sessions::ips_of_user(&mut tx, id).await?;
    ips.extend(audit::ips_of_user(&mut tx, id).await?);
    ips.sort();
    ips.dedup();
    let notify_recipients_removed =
        db::notify_people::remove_recipient(&mut tx, &targets_of, &email).await?;
    db::notify_people::forget_address_in_errors(&mut tx, &targets_of, &email).await?;
    let sessions_deleted = db::sessions::delete_of_user(&mut tx, id).await?;
    let done = PersonErased {
        user_id: id.to_string(),
        sessions_deleted,
        audit_personal_erased: audit::erase_personal(&mut tx, id).await?,
        role_bindings_removed: db::bindings::delete_of_user(&mut tx, id).await?,
        notify_recipients_removed,
    };
    // An invitation's address may be another tenant's account: its throttle and sign-ups
    // are that account's, not this person's.
    if !invited {
        forget_throttle(&mut tx, &email, &ips).await?;
        // Sign-ups still waiting asked for an account in their name at their address:
        // where they were asked from goes with them.
        for id in db::signups::ids_of_email(&mut tx, &email).await? {
            audit::erase_personal_of(&mut tx, "signup", &id).await?;
        }
        db::signups::delete_of_email(&mut tx, &email).await?;
    }
    db::notify_people::forget_subject(&mut tx, id).await?;
    db::outbox::delete_of_user(&mut tx, id).await?;
    db::subject_requests::forget_details_of(&mut tx, id).await?;
    db::exports::delete_of_user(&mut tx, id).await?;
    event.details = serde_json::to_value(&done).unwrap_or_default();
    audit::append(&mut tx, event, now).await?;
    tx.commit().await.map_err(db::DbError::from)?;
    db::scrub(&state.db).await?;
    Ok(done)
}

/// The throttle's records of the address (sign-in, sign-up, password reset) and of the
/// addresses the person signed in or signed up from (a shared address only loses its count
/// of failures).
async fn forget_throttle(tx: &mut Tx, email: &str, ips: &[String]) -> DbResult<()> {
    use crate::state::{account_key, ip_key, ip_key_for};
    let mut keys = vec![
        account_key(email),
        account_key(&format!("signup:{email}")),
        account_key(&format!("reset:{email}")),
    ];
    for ip in ips {
        keys.push(ip_key(ip));
        keys.push(ip_key_for("signup", ip));
        keys.push(ip_key_for("reset", ip));
    }
    for k in keys {
        db::throttle::forget_key(tx, &k).await?;
    }
    Ok(())
}

/// Takes user `id`'s row first in a transaction that then changes their sessions and
/// records an event with their address (which takes the row too, [`audit::append`]): their
/// erasure takes the row first and then their sessions, so the two wait for each other in
/// one order instead of each holding what the other waits for. Nothing is held when the
/// person was erased already.
pub async fn hold_first(tx: &mut Tx, id: &str) -> DbResult<()> {
    db::users::hold_unerased(tx, id, &pseudonym(id)).await?;
    Ok(())
}

/// Holds user `id`'s row for the rest of `tx`, or `409 user_erased` when the person was
/// erased: a change to the account checked before an erasure that committed meanwhile
/// does not land on the pseudonym.
pub async fn hold_unerased(tx: &mut Tx, id: &str) -> ApiResult<()> {
    if db::users::hold_unerased(tx, id, &pseudonym(id)).await? {
        return Ok(());
    }
    Err(crate::error::ApiError::conflict(
        "user_erased",
        "this person was erased: the account is a pseudonym and changes no more",
    ))
}

/// Whether `u` was erased (a pseudonym now).
pub fn is_erased(u: &UserRow) -> bool {
    u.user.status == UserStatus::Disabled && u.user.email == pseudonym(&u.user.id)
}
