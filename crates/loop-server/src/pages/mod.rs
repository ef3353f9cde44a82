//! The console: pages for browsers, served by the server itself, rendered on the server
//! (maud), working without scripts. Every page carries a Content-Security-Policy that allows
//! only the server's own files, is never framed, never cached, and sends no referrer (an
//! address may carry a one-time code). Forms post only to this site and carry a token of the
//! browser's cookie ([`reader::Posted`]); a signed-in page resolves its reader with the same
//! session cookie and the same authorization path as the API, so another tenant's object is
//! a 404 here as there.
//!
//! - [`catalogue`]: every word, in English and Dutch;
//! - [`layout`]: the document, its headers and menu, form pieces;
//! - [`reader`]: who reads ([`reader::Viewer`], [`reader::Visitor`]) and what they post;
//! - [`signin`], [`reset`] (a forgotten password), [`signup`], [`dashboard`] (with its [`chart`]s), [`account`]
//!   (with its [`authenticator`] set-up), [`audit`],
//!   [`people`] (the tenant tree, users, invitations), [`devices`], [`vaults`],
//!   [`snapshots`] (the snapshot browser), [`jobs`] (followed live), [`tokens`], [`items`] (protected items and their
//!   schedules), [`notify`] (notification targets and their deliveries), [`policies`] (retention), [`branding`] (a partner's look), [`billing`] (subscription and invoices): the pages.

mod account;
mod assets;
mod audit;
mod authenticator;
mod billing;
mod branding;
mod catalogue;
mod chart;
mod dashboard;
mod devices;
mod items;
mod jobs;
mod layout;
mod names;
mod notify;
mod people;
mod policies;
mod reader;
mod reset;
mod signin;
mod signup;
mod snapshots;
mod tokens;
mod vaults;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use loop_api::Language;

use crate::state::AppState;
use catalogue::M;
pub use layout::{secured, standalone};

/// Every page a signed-in reader opens or posts to, as (method, path): the isolation test
/// aims each at another tenant's objects (`{tenant}`, `{session}`, `{vault}`, `{snapshot}`,
/// `{job}`, `{item}`, `{user}`, `{binding}`, `{token}`, `{target}`, `{policy}`).
/// A new page is added here.
pub const SIGNED_IN_PAGES: &[(&str, &str)] = &[
    ("get", "/"),
    ("get", "/t/{tenant}"),
    ("get", "/t/{tenant}/sessions"),
    ("get", "/t/{tenant}/audit"),
    ("get", "/t/{tenant}/audit?verify=1"),
    ("get", "/t/{tenant}/tenants"),
    ("post", "/t/{tenant}/tenants"),
    ("get", "/t/{tenant}/users"),
    ("get", "/t/{tenant}/devices"),
    ("post", "/t/{tenant}/devices"),
    ("post", "/t/{tenant}/users"),
    ("post", "/users/{user}/roles"),
    ("post", "/users/{user}/roles/{binding}/revoke"),
    ("get", "/t/{tenant}/vaults"),
    ("get", "/t/{tenant}/billing"),
    ("get", "/t/{tenant}/branding"),
    ("post", "/t/{tenant}/branding"),
    ("post", "/t/{tenant}/branding/clear"),
    ("get", "/t/{tenant}/tokens"),
    ("post", "/t/{tenant}/tokens"),
    ("post", "/tokens/{token}/revoke"),
    ("get", "/t/{tenant}/notifications"),
    ("post", "/t/{tenant}/notifications"),
    ("post", "/notifications/{target}/test"),
    ("post", "/notifications/{target}/enabled"),
    ("post", "/notifications/{target}/delete"),
    ("get", "/t/{tenant}/jobs"),
    ("get", "/jobs/{job}"),
    ("get", "/jobs/{job}/events"),
    ("post", "/jobs/{job}/cancel"),
    ("post", "/items/{item}/run"),
    ("get", "/t/{tenant}/items"),
    ("post", "/t/{tenant}/items"),
    ("get", "/items/{item}"),
    ("post", "/items/{item}"),
    ("post", "/items/{item}/delete"),
    ("get", "/t/{tenant}/policies"),
    ("post", "/t/{tenant}/policies"),
    ("get", "/policies/{policy}"),
    ("post", "/policies/{policy}"),
    ("post", "/policies/{policy}/delete"),
    ("get", "/vaults/{vault}"),
    ("get", "/vaults/{vault}/snapshots/{snapshot}"),
    ("get", "/vaults/{vault}/snapshots/{snapshot}?q=e"),
    ("post", "/vaults/{vault}/snapshots/{snapshot}/restore"),
    (
        "get",
        "/vaults/{vault}/snapshots/{snapshot}/download?as=zip",
    ),
    (
        "get",
        "/vaults/{vault}/snapshots/{snapshot}/download?as=file&path=/f0",
    ),
    ("get", "/account"),
    ("get", "/account/sessions"),
    ("get", "/account/authenticator"),
    ("post", "/account/authenticator"),
    ("post", "/account/authenticator/confirm"),
    ("post", "/account/profile"),
    ("post", "/account/password"),
    ("post", "/account/consent"),
    ("post", "/account/policy"),
    ("post", "/account/export"),
    ("post", "/sessions/{session}/revoke"),
    ("post", "/signout"),
];

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::start))
        .route("/t/{tenant}", get(dashboard::show))
        .route("/signin", get(signin::show).post(signin::submit))
        .route(
            "/signin/code",
            get(signin::show_code).post(signin::submit_code),
        )
        .route("/signout", post(signin::sign_out))
        .route("/reset", get(reset::show).post(reset::request))
        .route("/reset/confirm", post(reset::confirm))
        .route("/account", get(account::show))
        .route("/account/profile", post(account::profile))
        .route("/account/password", post(account::password))
        .route("/account/consent", post(account::consent))
        .route("/account/policy", post(account::policy))
        .route("/account/export", post(account::export))
        .route("/account/sessions", get(account::sessions))
        .route(
            "/account/authenticator",
            get(authenticator::show).post(authenticator::start),
        )
        .route(
            "/account/authenticator/confirm",
            post(authenticator::confirm),
        )
        .route("/t/{tenant}/sessions", get(account::tenant_sessions))
        .route("/t/{tenant}/audit", get(audit::show))
        .route(
            "/t/{tenant}/tenants",
            get(people::tree).post(people::create_tenant),
        )
        .route("/t/{tenant}/users", get(people::users).post(people::invite))
        .route("/users/{id}/roles", post(people::grant))
        .route("/users/{id}/roles/{binding}/revoke", post(people::revoke))
        .route(
            "/t/{tenant}/devices",
            get(devices::show).post(devices::new_code),
        )
        .route("/t/{tenant}/vaults", get(vaults::list))
        .route("/t/{tenant}/billing", get(billing::show))
        .route(
            "/t/{tenant}/branding",
            get(branding::show).post(branding::save),
        )
        .route("/t/{tenant}/branding/clear", post(branding::clear))
        .route("/t/{tenant}/tokens", get(tokens::show).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route(
            "/t/{tenant}/notifications",
            get(notify::show).post(notify::create),
        )
        .route("/notifications/{id}/test", post(notify::test))
        .route("/notifications/{id}/enabled", post(notify::enabled))
        .route("/notifications/{id}/delete", post(notify::delete))
        .route("/t/{tenant}/jobs", get(jobs::list))
        .route("/jobs/{id}", get(jobs::show))
        .route("/jobs/{id}/events", get(jobs::events))
        .route("/jobs/{id}/cancel", post(jobs::cancel))
        .route("/items/{id}/run", post(jobs::run_item))
        .route("/t/{tenant}/items", get(items::list).post(items::create))
        .route("/items/{id}", get(items::show).post(items::update))
        .route("/items/{id}/delete", post(items::delete))
        .route(
            "/t/{tenant}/policies",
            get(policies::list).post(policies::create),
        )
        .route("/policies/{id}", get(policies::show).post(policies::update))
        .route("/policies/{id}/delete", post(policies::delete))
        .route("/vaults/{id}", get(vaults::show))
        .route("/vaults/{id}/snapshots/{snapshot}", get(snapshots::browse))
        .route(
            "/vaults/{id}/snapshots/{snapshot}/restore",
            post(snapshots::restore),
        )
        .route(
            "/vaults/{id}/snapshots/{snapshot}/download",
            get(snapshots::download),
        )
        .route("/invite", get(people::invitation).post(people::accept))
        .route("/sessions/{id}/revoke", post(account::revoke))
        .route("/assets/{file}", get(assets::serve))
        .route("/signup", get(signup::form).post(signup::submit))
        .route(
            "/signup/confirm",
            get(signup::confirm_form).post(signup::confirm),
        )
}

/// The reader's language: `nl` when the browser puts Dutch before English, else English.
pub fn language(headers: &axum::http::HeaderMap) -> Language {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let first = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .find(|tag| tag.starts_with("nl") || tag.starts_with("en"));
    match first {
        Some(tag) if tag.starts_with("nl") => Language::Nl,
        _ => Language::En,
    }
}

/// A page saying why a request failed, with the status the API would answer.
pub fn failed(lang: Language, e: crate::error::ApiError) -> Response {
    let (status, _, message, retry_after) = e.told();
    match status {
        StatusCode::NOT_FOUND => {
            let text = M::NotFoundText.text(lang);
            shown_failure(lang, status, retry_after, M::NotFound, text)
        }
        _ => shown_failure(lang, status, retry_after, M::Failed, &message),
    }
}

/// The answer to a form the service refused: for a refusal of what was posted (a client
/// error other than 404), the form's page again, made by `again` with the status and why;
/// for anything else, the failure page (a 404 names nothing).
pub async fn refused<F>(
    lang: Language,
    e: crate::error::ApiError,
    again: impl FnOnce(StatusCode, maud::Markup) -> F,
) -> Response
where
    F: std::future::Future<Output = crate::error::ApiResult<Response>>,
{
    if !e.status().is_client_error() || e.status() == StatusCode::NOT_FOUND {
        return failed(lang, e);
    }
    let (status, _, message, _) = e.told();
    again(status, layout::alert(&message))
        .await
        .unwrap_or_else(|e| failed(lang, e))
}

/// A page saying why a request failed in the catalogue's words `m`.
pub fn failed_with(lang: Language, e: crate::error::ApiError, m: M) -> Response {
    let (status, _, _, retry_after) = e.told();
    shown_failure(lang, status, retry_after, M::Failed, m.text(lang))
}

fn shown_failure(
    lang: Language,
    status: StatusCode,
    retry_after: Option<u64>,
    title: M,
    text: &str,
) -> Response {
    let body = maud::html! {
        (layout::alert(text))
        p { a href="/" { (M::BackToDashboard.text(lang)) } }
    };
    let frame = layout::Frame {
        lang,
        menu: None,
        csrf: "",
        brand: None,
    };
    let mut r = layout::document(status, &frame, title.text(lang), body);
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What carries a password, a code or a token prints nothing: this does not compile
    /// when one of them gets `Debug`.
    #[test]
    fn forms_that_carry_secrets_have_no_debug() {
        loop_testkit::assert_no_debug!(
            account::PasswordForm,
            authenticator::PasswordForm,
            authenticator::CodeForm,
            people::AcceptForm,
            people::InviteToken,
            reset::CodeQuery,
            reset::ResetForm,
            signin::SignInForm,
            signin::CodeForm,
            signup::SignupForm,
            signup::TokenQuery,
        );
    }

    #[test]
    fn dutch_only_when_the_browser_prefers_it_to_english() {
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
            language(&h)
        };
        assert_eq!(with("nl-BE,nl;q=0.9,en;q=0.8"), Language::Nl);
        assert_eq!(with("en-GB,nl;q=0.5"), Language::En);
        assert_eq!(with("de-DE,nl;q=0.7"), Language::Nl);
        assert_eq!(with("fr"), Language::En);
        assert_eq!(language(&axum::http::HeaderMap::new()), Language::En);
    }
}
