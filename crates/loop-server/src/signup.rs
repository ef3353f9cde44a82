//! Self-service sign-up (docs/OPERATIONS.md, "Sign-up"): an organisation asks for a trial
//! of a plan offered on the sign-up, a code goes to the address, and the code makes the
//! customer tenant (under the plan's issuer), its first administrator and the subscription,
//! whose trial starts then.
//!
//! Whether an address has an account is never told to the one who signs up: the answer is
//! the same either way, and the mail tells the address's owner instead (and then carries no
//! code). Sign-ups are throttled per address and per client address.

use loop_api::{
    ConfirmSignUp, Plan, Role, RoleBindingId, SignUp, SignedUp, TenantKind, User, UserId,
    UserStatus,
};

use crate::auth::ClientInfo;
use crate::db::audit::{self, NewEvent, Personal};
use crate::db::outbox::{self, MailKind};
use crate::db::signups::{self, SignupRow};
use crate::db::throttle::Begun;
use crate::db::{self, billing, bindings, tenants, users};
use crate::domain::{
    EmailAddress, check_new_password, new_id, parse_address, parse_name, secret_hash,
};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::tenancy;

/// How long a sign-up's code works.
pub const VALID_MS: i64 = 7 * 86_400_000;

/// Sign-ups per address and per client address within the sign-in throttle's window
/// (`signin.window_minutes`, 15 by default), counted with the sign-in failures.
const MAX_PER_ADDRESS: i64 = 3;
const MAX_PER_CLIENT: i64 = 10;

/// The plan a sign-up asks for: one offered on the sign-up (the only one, when it names
/// none). No plan offered: sign-up is off, and its routes are not there.
async fn chosen_plan(state: &AppState, plan_id: Option<&str>) -> ApiResult<Plan> {
    let offered = billing::signup_plans(&state.db.pool).await?;
    if offered.is_empty() {
        return Err(ApiError::not_found());
    }
    match plan_id {
        Some(id) => offered
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| ApiError::bad_request("no plan of that ID is offered on the sign-up")),
        None if offered.len() == 1 => Ok(offered.into_iter().next().expect("one plan")),
        None => Err(ApiError::bad_request(
            "several plans are offered: choose one with plan_id (GET /api/v1/signup/plans)",
        )),
    }
}

/// The plans offered on the sign-up (404 when none is: sign-up is off).
pub async fn offered(state: &AppState) -> ApiResult<Vec<Plan>> {
    let plans = billing::signup_plans(&state.db.pool).await?;
    if plans.is_empty() {
        return Err(ApiError::not_found());
    }
    Ok(plans)
}

/// Records a sign-up and queues its mail. The same answer whatever the address. The plan's
/// issuer's audit log records the request (`signup.request`; the client's address as
/// personal data, the e-mail not at all).
pub async fn sign_up(state: &AppState, client: &ClientInfo, req: SignUp) -> ApiResult<()> {
    let ip = client.ip.as_deref().unwrap_or_default();
    let plan = chosen_plan(state, req.plan_id.as_deref()).await?;
    let email = EmailAddress::parse(&req.email)?;
    check_new_password(req.password.expose())?;
    let organisation = parse_name("organisation", &req.organisation)?;
    let first_name = parse_name("first name", &req.first_name)?;
    let last_name = parse_name("last name", &req.last_name)?;
    let business_address = parse_address(&req.business_address)?;
    let now = state.now();
    let account = crate::state::account_key(&format!("signup:{}", email.as_str()));
    let from = crate::state::ip_key_for("signup", ip);
    let limits = (MAX_PER_ADDRESS, MAX_PER_CLIENT);
    if let Begun::Throttled { wait_ms, .. } = (state.throttle)
        .count(&state.db, (&account, &from), limits, now)
        .await?
    {
        let secs = (wait_ms.max(0) as u64).div_ceil(1000).max(1);
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many sign-ups from here or for this address; try again later",
        )
        .retry_after(secs));
    }
    let s = SignupRow {
        id: new_id("su"),
        email: email.as_str().to_string(),
        organisation,
        first_name,
        last_name,
        business_address,
        language: req.language.unwrap_or(loop_api::Language::En),
        plan_id: plan.id.clone(),
        password_hash: crate::auth::hash_password(req.password.expose().to_string()).await?,
        created_at: now,
        expires_at: now + VALID_MS,
    };
    let mut tx = state.db.begin().await?;
    signups::insert_signup(&mut tx, &s).await?;
    let params = serde_json::json!({ "signup_id": s.id });
    outbox::enqueue_with(&mut tx, MailKind::Signup, &s.id, &params, now).await?;
    let request = NewEvent {
        tenant_id: plan.issuer_id.clone(),
        actor_kind: loop_api::ActorKind::Anonymous,
        actor_id: None,
        action: "signup.request",
        object_kind: "signup",
        object_id: Some(s.id.clone()),
        outcome: loop_api::Outcome::Success,
        personal: Personal {
            user_id: None,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        },
        details: serde_json::json!({ "plan_id": s.plan_id }),
    };
    audit::append(&mut tx, request, now).await?;
    tx.commit().await.map_err(db::DbError::from)?;
    state.mail_wake.notify_one();
    Ok(())
}

fn event(
    tenant_id: &str,
    user_id: &str,
    action: &'static str,
    kind: &'static str,
    id: &str,
    details: serde_json::Value,
) -> NewEvent {
    NewEvent {
        tenant_id: tenant_id.to_string(),
        actor_kind: loop_api::ActorKind::User,
        actor_id: Some(user_id.to_string()),
        action,
        object_kind: kind,
        object_id: Some(id.to_string()),
        outcome: loop_api::Outcome::Success,
        personal: Personal::default(),
        details,
    }
}

/// Makes what a sign-up asked for, with the code from its mail (once; 404 for a code that
/// is unknown, used or expired).
pub async fn confirm(state: &AppState, req: ConfirmSignUp) -> ApiResult<SignedUp> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let Some(s) = signups::take_by_code(&mut tx, &secret_hash(req.token.expose()), now).await?
    else {
        return Err(ApiError::not_found());
    };
    let Some(plan) = billing::plan_by_id(&mut *tx, &s.plan_id).await? else {
        return Err(ApiError::conflict(
            "plan_withdrawn",
            "the plan chosen is no longer offered; sign up again",
        ));
    };
    let issuer = tenants::tenant_by_id(&mut *tx, &plan.issuer_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("issuer {} is gone", plan.issuer_id)))?;
    let draft = tenancy::draft(&issuer, TenantKind::Customer, &s.organisation, None, now);
    tenancy::record(state, &mut tx, &draft, Some(&plan), now).await?;
    let tenant = draft.tenant;
    let user = User {
        id: new_id(UserId::PREFIX),
        tenant_id: tenant.id.clone(),
        email: s.email.clone(),
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        business_address: s.business_address.clone(),
        status: UserStatus::Active,
        totp_enabled: false,
        language: s.language,
        created_at: db::time(now),
        pending_email: None,
        marketing_consent: false,
        restricted: false,
        time_zone: None,
    };
    users::insert_user(&mut tx, &user, Some(&s.password_hash), None, now)
        .await
        .map_err(|e| match e.is_unique_violation() {
            true => ApiError::conflict(
                "email_taken",
                "the address has an account by now; sign in with it",
            ),
            false => e.into(),
        })?;
    // Where this sign-up was asked from is now this person's (the code reached their
    // mailbox), and goes when they are erased. Another sign-up of the address may have been
    // asked by someone else: it is not theirs to see.
    audit::attribute_personal(&mut tx, &plan.issuer_id, "signup", &s.id, &user.id).await?;
    let binding = loop_api::RoleBinding {
        id: new_id(RoleBindingId::PREFIX),
        user_id: user.id.clone(),
        tenant_id: tenant.id.clone(),
        role: Role::Admin,
        created_at: db::time(now),
    };
    bindings::insert_binding(&mut tx, &binding, now).await?;
    let (t, u) = (tenant.id.as_str(), user.id.as_str());
    for e in [
        event(
            t,
            u,
            "tenant.signup",
            "tenant",
            t,
            serde_json::json!({
                "parent_id": issuer.tenant.id, "plan_id": plan.id, "signed_up_at": db::time(s.created_at),
            }),
        ),
        event(
            t,
            u,
            "user.create",
            "user",
            u,
            serde_json::json!({ "signup": true }),
        ),
        event(
            t,
            u,
            "role.grant",
            "role_binding",
            &binding.id,
            serde_json::json!({ "user_id": u, "role": Role::Admin }),
        ),
        event(
            t,
            u,
            "subscription.start",
            "subscription",
            t,
            serde_json::json!({ "plan_id": plan.id }),
        ),
    ] {
        audit::append(&mut tx, e, now).await?;
    }
    tx.commit().await.map_err(db::DbError::from)?;
    let trial_ends_at = now + i64::from(state.config.billing.trial_days) * 86_400_000;
    Ok(SignedUp {
        tenant_id: tenant.id,
        user_id: user.id,
        trial_ends_at: db::time(trial_ends_at),
    })
}
