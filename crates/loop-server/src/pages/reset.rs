//! A forgotten password: the page that asks for a reset mail, and the page its link opens,
//! which sets the new password. Both call the API's own functions ([`crate::codes`]), so the
//! same throttle and audit apply; the first page says the same whether or not the address
//! has an account.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{Input, alert, document, token};
use super::reader::{CodeForm, Posted, Visitor};
use crate::auth::ClientInfo;
use crate::codes;
use crate::error::ApiError;
use crate::state::AppState;

/// Carries a reset code: no `Debug`.
#[derive(Default, Deserialize)]
pub struct CodeQuery {
    #[serde(default)]
    code: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AddressForm {
    #[serde(default)]
    email: String,
}

#[derive(Default, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    password: String,
}

/// `GET /reset` asks for the address; `GET /reset?code=…`, the mail's link, asks for the new
/// password while the code works (else the address again, saying why). Opening either
/// changes nothing.
pub async fn show(
    State(state): State<AppState>,
    v: Visitor,
    Query(q): Query<CodeQuery>,
) -> Response {
    let Some(code) = q.code else {
        return address_form(&v, StatusCode::OK, "", None);
    };
    if code.is_empty() || code.len() > 128 {
        return invalid_link(&v, ApiError::not_found());
    }
    match codes::check_reset(&state, &code).await {
        Ok(()) => password_form(&v, StatusCode::OK, &code, None),
        Err(e) => invalid_link(&v, e),
    }
}

/// `POST /reset`: asks for the mail, and says what it always says.
pub async fn request(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    Posted(f): Posted<AddressForm>,
) -> Response {
    match codes::request_reset(&state, &client, &f.email).await {
        Ok(()) => {
            let content = html! {
                p.status role="status" { (M::ResetSent.fill(v.lang, &[f.email.trim()])) }
                p { a href="/signin" { (v.t(M::SignIn)) } }
            };
            v.answer(document(
                StatusCode::OK,
                &v.frame(),
                v.t(M::ForgotPassword),
                content,
            ))
        }
        Err(e) if e.status() == StatusCode::TOO_MANY_REQUESTS => {
            let (status, _, _, retry_after) = e.told();
            let secs = retry_after.unwrap_or(60);
            let text = M::ResetThrottled.fill(v.lang, &[&secs.to_string()]);
            let mut page = address_form(&v, status, &f.email, Some(&text));
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            page
        }
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let (status, _, message, _) = e.told();
            address_form(&v, status, &f.email, Some(&message))
        }
        Err(e) => super::failed(v.lang, e),
    }
}

/// `POST /reset/confirm`: sets the new password; then on to sign in.
pub async fn confirm(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    Posted(f): Posted<ResetForm>,
) -> Response {
    match codes::reset_password(&state, &client, &f.code, &f.password).await {
        Ok(()) => v.done_then_sign_in(M::NewPasswordTitle, M::PasswordResetDone),
        Err(e) if e.status() == StatusCode::BAD_REQUEST => {
            let (status, _, message, _) = e.told();
            password_form(&v, status, &f.code, Some(&message))
        }
        Err(e) => invalid_link(&v, e),
    }
}

/// The address form saying that the link no longer works (404 or 410), or the failure page.
fn invalid_link(v: &Visitor, e: ApiError) -> Response {
    match e.status() {
        s @ (StatusCode::NOT_FOUND | StatusCode::GONE) => {
            address_form(v, s, "", Some(v.t(M::ResetLinkInvalid)))
        }
        _ => super::failed(v.lang, e),
    }
}

fn address_form(v: &Visitor, status: StatusCode, email: &str, error: Option<&str>) -> Response {
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        p { (v.t(M::ResetHelp)) }
        form method="post" action="/reset" {
            (token(&v.csrf))
            (Input { value: email, autocomplete: Some("username"), required: true,
                     autofocus: true, ..Input::new("email", v.t(M::Email), "email") }.render())
            p { button type="submit" { (v.t(M::SendLink)) } }
        }
        p { a href="/signin" { (v.t(M::SignIn)) } }
    };
    v.answer(document(
        status,
        &v.frame(),
        v.t(M::ForgotPassword),
        content,
    ))
}

fn password_form(v: &Visitor, status: StatusCode, code: &str, error: Option<&str>) -> Response {
    let to = CodeForm {
        action: "/reset/confirm",
        field: "code",
        code,
        title: M::NewPasswordTitle,
        intro: None,
    };
    v.code_password_form(to, status, error)
}
