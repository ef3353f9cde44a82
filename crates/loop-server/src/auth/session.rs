//! A session's life in one place: [`start`] at sign-in (its lifetimes, its secret, what it
//! records about the device), [`check_alive`] on every request (idle and absolute timeouts,
//! after which it ends and the end is audited), [`seen`] to keep it from going idle, and the
//! [`cookie`] that carries it. Ending one on request (sign-out, revocation, a password
//! change) is `db::sessions::end_session` from the handler that audits the reason.

use axum::http::{HeaderValue, StatusCode};
use loop_api::{ActorKind, Outcome, SessionId, User};

use super::ClientInfo;
use crate::db::audit::{NewEvent, Personal};
use crate::db::sessions::{self, NewSession, SessionRow};
use crate::db::{self, Tx};
use crate::domain::{new_id, new_secret, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A session just created; `secret` is shown to the client once.
pub struct Started {
    pub id: String,
    pub secret: String,
    /// For a remembered session, how long the browser keeps the cookie; otherwise it lasts
    /// as long as the browser runs.
    pub cookie_max_age: Option<i64>,
}

/// Creates the session of `user`, signing in from `client`, inside `tx`.
pub async fn start(
    tx: &mut Tx,
    state: &AppState,
    user: &User,
    client: &ClientInfo,
    device_label: Option<&str>,
    remember: bool,
    now: i64,
) -> ApiResult<Started> {
    let cfg = &state.config.session;
    let (idle_secs, lifetime_ms) = if remember {
        let d = cfg.remember_days as i64 * 86_400;
        (d, d * 1000)
    } else {
        (
            cfg.idle_minutes as i64 * 60,
            cfg.absolute_hours as i64 * 3_600_000,
        )
    };
    let secret = new_secret("lps");
    let id = new_id(SessionId::PREFIX);
    let (browser, os) = client
        .user_agent
        .as_deref()
        .map(parse_user_agent)
        .unwrap_or_default();
    sessions::insert_session(
        tx,
        &NewSession {
            id: &id,
            token_hash: &secret_hash(&secret),
            user_id: &user.id,
            tenant_id: &user.tenant_id,
            expires_at: now + lifetime_ms,
            idle_secs,
            ip: client.ip.as_deref(),
            user_agent: client.user_agent.as_deref(),
            browser: browser.as_deref(),
            os: os.as_deref(),
            device_label,
            remember,
        },
        now,
    )
    .await?;
    if sessions::known_device(tx, &id).await? == Some(false) {
        let what = [browser.as_deref(), os.as_deref(), device_label]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        crate::db::notify::raise(
            tx,
            crate::db::notify::NewEvent {
                tenant_id: &user.tenant_id,
                kind: loop_api::EventKind::SignInNewDevice,
                subject: Some(("user", &user.id)),
                message: format!("a sign-in from a device not used before: {what}"),
                details: serde_json::json!({
                    "user_id": user.id, "session_id": id, "browser": browser, "os": os,
                    "device_label": device_label,
                }),
                dedupe_key: None,
            },
            None,
            now,
        )
        .await?;
    }
    Ok(Started {
        id,
        secret,
        cookie_max_age: remember.then_some(lifetime_ms / 1000),
    })
}

/// Refuses a session that has ended, or ends (and audits) one that has just timed out.
pub async fn check_alive(
    state: &AppState,
    session: &SessionRow,
    client: &ClientInfo,
    now: i64,
) -> ApiResult<()> {
    let s = &session.session;
    if s.ended_at.is_some() {
        return Err(ApiError::unauthenticated());
    }
    let idle = now - s.last_seen_at.timestamp_millis() >= session.idle_ms;
    let absolute = now >= s.expires_at.timestamp_millis();
    if idle || absolute {
        let reason = if absolute {
            "absolute_timeout"
        } else {
            "idle_timeout"
        };
        let mut tx = state.db.begin().await?;
        crate::person::hold_first(&mut tx, &s.user_id).await?;
        if sessions::end_session(&mut tx, &s.id, reason, now).await? {
            db::audit::append(
                &mut tx,
                NewEvent {
                    tenant_id: session.tenant_id.clone(),
                    actor_kind: ActorKind::System,
                    actor_id: None,
                    action: "session.expire",
                    object_kind: "session",
                    object_id: Some(s.id.clone()),
                    outcome: Outcome::Success,
                    personal: Personal {
                        user_id: Some(s.user_id.clone()),
                        ip: client.ip.clone(),
                        user_agent: client.user_agent.clone(),
                    },
                    details: serde_json::json!({"reason": reason, "user_id": s.user_id}),
                },
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db::DbError::from)?;
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "session_expired",
            "the session has ended; sign in again",
        ));
    }
    Ok(())
}

/// Notes that the session was used at `now`. Writing on every request would make every read
/// a write; a resolution of a few seconds is plenty for idle timeouts measured in minutes.
pub async fn seen(state: &AppState, session: &SessionRow, now: i64) -> ApiResult<()> {
    let s = &session.session;
    if now - s.last_seen_at.timestamp_millis() > 5_000 {
        sessions::touch_session(&state.db.pool, &s.id, now).await?;
    }
    Ok(())
}

/// The `Set-Cookie` value carrying a session; `Some(0)` clears it. The cookie holds only the
/// session's random secret, is sent only over HTTPS and never to scripts.
pub fn cookie(value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!(
        "{}={value}; Path=/; HttpOnly; Secure; SameSite=Lax",
        loop_api::SESSION_COOKIE
    );
    if let Some(secs) = max_age {
        c.push_str(&format!("; Max-Age={secs}"));
    }
    HeaderValue::from_str(&c).expect("cookie is ASCII")
}

/// Ends the session `caller` signed in with, at its own request (sign-out), audited.
pub async fn end_by_request(state: &AppState, caller: &super::Caller) -> ApiResult<()> {
    let u = caller.user()?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    crate::person::hold_first(&mut tx, &u.user.user.id).await?;
    sessions::end_session(&mut tx, &u.session.session.id, "signout", now).await?;
    let event = caller.event(
        &u.user.user.tenant_id,
        "auth.signout",
        "session",
        Some(&u.session.session.id),
        serde_json::json!({}),
    );
    db::audit::commit_audited(tx, event, now).await?;
    Ok(())
}

/// Browser and operating system, as the session list shows them.
fn parse_user_agent(ua: &str) -> (Option<String>, Option<String>) {
    match woothee::parser::Parser::new().parse(ua) {
        Some(r) => {
            let known = |s: &str| (s != woothee::woothee::VALUE_UNKNOWN).then(|| s.to_string());
            let browser = known(r.name).map(|n| match known(r.version) {
                Some(v) => format!("{n} {v}"),
                None => n,
            });
            (browser, known(r.os))
        }
        None => (None, None),
    }
}
