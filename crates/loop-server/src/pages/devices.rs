//! A tenant's devices: each with its online state (heard from in the last five minutes, as
//! the dashboard counts), its agent's version and its protected items; and enrolment codes,
//! made here and shown once with the command that uses them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::catalogue::M;
use super::layout::{document, scroll, token};
use super::reader::{NoFields, Posted, Viewer};
use crate::domain::Permission;
use crate::error::ApiResult;
use crate::metrics::ONLINE_MS;
use crate::state::AppState;

/// `GET /t/{tenant}/devices`.
pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    page(&state, &v, &id, None)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn page(state: &AppState, v: &Viewer, id: &str, code: Option<Markup>) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::DeviceRead, id).await?;
    let devices = crate::db::dashboard::devices_of(&state.db.pool, &t.tenant.id).await?;
    let now = state.now();
    let title = M::DevicesOf.fill(v.lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if devices.is_empty() {
            p { (v.t(M::NoDevices)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { (v.t(M::Device)) }
                    th scope="col" { (v.t(M::Status)) }
                    th scope="col" { (v.t(M::LastSeen)) }
                    th scope="col" { (v.t(M::AgentVersion)) }
                    th scope="col" { (v.t(M::Items)) }
                } }
                tbody {
                    @for d in &devices {
                        @let seen = d.device.last_seen_at;
                        @let online = seen.is_some_and(|s| now - s.timestamp_millis() < ONLINE_MS);
                        tr data-device=(d.device.id) {
                            th scope="row" { (d.device.name) }
                            td {
                                @if online {
                                    span.badge.ok { (v.t(M::Online)) }
                                } @else {
                                    span.badge.none { (v.t(M::Offline)) }
                                }
                            }
                            td {
                                @match seen {
                                    Some(s) => (v.time(s)),
                                    None => (v.t(M::NeverSeen)),
                                }
                            }
                            td { (d.agent_version.as_deref().unwrap_or("—")) }
                            td { (d.items) }
                        }
                    }
                }
            } }))
        }
        @if v.caller.can(Permission::DeviceWrite, &t.path) {
            section aria-labelledby="enrol-h" {
                h2 #enrol-h { (v.t(M::EnrolDevice)) }
                @if let Some(c) = code { (c) } @else { p { (v.t(M::EnrolHelp)) } }
                form method="post" action={"/t/" (t.tenant.id) "/devices"} {
                    (token(&v.csrf))
                    p { button type="submit" { (v.t(M::MakeCode)) } }
                }
            }
        }
    };
    Ok(document(StatusCode::OK, &v.frame(), &title, content))
}

/// `POST /t/{tenant}/devices`: a new enrolment code, shown once on the page it answers with
/// (never in an address), with the command that uses it.
pub async fn new_code(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    let shown = async {
        let code = crate::enrolment::new_code(&state, &v.caller, &id, None).await?;
        let server = state
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| "https://SERVER".to_string());
        let secret = code.code.expose().to_string();
        let box_ = html! {
            p.status role="status" { (M::CodeShownOnce.fill(v.lang, &[&v.zone.text(code.expires_at)])) }
            pre.code { code #enrolment-code { (secret) } }
            p { (M::EnrolOnTheMachine.text(v.lang)) }
            pre.code { "loop agent enroll --server " (server) }
        };
        page(&state, &v, &id, Some(box_)).await
    };
    shown.await.unwrap_or_else(|e| super::failed(v.lang, e))
}
