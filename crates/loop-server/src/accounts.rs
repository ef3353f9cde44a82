//! A person's own account, as the API and the console change it: the profile
//! (rectification), the password, and sessions (listed, revoked). Each change is audited.

use axum::http::StatusCode;
use loop_api::{Session, TenantId, TotpEnrollment, UpdateUser, User, UserStatus};

use crate::auth::signin::{audit_refusal, throttled};
use crate::auth::{self, Caller, totp};
use crate::db::outbox::{self, MailKind};
use crate::db::sessions::{self, Whose};
use crate::db::{self, users};
use crate::domain::{self, Permission, UserChanges};
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Attempt};

/// The caller changes their own profile. A new address also asks for the current password
/// (audited and throttled like a sign-in), so a stolen session cannot move the account to a
/// mailbox of its own and reset the password from there.
pub async fn change_own(state: &AppState, caller: &Caller, req: UpdateUser) -> ApiResult<User> {
    let me = caller.user()?.user.clone();
    let new_address = req
        .email
        .as_deref()
        .is_some_and(|e| e.trim().to_lowercase() != me.user.email);
    if new_address {
        let Some(current) = &req.current_password else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "password_required",
                "a new e-mail address needs your current password (current_password)",
            ));
        };
        current_password(state, caller, current.expose(), "user.email_change").await?;
    }
    // Your own new address is always confirmed by mail, whoever you are.
    change(state, caller, me, req, false).await
}

/// Applies `req` to `row` and audits it; `whole`: the caller sees every tenant, so a new
/// address of an account changes at once (anyone else's waits for its owner's confirmation).
pub async fn change(
    state: &AppState,
    caller: &Caller,
    row: users::UserRow,
    req: UpdateUser,
    whole: bool,
) -> ApiResult<User> {
    let req = UserChanges::parse(req)?;
    if crate::person::is_erased(&row) {
        return Err(ApiError::conflict(
            "user_erased",
            "this person was erased: the account is a pseudonym and is not changed",
        ));
    }
    let was = row.user.clone();
    let mut u = row.user;
    let mut fields = Vec::new();
    let mut mail = None;
    if let Some(e) = &req.email
        && e.as_str() != u.email
    {
        if users::email_in_tenant(&state.db.pool, &u.tenant_id, e.as_str()).await? {
            return Err(email_taken());
        }
        if u.status == UserStatus::Invited {
            // Not an account yet: the invitation simply goes to the new address.
            u.email = e.as_str().into();
            fields.push("email");
            if !whole {
                mail = Some(MailKind::Invitation);
            }
        } else if whole {
            if users::user_by_email(&state.db.pool, e.as_str())
                .await?
                .is_some()
            {
                return Err(email_taken());
            }
            u.email = e.as_str().into();
            // A change made at once replaces one waiting for confirmation.
            u.pending_email = None;
            fields.push("email");
        } else {
            // The address changes when its owner confirms it (`mail::messages`).
            u.pending_email = Some(e.as_str().into());
            fields.push("pending_email");
            mail = Some(MailKind::EmailChange);
        }
    }
    if let Some(v) = req.first_name {
        u.first_name = v;
        fields.push("first_name");
    }
    if let Some(v) = req.last_name {
        u.last_name = v;
        fields.push("last_name");
    }
    if let Some(v) = req.business_address {
        u.business_address = v;
        fields.push("business_address");
    }
    if let Some(v) = req.language {
        u.language = v;
        fields.push("language");
    }
    if let Some(v) = req.time_zone {
        u.time_zone = v;
        fields.push("time_zone");
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let stored = users::update_user_profile(&mut tx, &u, &was, now)
        .await
        .map_err(taken_or_internal)?;
    if !stored {
        return Err(ApiError::conflict(
            "user_changed",
            "the account changed meanwhile (erased, disabled or its address confirmed): read \
             it again",
        ));
    }
    if fields.contains(&"pending_email") || fields.contains(&"email") {
        users::set_pending_email(&mut tx, &u.id, u.pending_email.as_deref(), now).await?;
    }
    if mail == Some(MailKind::Invitation) {
        // A code already mailed to the old address must not open the account.
        users::clear_invite(&mut tx, &u.id).await?;
    }
    if let Some(kind) = mail {
        outbox::enqueue(&mut tx, kind, &u.id, now).await?;
    }
    db::audit::commit_audited(
        tx,
        caller.event(
            &u.tenant_id,
            "user.update",
            "user",
            Some(&u.id),
            serde_json::json!({ "fields": fields }),
        ),
        now,
    )
    .await?;
    if mail.is_some() {
        state.mail_wake.notify_one();
    }
    Ok(u)
}

pub fn email_taken() -> ApiError {
    ApiError::conflict("email_taken", "a user with this e-mail exists")
}

/// A unique violation on the address (another request took it meanwhile) as `email_taken`.
pub fn taken_or_internal(e: db::DbError) -> ApiError {
    if e.is_unique_violation() {
        email_taken()
    } else {
        e.into()
    }
}

/// Changes the caller's password after checking the current one: guessing it here counts like
/// guessing it at sign-in (the same throttle, every refusal audited). Every other session of
/// the user ends.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: &str,
    new: &str,
) -> ApiResult<()> {
    let u = caller.user()?;
    current_password(state, caller, current, "user.password_change").await?;
    let now = state.now();
    domain::check_new_password(new)?;
    let hash = auth::hash_password(new.to_string()).await?;
    let mut tx = state.db.begin().await?;
    // Against the password checked: a reset, disabling or erasure meanwhile wins.
    let verified = u.user.password_hash.as_deref();
    if !users::replace_password(&mut tx, &u.user.user.id, verified, &hash, now).await? {
        return Err(ApiError::unauthenticated());
    }
    let ended = sessions::end_user_sessions(
        &mut tx,
        &u.user.user.id,
        Some(&u.session.session.id),
        "password_change",
        now,
    )
    .await?;
    db::audit::commit_audited(
        tx,
        caller.event(
            &u.user.user.tenant_id,
            "user.password_change",
            "user",
            Some(&u.user.user.id),
            serde_json::json!({ "sessions_ended": ended }),
        ),
        now,
    )
    .await?;
    Ok(())
}

/// Checks the caller's current password. Guessing it here counts like guessing it at sign-in:
/// the same throttle, and every refusal is audited (as `action`).
async fn current_password(
    state: &AppState,
    caller: &Caller,
    current: &str,
    action: &'static str,
) -> ApiResult<()> {
    let u = caller.user()?;
    let now = state.now();
    let (account, ip) = (
        u.user.user.email.clone(),
        caller.client.ip.clone().unwrap_or_default(),
    );
    let (tenant_id, user_id) = (&u.user.user.tenant_id, u.user.user.id.as_str());
    let refused = |reason: &'static str| {
        audit_refusal(
            state,
            action,
            tenant_id,
            Some(user_id),
            &caller.client,
            reason,
        )
    };
    let attempt = match state.throttle.begin(&state.db, &account, &ip, now).await? {
        Attempt::Allowed(attempt) => attempt,
        Attempt::Throttled {
            audit,
            retry_after_secs,
        } => {
            if audit {
                refused("throttled").await?;
            }
            return Err(throttled(retry_after_secs));
        }
    };
    if !auth::verify_password(current.to_string(), u.user.password_hash.clone()).await? {
        refused("wrong_password").await?;
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "wrong_password",
            "the current password is wrong",
        ));
    }
    state
        .throttle
        .succeeded(&state.db, &account, attempt)
        .await?;
    Ok(())
}

/// Starts the caller's authenticator: a new secret, kept wrapped under the master key (a copy
/// of the database alone cannot make codes) until a code confirms it ([`confirm_totp`]). Asks
/// for the current password, so a stolen session cannot lock the owner out with a secret of
/// its own.
pub async fn enrol_totp(
    state: &AppState,
    caller: &Caller,
    current: &str,
) -> ApiResult<TotpEnrollment> {
    let u = caller.user()?;
    current_password(state, caller, current, "user.totp_enroll").await?;
    if u.user.user.totp_enabled {
        return Err(ApiError::conflict(
            "totp_enabled",
            "TOTP is already enabled",
        ));
    }
    let key = loop_repo::crypto::Key::generate();
    let stored = state.master.wrap(&totp::context(&u.user.user.id), &key);
    let enrolment = totp::enrolment(key.expose(), &u.user.user.email)?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // A confirmation that turned an earlier enrolment on while the password was checked wins.
    if !users::start_totp(&mut tx, &u.user.user.id, &stored, now).await? {
        return Err(ApiError::conflict(
            "totp_enabled",
            "TOTP is already enabled",
        ));
    }
    let event = caller.event(
        &u.user.user.tenant_id,
        "user.totp_enroll",
        "user",
        Some(&u.user.user.id),
        serde_json::json!({}),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(enrolment)
}

/// The enrolment the caller started, when `secret` is its secret (base32, as shown): for
/// showing it again after a wrong code, to the one who was shown it.
pub async fn pending_totp(
    state: &AppState,
    caller: &Caller,
    secret: &str,
) -> ApiResult<Option<TotpEnrollment>> {
    let u = caller.user()?;
    let Some(stored) = u
        .user
        .totp_secret
        .as_deref()
        .filter(|_| !u.user.user.totp_enabled)
    else {
        return Ok(None);
    };
    let key = state
        .master
        .unwrap(&totp::context(&u.user.user.id), stored)?;
    let enrolment = totp::enrolment(key.expose(), &u.user.user.email)?;
    // Compared as hashes (BLAKE3's equality takes constant time): the answer's timing tells
    // nothing of the secret.
    let same = blake3::hash(enrolment.secret.expose().as_bytes())
        == blake3::hash(secret.trim().as_bytes());
    Ok(same.then_some(enrolment))
}

/// Turns on the authenticator the caller enrolled, with a code it makes now; sign-ins then
/// ask for a code.
pub async fn confirm_totp(state: &AppState, caller: &Caller, code: &str) -> ApiResult<()> {
    let u = caller.user()?;
    let Some(secret) = u
        .user
        .totp_secret
        .as_deref()
        .filter(|_| !u.user.user.totp_enabled)
    else {
        return Err(ApiError::conflict(
            "no_enrolment",
            "start TOTP enrolment first",
        ));
    };
    let now = state.now();
    if totp::check(state, &u.user.user, secret, code, now).await? != totp::Code::Accepted {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_totp",
            "the authenticator code is wrong",
        ));
    }
    let mut tx = state.db.begin().await?;
    if !users::enable_totp(&mut tx, &u.user.user.id, secret, now).await? {
        return Err(ApiError::conflict(
            "no_enrolment",
            "start TOTP enrolment first",
        ));
    }
    let event = caller.event(
        &u.user.user.tenant_id,
        "user.totp_enable",
        "user",
        Some(&u.user.user.id),
        serde_json::json!({}),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}

/// The caller's own sessions, or (with `tenant`, and the session-read permission there) those
/// of that tenant's users; the caller's current one is marked.
pub async fn sessions(
    state: &AppState,
    caller: &Caller,
    tenant: Option<&TenantId>,
    page: &db::page::Page,
) -> ApiResult<db::page::Paged<Session>> {
    let u = caller.user()?;
    let rows = match tenant {
        None => sessions::sessions_of(&state.db.pool, Whose::User(&u.user.user.id), page).await?,
        Some(t) => {
            let t = caller
                .tenant(state, Permission::SessionRead, t.as_str())
                .await?;
            sessions::sessions_of(&state.db.pool, Whose::Tenant(&t.tenant.id), page).await?
        }
    };
    let current = &u.session.session.id;
    let rows = rows.map(|r| {
        let mut s = r.session;
        s.current = &s.id == current;
        Ok(s)
    })?;
    Ok(rows)
}

/// Ends session `id`: one's own, or (with the session-revoke permission) one of the tenant's
/// whose user is within the caller's rank.
pub async fn revoke_session(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let u = caller.user()?;
    let s = sessions::session_by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if s.session.user_id != u.user.user.id {
        caller
            .tenant(state, Permission::SessionRevoke, &s.tenant_id)
            .await?;
        crate::auth::rank::within_rank(state, caller, &s.session.user_id).await?;
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::person::hold_first(&mut tx, &s.session.user_id).await?;
    // Ending an ended session changes nothing, and so records nothing.
    if !sessions::end_session(&mut tx, id, "revoked", now).await? {
        return Ok(());
    }
    db::audit::commit_audited(
        tx,
        caller.event(
            &s.tenant_id,
            "session.revoke",
            "session",
            Some(id),
            serde_json::json!({ "user_id": s.session.user_id }),
        ),
        now,
    )
    .await?;
    Ok(())
}
