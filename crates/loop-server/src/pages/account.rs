//! The reader's own account: profile (rectification), password, authenticator, the privacy
//! policy acknowledged, marketing consent and "download my data"; and their sessions. Every
//! change goes through the same service functions as the API ([`crate::accounts`],
//! [`crate::privacy`], [`crate::exports`]), so it is checked and audited the same way.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{DataExportState, Language, UpdateUser};
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::{M, catalogue};
use super::layout::{Input, alert, document, scroll, token};
use super::reader::{Done, NoFields, Posted, Viewer};
use crate::db::page::Page;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

catalogue! {
    /// The account page's own words.
    W {
        TimeZone: "Time zone of the times you read", "Tijdzone van de tijden die je leest";
        TenantsZone: "Your organisation's ({0})", "Die van je organisatie ({0})";
    }
}

fn done_message(done: Option<&str>) -> Option<M> {
    Some(match done? {
        "profile" => M::Saved,
        "password" => M::PasswordChanged,
        "consent" => M::ConsentChanged,
        "policy" => M::Acknowledged,
        "export" => M::ArchiveRequested,
        "revoked" => M::Revoked,
        "totp" => M::AuthenticatorEnabled,
        _ => return None,
    })
}

/// A status line (not an alert: it reports what went well).
fn status_line(text: &str) -> Markup {
    html! { p.status role="status" { (text) } }
}

/// After a change: back to `to` with what was done.
fn after(to: &str, done: &str) -> Response {
    Redirect::to(&format!("{to}?done={done}")).into_response()
}

/// `GET /account`.
pub async fn show(State(state): State<AppState>, v: Viewer, Query(q): Query<Done>) -> Response {
    let note = done_message(q.done.as_deref()).map(|m| v.t(m).to_string());
    render(&state, &v, StatusCode::OK, note.as_deref(), None).await
}

async fn render(
    state: &AppState,
    v: &Viewer,
    status: StatusCode,
    note: Option<&str>,
    error: Option<&str>,
) -> Response {
    match account(state, v, note, error).await {
        Ok(content) => document(status, &v.frame(), v.t(M::Account), content),
        Err(e) => super::failed(v.lang, e),
    }
}

async fn account(
    state: &AppState,
    v: &Viewer,
    note: Option<&str>,
    error: Option<&str>,
) -> ApiResult<Markup> {
    let me = &v.user().user.user;
    let lang = v.lang;
    let pool = &state.db.pool;
    let policy = crate::db::privacy::current_policy(pool).await?;
    let pending = crate::db::privacy::policy_to_acknowledge(pool, &me.id).await?;
    let exports = crate::db::exports::of_user(pool, &me.id, 5).await?;
    let field = |name, m: M, value, autocomplete| Input {
        value,
        autocomplete: Some(autocomplete),
        ..Input::new(name, v.t(m), "text")
    };
    Ok(html! {
        @if let Some(n) = note { (status_line(n)) }
        @if let Some(e) = error { (alert(e)) }
        section aria-labelledby="profile" {
            h2 #profile { (v.t(M::Profile)) }
            form method="post" action="/account/profile" {
                (token(&v.csrf))
                (Input { required: true, ..field("first_name", M::FirstName, &me.first_name, "given-name") }.render())
                (Input { required: true, ..field("last_name", M::LastName, &me.last_name, "family-name") }.render())
                (field("business_address", M::BusinessAddress, &me.business_address, "street-address").render())
                (Input { kind: "email", required: true, ..field("email", M::Email, &me.email, "email") }.render())
                (Input { autocomplete: Some("current-password"), ..Input::new("email_password", v.t(M::EmailPassword), "password") }.render())
                @if let Some(p) = &me.pending_email {
                    p { (M::PendingEmail.fill(lang, &[p])) }
                }
                p.field {
                    label for="language" { (v.t(M::Language)) }
                    select #language name="language" {
                        option value="en" selected[me.language == Language::En] { (v.t(M::English)) }
                        option value="nl" selected[me.language == Language::Nl] { (v.t(M::Dutch)) }
                    }
                }
                p.field {
                    label for="time_zone" { (W::TimeZone.text(lang)) }
                    select #time_zone name="time_zone" {
                        option value="" selected[me.time_zone.is_none()] {
                            (W::TenantsZone.fill(lang, &[v.home_zone.name()]))
                        }
                        @for z in loop_api::schedule::TZ_VARIANTS {
                            option value=(z.name()) selected[me.time_zone.as_deref() == Some(z.name())] { (z.name()) }
                        }
                    }
                }
                p { button type="submit" { (v.t(M::Save)) } }
            }
        }
        section aria-labelledby="password-h" {
            h2 #password-h { (v.t(M::ChangePassword)) }
            form method="post" action="/account/password" {
                (token(&v.csrf))
                (Input { autocomplete: Some("current-password"), required: true,
                         ..Input::new("current_password", v.t(M::CurrentPassword), "password") }.render())
                (Input { autocomplete: Some("new-password"), required: true,
                         ..Input::new("new_password", v.t(M::NewPassword), "password") }.render())
                p { button type="submit" { (v.t(M::ChangePassword)) } }
            }
        }
        section aria-labelledby="totp-h" {
            h2 #totp-h { (v.t(M::Authenticator)) }
            p { (v.t(if me.totp_enabled { M::AuthenticatorOn } else { M::AuthenticatorOff })) }
            @if !me.totp_enabled {
                p { a href="/account/authenticator" { (v.t(M::SetUpAuthenticator)) } }
            }
        }
        section aria-labelledby="privacy-h" {
            h2 #privacy-h { (v.t(M::Privacy)) }
            @match (&policy, &pending) {
                (None, _) => p { (v.t(M::NoPolicy)) },
                (Some(p), None) => p {
                    (M::PolicyAccepted.fill(lang, &[&p.version])) " "
                    a href=(p.url) rel="noreferrer" { (v.t(M::ReadPolicy)) }
                },
                (_, Some(p)) => form method="post" action="/account/policy" {
                    (token(&v.csrf))
                    input type="hidden" name="version" value=(p.version);
                    p {
                        (M::PolicyToAccept.fill(lang, &[&p.version])) " "
                        a href=(p.url) rel="noreferrer" { (v.t(M::ReadPolicy)) }
                    }
                    p { button type="submit" { (v.t(M::Acknowledge)) } }
                },
            }
            form method="post" action="/account/consent" {
                (token(&v.csrf))
                p { (v.t(if me.marketing_consent { M::MarketingOn } else { M::MarketingOff })) }
                input type="hidden" name="given" value=(if me.marketing_consent { "no" } else { "yes" });
                p { button type="submit" {
                    (v.t(if me.marketing_consent { M::WithdrawConsent } else { M::GiveConsent }))
                } }
            }
        }
        section aria-labelledby="data-h" {
            h2 #data-h { (v.t(M::MyData)) }
            p { (v.t(M::MyDataHelp)) }
            @if !exports.is_empty() {
                (scroll(v.t(M::MyData), html! { table {
                    thead { tr {
                        th scope="col" { (v.t(M::Requested)) }
                        th scope="col" { (v.t(M::State)) }
                    } }
                    tbody {
                        @for e in &exports {
                            @let view = crate::exports::view(e);
                            tr {
                                td { (v.time(view.created_at)) }
                                td {
                                    @match (view.state, &view.download) {
                                        (DataExportState::Ready, Some(url)) => a.download href=(url) download {
                                            (v.t(M::Download))
                                            @if let Some(size) = view.size {
                                                " (" (crate::notify::email::size(size)) ")"
                                            }
                                        },
                                        (DataExportState::Expired, _) => (v.t(M::ArchiveExpired)),
                                        _ => (v.t(M::ArchivePreparing)),
                                    }
                                }
                            }
                        }
                    }
                } }))
            }
            form method="post" action="/account/export" {
                (token(&v.csrf))
                p { button type="submit" { (v.t(M::MakeArchive)) } }
            }
        }
        p { a href="/account/sessions" { (v.t(M::YourSessions)) } }
    })
}

/// A refused change: the account page again, with why.
async fn refused(state: &AppState, v: &Viewer, e: ApiError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        return super::failed(v.lang, e);
    }
    let (_, _, message, _) = e.told();
    render(state, v, status, None, Some(&message)).await
}

#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    first_name: String,
    last_name: String,
    #[serde(default)]
    business_address: String,
    email: String,
    language: Language,
    #[serde(default)]
    time_zone: String,
    /// Asked for a new address only.
    #[serde(default)]
    email_password: loop_api::SecretText,
}

/// `POST /account/profile`.
pub async fn profile(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<ProfileForm>,
) -> Response {
    let me = v.user().user.clone();
    let changes = UpdateUser {
        email: (f.email.trim() != me.user.email).then_some(f.email),
        first_name: Some(f.first_name),
        last_name: Some(f.last_name),
        business_address: Some(f.business_address),
        language: Some(f.language),
        time_zone: Some(f.time_zone),
        current_password: Some(f.email_password).filter(|p| !p.expose().is_empty()),
    };
    match crate::accounts::change_own(&state, &v.caller, changes).await {
        Ok(_) => after("/account", "profile"),
        Err(e) => refused(&state, &v, e).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
}

/// `POST /account/password`.
pub async fn password(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<PasswordForm>,
) -> Response {
    let changed =
        crate::accounts::change_password(&state, &v.caller, &f.current_password, &f.new_password)
            .await;
    match changed {
        Ok(()) => after("/account", "password"),
        Err(e) => refused(&state, &v, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct ConsentForm {
    given: String,
}

/// `POST /account/consent`: gives or withdraws consent to product news.
pub async fn consent(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<ConsentForm>,
) -> Response {
    match crate::privacy::set_consent(&state, &v.caller, f.given == "yes").await {
        Ok(_) => after("/account", "consent"),
        Err(e) => refused(&state, &v, e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct PolicyForm {
    version: String,
}

/// `POST /account/policy`: acknowledges the privacy policy in force.
pub async fn policy(
    State(state): State<AppState>,
    v: Viewer,
    Posted(f): Posted<PolicyForm>,
) -> Response {
    match crate::privacy::acknowledge(&state, &v.caller, &f.version).await {
        Ok(()) => after("/account", "policy"),
        Err(e) => refused(&state, &v, e).await,
    }
}

/// `POST /account/export`: asks for an archive of the reader's data.
pub async fn export(
    State(state): State<AppState>,
    v: Viewer,
    Posted(_): Posted<NoFields>,
) -> Response {
    match crate::exports::request(&state, &v.caller, None).await {
        Ok(_) => after("/account", "export"),
        Err(e) => refused(&state, &v, e).await,
    }
}

/// `GET /account/sessions`: the reader's own sessions.
pub async fn sessions(State(state): State<AppState>, v: Viewer, Query(q): Query<Done>) -> Response {
    let note = done_message(q.done.as_deref()).map(|m| v.t(m));
    sessions_page(&state, &v, None, note).await
}

/// `GET /t/{tenant}/sessions`: the sessions of a tenant's users (with the session-read
/// permission there; anyone else's: 404).
pub async fn tenant_sessions(
    State(state): State<AppState>,
    v: Viewer,
    Path(tenant): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let note = done_message(q.done.as_deref()).map(|m| v.t(m));
    sessions_page(&state, &v, Some(&tenant), note).await
}

async fn sessions_page(
    state: &AppState,
    v: &Viewer,
    tenant: Option<&str>,
    note: Option<&str>,
) -> Response {
    let listed = async {
        let id = tenant
            .map(loop_api::TenantId::parse)
            .transpose()
            .map_err(|_| ApiError::not_found())?;
        let (title, menu) = match &id {
            Some(t) => {
                let t = v
                    .caller
                    .tenant(state, crate::domain::Permission::SessionRead, t.as_str())
                    .await?;
                let title = M::TenantSessions.fill(v.lang, &[&t.tenant.name]);
                (title, Some(v.tenant_menu(&t)))
            }
            None => (v.t(M::YourSessions).to_string(), None),
        };
        let page = Page::first(200);
        let rows = crate::accounts::sessions(state, &v.caller, id.as_ref(), &page).await?;
        Ok::<_, ApiError>((title, menu, rows.items))
    };
    let (title, menu, rows) = match listed.await {
        Ok(found) => found,
        Err(e) => return super::failed(v.lang, e),
    };
    let here = match tenant {
        Some(t) => format!("/t/{t}/sessions"),
        None => "/account/sessions".to_string(),
    };
    let content = html! {
        @if let Some(m) = menu { (m) }
        @if let Some(n) = note { (status_line(n)) }
        @if rows.is_empty() {
            p { (v.t(M::NoSessions)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    @if tenant.is_some() { th scope="col" { (v.t(M::Person)) } }
                    th scope="col" { (v.t(M::Started)) }
                    th scope="col" { (v.t(M::LastSeen)) }
                    th scope="col" { (v.t(M::Browser)) }
                    th scope="col" { (v.t(M::Address)) }
                    th scope="col" { span.visually-hidden { (v.t(M::Revoke)) } }
                } }
                tbody {
                    @for s in &rows {
                        @let what = [s.browser.as_deref(), s.os.as_deref(), s.device_label.as_deref()]
                            .into_iter().flatten().collect::<Vec<_>>().join(" · ");
                        tr data-session=(s.id) {
                            @if tenant.is_some() { td { (s.user_id) } }
                            td { (v.time(s.created_at)) }
                            td { (v.time(s.last_seen_at)) }
                            td { (what) }
                            td { (s.ip.as_deref().unwrap_or("")) }
                            td {
                                @if s.current {
                                    strong { (v.t(M::ThisSession)) }
                                } @else if s.ended_at.is_some() {
                                    (v.t(M::Ended))
                                } @else {
                                    form.inline method="post" action={"/sessions/" (s.id) "/revoke"} {
                                        (token(&v.csrf))
                                        input type="hidden" name="back" value=(here);
                                        button type="submit" aria-label=(M::RevokeSession.fill(v.lang, &[&what])) {
                                            (v.t(M::Revoke))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }))
        }
    };
    document(StatusCode::OK, &v.frame(), &title, content)
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    back: String,
}

/// `POST /sessions/{id}/revoke`: signs a session out (one's own, or one of a tenant whose
/// sessions the reader may revoke), then back to the list it was on.
pub async fn revoke(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<RevokeForm>,
) -> Response {
    if let Err(e) = crate::accounts::revoke_session(&state, &v.caller, &id).await {
        return super::failed(v.lang, e);
    }
    // A tenant's sessions page, `/t/ID/sessions`: anything else (another site, a header
    // break that no redirect can carry) goes to the reader's own list.
    let plain = f
        .back
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
    let back = if plain && f.back.starts_with("/t/") && f.back.ends_with("/sessions") {
        f.back
    } else {
        "/account/sessions".to_string()
    };
    after(&back, "revoked")
}
