//! Authentication and the one authorization path.
//!
//! Every request that needs a principal takes a [`Caller`]: it resolves the session cookie
//! (or a `Bearer` session or token), checks lifetimes, and loads the user's role bindings.
//! Handlers then ask [`Caller::tenant`] (one tenant, one permission) or
//! [`Caller::visible_tenants`] (a listing). Both apply the same rule: a tenant outside the
//! caller's bindings does not exist for the caller (404); inside them but without the
//! permission is 403.
//!
//! - [`password`]: Argon2id hashing;
//! - [`session`]: a session's life, from sign-in to its end;
//! - [`signin`]: signing in, in stages the API and the console share;
//! - [`totp`]: authenticator codes, each accepted once;
//! - [`csrf`]: the cross-site check on changes made with the cookie;
//! - [`request`]: the sender's address, user agent and credential;
//! - [`vault_access`]: what a token may do on the vault protocol.

pub mod csrf;
pub mod password;
pub mod rank;
pub mod request;
pub mod session;
pub mod signin;
pub mod totp;
pub mod vault_access;

pub use password::{hash_password, verify_password};
pub use request::ClientInfo;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use loop_api::{ActorKind, Outcome, TenantId, TenantStatus, Token, UserStatus};

use crate::db::bindings::{self, BindingRow};
use crate::db::sessions::{self, SessionRow};
use crate::db::tenants::{self, TenantRow};
use crate::db::tokens;
use crate::db::users::{self, UserRow};
use crate::db::{audit::NewEvent, audit::Personal};
use crate::domain::{Permission, Role, RoleRules as _, TenantPath, TenantScope, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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

pub fn tenant_erased() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::GONE,
        "tenant_erased",
        "this tenant was erased: its keys are destroyed and its backups cannot be read",
    )
}

/// Holds the tenant's row for the rest of `tx` ([`tenants::hold_unerased`]): `410
/// tenant_erased` when it was erased meanwhile.
pub async fn hold_unerased(tx: &mut crate::db::Tx, tenant_id: &str) -> ApiResult<()> {
    if tenants::hold_unerased(tx, tenant_id).await? {
        Ok(())
    } else {
        Err(tenant_erased())
    }
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
        let client = request::client_info(parts);
        let from_cookie;
        let secret = match request::bearer(parts) {
            Some(b) => {
                from_cookie = false;
                b
            }
            None => {
                from_cookie = true;
                request::session_cookie(parts).ok_or_else(ApiError::unauthenticated)?
            }
        };
        if from_cookie && !parts.method.is_safe() && csrf::is_cross_site(parts) {
            return Err(csrf::refused());
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
        session::check_alive(state, &session, &client, now).await?;
        let s = &session.session;
        let user = users::user_by_id(&state.db.pool, &s.user_id)
            .await?
            .filter(|u| u.user.status == UserStatus::Active)
            .ok_or_else(ApiError::unauthenticated)?;
        session::seen(state, &session, now).await?;
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
    /// This caller with the roles it holds now: for a request that goes on long after it
    /// was authorised (a live stream), whose roles may have been taken away meanwhile.
    pub async fn with_current_roles(&self, state: &AppState) -> ApiResult<Caller> {
        let mut now = self.clone();
        if let Principal::User(u) = &mut now.principal {
            u.bindings = bindings::bindings_of(&state.db.pool, &u.user.user.id).await?;
        }
        Ok(now)
    }

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

    /// The provider tenant, when the caller holds `perm` there: for the acts that concern the
    /// whole service (publishing the privacy policy, announcements). Anyone else gets 403:
    /// the provider is no secret.
    pub async fn provider(&self, state: &AppState, perm: Permission) -> ApiResult<TenantRow> {
        self.user()?;
        let t = tenants::provider_tenant(&state.db.pool)
            .await?
            .ok_or_else(ApiError::not_found)?;
        if !self.can(perm, &t.path) {
            return Err(ApiError::forbidden());
        }
        self.tenant(state, perm, &t.tenant.id).await
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
        only: Option<&TenantId>,
    ) -> ApiResult<TenantScope> {
        match only {
            Some(id) => Ok(TenantScope::One(
                self.tenant(state, perm, id.as_str()).await?.tenant.id,
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
        only: Option<&TenantId>,
    ) -> ApiResult<Vec<String>> {
        match only {
            Some(id) => Ok(vec![self.tenant(state, perm, id.as_str()).await?.tenant.id]),
            None => Ok(self
                .visible_tenants(state, perm)
                .await?
                .into_iter()
                .map(|t| t.tenant.id)
                .collect()),
        }
    }
}
