//! People in a tenant: a user made with a password (by an administrator of the whole
//! service) or invited by mail, with an optional first role; roles granted and revoked. The
//! API and the console both call this; each change is audited.

use loop_api::{
    CreateRoleBinding, CreateUser, CreatedUser, Role, RoleBinding, RoleBindingId, SecretText, User,
    UserId, UserStatus,
};

use crate::auth::rank::{holds_all_of, within_rank};
use crate::auth::{self, Caller};
use crate::db::outbox::{self, MailKind};
use crate::db::{self, bindings, tenants, users};
use crate::domain::{NewUser, Permission, RoleRules as _, new_id, new_secret, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Where an invitation's code goes when an administrator of the whole service invites: to
/// that caller in the answer (the API, so it can be handed over without mail), or by mail
/// as for everyone else (the console, whose page shows no code).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InviteCode {
    ToCaller,
    ByMail,
}

/// Makes the user `req` describes in its tenant (user-write there; a role needs role-grant).
pub async fn create_user(
    state: &AppState,
    caller: &Caller,
    req: CreateUser,
    code: InviteCode,
) -> ApiResult<CreatedUser> {
    let tenant = caller
        .tenant(state, Permission::UserWrite, req.tenant_id.as_str())
        .await?;
    let role = req.role;
    if let Some(r) = role {
        if !caller.can(Permission::RoleGrant, &tenant.path) {
            return Err(ApiError::forbidden());
        }
        may_bind(caller, r, &tenant)?;
    }
    let req = NewUser::parse(req)?;
    let email = &req.email;
    // Whether an address has an account in another tenant is told only to a caller who can
    // see every tenant; anyone else gets the same answer either way, and the invitation
    // e-mail tells the address's owner (see `mail::messages`).
    let whole = caller.holds_on_whole_service(Permission::UserRead);
    if users::email_in_tenant(&state.db.pool, &tenant.tenant.id, email.as_str()).await?
        || (whole
            && users::user_by_email(&state.db.pool, email.as_str())
                .await?
                .is_some())
    {
        return Err(crate::accounts::email_taken());
    }
    let (password_hash, invite) = match &req.password {
        Some(_) if !whole => {
            return Err(ApiError::bad_request(
                "only an administrator of the whole service sets another person's password; \
                 leave it out and the invitation goes to the address by e-mail",
            ));
        }
        Some(p) => (
            Some(auth::hash_password(p.expose().to_string()).await?),
            None,
        ),
        None if whole && code == InviteCode::ToCaller => (None, Some(new_secret("lpi"))),
        None => (None, None),
    };
    let by_mail = password_hash.is_none() && invite.is_none();
    let now = state.now();
    let user = User {
        id: new_id(UserId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        email: email.as_str().into(),
        first_name: req.first_name,
        last_name: req.last_name,
        business_address: req.business_address,
        status: if password_hash.is_none() {
            UserStatus::Invited
        } else {
            UserStatus::Active
        },
        totp_enabled: false,
        language: loop_api::Language::En,
        created_at: db::time(now),
        pending_email: None,
        marketing_consent: false,
        restricted: false,
        time_zone: None,
    };
    let mut tx = state.db.begin().await?;
    users::insert_user(
        &mut tx,
        &user,
        password_hash.as_deref(),
        invite.as_deref().map(secret_hash).as_deref(),
        now,
    )
    .await
    .map_err(crate::accounts::taken_or_internal)?;
    if by_mail {
        outbox::enqueue(&mut tx, MailKind::Invitation, &user.id, now).await?;
    }
    db::audit::append(
        &mut tx,
        caller.event(
            &user.tenant_id,
            "user.create",
            "user",
            Some(&user.id),
            serde_json::json!({ "invited": password_hash.is_none(), "by_mail": by_mail }),
        ),
        now,
    )
    .await?;
    if let Some(r) = role {
        let b = RoleBinding {
            id: new_id(RoleBindingId::PREFIX),
            user_id: user.id.clone(),
            tenant_id: tenant.tenant.id.clone(),
            role: r,
            created_at: db::time(now),
        };
        bindings::insert_binding(&mut tx, &b, now).await?;
        db::audit::append(
            &mut tx,
            caller.event(
                &b.tenant_id,
                "role.grant",
                "role_binding",
                Some(&b.id),
                serde_json::json!({ "user_id": user.id, "role": b.role }),
            ),
            now,
        )
        .await?;
    }
    tx.commit().await.map_err(db::DbError::from)?;
    if by_mail {
        state.mail_wake.notify_one();
    }
    Ok(CreatedUser {
        user,
        invite_token: invite.map(SecretText::from),
    })
}

/// Loads a user the caller may see with `perm` (404 otherwise), with the user's tenant.
pub async fn scoped_user(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &UserId,
) -> ApiResult<(users::UserRow, tenants::TenantRow)> {
    caller.user()?;
    let user = users::user_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    let tenant = caller.tenant(state, perm, &user.user.tenant_id).await?;
    Ok((user, tenant))
}

/// Loads a user whose account the caller may act on: change, disable, enable or erase
/// (`user-write` on the user's tenant, 404 otherwise). A user bound to a role the caller does
/// not wholly hold where it is bound is out of reach (403): an admin of the provider cannot
/// take over, lock out or erase a provider-admin, nor anyone else ranking above them.
pub async fn account_in_reach(
    state: &AppState,
    caller: &Caller,
    id: &UserId,
) -> ApiResult<(users::UserRow, tenants::TenantRow)> {
    let found = scoped_user(state, caller, Permission::UserWrite, id).await?;
    within_rank(state, caller, id.as_str()).await?;
    Ok(found)
}

/// Whether `caller` (who holds role-grant there) may bind `role` on `tenant`: a role its kind
/// of tenant takes, and one that grants nothing the caller does not hold there itself (an
/// admin of the provider cannot make anyone, itself included, a provider-admin).
fn may_bind(caller: &Caller, role: Role, tenant: &tenants::TenantRow) -> ApiResult<()> {
    if !role.bindable_on(tenant.tenant.kind) {
        return Err(ApiError::bad_request(format!(
            "the {role} role cannot be bound on a {} tenant",
            tenant.tenant.kind
        )));
    }
    holds_all_of(caller, role, &tenant.path)
}

/// Binds `req.role` to user `id` on `req.tenant_id`: the user's own tenant or one below it,
/// where the caller has role-grant; audited (`role.grant`).
pub async fn grant_role(
    state: &AppState,
    caller: &Caller,
    id: &UserId,
    req: CreateRoleBinding,
) -> ApiResult<RoleBinding> {
    let (user, home) = scoped_user(state, caller, Permission::UserRead, id).await?;
    let target = caller
        .tenant(state, Permission::RoleGrant, req.tenant_id.as_str())
        .await?;
    if !home.path.contains(&target.path) {
        return Err(ApiError::bad_request(
            "a role can be bound only on the user's own tenant or one below it",
        ));
    }
    let role = req.role;
    may_bind(caller, role, &target)?;
    let now = state.now();
    let b = RoleBinding {
        id: new_id(RoleBindingId::PREFIX),
        user_id: user.user.id.clone(),
        tenant_id: target.tenant.id.clone(),
        role,
        created_at: db::time(now),
    };
    let mut tx = state.db.begin().await?;
    crate::person::hold_unerased(&mut tx, &b.user_id).await?;
    if !bindings::insert_binding(&mut tx, &b, now).await? {
        return Err(ApiError::conflict(
            "exists",
            "the user already has this role there",
        ));
    }
    let event = caller.event(
        &b.tenant_id,
        "role.grant",
        "role_binding",
        Some(&b.id),
        serde_json::json!({ "user_id": b.user_id, "role": b.role }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(b)
}

/// Removes role binding `binding_id` of user `id` (role-grant on the binding's tenant, and
/// every permission of the role there); audited (`role.revoke`).
pub async fn revoke_role(
    state: &AppState,
    caller: &Caller,
    id: &UserId,
    binding_id: &RoleBindingId,
) -> ApiResult<()> {
    scoped_user(state, caller, Permission::UserRead, id).await?;
    let bindings = bindings::bindings_of(&state.db.pool, id.as_str()).await?;
    let b = bindings
        .into_iter()
        .find(|b| b.binding.id == binding_id.as_str())
        .ok_or_else(ApiError::not_found)?;
    let tenant = caller
        .tenant(state, Permission::RoleGrant, &b.binding.tenant_id)
        .await?;
    holds_all_of(caller, b.binding.role, &tenant.path)?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    // A concurrent revoke of the same binding took it already: nothing changed here.
    if !bindings::delete_binding(&mut tx, id.as_str(), binding_id.as_str()).await? {
        return Ok(());
    }
    let event = caller.event(
        &b.binding.tenant_id,
        "role.revoke",
        "role_binding",
        Some(binding_id.as_str()),
        serde_json::json!({ "user_id": id, "role": b.binding.role }),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}
