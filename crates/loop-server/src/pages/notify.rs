//! A tenant's notifications: its targets (e-mail lists and webhooks), what each hears, a
//! button that sends a test through one, and the delivery log (each event on its way to
//! each target, with its tries and the last error). Forms make a target, pause or resume
//! one and delete one; every change goes through the API's own functions
//! ([`crate::notify::targets`]), so it is checked and audited the same way.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{
    CreateTarget, DeliveryState, EmailSettings, Language, NotifyTarget, Severity, SummaryPeriod,
    TargetId, TargetKind, TenantId, UpdateTarget, WebhookSettings,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::{M, catalogue};
use super::layout::{Input, document, scroll, token};
use super::reader::{Done, NoFields, Posted, Viewer};
use crate::db::page::Page;
use crate::domain::{Permission, TenantScope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

catalogue! {
    /// The words of the notifications page.
    W {
        NotificationsOf: "Notifications of {0}", "Meldingen van {0}";
        Targets: "Targets", "Ontvangers";
        NoTargets: "No targets yet: nobody hears of failed backups.",
            "Nog geen ontvangers: niemand hoort van mislukte back-ups.";
        Where: "Where", "Waarheen";
        Hears: "Hears", "Hoort";
        Summary: "Summary", "Overzicht";
        Email: "E-mail", "E-mail";
        Webhook: "Webhook", "Webhook";
        FromInfo: "everything", "alles";
        FromWarning: "warnings and errors", "waarschuwingen en fouten";
        FromError: "errors only", "alleen fouten";
        SummaryOff: "none", "geen";
        SummaryDaily: "daily", "dagelijks";
        SummaryWeekly: "weekly", "wekelijks";
        Active: "active", "actief";
        Paused: "paused", "gepauzeerd";
        SendTest: "Send a test", "Test versturen";
        SendTestTo: "Send a test to {0}", "Een test versturen naar {0}";
        Pause: "Pause", "Pauzeren";
        PauseTarget: "Pause {0}", "{0} pauzeren";
        Resume: "Resume", "Hervatten";
        ResumeTarget: "Resume {0}", "{0} hervatten";
        DeleteTarget: "Delete {0}", "{0} verwijderen";
        NewEmail: "Mail a list of addresses", "Een lijst adressen mailen";
        Recipients: "Addresses, one a line (at most 20)", "Adressen, één per regel (hoogstens 20)";
        MailLanguage: "Language of the mail", "Taal van de mail";
        NewWebhook: "Post to a webhook", "Naar een webhook posten";
        WebhookUrl: "Address (https://…)", "Adres (https://…)";
        MinSeverity: "Hears", "Hoort";
        Add: "Add the target", "De ontvanger toevoegen";
        TestSent: "A test is on its way: follow it in the delivery log below.",
            "Er is een test onderweg: volg hem in het bezorglogboek hieronder.";
        TargetMade: "The target is added.", "De ontvanger is toegevoegd.";
        TargetSaved: "The target is changed.", "De ontvanger is gewijzigd.";
        TargetDeleted: "The target is deleted.", "De ontvanger is verwijderd.";
        SecretOnce: "Sign-check secret of {0}, shown only now: the receiver checks the \
            Loop-Signature header with it.",
            "Controlegeheim van {0}, alleen nu getoond: de ontvanger controleert er de \
            Loop-Signature-kop mee.";
        Deliveries: "Delivery log", "Bezorglogboek";
        NoDeliveries: "Nothing delivered yet.", "Nog niets bezorgd.";
        Event: "Event", "Gebeurtenis";
        Target: "Target", "Ontvanger";
        Tries: "Tries", "Pogingen";
        LastError: "Last error", "Laatste fout";
        Queued: "queued", "in de wachtrij";
        Delivered: "delivered", "bezorgd";
        GaveUp: "failed", "mislukt";
        GoneTarget: "a deleted target", "een verwijderde ontvanger";
        Delete: "Delete", "Verwijderen";
        When: "When", "Wanneer";
    }
}

/// Deliveries the log shows.
const LOG_ROWS: u32 = 50;

fn severity(s: Severity) -> W {
    match s {
        Severity::Info => W::FromInfo,
        Severity::Warning => W::FromWarning,
        Severity::Error => W::FromError,
    }
}

fn summary(s: SummaryPeriod) -> W {
    match s {
        SummaryPeriod::Off => W::SummaryOff,
        SummaryPeriod::Daily => W::SummaryDaily,
        SummaryPeriod::Weekly => W::SummaryWeekly,
    }
}

/// Where a target sends: its addresses or its (masked) URL.
fn destination(t: &NotifyTarget) -> String {
    match (&t.email, &t.webhook) {
        (Some(e), _) => e.recipients.join(", "),
        (_, Some(w)) => w.url.clone(),
        _ => String::new(),
    }
}

/// `GET /t/{tenant}/notifications`.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let w = |w: W| w.text(v.lang);
    let note = q.note(&[
        ("tested", w(W::TestSent)),
        ("made", w(W::TargetMade)),
        ("saved", w(W::TargetSaved)),
        ("deleted", w(W::TargetDeleted)),
    ]);
    page(
        &state,
        &v,
        &id,
        StatusCode::OK,
        note,
        &TargetForm::default(),
    )
    .await
    .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
    form: &TargetForm,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::NotifyRead, id).await?;
    let pool = &state.db.pool;
    let scope = TenantScope::One(t.tenant.id.clone());
    let targets = crate::db::notify::targets_in(pool, &scope, Some(&Page::first(500))).await?;
    let targets: Vec<_> = targets
        .items
        .into_iter()
        .map(crate::notify::targets::shown)
        .collect();
    let log = crate::db::notify::deliveries_in(pool, &scope, None, &Page::first(LOG_ROWS)).await?;
    let can_write = v.caller.can(Permission::NotifyWrite, &t.path);
    let lang = v.lang;
    let w = |w: W| w.text(lang);
    let title = W::NotificationsOf.fill(lang, &[&t.tenant.name]);
    let target_name = |id: &str| {
        targets
            .iter()
            .find(|t| t.id == id)
            .map_or(w(W::GoneTarget), |t| t.name.as_str())
    };
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        h2 #targets-h { (w(W::Targets)) }
        @if targets.is_empty() {
            p { (w(W::NoTargets)) }
        } @else {
            (scroll(w(W::Targets), html! { table aria-labelledby="targets-h" {
                thead { tr {
                    th scope="col" { (v.t(M::Name)) }
                    th scope="col" { (v.t(M::Kind)) }
                    th scope="col" { (w(W::Where)) }
                    th scope="col" { (w(W::Hears)) }
                    th scope="col" { (w(W::Summary)) }
                    th scope="col" { (v.t(M::Status)) }
                    @if can_write { th scope="col" { span.visually-hidden { (w(W::SendTest)) } } }
                } }
                tbody {
                    @for n in &targets {
                        tr data-target=(n.id) {
                            th scope="row" { (n.name) }
                            td { (w(match n.kind { TargetKind::Email => W::Email, TargetKind::Webhook => W::Webhook })) }
                            td { span.path { (destination(n)) } }
                            td { (w(severity(n.min_severity))) }
                            td { (w(summary(n.summary))) }
                            td {
                                @if n.enabled { span.badge.ok { (w(W::Active)) } }
                                @else { span.badge.none { (w(W::Paused)) } }
                            }
                            @if can_write { td { (actions(v, n)) } }
                        }
                    }
                }
            } }))
        }
        h2 #log-h { (w(W::Deliveries)) }
        @if log.items.is_empty() {
            p { (w(W::NoDeliveries)) }
        } @else {
            (scroll(w(W::Deliveries), html! { table aria-labelledby="log-h" {
                thead { tr {
                    th scope="col" { (w(W::When)) }
                    th scope="col" { (w(W::Event)) }
                    th scope="col" { (w(W::Target)) }
                    th scope="col" { (v.t(M::Status)) }
                    th scope="col" { (w(W::Tries)) }
                    th scope="col" { (w(W::LastError)) }
                } }
                tbody {
                    @for d in &log.items {
                        tr data-delivery=(d.id) {
                            td { (v.time(d.created_at)) }
                            td { code { (d.event_kind.as_str()) } }
                            td { (target_name(&d.target_id)) }
                            td {
                                @match d.state {
                                    DeliveryState::Queued => span.badge.warning { (w(W::Queued)) },
                                    DeliveryState::Succeeded => span.badge.ok { (w(W::Delivered)) },
                                    DeliveryState::Failed => span.badge.failed { (w(W::GaveUp)) },
                                }
                            }
                            td { (d.attempts) }
                            td {
                                @if let Some(e) = &d.last_error { (e) }
                                @if let Some(s) = d.response_status { " (HTTP " (s) ")" }
                            }
                        }
                    }
                }
            } }))
        }
        @if can_write { (new_forms(v, &t.tenant.id, form)) }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// A target's buttons: test, pause or resume, delete.
fn actions(v: &Viewer, n: &NotifyTarget) -> Markup {
    let lang = v.lang;
    let (flip, flip_label) = if n.enabled {
        (W::Pause, W::PauseTarget)
    } else {
        (W::Resume, W::ResumeTarget)
    };
    html! {
        form.inline method="post" action={"/notifications/" (n.id) "/test"} {
            (token(&v.csrf))
            button type="submit" aria-label=(W::SendTestTo.fill(lang, &[&n.name])) { (W::SendTest.text(lang)) }
        }
        form.inline method="post" action={"/notifications/" (n.id) "/enabled"} {
            (token(&v.csrf))
            input type="hidden" name="enabled" value=(!n.enabled);
            button type="submit" aria-label=(flip_label.fill(lang, &[&n.name])) { (flip.text(lang)) }
        }
        form.inline method="post" action={"/notifications/" (n.id) "/delete"} {
            (token(&v.csrf))
            button.danger type="submit" aria-label=(W::DeleteTarget.fill(lang, &[&n.name])) { (W::Delete.text(lang)) }
        }
    }
}

/// The two forms that add a target: a mailing list and a webhook.
fn new_forms(v: &Viewer, tenant: &str, form: &TargetForm) -> Markup {
    let lang = v.lang;
    let w = |w: W| w.text(lang);
    let action = format!("/t/{tenant}/notifications");
    let hears = |prefix: &str| {
        let id = format!("{prefix}-severity");
        html! {
            p.field {
                label for=(id) { (w(W::MinSeverity)) }
                select id=(id) name="min_severity" {
                    @for s in [Severity::Warning, Severity::Error, Severity::Info] {
                        option value=(s.as_str()) selected[form.min_severity == s.as_str()] { (w(severity(s))) }
                    }
                }
            }
        }
    };
    let email = form.kind != "webhook";
    html! {
        section aria-labelledby="email-h" {
            h2 #email-h { (w(W::NewEmail)) }
            form method="post" action=(action) {
                (token(&v.csrf))
                input type="hidden" name="kind" value="email";
                (Input { required: true, autocomplete: Some("off"), value: if email { &form.name } else { "" },
                         ..Input::new("email-name", v.t(M::Name), "text") }.render())
                p.field {
                    label for="recipients" { (w(W::Recipients)) }
                    textarea #recipients name="recipients" rows="3" required { (form.recipients) }
                }
                (hears("email"))
                p.field {
                    label for="summary" { (w(W::Summary)) }
                    select #summary name="summary" {
                        @for s in SummaryPeriod::ALL {
                            option value=(s.as_str()) selected[form.summary == s.as_str()] { (w(summary(*s))) }
                        }
                    }
                }
                p.field {
                    label for="language" { (w(W::MailLanguage)) }
                    select #language name="language" {
                        option value="en" selected[lang == Language::En] { "English" }
                        option value="nl" selected[lang == Language::Nl] { "Nederlands" }
                    }
                }
                p { button type="submit" { (w(W::Add)) } }
            }
        }
        section aria-labelledby="webhook-h" {
            h2 #webhook-h { (w(W::NewWebhook)) }
            form method="post" action=(action) {
                (token(&v.csrf))
                input type="hidden" name="kind" value="webhook";
                (Input { required: true, autocomplete: Some("off"), value: if email { "" } else { &form.name },
                         ..Input::new("webhook-name", v.t(M::Name), "text") }.render())
                (Input { required: true, autocomplete: Some("off"), value: &form.url,
                         ..Input::new("url", w(W::WebhookUrl), "url") }.render())
                (hears("webhook"))
                p { button type="submit" { (w(W::Add)) } }
            }
        }
    }
}

/// What the forms that add a target post.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TargetForm {
    #[serde(default)]
    kind: String,
    #[serde(default, alias = "email-name", alias = "webhook-name")]
    name: String,
    #[serde(default)]
    recipients: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    min_severity: String,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    language: String,
}

impl TargetForm {
    fn request(&self, tenant_id: TenantId) -> ApiResult<CreateTarget> {
        let bad = |what: &str| ApiError::bad_request(format!("unknown {what}"));
        let min_severity = Some(self.min_severity.parse().map_err(|_| bad("severity"))?);
        let (email, webhook, summary) = match self.kind.as_str() {
            "email" => {
                let recipients = self
                    .recipients
                    .split(['\n', ','])
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect();
                let language = self.language.parse().map_err(|_| bad("language"))?;
                let summary = self.summary.parse().map_err(|_| bad("summary period"))?;
                let e = EmailSettings {
                    recipients,
                    language,
                };
                (Some(e), None, Some(summary))
            }
            "webhook" => {
                let url = self.url.trim().to_string();
                (None, Some(WebhookSettings { url }), None)
            }
            _ => return Err(bad("kind of target")),
        };
        Ok(CreateTarget {
            tenant_id,
            name: self.name.clone(),
            email,
            webhook,
            min_severity,
            kinds: Vec::new(),
            include_children: None,
            summary,
        })
    }
}

/// `POST /t/{tenant}/notifications`: adds a target; a webhook's signing secret is shown on
/// the page that answers, once.
pub async fn create(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<TargetForm>,
) -> Response {
    let made = async {
        // Whose page it is before what the form says: another tenant's is a 404.
        let t = v
            .caller
            .tenant(&state, Permission::NotifyWrite, &id)
            .await?;
        let tenant_id = TenantId::parse(&t.tenant.id).map_err(|_| ApiError::not_found())?;
        let req = f.request(tenant_id)?;
        crate::notify::targets::create(&state, &v.caller, req).await
    };
    match made.await {
        Ok(made) => match made.webhook_secret {
            Some(secret) => {
                let shown = html! {
                    p.status role="status" { (W::SecretOnce.fill(v.lang, &[&made.target.name])) }
                    pre.code { code #webhook-secret { (secret) } }
                };
                page(
                    &state,
                    &v,
                    &id,
                    StatusCode::CREATED,
                    Some(shown),
                    &TargetForm::default(),
                )
                .await
                .unwrap_or_else(|e| super::failed(v.lang, e))
            }
            None => Redirect::to(&format!("/t/{id}/notifications?done=made")).into_response(),
        },
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                page(&state, &v, &id, status, Some(why), &f)
            })
            .await
        }
    }
}

/// The target `id` names and its tenant, when the reader may read it (else 404).
async fn target_tenant(state: &AppState, v: &Viewer, id: &str) -> ApiResult<(TargetId, String)> {
    let id = TargetId::parse(id).map_err(|_| ApiError::not_found())?;
    let t = crate::notify::targets::scoped(state, &v.caller, Permission::NotifyRead, &id).await?;
    Ok((id, t.target.tenant_id))
}

/// `POST /notifications/{id}/test`: sends a test through the target.
pub async fn test(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    let sent = async {
        let (id, tenant) = target_tenant(&state, &v, &id).await?;
        crate::notify::targets::test(&state, &v.caller, &id).await?;
        Ok::<_, ApiError>(tenant)
    };
    match sent.await {
        Ok(t) => Redirect::to(&format!("/t/{t}/notifications?done=tested")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

#[derive(Deserialize)]
pub struct Enabled {
    enabled: bool,
}

/// `POST /notifications/{id}/enabled`: pauses or resumes the target.
pub async fn enabled(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<Enabled>,
) -> Response {
    let changed = async {
        let (id, tenant) = target_tenant(&state, &v, &id).await?;
        let req = UpdateTarget {
            name: None,
            enabled: Some(f.enabled),
            min_severity: None,
            kinds: None,
            include_children: None,
            summary: None,
            email: None,
            webhook: None,
        };
        crate::notify::targets::update(&state, &v.caller, &id, req).await?;
        Ok::<_, ApiError>(tenant)
    };
    match changed.await {
        Ok(t) => Redirect::to(&format!("/t/{t}/notifications?done=saved")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

/// `POST /notifications/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    let deleted = async {
        let (id, tenant) = target_tenant(&state, &v, &id).await?;
        crate::notify::targets::delete(&state, &v.caller, &id).await?;
        Ok::<_, ApiError>(tenant)
    };
    match deleted.await {
        Ok(t) => Redirect::to(&format!("/t/{t}/notifications?done=deleted")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mailing_form_becomes_a_request_with_one_address_a_line_or_comma() {
        let f = TargetForm {
            kind: "email".into(),
            name: "Ops".into(),
            recipients: "a@example.com, b@example.com\n\n c@example.com ".into(),
            min_severity: "error".into(),
            summary: "weekly".into(),
            language: "nl".into(),
            ..TargetForm::default()
        };
        let r = f
            .request(TenantId::parse("tn_00000000000000000000000000000000").unwrap())
            .unwrap();
        let e = r.email.unwrap();
        assert_eq!(
            e.recipients,
            ["a@example.com", "b@example.com", "c@example.com"]
        );
        assert_eq!(e.language, Language::Nl);
        assert_eq!(r.min_severity, Some(Severity::Error));
        assert_eq!(r.summary, Some(SummaryPeriod::Weekly));
        assert!(r.webhook.is_none());
        let unknown = TargetForm {
            kind: "pager".into(),
            min_severity: "error".into(),
            ..TargetForm::default()
        };
        assert!(
            unknown
                .request(TenantId::parse("tn_00000000000000000000000000000000").unwrap())
                .is_err()
        );
    }
}
