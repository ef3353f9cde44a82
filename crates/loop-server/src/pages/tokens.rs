//! A tenant's tokens: device tokens (made by enrolment) and API tokens, each with what it may
//! do, which vaults it reaches, when it expires and when it was last used; a form makes an API
//! token, whose secret the answering page shows once; each live token can be revoked. Both
//! changes go through the API's own functions ([`crate::tokens`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{CreateToken, TenantId, TokenId, TokenKind, TokenPermission, VaultId};
use maud::{Markup, html};

use super::catalogue::M;
use super::layout::{Input, document, scroll, token};
use super::names::Names;
use super::reader::{Done, Posted, Viewer};
use crate::db::page::Page;
use crate::domain::{Permission, TenantScope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `GET /t/{tenant}/tokens`.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let note = q.note(&[("revoked", v.t(M::TokenRevoked))]);
    page(&state, &v, &id, StatusCode::OK, note)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::TokenRead, id).await?;
    let pool = &state.db.pool;
    let scope = TenantScope::One(t.tenant.id.clone());
    let tokens = crate::db::tokens::tokens_in(pool, &scope, Some(&Page::first(500))).await?;
    let names = Names::of(state, &t.tenant.id).await?;
    let can_write = v.caller.can(Permission::TokenWrite, &t.path);
    let title = M::TokensOf.fill(v.lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        @if tokens.items.is_empty() {
            p { (v.t(M::NoTokens)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { (v.t(M::Name)) }
                    th scope="col" { (v.t(M::Holder)) }
                    th scope="col" { (v.t(M::MayDo)) }
                    th scope="col" { (v.t(M::Vaults)) }
                    th scope="col" { (v.t(M::Expires)) }
                    th scope="col" { (v.t(M::LastUsed)) }
                    th scope="col" { (v.t(M::Status)) }
                } }
                tbody {
                    @for k in &tokens.items {
                        tr data-token=(k.id) {
                            th scope="row" { (k.name) }
                            td {
                                @match (&k.kind, &k.device_id) {
                                    (TokenKind::Device, Some(d)) => (names.device(d)),
                                    _ => (v.t(M::ApiToken)),
                                }
                            }
                            td { (k.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(", ")) }
                            td {
                                @if k.vault_ids.is_empty() { (v.t(M::EveryVault)) }
                                @else { (k.vault_ids.iter().map(|id| names.vault(id)).collect::<Vec<_>>().join(", ")) }
                            }
                            td { @match k.expires_at { Some(e) => (v.time(e)), None => (v.t(M::Never)) } }
                            td { @match k.last_used_at { Some(u) => (v.time(u)), None => (v.t(M::NeverUsed)) } }
                            td {
                                @if k.revoked_at.is_some() {
                                    span.badge.none { (v.t(M::RevokedState)) }
                                } @else if can_write {
                                    form.inline method="post" action={"/tokens/" (k.id) "/revoke"} {
                                        (token(&v.csrf))
                                        button type="submit" aria-label=(M::RevokeToken.fill(v.lang, &[&k.name])) { (v.t(M::RevokeButton)) }
                                    }
                                } @else {
                                    span.badge.ok { (v.t(M::Live)) }
                                }
                            }
                        }
                    }
                }
            } }))
        }
        @if can_write {
            section aria-labelledby="token-h" {
                h2 #token-h { (v.t(M::NewApiToken)) }
                form method="post" action={"/t/" (t.tenant.id) "/tokens"} {
                    (token(&v.csrf))
                    (Input { required: true, autocomplete: Some("off"), ..Input::new("name", v.t(M::Name), "text") }.render())
                    fieldset {
                        legend { (v.t(M::MayDo)) }
                        @for p in TokenPermission::ALL {
                            p.check {
                                input type="checkbox" name="permissions" value=(p.as_str()) id={"perm-" (p.as_str())};
                                label for={"perm-" (p.as_str())} { (p.as_str()) }
                            }
                        }
                    }
                    @if !names.vaults.is_empty() {
                        fieldset {
                            legend { (v.t(M::VaultsHelp)) }
                            @for vault in &names.vaults {
                                p.check {
                                    input type="checkbox" name="vault" value=(vault.id) id={"vault-" (vault.id)};
                                    label for={"vault-" (vault.id)} { (vault.name) }
                                }
                            }
                        }
                    }
                    (Input { autocomplete: Some("off"), inputmode: Some("numeric"),
                             ..Input::new("expires_in_days", v.t(M::ExpiresInDays), "text") }.render())
                    p { button type="submit" { (v.t(M::MakeToken)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// `POST /t/{tenant}/tokens`: a new API token, its secret shown once on the page that
/// answers (never in an address).
pub async fn create(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(fields): Posted<Vec<(String, String)>>,
) -> Response {
    let made = async {
        let tenant_id = TenantId::parse(&id).map_err(|_| ApiError::not_found())?;
        let all = |key: &'static str| fields.iter().filter(move |(k, _)| k == key).map(|(_, v)| v);
        let permissions = all("permissions")
            .map(|p| p.parse::<TokenPermission>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let vault_ids = all("vault")
            .map(|v| VaultId::parse(v))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ApiError::bad_request("no such vault in this tenant"))?;
        let days = all("expires_in_days")
            .next()
            .map(|d| d.trim())
            .unwrap_or("");
        let expires_in_days = match days {
            "" => None,
            d => Some(
                d.parse::<u32>()
                    .map_err(|_| ApiError::bad_request("the lifetime is a whole number of days"))?,
            ),
        };
        let req = CreateToken {
            tenant_id,
            name: all("name").next().cloned().unwrap_or_default(),
            kind: TokenKind::Api,
            device_id: None,
            vault_ids,
            permissions,
            expires_in_days,
        };
        crate::tokens::create(&state, &v.caller, req).await
    };
    let shown = match made.await {
        Ok(made) => html! {
            p.status role="status" { (M::TokenShownOnce.fill(v.lang, &[&made.token.name])) }
            pre.code { code #token-secret { (made.secret.expose()) } }
        },
        Err(e) => {
            return super::refused(v.lang, e, |status, why| {
                page(&state, &v, &id, status, Some(why))
            })
            .await;
        }
    };
    page(&state, &v, &id, StatusCode::CREATED, Some(shown))
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

/// `POST /tokens/{token}/revoke`: the token stops working at once.
pub async fn revoke(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<super::reader::NoFields>,
) -> Response {
    let done = async {
        let id = TokenId::parse(&id).map_err(|_| ApiError::not_found())?;
        let tenant = crate::db::tokens::token_by_id(&state.db.pool, id.as_str())
            .await?
            .map(|t| t.tenant_id);
        crate::tokens::revoke(&state, &v.caller, &id).await?;
        tenant.ok_or_else(ApiError::not_found)
    };
    match done.await {
        Ok(t) => Redirect::to(&format!("/t/{t}/tokens?done=revoked")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}
