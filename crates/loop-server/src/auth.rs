//! Authentication and the one authorization path.
//!
//! Every request that needs a principal takes a [`Caller`]: it resolves the session cookie
//! (or a `Bearer` session or token), checks lifetimes, and loads the user's role bindings.
//! Handlers then ask [`Caller::tenant`] (one tenant, one permission) or
//! [`Caller::visible_tenants`] (a listing). Both apply the same rule: a tenant outside the
//! caller's bindings does not exist for the caller (404); inside them but without the
//! permission is 403.

use std::net::SocketAddr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use loop_api::{ActorKind, Outcome, TenantStatus, Token, UserStatus};

use crate::db::bindings::{self, BindingRow};
use crate::db::sessions::{self, SessionRow};
use crate::db::tenants::{self, TenantRow};
use crate::db::tokens;
use crate::db::users::{self, UserRow};
use crate::db::{self, audit::NewEvent, audit::Personal};
use crate::domain::{Permission, Role, RoleRules as _, TenantPath, TenantScope, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Argon2 runs at most this many at once (one per core): each takes 19 MiB and a core for
/// tens of milliseconds, and a flood of sign-ins must queue, not exhaust memory.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

async fn argon2_permit() -> ApiResult<tokio::sync::SemaphorePermit<'static>> {
    argon2_permits()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("argon2 permits: {e}")))
}

/// Hashes a password with Argon2id (PHC string). Runs on a blocking thread.
pub async fn hash_password(password: String) -> ApiResult<String> {
    let _permit = argon2_permit().await?;
    let r = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await?;
    r.map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a stored hash; a missing hash is checked against a dummy so
/// that unknown accounts take as long as known ones.
pub async fn verify_password(password: String, hash: Option<String>) -> ApiResult<bool> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let _permit = argon2_permit().await?;
    let ok = tokio::task::spawn_blocking(move || {
        let dummy = DUMMY.get_or_init(|| {
            Argon2::default()
                .hash_password(b"loop dummy password")
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let known = hash.is_some();
        let h = hash.unwrap_or_else(|| dummy.clone());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), h.as_str())
            .is_ok();
        ok && known
    })
    .await?;
    Ok(ok)
}

/// Where a request comes from.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> ApiResult<Self> {
        Ok(client_info(parts))
    }
}

fn client_info(parts: &Parts) -> ClientInfo {
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(512).collect());
    ClientInfo { ip, user_agent }
}

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct UserPrincipal {
    pub user: UserRow,
    pub session: SessionRow,
    pub bindings: Vec<BindingRow>,
}

#[derive(Clone, Debug)]
pub enum Principal {
    User(Box<UserPrincipal>),
    Token(Box<Token>),
}

/// The resolved caller of a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub principal: Principal,
    pub client: ClientInfo,
}

fn bearer(parts: &Parts) -> Option<String> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim().to_string())
}

/// True when a browser says the request comes from another origin. Browsers send
/// `Sec-Fetch-Site` (and `Origin` on unsafe requests); clients that are not browsers send
/// neither and authenticate with a bearer token anyway. This, with SameSite=Lax cookies, is
/// the defence against cross-site request forgery.
fn is_cross_site(parts: &Parts) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    // HTTP/1.1 names the server in Host; HTTP/2 in the :authority of the URI.
    let host = header("host").or_else(|| parts.uri.authority().map(|a| a.as_str()));
    match (header("origin"), host) {
        (Some(origin), Some(host)) => origin != format!("https://{host}"),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn session_cookie(parts: &Parts) -> Option<String> {
    for v in parts.headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for pair in s.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == loop_api::SESSION_COOKIE
            {
                return Some(v.to_string());
            }
        }
    }
    None
}

pub fn tenant_erased() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "tenant_erased",
        "this tenant was erased: its keys are destroyed and its backups cannot be read",
    )
}

/// The answer to a revoked or expired token: its holder learns that the tenant was erased
/// (so a restore says why it fails), and nothing else.
async fn ended_token(state: &AppState, token: &Token) -> ApiError {
    match tenants::tenant_by_id(&state.db.pool, &token.tenant_id).await {
        Ok(Some(t)) if t.tenant.status == TenantStatus::Erased => tenant_erased(),
        _ => ApiError::unauthenticated(),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let client = client_info(parts);
        let from_cookie;
        let secret = match bearer(parts) {
            Some(b) => {
                from_cookie = false;
                b
            }
            None => {
                from_cookie = true;
                session_cookie(parts).ok_or_else(ApiError::unauthenticated)?
            }
        };
        if from_cookie && !parts.method.is_safe() && is_cross_site(parts) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "cross_site_request",
                "a change with the session cookie must come from this site's own pages",
            ));
        }
        let now = state.now();
        let hash = secret_hash(&secret);
        // Credential types are never interchangeable: a cookie holds only a session ID, and
        // a token works only as a bearer credential.
        if from_cookie && secret.starts_with("lpt_") {
            return Err(ApiError::unauthenticated());
        }
        if secret.starts_with("lpt_") {
            let token = tokens::token_by_hash(&state.db.pool, &hash)
                .await?
                .ok_or_else(ApiError::unauthenticated)?;
            let expired = token
                .expires_at
                .is_some_and(|e| e.timestamp_millis() <= now);
            if token.revoked_at.is_some() || expired {
                return Err(ended_token(state, &token).await);
            }
            crate::access_log::note_tenant(&token.tenant_id);
            return Ok(Caller {
                principal: Principal::Token(Box::new(token)),
                client,
            });
        }
        let Some(session) = sessions::session_by_hash(&state.db.pool, &hash).await? else {
            return Err(ApiError::unauthenticated());
        };
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
                axum::http::StatusCode::UNAUTHORIZED,
                "session_expired",
                "the session has ended; sign in again",
            ));
        }
        let user = users::user_by_id(&state.db.pool, &s.user_id)
            .await?
            .filter(|u| u.user.status == UserStatus::Active)
            .ok_or_else(ApiError::unauthenticated)?;
        // Writing last-seen on every request would make every read a write; a resolution of
        // a few seconds is plenty for idle timeouts measured in minutes.
        if now - s.last_seen_at.timestamp_millis() > 5_000 {
            sessions::touch_session(&state.db.pool, &s.id, now).await?;
        }
        let bindings = bindings::bindings_of(&state.db.pool, &user.user.id).await?;
        crate::access_log::note_tenant(&user.user.tenant_id);
        Ok(Caller {
            principal: Principal::User(Box::new(UserPrincipal {
                user,
                session,
                bindings,
            })),
            client,
        })
    }
}

impl Caller {
    /// The signed-in person; tokens are not accepted on the management API.
    pub fn user(&self) -> ApiResult<&UserPrincipal> {
        match &self.principal {
            Principal::User(u) => Ok(u),
            Principal::Token(_) => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "session_required",
                "this endpoint needs a signed-in user, not a token",
            )),
        }
    }

    pub fn token(&self) -> ApiResult<&Token> {
        match &self.principal {
            Principal::Token(t) => Ok(t),
            Principal::User(_) => Err(ApiError::new(
                axum::http::StatusCode::UNAUTHORIZED,
                "token_required",
                "the vault protocol needs a device or API token",
            )),
        }
    }

    /// (actor kind, actor ID) for audit events.
    pub fn actor(&self) -> (ActorKind, String) {
        match &self.principal {
            Principal::User(u) => (ActorKind::User, u.user.user.id.clone()),
            Principal::Token(t) => (ActorKind::Token, t.id.clone()),
        }
    }

    /// An audit event by this caller.
    pub fn event(
        &self,
        tenant_id: &str,
        action: &'static str,
        object_kind: &'static str,
        object_id: Option<&str>,
        details: serde_json::Value,
    ) -> NewEvent {
        let (actor_kind, actor_id) = self.actor();
        NewEvent {
            tenant_id: tenant_id.to_string(),
            actor_kind,
            actor_id: Some(actor_id),
            action,
            object_kind,
            object_id: object_id.map(String::from),
            outcome: Outcome::Success,
            personal: self.personal(),
            details,
        }
    }

    /// This caller's personal data for audit events: address and browser, and whose they are.
    pub fn personal(&self) -> Personal {
        let (actor_kind, actor_id) = self.actor();
        // A token's address belongs to a machine, not a person.
        let person = (actor_kind == ActorKind::User).then_some(actor_id);
        Personal {
            user_id: person,
            ip: self.client.ip.clone(),
            user_agent: self.client.user_agent.clone(),
        }
    }

    /// The roles the caller holds on the tenant at `path`: those bound on it or above it.
    fn roles_on<'a>(&'a self, path: &'a TenantPath) -> impl Iterator<Item = Role> + 'a {
        let bindings = match &self.principal {
            Principal::User(u) => u.bindings.as_slice(),
            Principal::Token(_) => &[],
        };
        bindings
            .iter()
            .filter(move |b| b.tenant_path.contains(path))
            .map(|b| b.binding.role)
    }

    /// True when the caller holds `perm` on the provider tenant, so on every tenant: such a
    /// caller can list every user anyway, so telling it that an address has an account
    /// somewhere reveals nothing.
    pub fn holds_on_whole_service(&self, perm: Permission) -> bool {
        let Principal::User(u) = &self.principal else {
            return false;
        };
        u.bindings
            .iter()
            .any(|b| b.tenant_path.is_root() && b.binding.role.grants(perm))
    }

    /// True when `perm` is granted on the tenant at `path`.
    pub fn can(&self, perm: Permission, path: &TenantPath) -> bool {
        self.roles_on(path).any(|r| r.grants(perm))
    }

    /// The tenant `id`, when the caller holds `perm` on it. Outside every binding: 404.
    pub async fn tenant(
        &self,
        state: &AppState,
        perm: Permission,
        id: &str,
    ) -> ApiResult<TenantRow> {
        self.user()?;
        let Some(t) = tenants::tenant_by_id(&state.db.pool, id).await? else {
            return Err(ApiError::not_found());
        };
        if self.roles_on(&t.path).next().is_none() {
            return Err(ApiError::not_found());
        }
        if !self.can(perm, &t.path) {
            return Err(ApiError::forbidden());
        }
        if t.tenant.status == TenantStatus::Erased
            && !perm.only_reads()
            && perm != Permission::TenantErase
        {
            return Err(tenant_erased());
        }
        Ok(t)
    }

    /// Every tenant on which the caller holds `perm`.
    pub async fn visible_tenants(
        &self,
        state: &AppState,
        perm: Permission,
    ) -> ApiResult<Vec<TenantRow>> {
        let u = self.user()?;
        let paths: Vec<TenantPath> = u
            .bindings
            .iter()
            .filter(|b| b.binding.role.grants(perm))
            .map(|b| b.tenant_path.clone())
            .collect();
        Ok(tenants::tenants_under(&state.db.pool, &paths).await?)
    }

    /// What a listing shows: the tenants on which the caller holds `perm`, or only `only` when
    /// given (checked as [`Caller::tenant`] does).
    pub async fn scope(
        &self,
        state: &AppState,
        perm: Permission,
        only: Option<&str>,
    ) -> ApiResult<TenantScope> {
        match only {
            Some(id) => Ok(TenantScope::One(
                self.tenant(state, perm, id).await?.tenant.id,
            )),
            None => Ok(TenantScope::Subtrees(
                self.user()?
                    .bindings
                    .iter()
                    .filter(|b| b.binding.role.grants(perm))
                    .map(|b| b.tenant_path.clone())
                    .collect(),
            )),
        }
    }

    /// IDs of [`Caller::visible_tenants`], or only `only` when given (checked the same way).
    pub async fn tenant_ids(
        &self,
        state: &AppState,
        perm: Permission,
        only: Option<&str>,
    ) -> ApiResult<Vec<String>> {
        match only {
            Some(id) => Ok(vec![self.tenant(state, perm, id).await?.tenant.id]),
            None => Ok(self
                .visible_tenants(state, perm)
                .await?
                .into_iter()
                .map(|t| t.tenant.id)
                .collect()),
        }
    }
}
