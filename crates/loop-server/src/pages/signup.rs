//! The sign-up pages: an organisation asks for a trial with a form, and confirms it from the
//! link in the mail. The same rules as the API (`crate::signup`): the same answer for any
//! address, throttled, the code works once.

use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use loop_api::{ConfirmSignUp, Language, Plan, SignUp};
use serde::Deserialize;

use super::{cross_site, esc, failed, language, page, t};
use crate::auth::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;

/// What the sign-up form sends (and shows again when something is wrong).
#[derive(Debug, Default, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    organisation: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    business_address: String,
    #[serde(default)]
    plan_id: Option<String>,
    #[serde(default)]
    language: Option<Language>,
}

fn field(name: &str, label: &str, kind: &str, value: &str, extra: &str) -> String {
    format!(
        "<p><label for=\"{name}\">{label}</label><br>\
         <input id=\"{name}\" name=\"{name}\" type=\"{kind}\" value=\"{value}\" {extra}></p>",
        label = esc(label),
        value = esc(value),
    )
}

/// The form, filled with `f`, with `error` above it.
fn form_page(
    lang: Language,
    status: StatusCode,
    plans: &[Plan],
    f: &SignupForm,
    error: Option<&str>,
) -> Response {
    let mut body = String::new();
    if let Some(e) = error {
        body.push_str(&format!("<p role=\"alert\">{}</p>", esc(e)));
    }
    body.push_str(&format!(
        "<p>{}</p><form method=\"post\" action=\"/signup\">",
        esc(t(
            lang,
            "Start a free trial of Loop Backup for your organisation. We mail you a link to \
             confirm your address; the trial starts when you open it.",
            "Start een gratis proefperiode van Loop Backup voor uw organisatie. We mailen u \
             een link om uw adres te bevestigen; de proefperiode begint wanneer u die opent."
        ))
    ));
    body.push_str(&field(
        "organisation",
        t(lang, "Organisation", "Organisatie"),
        "text",
        &f.organisation,
        "required maxlength=\"200\" autocomplete=\"organization\"",
    ));
    body.push_str(&field(
        "first_name",
        t(lang, "First name", "Voornaam"),
        "text",
        &f.first_name,
        "required autocomplete=\"given-name\"",
    ));
    body.push_str(&field(
        "last_name",
        t(lang, "Last name", "Achternaam"),
        "text",
        &f.last_name,
        "required autocomplete=\"family-name\"",
    ));
    body.push_str(&field(
        "business_address",
        t(
            lang,
            "Business address (optional)",
            "Bedrijfsadres (niet verplicht)",
        ),
        "text",
        &f.business_address,
        "autocomplete=\"street-address\"",
    ));
    body.push_str(&field(
        "email",
        t(lang, "E-mail address", "E-mailadres"),
        "email",
        &f.email,
        "required autocomplete=\"email\"",
    ));
    body.push_str(&field(
        "password",
        t(
            lang,
            "Password (at least 12 characters)",
            "Wachtwoord (minstens 12 tekens)",
        ),
        "password",
        "",
        "required minlength=\"12\" autocomplete=\"new-password\"",
    ));
    body.push_str(&format!(
        "<p><label for=\"plan_id\">{}</label><br><select id=\"plan_id\" name=\"plan_id\">",
        t(lang, "Plan", "Abonnement")
    ));
    for p in plans {
        let chosen = f.plan_id.as_deref() == Some(p.id.as_str());
        body.push_str(&format!(
            "<option value=\"{}\"{}>{} ({} {})</option>",
            esc(&p.id),
            if chosen { " selected" } else { "" },
            esc(&p.name),
            esc(&crate::mail::money(p.price_cents, &p.currency)),
            t(lang, "a month", "per maand"),
        ));
    }
    body.push_str("</select></p>");
    body.push_str(&format!(
        "<input type=\"hidden\" name=\"language\" value=\"{}\">\
         <p><button type=\"submit\">{}</button></p></form>",
        lang.as_str(),
        t(lang, "Start the trial", "Start de proefperiode")
    ));
    page(status, lang, t(lang, "Sign up", "Aanmelden"), &body)
}

/// `GET /signup`: the form, or why there is none.
pub async fn form(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let lang = language(&headers);
    match crate::signup::offered(&state).await {
        Ok(plans) => form_page(lang, StatusCode::OK, &plans, &SignupForm::default(), None),
        Err(e) => failed(lang, e),
    }
}

/// `POST /signup`: asks for the trial; the page says a link is on its way (for any
/// address, as the API does), or shows the form again with what is wrong.
pub async fn submit(State(state): State<AppState>, client: ClientInfo, req: Request) -> Response {
    let lang = language(req.headers());
    let (parts, body) = req.into_parts();
    if let Some(refused) = cross_site(&parts, lang) {
        return refused;
    }
    let Ok(axum::Form(f)) =
        axum::Form::<SignupForm>::from_request(Request::from_parts(parts, body), &state).await
    else {
        return failed(lang, ApiError::bad_request("the form could not be read"));
    };
    let plans = match crate::signup::offered(&state).await {
        Ok(plans) => plans,
        Err(e) => return failed(lang, e),
    };
    let req = SignUp {
        organisation: f.organisation.clone(),
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        email: f.email.clone(),
        password: f.password.clone().into(),
        business_address: f.business_address.clone(),
        plan_id: f.plan_id.clone().filter(|p| !p.is_empty()),
        language: f.language.or(Some(lang)),
    };
    match crate::signup::sign_up(&state, &client, req).await {
        Ok(()) => page(
            StatusCode::ACCEPTED,
            lang,
            t(lang, "Check your mail", "Kijk in uw mailbox"),
            &format!(
                "<p>{} <strong>{}</strong>. {}</p>",
                t(
                    lang,
                    "If the address can be used, a message with a link to confirm it is on \
                     its way to",
                    "Als het adres gebruikt kan worden, is er een bericht met een link om het \
                     te bevestigen onderweg naar"
                ),
                esc(&f.email),
                t(
                    lang,
                    "The link works once, for 7 days.",
                    "De link werkt eenmaal, 7 dagen lang."
                )
            ),
        ),
        Err(e @ ApiError::Client { .. }) => {
            let (status, _, message, _) = e.told();
            form_page(lang, status, &plans, &f, Some(&message))
        }
        Err(e) => failed(lang, e),
    }
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /signup/confirm?token=…`: the mail's link. Opening it changes nothing (mail
/// scanners open links); the button confirms.
pub async fn confirm_form(
    headers: axum::http::HeaderMap,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lang = language(&headers);
    let token = q.map(|Query(q)| q.token).unwrap_or_default();
    if token.is_empty() || token.len() > 128 {
        return failed(lang, ApiError::not_found());
    }
    page(
        StatusCode::OK,
        lang,
        t(lang, "Confirm your sign-up", "Bevestig uw aanmelding"),
        &format!(
            "<form method=\"post\" action=\"/signup/confirm\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <p><button type=\"submit\">{}</button></p></form>",
            esc(&token),
            t(
                lang,
                "Confirm and start the trial",
                "Bevestig en start de proefperiode"
            )
        ),
    )
}

/// `POST /signup/confirm`: makes the organisation, its administrator and the trial.
pub async fn confirm(State(state): State<AppState>, req: Request) -> Response {
    let lang = language(req.headers());
    let (parts, body) = req.into_parts();
    if let Some(refused) = cross_site(&parts, lang) {
        return refused;
    }
    let Ok(axum::Form(q)) =
        axum::Form::<TokenQuery>::from_request(Request::from_parts(parts, body), &state).await
    else {
        return failed(lang, ApiError::bad_request("the form could not be read"));
    };
    let done = crate::signup::confirm(
        &state,
        ConfirmSignUp {
            token: q.token.into(),
        },
    )
    .await;
    match done {
        Ok(d) => {
            let server = state.config.public_url.as_deref().unwrap_or("https://…");
            page(
                StatusCode::CREATED,
                lang,
                t(lang, "Your trial started", "Uw proefperiode is begonnen"),
                &format!(
                    "<p>{} {}.</p><p>{}</p><pre>loop login --server {}</pre>",
                    t(lang, "It ends on", "Ze eindigt op"),
                    esc(&d.trial_ends_at.format("%Y-%m-%d").to_string()),
                    t(
                        lang,
                        "Sign in with your address and the password you chose:",
                        "Meld u aan met uw adres en het wachtwoord dat u koos:"
                    ),
                    esc(server)
                ),
            )
        }
        Err(e) => failed(lang, e),
    }
}
