//! The sign-up pages: an organisation asks for a trial with a form, and confirms it from the
//! link in the mail. The same rules as the API (`crate::signup`): the same answer for any
//! address, throttled, the code works once.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use loop_api::{ConfirmSignUp, Language, Plan, SignUp};
use maud::html;
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{Input, alert, document, token};
use super::reader::{Posted, Visitor};
use crate::auth::ClientInfo;
use crate::error::ApiError;
use crate::state::AppState;

/// What the sign-up form sends (and shows again when something is wrong).
#[derive(Default, Deserialize)]
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

/// The form, filled with `f`, with `error` above it.
fn form_page(
    v: &Visitor,
    status: StatusCode,
    plans: &[Plan],
    f: &SignupForm,
    error: Option<&str>,
) -> Response {
    let lang = v.lang;
    let text = |name, m: M, kind, value, autocomplete, required| Input {
        value,
        autocomplete: Some(autocomplete),
        required,
        ..Input::new(name, v.t(m), kind)
    };
    let content = html! {
        @if let Some(e) = error { (alert(e)) }
        p { (v.t(M::SignUpIntro)) }
        form method="post" action="/signup" {
            (token(&v.csrf))
            (text("organisation", M::Organisation, "text", &f.organisation, "organization", true).render())
            (text("first_name", M::FirstName, "text", &f.first_name, "given-name", true).render())
            (text("last_name", M::LastName, "text", &f.last_name, "family-name", true).render())
            (text("business_address", M::BusinessAddress, "text", &f.business_address,
                  "street-address", false).render())
            (text("email", M::Email, "email", &f.email, "email", true).render())
            (text("password", M::NewPassword, "password", "", "new-password", true).render())
            p.field {
                label for="plan_id" { (v.t(M::Plan)) }
                select #plan_id name="plan_id" {
                    @for p in plans {
                        option value=(p.id) selected[f.plan_id.as_deref() == Some(p.id.as_str())] {
                            (M::PlanPrice.fill(lang, &[&p.name,
                                &crate::mail::money(p.price_cents, &p.currency)]))
                        }
                    }
                }
            }
            input type="hidden" name="language" value=(lang.as_str());
            p { button type="submit" { (v.t(M::StartTrial)) } }
        }
    };
    v.answer(document(status, &v.frame(), v.t(M::SignUp), content))
}

/// `GET /signup`: the form, or why there is none.
pub async fn form(State(state): State<AppState>, v: Visitor) -> Response {
    match crate::signup::offered(&state).await {
        Ok(plans) => form_page(&v, StatusCode::OK, &plans, &SignupForm::default(), None),
        Err(e) => super::failed(v.lang, e),
    }
}

/// `POST /signup`: asks for the trial; the page says a link is on its way (for any
/// address, as the API does), or shows the form again with what is wrong.
pub async fn submit(
    State(state): State<AppState>,
    v: Visitor,
    client: ClientInfo,
    Posted(f): Posted<SignupForm>,
) -> Response {
    let plans = match crate::signup::offered(&state).await {
        Ok(plans) => plans,
        Err(e) => return super::failed(v.lang, e),
    };
    let req = SignUp {
        organisation: f.organisation.clone(),
        first_name: f.first_name.clone(),
        last_name: f.last_name.clone(),
        email: f.email.clone(),
        password: f.password.clone().into(),
        business_address: f.business_address.clone(),
        plan_id: f.plan_id.clone().filter(|p| !p.is_empty()),
        language: f.language.or(Some(v.lang)),
    };
    match crate::signup::sign_up(&state, &client, req).await {
        Ok(()) => {
            let content = html! { p { (M::LinkSent.fill(v.lang, &[&f.email])) } };
            v.answer(document(
                StatusCode::ACCEPTED,
                &v.frame(),
                v.t(M::CheckMail),
                content,
            ))
        }
        Err(e @ ApiError::Client { .. }) => {
            let (status, _, message, _) = e.told();
            form_page(&v, status, &plans, &f, Some(&message))
        }
        Err(e) => super::failed(v.lang, e),
    }
}

#[derive(Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /signup/confirm?token=…`: the mail's link. Opening it changes nothing (mail
/// scanners open links); the button confirms.
pub async fn confirm_form(
    v: Visitor,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let token_text = q.map(|Query(q)| q.token).unwrap_or_default();
    if token_text.is_empty() || token_text.len() > 128 {
        return super::failed(v.lang, ApiError::not_found());
    }
    let content = html! {
        form method="post" action="/signup/confirm" {
            (token(&v.csrf))
            input type="hidden" name="token" value=(token_text);
            p { button type="submit" { (v.t(M::ConfirmAndStart)) } }
        }
    };
    v.answer(document(
        StatusCode::OK,
        &v.frame(),
        v.t(M::ConfirmSignUp),
        content,
    ))
}

/// `POST /signup/confirm`: makes the organisation, its administrator and the trial.
pub async fn confirm(
    State(state): State<AppState>,
    v: Visitor,
    Posted(q): Posted<TokenQuery>,
) -> Response {
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
            let ends = d.trial_ends_at.format("%Y-%m-%d").to_string();
            let content = html! {
                p { (M::TrialEnds.fill(v.lang, &[&ends])) }
                p { (v.t(M::SignInToStart)) " " a href="/signin" { (v.t(M::SignIn)) } }
                p { (v.t(M::OrFromTerminal)) }
                pre { "loop login --server " (server) }
            };
            v.answer(document(
                StatusCode::CREATED,
                &v.frame(),
                v.t(M::TrialStarted),
                content,
            ))
        }
        Err(e) => super::failed(v.lang, e),
    }
}
