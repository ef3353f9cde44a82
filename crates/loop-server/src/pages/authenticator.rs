//! Setting up an authenticator app: the reader's password, then the app's secret as a QR code
//! (drawn on the server as SVG, so it shows without scripts), as a key to type and as an
//! `otpauth://` link, then a code from the app turns it on. The same functions as the API
//! ([`crate::accounts::enrol_totp`], [`crate::accounts::confirm_totp`]): the password guess
//! counts like one at sign-in, and each step is audited.
//!
//! The secret is shown on the answer to the password only. After a wrong code it is shown
//! again only to a form that carries it, so a stolen session cannot read a secret someone
//! started to set up and turn it on for itself.

use std::fmt::Write as _;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::TotpEnrollment;
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{Input, alert, document, token};
use super::reader::{Posted, Viewer};
use crate::state::AppState;

/// Modules of light margin around the code, as the QR standard asks.
const QUIET: usize = 4;

/// `GET /account/authenticator`: the password form, or that the app is on already.
pub async fn show(v: Viewer) -> Response {
    password_form(&v, StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
}

/// `POST /account/authenticator`: starts the enrolment and shows the secret.
pub async fn start(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<PasswordForm>,
) -> Response {
    match crate::accounts::enrol_totp(&state, &v.caller, &f.current_password).await {
        Ok(enrolment) => secret_page(&v, StatusCode::OK, &enrolment, None),
        Err(e) if e.status().is_client_error() => {
            let (status, _, message, _) = e.told();
            password_form(&v, status, Some(&message))
        }
        Err(e) => super::failed(v.lang, e),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    /// The secret the page showed, so that it can be shown again after a wrong code.
    #[serde(default)]
    secret: String,
}

/// `POST /account/authenticator/confirm`: a code from the app turns it on.
pub async fn confirm(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<CodeForm>,
) -> Response {
    let e = match crate::accounts::confirm_totp(&state, &v.caller, &f.code).await {
        Ok(()) => return Redirect::to("/account?done=totp").into_response(),
        Err(e) if e.status().is_server_error() => return super::failed(v.lang, e),
        Err(e) => e,
    };
    let (status, code, message, _) = e.told();
    if code != "invalid_totp" {
        return password_form(&v, status, Some(&message));
    }
    match crate::accounts::pending_totp(&state, &v.caller, &f.secret).await {
        Ok(Some(enrolment)) => secret_page(&v, status, &enrolment, Some(v.t(M::WrongCode))),
        Ok(None) => password_form(&v, status, Some(v.t(M::EnrolmentGone))),
        Err(e) => super::failed(v.lang, e),
    }
}

fn password_form(v: &Viewer, status: StatusCode, error: Option<&str>) -> Response {
    let on = v.user().user.user.totp_enabled;
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        @if on {
            p { (v.t(M::AuthenticatorOn)) }
        } @else {
            p { (v.t(M::AuthenticatorPassword)) }
            form method="post" action="/account/authenticator" {
                (token(&v.csrf))
                (Input { autocomplete: Some("current-password"), required: true, autofocus: true,
                         ..Input::new("current_password", v.t(M::CurrentPassword), "password") }.render())
                p { button type="submit" { (v.t(M::Continue)) } }
            }
        }
        p { a href="/account" { (v.t(M::Account)) } }
    };
    document(status, &v.frame(), v.t(M::SetUpAuthenticator), content)
}

fn secret_page(
    v: &Viewer,
    status: StatusCode,
    enrolment: &TotpEnrollment,
    error: Option<&str>,
) -> Response {
    let secret = enrolment.secret.expose();
    let url = enrolment.otpauth_url.expose();
    let qr = match qr_code(url, v.t(M::QrLabel)) {
        Some(svg) => svg,
        None => html! {},
    };
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        p { (v.t(M::ScanCode)) }
        figure.qr { (qr) }
        p {
            (v.t(M::SecretKey)) ": "
            code.secret { (grouped(secret)) }
        }
        p { a href=(url) { (v.t(M::OpenInApp)) } }
        form method="post" action="/account/authenticator/confirm" {
            (token(&v.csrf))
            input type="hidden" name="secret" value=(secret);
            (Input { autocomplete: Some("one-time-code"), required: true, autofocus: true,
                     inputmode: Some("numeric"), ..Input::new("code", v.t(M::Code), "text") }.render())
            p { button type="submit" { (v.t(M::TurnOn)) } }
        }
    };
    document(status, &v.frame(), v.t(M::SetUpAuthenticator), content)
}

/// The key in groups of four, as authenticator apps show it.
fn grouped(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` as a QR code (error correction M), an SVG image described by `label`; `None` when
/// it does not fit in a QR code.
fn qr_code(text: &str, label: &str) -> Option<Markup> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let size = width + 2 * QUIET;
    // One square a dark module, all in one path.
    let mut path = String::new();
    for (i, module) in code.to_colors().iter().enumerate() {
        if *module == qrcode::Color::Dark {
            let (x, y) = (i % width + QUIET, i / width + QUIET);
            let _ = write!(path, "M{x} {y}h1v1h-1z");
        }
    }
    let view = format!("0 0 {size} {size}");
    Some(html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox=(view) role="img" aria-label=(label)
            shape-rendering="crispEdges" {
            rect width=(size) height=(size) fill="#fff" {}
            path d=(path) fill="#000" {}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_shown_in_groups_of_four() {
        assert_eq!(grouped("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(grouped(""), "");
    }

    #[test]
    fn a_qr_code_draws_each_dark_module_once_inside_its_margin() {
        let svg = qr_code("otpauth://totp/x?secret=AAAA", "label")
            .expect("fits")
            .into_string();
        let code = qrcode::QrCode::with_error_correction_level(
            "otpauth://totp/x?secret=AAAA",
            qrcode::EcLevel::M,
        )
        .unwrap();
        let dark = code
            .to_colors()
            .iter()
            .filter(|c| **c == qrcode::Color::Dark)
            .count();
        assert_eq!(svg.matches("h1v1h-1z").count(), dark);
        let size = code.width() + 2 * QUIET;
        assert!(
            svg.contains(&format!("viewBox=\"0 0 {size} {size}\"")),
            "{svg}"
        );
        // The top-left finder pattern starts right inside the margin.
        assert!(svg.contains(&format!("M{QUIET} {QUIET}h1v1h-1z")), "{svg}");
    }
}
