//! Who reads a page, and what they post.
//!
//! - [`Viewer`]: a signed-in person, resolved by the same [`Caller`] as the API (the session
//!   cookie only); anyone else is sent to the sign-in page.
//! - [`Visitor`]: anyone, on the pages before a session (sign-in, sign-up): their language and
//!   the form cookie that gives their forms a token.
//! - [`Posted`]: a form's fields, taken only when the form carries its token.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::Language;

use super::catalogue::M;
use super::layout::{Frame, Link};
use crate::auth::{Caller, Principal, UserPrincipal, csrf, request};
use crate::branding::Brand;
use crate::domain::new_secret;
use crate::domain::{Permission, RoleRules as _};
use crate::error::ApiError;
use crate::state::AppState;
use crate::zone::Zone;

/// What a change just done says, as the page after it is asked for (`?done=`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct Done {
    #[serde(default)]
    pub done: Option<String>,
}

impl Done {
    /// The status line saying what was just done, when `done` is one of `said`'s names.
    pub fn note(&self, said: &[(&str, &str)]) -> Option<maud::Markup> {
        let done = self.done.as_deref()?;
        let (_, text) = said.iter().find(|(name, _)| *name == done)?;
        Some(maud::html! { p.status role="status" { (text) } })
    }
}

/// A form with nothing but its token.
#[derive(Debug, Default, serde::Deserialize)]
pub struct NoFields {}

/// A signed-in person reading a page.
pub struct Viewer {
    pub caller: Caller,
    pub lang: Language,
    /// The token of the forms this person's pages show.
    pub csrf: String,
    /// The page's path, for the menu to mark.
    pub path: String,
    /// The kind of the reader's own tenant: a partner's or the provider's menu has the
    /// tenants below it.
    home_kind: loop_api::TenantKind,
    /// The zone the reader's times are shown in: their own, else their tenant's.
    pub zone: Zone,
    /// Their tenant's zone (the account page offers it as the default).
    pub home_zone: Zone,
    /// The look of their partner's console, if it has one.
    pub brand: Option<Brand>,
}

impl Viewer {
    pub fn user(&self) -> &UserPrincipal {
        match &self.caller.principal {
            Principal::User(u) => u,
            Principal::Token(_) => unreachable!("a viewer is resolved from a session cookie"),
        }
    }

    /// The frame of this person's pages: their menu (what their roles open) and name.
    pub fn frame(&self) -> Frame<'_> {
        let u = self.user();
        let me = &u.user.user;
        let link = |href: String, label: M| Link {
            current: self.path == href,
            href,
            label: label.text(self.lang),
        };
        // The tenant where a role grants `perm`: the person's own when one of theirs does.
        let tenant_with = |perm: Permission| {
            let granted: Vec<&str> = u
                .bindings
                .iter()
                .filter(|b| b.binding.role.grants(perm))
                .map(|b| b.binding.tenant_id.as_str())
                .collect();
            granted
                .iter()
                .find(|t| **t == me.tenant_id)
                .or(granted.first())
                .map(|t| t.to_string())
        };
        let mut links = vec![link(format!("/t/{}", me.tenant_id), M::Dashboard)];
        if self.home_kind != loop_api::TenantKind::Customer {
            links.push(link(format!("/t/{}/tenants", me.tenant_id), M::Customers));
        }
        if let Some(t) = tenant_with(Permission::UserRead) {
            links.push(link(format!("/t/{t}/users"), M::Users));
        }
        if let Some(t) = tenant_with(Permission::AuditRead) {
            links.push(link(format!("/t/{t}/audit"), M::AuditLog));
        }
        links.push(link("/account/sessions".into(), M::Sessions));
        links.push(link("/account".into(), M::Account));
        Frame {
            lang: self.lang,
            menu: Some((links, me.first_name.as_str())),
            csrf: &self.csrf,
            brand: self.brand.as_ref(),
        }
    }

    pub fn t(&self, m: M) -> &'static str {
        m.text(self.lang)
    }

    /// A moment in the reader's zone.
    pub fn time(&self, at: chrono::DateTime<chrono::Utc>) -> maud::Markup {
        super::layout::time(self.zone, at)
    }

    /// The pages of tenant `t` this reader may open, as a row of links (the current one
    /// marked): how a partner steps into a customer and finds its people and log.
    pub fn tenant_menu(&self, t: &crate::db::tenants::TenantRow) -> maud::Markup {
        let id = &t.tenant.id;
        let mut links = vec![(format!("/t/{id}"), M::Dashboard)];
        if t.tenant.kind != loop_api::TenantKind::Customer {
            links.push((format!("/t/{id}/tenants"), M::Customers));
        }
        for (perm, path, m) in [
            (Permission::UserRead, "users", M::Users),
            (Permission::DeviceRead, "devices", M::Devices),
            (Permission::DeviceRead, "items", M::Items),
            (Permission::VaultRead, "vaults", M::Vaults),
            (Permission::VaultRead, "policies", M::Policies),
            (Permission::JobRead, "jobs", M::Jobs),
            (Permission::TokenRead, "tokens", M::Tokens),
            (Permission::NotifyRead, "notifications", M::Notifications),
            (Permission::AuditRead, "audit", M::AuditLog),
            (Permission::SessionRead, "sessions", M::Sessions),
            (Permission::BillingRead, "billing", M::Subscription),
        ] {
            if self.caller.can(perm, &t.path) {
                links.push((format!("/t/{id}/{path}"), m));
            }
        }
        if t.tenant.kind != loop_api::TenantKind::Customer
            && self.caller.can(Permission::TenantWrite, &t.path)
        {
            links.push((format!("/t/{id}/branding"), M::Branding));
        }
        maud::html! {
            nav.tenant aria-label=(t.tenant.name) {
                ul {
                    @for (href, m) in &links {
                        li { a href=(href) aria-current=[(self.path == *href).then_some("page")] { (self.t(*m)) } }
                    }
                }
            }
        }
    }
}

/// Where a browser without a session goes: the sign-in page, which sends it back to the page
/// it asked for (a form it posted goes to the start page: its post is not repeated).
fn to_sign_in(parts: &Parts) -> Response {
    let here = match parts.method {
        axum::http::Method::GET => parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        _ => "/",
    };
    let next: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
    Redirect::to(&format!("/signin?next={next}")).into_response()
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // Pages know only the cookie: a bearer credential is for the API.
        parts.headers.remove(header::AUTHORIZATION);
        let Some(secret) = request::session_cookie(parts) else {
            return Err(to_sign_in(parts));
        };
        let caller = match Caller::from_request_parts(parts, state).await {
            Ok(c) => c,
            Err(e) if e.status() == StatusCode::UNAUTHORIZED => return Err(to_sign_in(parts)),
            Err(e) => return Err(super::failed(super::language(&parts.headers), e)),
        };
        let Principal::User(u) = &caller.principal else {
            return Err(to_sign_in(parts));
        };
        let lang = u.user.user.language;
        let home =
            match crate::db::tenants::tenant_by_id(&state.db.pool, &u.user.user.tenant_id).await {
                Ok(home) => home,
                Err(e) => return Err(super::failed(lang, e.into())),
            };
        let (home_kind, home_zone, brand) = match home {
            Some(t) => match crate::branding::nearest(state, &t.path).await {
                Ok(b) => (t.tenant.kind, Zone::of(&t.tenant.time_zone), b),
                Err(e) => return Err(super::failed(lang, e)),
            },
            None => (loop_api::TenantKind::Customer, Zone::UTC, None),
        };
        let zone = u.user.user.time_zone.as_deref().map_or(home_zone, Zone::of);
        Ok(Viewer {
            caller,
            lang,
            csrf: csrf::form_token(&secret),
            path: parts.uri.path().to_string(),
            home_kind,
            zone,
            home_zone,
            brand,
        })
    }
}

/// Anyone reading a page before a session.
pub struct Visitor {
    pub lang: Language,
    pub csrf: String,
    /// The form cookie to set, when the browser had none yet.
    new_cookie: Option<HeaderValue>,
}

impl Visitor {
    pub fn frame(&self) -> Frame<'_> {
        Frame {
            lang: self.lang,
            menu: None,
            csrf: &self.csrf,
            brand: None,
        }
    }

    pub fn t(&self, m: M) -> &'static str {
        m.text(self.lang)
    }

    /// The form that sets a password with a code from a mail (`to`), with `error` above it.
    pub fn code_password_form(
        &self,
        to: CodeForm<'_>,
        status: StatusCode,
        error: Option<&str>,
    ) -> Response {
        use super::layout::{Input, alert, token};
        let content = maud::html! {
            @if let Some(e) = error { (alert(e)) }
            @if let Some(i) = to.intro { p { (self.t(i)) } }
            form method="post" action=(to.action) {
                (token(&self.csrf))
                input type="hidden" name=(to.field) value=(to.code);
                (Input { required: true, autofocus: true, autocomplete: Some("new-password"),
                         ..Input::new("password", self.t(M::NewPassword), "password") }.render())
                p { button type="submit" { (self.t(M::SetPassword)) } }
            }
        };
        let page = super::layout::document(status, &self.frame(), self.t(to.title), content);
        self.answer(page)
    }

    /// A page titled `title` saying `done` went well, with the way on to sign in.
    pub fn done_then_sign_in(&self, title: M, done: M) -> Response {
        let content = maud::html! {
            p.status role="status" { (self.t(done)) }
            p { a href="/signin" { (self.t(M::SignIn)) } }
        };
        let page = super::layout::document(StatusCode::OK, &self.frame(), self.t(title), content);
        self.answer(page)
    }

    /// `page` with the form cookie, when this visit made one.
    pub fn answer(&self, mut page: Response) -> Response {
        if let Some(c) = &self.new_cookie {
            page.headers_mut().append(header::SET_COOKIE, c.clone());
        }
        page
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let lang = super::language(&parts.headers);
        let (secret, new_cookie) = match request::cookie(&parts.headers, csrf::FORM_COOKIE) {
            Some(s) if !s.is_empty() => (s, None),
            _ => {
                let s = new_secret("lpf");
                let c = format!(
                    "{}={s}; Path=/; HttpOnly; Secure; SameSite=Strict",
                    csrf::FORM_COOKIE
                );
                let c = HeaderValue::from_str(&c).expect("cookie is ASCII");
                (s, Some(c))
            }
        };
        Ok(Visitor {
            lang,
            csrf: csrf::form_token(&secret),
            new_cookie,
        })
    }
}

/// Where a form that sets a password with a mailed code goes, and what it says.
pub struct CodeForm<'a> {
    pub action: &'a str,
    pub field: &'a str,
    pub code: &'a str,
    pub title: M,
    pub intro: Option<M>,
}

/// A form's fields, when the form came from this site's page in this browser: another site's
/// post, or one without the token of a cookie the browser holds, is refused (403).
pub struct Posted<T>(pub T);

impl<T, S> FromRequest<S> for Posted<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let lang = super::language(&parts.headers);
        if csrf::is_cross_site(&parts) {
            return Err(super::failed(lang, csrf::refused()));
        }
        let bytes =
            axum::body::Bytes::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|_| {
                    super::failed(lang, crate::error::ApiError::bad_request("unreadable form"))
                })?;
        let token = form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        if !csrf::form_token_ok(&parts, &token) {
            return Err(super::failed_with(
                lang,
                csrf::token_refused(),
                M::FormExpired,
            ));
        }
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(Posted(v)),
            Err(e) => Err(super::failed(
                lang,
                crate::error::ApiError::bad_request(e.body_text()),
            )),
        }
    }
}

/// The fields of a form that uploads a file (`multipart/form-data`), each at most
/// `UPLOAD_FIELD_BYTES`, with the same checks as [`Posted`]: from this site's page in this
/// browser, with its token.
pub struct Uploaded(pub Vec<(String, Vec<u8>)>);

/// A field of an uploading form at most (a partner's logo is the largest).
const UPLOAD_FIELD_BYTES: usize = crate::branding::MAX_LOGO_BYTES + 1;

impl<S> FromRequest<S> for Uploaded
where
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let (parts, body) = req.into_parts();
        let lang = super::language(&parts.headers);
        if csrf::is_cross_site(&parts) {
            return Err(super::failed(lang, csrf::refused()));
        }
        let unreadable = || super::failed(lang, ApiError::bad_request("unreadable form"));
        let mut form =
            axum::extract::Multipart::from_request(Request::from_parts(parts.clone(), body), state)
                .await
                .map_err(|_| unreadable())?;
        let mut fields = Vec::new();
        while let Some(mut field) = form.next_field().await.map_err(|_| unreadable())? {
            let name = field.name().unwrap_or_default().to_string();
            let mut value = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| unreadable())? {
                if value.len() + chunk.len() > UPLOAD_FIELD_BYTES {
                    // Kept one byte over the limit, so the check of the field says why.
                    value.extend_from_slice(&chunk[..UPLOAD_FIELD_BYTES - value.len()]);
                    break;
                }
                value.extend_from_slice(&chunk);
            }
            fields.push((name, value));
        }
        let token = fields
            .iter()
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default();
        if !csrf::form_token_ok(&parts, &token) {
            return Err(super::failed_with(
                lang,
                csrf::token_refused(),
                M::FormExpired,
            ));
        }
        Ok(Uploaded(fields))
    }
}

impl Uploaded {
    /// The field `name`'s value, when the form had it.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    /// The field `name` as text (empty when absent).
    pub fn text(&self, name: &str) -> String {
        String::from_utf8_lossy(self.field(name).unwrap_or_default()).into_owned()
    }
}
