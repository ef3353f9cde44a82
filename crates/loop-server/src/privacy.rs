//! The privacy rights a person exercises and the provider's transparency: the versioned
//! privacy policy and its acknowledgement, consent to marketing (off by default, every
//! change recorded with the policy in force, withdrawn by one click from any marketing
//! message, RFC 8058), restriction of processing, and the provider's announcements, the
//! one kind of marketing the service sends, to consenting and unrestricted users only.

use loop_api::{ActorKind, Announce, Announcement, Outcome, PrivacyPolicy, PublishPolicy};

use crate::auth::{Caller, ClientInfo};
use crate::db::audit::{NewEvent, Personal};
use crate::db::privacy::{self, Via};
use crate::db::{self, users};
use crate::domain::{Permission, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::records::text;
use crate::state::AppState;

/// Longest policy version name, URL, summary; announcement subject and text.
const MAX_VERSION: usize = 64;
const MAX_URL: usize = 2048;
const MAX_SUMMARY: usize = 4000;
const MAX_SUBJECT: usize = 200;
const MAX_TEXT: usize = 20_000;

/// Publishes a version of the privacy policy (provider admins).
pub async fn publish(
    state: &AppState,
    caller: &Caller,
    req: PublishPolicy,
) -> ApiResult<PrivacyPolicy> {
    let provider = caller.provider(state, Permission::TenantWrite).await?;
    let version = text("version", &req.version, 1, MAX_VERSION)?;
    if version.contains('\n') {
        return Err(ApiError::bad_request("version is one line"));
    }
    let url = text("url", &req.url, 1, MAX_URL)?;
    if !(url.starts_with("https://") || url.starts_with("http://"))
        || url.contains(char::is_whitespace)
    {
        return Err(ApiError::bad_request("url must be an http(s) URL"));
    }
    let summary = text("summary", &req.summary, 0, MAX_SUMMARY)?;
    let now = state.now();
    let p = PrivacyPolicy {
        version,
        url,
        summary,
        published_at: db::time(now),
    };
    let mut tx = state.db.begin().await?;
    privacy::insert_policy(&mut tx, &p).await.map_err(|e| {
        if e.is_unique_violation() {
            ApiError::conflict("policy_exists", "this version was published already")
        } else {
            e.into()
        }
    })?;
    let event = caller.event(
        &provider.tenant.id,
        "privacy.policy_publish",
        "privacy_policy",
        Some(&p.version),
        serde_json::json!({ "url": p.url }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    Ok(p)
}

/// Records that the caller read the policy in force (`version` must be it).
pub async fn acknowledge(state: &AppState, caller: &Caller, version: &str) -> ApiResult<()> {
    let u = caller.user()?;
    let current = privacy::current_policy(&state.db.pool)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no_policy",
                "no privacy policy is published",
            )
        })?;
    if current.version != version {
        return Err(ApiError::conflict(
            "policy_not_current",
            format!("the policy in force is version {}", current.version),
        ));
    }
    let now = state.now();
    let user = &u.user.user;
    let mut tx = state.db.begin().await?;
    privacy::acknowledge(&mut tx, &user.id, version, now).await?;
    let event = caller.event(
        &user.tenant_id,
        "user.policy_acknowledge",
        "privacy_policy",
        Some(version),
        serde_json::json!({}),
    );
    Ok(crate::db::audit::commit_audited(tx, event, now).await?)
}

/// Gives or withdraws the caller's consent to marketing.
pub async fn set_consent(
    state: &AppState,
    caller: &Caller,
    given: bool,
) -> ApiResult<loop_api::MarketingConsent> {
    let u = caller.user()?;
    let user = &u.user.user;
    let now = state.now();
    let version = privacy::current_policy(&state.db.pool)
        .await?
        .map(|p| p.version);
    let mut tx = state.db.begin().await?;
    if privacy::set_marketing_consent(&mut tx, &user.id, given, version.as_deref(), Via::User, now)
        .await?
    {
        let event = caller.event(
            &user.tenant_id,
            "user.marketing_consent",
            "user",
            Some(&user.id),
            serde_json::json!({ "given": given, "policy_version": version }),
        );
        crate::db::audit::commit_audited(tx, event, now).await?;
    }
    Ok(privacy::marketing_consent(&state.db.pool, &user.id, given).await?)
}

/// True when `token` is an unsubscribe link the service mailed.
pub async fn is_unsubscribe_link(state: &AppState, token: &str) -> ApiResult<bool> {
    Ok(token.len() <= 128
        && privacy::unsubscribe_link_user(&state.db.pool, &secret_hash(token))
            .await?
            .is_some())
}

/// Withdraws consent to marketing for the person an unsubscribe link was mailed to. The
/// link is the credential: no session, no cookie (RFC 8058). A link used again answers the
/// same; an unknown one is a 404.
pub async fn unsubscribe(state: &AppState, client: &ClientInfo, token: &str) -> ApiResult<()> {
    if token.len() > 128 {
        return Err(ApiError::not_found());
    }
    let pool = &state.db.pool;
    let user_id = privacy::unsubscribe_link_user(pool, &secret_hash(token))
        .await?
        .ok_or_else(ApiError::not_found)?;
    let row = users::user_by_id(pool, &user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = state.now();
    let version = privacy::current_policy(pool).await?.map(|p| p.version);
    let mut tx = state.db.begin().await?;
    if privacy::set_marketing_consent(
        &mut tx,
        &user_id,
        false,
        version.as_deref(),
        Via::Unsubscribe,
        now,
    )
    .await?
    {
        let event = NewEvent {
            tenant_id: row.user.tenant_id.clone(),
            actor_kind: ActorKind::Anonymous,
            actor_id: None,
            action: "user.unsubscribe",
            object_kind: "user",
            object_id: Some(user_id.clone()),
            outcome: Outcome::Success,
            personal: Personal {
                user_id: Some(user_id.clone()),
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            },
            details: serde_json::json!({ "policy_version": version }),
        };
        crate::db::audit::commit_audited(tx, event, now).await?;
    }
    Ok(())
}

/// Restricts processing of a person's data, or lifts the restriction (admins of the
/// person's tenant within whose rank they are, or the person).
pub async fn restrict(
    state: &AppState,
    caller: &Caller,
    user_id: &str,
    restricted: bool,
) -> ApiResult<loop_api::User> {
    caller.user()?;
    let row = users::user_by_id(&state.db.pool, user_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if caller.actor().1 != row.user.id {
        caller
            .tenant(state, Permission::UserWrite, &row.user.tenant_id)
            .await?;
        crate::auth::rank::within_rank(state, caller, user_id).await?;
    }
    let now = state.now();
    let mut tx = state.db.begin().await?;
    if privacy::set_restricted(&mut tx, user_id, restricted, now).await? {
        let event = caller.event(
            &row.user.tenant_id,
            "user.restrict",
            "user",
            Some(user_id),
            serde_json::json!({ "restricted": restricted }),
        );
        crate::db::audit::commit_audited(tx, event, now).await?;
    }
    let mut u = row.user;
    u.restricted = restricted;
    Ok(u)
}

/// Mails product news to every user who consented to marketing and whose processing is
/// not restricted (provider admins). Each message carries its own unsubscribe link, so the
/// service must know the address people reach it at (`public_url`).
pub async fn announce(state: &AppState, caller: &Caller, req: Announce) -> ApiResult<Announcement> {
    let provider = caller.provider(state, Permission::TenantWrite).await?;
    let subject = text("subject", &req.subject, 1, MAX_SUBJECT)?;
    if subject.contains('\n') {
        return Err(ApiError::bad_request("subject is one line"));
    }
    let body = text("text", &req.text, 1, MAX_TEXT)?;
    if state.config.public_url.is_none() {
        return Err(ApiError::conflict(
            "public_url_missing",
            "announcements carry a one-click unsubscribe link: set public_url first",
        ));
    }
    let now = state.now();
    let id = crate::domain::new_id("an");
    let (_, sender) = caller.actor();
    let mut tx = state.db.begin().await?;
    let recipients =
        privacy::queue_announcement(&mut tx, &id, &subject, &body, &sender, now).await?;
    let event = caller.event(
        &provider.tenant.id,
        "announcement.send",
        "announcement",
        Some(&id),
        serde_json::json!({ "recipients": recipients }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    state.mail_wake.notify_one();
    Ok(Announcement {
        id,
        subject,
        recipients,
        created_at: db::time(now),
    })
}
