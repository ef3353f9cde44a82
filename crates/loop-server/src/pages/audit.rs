//! A tenant's audit log: newest first, filtered by action, actor, object and dates, paged
//! back in time; exported through the API's streamed export with the same filters; and the
//! chain verified on request, event by event from the first, against the head the server
//! keeps.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use loop_api::Language;
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::M;
use super::layout::{alert, document, scroll};
use super::reader::Viewer;
use crate::db::audit::{self, Filter};
use crate::domain::{Permission, TenantScope};
use crate::error::ApiResult;
use crate::state::AppState;

/// Events on one page of the log.
const PAGE: i64 = 100;
/// Events per database round trip while verifying.
const VERIFY_PAGE: i64 = 2000;

#[derive(Debug, Default, Deserialize)]
pub struct AuditForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor_id: String,
    #[serde(default)]
    object_id: String,
    /// `YYYY-MM-DD`, from the start of that day (UTC).
    #[serde(default)]
    since: String,
    /// `YYYY-MM-DD`, before the start of that day (UTC).
    #[serde(default)]
    until: String,
    /// Events older than this sequence number (the next page back).
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    verify: Option<String>,
}

fn some(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The start of a day written `YYYY-MM-DD`, in ms.
fn day_start(s: &str) -> Result<Option<i64>, ()> {
    match some(s) {
        None => Ok(None),
        Some(d) => chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map(|d| {
                Some(
                    d.and_time(chrono::NaiveTime::MIN)
                        .and_utc()
                        .timestamp_millis(),
                )
            })
            .map_err(|_| ()),
    }
}

/// `GET /t/{tenant}/audit`.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(f): Query<AuditForm>,
) -> Response {
    match render(&state, &v, &id, &f).await {
        Ok(r) => r,
        Err(e) => super::failed(v.lang, e),
    }
}

async fn render(state: &AppState, v: &Viewer, id: &str, f: &AuditForm) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::AuditRead, id).await?;
    let (since, until) = match (day_start(&f.since), day_start(&f.until)) {
        (Ok(s), Ok(u)) => (s, u),
        _ => {
            let content = html! { (alert(v.t(M::BadDate))) (filters(v, id, f)) };
            let title = M::AuditOf.fill(v.lang, &[&t.tenant.name]);
            return Ok(document(
                StatusCode::BAD_REQUEST,
                &v.frame(),
                &title,
                content,
            ));
        }
    };
    let filter = Filter {
        tenant_ids: vec![t.tenant.id.clone()],
        action: some(&f.action),
        actor_id: some(&f.actor_id),
        object_id: some(&f.object_id),
        since_ms: since,
        until_ms: until,
        before_seq: f.before,
        newest_first: true,
        limit: PAGE,
        ..Filter::default()
    };
    let events = audit::query(&state.db.pool, &filter).await?;
    let verified = match f.verify.is_some() {
        true => Some(verify(state, v.lang, &t.tenant.id).await?),
        false => None,
    };
    // The same filters, as the API's export and the next page take them.
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, val) in [
        ("action", &f.action),
        ("actor_id", &f.actor_id),
        ("object_id", &f.object_id),
    ] {
        if let Some(val) = some(val) {
            query.append_pair(k, &val);
        }
    }
    let kept = query.finish();
    let mut export = form_urlencoded::Serializer::new(format!("tenant_id={}", t.tenant.id));
    if let Some(ms) = since {
        export.append_pair("since", &rfc3339(ms));
    }
    if let Some(ms) = until {
        export.append_pair("until", &rfc3339(ms));
    }
    let export = format!("{}&{kept}", export.finish());
    let older = events
        .last()
        .filter(|_| events.len() as i64 == PAGE)
        .map(|e| {
            format!(
                "/t/{id}/audit?{kept}&since={}&until={}&before={}",
                f.since.trim(),
                f.until.trim(),
                e.seq
            )
        });
    let title = M::AuditOf.fill(v.lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(r) = &verified { (r) }
        (filters(v, id, f))
        p.actions {
            a href={"/api/v1/audit/export?" (export) "&format=csv"} download { (v.t(M::ExportCsv)) }
            " · "
            a href={"/api/v1/audit/export?" (export) "&format=jsonl"} download { (v.t(M::ExportJsonl)) }
        }
        @if events.is_empty() {
            p { (v.t(M::NoEvents)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { "#" }
                    th scope="col" { (v.t(M::Time)) }
                    th scope="col" { (v.t(M::Actor)) }
                    th scope="col" { (v.t(M::Action)) }
                    th scope="col" { (v.t(M::Object)) }
                    th scope="col" { (v.t(M::Outcome)) }
                    th scope="col" { (v.t(M::Address)) }
                } }
                tbody {
                    @for e in &events {
                        tr data-seq=(e.seq) {
                            td { (e.seq) }
                            td { (v.time(e.at)) }
                            td { (e.actor_kind.as_str()) " " (e.actor_id.as_deref().unwrap_or("")) }
                            td { code { (e.action) } }
                            td { (e.object_kind) " " (e.object_id.as_deref().unwrap_or("")) }
                            td { (e.outcome.as_str()) }
                            td { (e.ip.as_deref().unwrap_or("")) }
                        }
                    }
                }
            } }))
        }
        @if let Some(href) = older { p { a href=(href) { (v.t(M::OlderEvents)) } } }
    };
    Ok(document(StatusCode::OK, &v.frame(), &title, content))
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The filter form (a search: it changes nothing, so it is a GET without a token).
fn filters(v: &Viewer, id: &str, f: &AuditForm) -> Markup {
    let field = |name: &str, m: M, value: &str, kind: &str| {
        html! {
            p.field {
                label for=(name) { (v.t(m)) }
                input #(name) name=(name) type=(kind) value=(value);
            }
        }
    };
    html! {
        form.filters method="get" action={"/t/" (id) "/audit"} role="search" {
            (field("action", M::Action, &f.action, "text"))
            (field("actor_id", M::Actor, &f.actor_id, "text"))
            (field("object_id", M::Object, &f.object_id, "text"))
            (field("since", M::Since, &f.since, "date"))
            (field("until", M::Until, &f.until, "date"))
            p { button type="submit" { (v.t(M::Filter)) } }
        }
        form.verify method="get" action={"/t/" (id) "/audit"} {
            input type="hidden" name="verify" value="1";
            p { button type="submit" { (v.t(M::VerifyChain)) } }
        }
    }
}

/// Verifies the tenant's whole chain, in pages from its first event, and checks that it
/// reaches the head the server keeps. The head is read first: events appended while the
/// pages are read come after it, and the event at its place must carry its hash.
async fn verify(state: &AppState, lang: Language, tenant_id: &str) -> ApiResult<Markup> {
    let heads = audit::heads(
        &state.db.pool,
        &TenantScope::One(tenant_id.to_string()),
        &crate::db::page::Page::first(1),
    )
    .await?;
    let head = heads.items.into_iter().next();
    let mut at_head: Option<String> = None;
    let mut v = loop_api::audit::Verifier::default();
    let mut after = 0;
    loop {
        let f = Filter {
            tenant_ids: vec![tenant_id.to_string()],
            after_seq: Some(after),
            limit: VERIFY_PAGE,
            ..Filter::default()
        };
        let page = audit::query(&state.db.pool, &f).await?;
        for e in &page {
            if let Err(b) = v.push(e) {
                return Ok(broken(lang, b.seq, b.reason));
            }
            if head.as_ref().is_some_and(|h| h.seq == e.seq) {
                at_head = Some(e.hash.clone());
            }
        }
        match page.last() {
            Some(last) if page.len() as i64 == VERIFY_PAGE => after = last.seq as i64,
            _ => break,
        }
    }
    Ok(match (head, v.head(tenant_id)) {
        (None, None) => html! { p.status role="status" { (M::ChainEmpty.text(lang)) } },
        (Some(h), Some((seq, _))) if at_head.as_deref() == Some(h.hash.as_str()) => html! {
            p.status role="status" data-chain="intact" {
                (M::ChainIntact.fill(lang, &[&v.checked().to_string(), &seq.to_string()]))
            }
        },
        (Some(h), _) => broken(lang, h.seq, "events up to the chain head are missing"),
        (None, Some((seq, _))) => broken(lang, seq, "the server keeps no head for this chain"),
    })
}

fn broken(lang: Language, seq: u64, reason: &str) -> Markup {
    html! {
        p.alert role="alert" data-chain="broken" {
            (M::ChainBroken.fill(lang, &[&seq.to_string(), reason]))
        }
    }
}
