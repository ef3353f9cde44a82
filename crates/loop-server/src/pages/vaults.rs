//! Vaults: a tenant's vaults; one vault with its location, jurisdiction, retention lock,
//! replicas (and how far behind they are) and snapshots, each opening in the snapshot
//! browser (`pages::snapshots`). Only a managed vault's snapshots can be listed here; for a
//! customer-key vault the page says why not.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use loop_api::{KeyCustody, Vault};
use maud::html;

use super::catalogue::M;
use super::layout::{document, scroll};
use super::reader::Viewer;
use crate::domain::Permission;
use crate::domain::TenantScope;
use crate::error::ApiError;
use crate::notify::email::size;
use crate::state::AppState;
use crate::vaults::reader;

/// `GET /t/{tenant}/vaults`.
pub async fn list(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    let shown = async {
        let t = v.caller.tenant(&state, Permission::VaultRead, &id).await?;
        let vaults = crate::db::vaults::vaults_in(
            &state.db.pool,
            &TenantScope::One(t.tenant.id.clone()),
            None,
        )
        .await?
        .items;
        let title = M::VaultsOf.fill(v.lang, &[&t.tenant.name]);
        let content = html! {
            (v.tenant_menu(&t))
            @if vaults.is_empty() {
                p { (v.t(M::NoVaults)) }
            } @else {
                (scroll(&title, html! { table {
                    thead { tr {
                        th scope="col" { (v.t(M::Name)) }
                        th scope="col" { (v.t(M::Location)) }
                        th scope="col" { (v.t(M::Key)) }
                        th scope="col" { (v.t(M::Used)) }
                        th scope="col" { (v.t(M::RetentionLock)) }
                    } }
                    tbody {
                        @for x in &vaults {
                            @let x = crate::vaults::with_jurisdiction(&state, x.clone());
                            tr {
                                th scope="row" { a href={"/vaults/" (x.id)} { (x.name) } }
                                td { (x.destination) " (" (x.jurisdiction) ")" }
                                td { (custody(&v, x.key_custody)) }
                                td { (used(&v, &x)) }
                                td { (lock(&v, x.retention_lock_days)) }
                            }
                        }
                    }
                } }))
            }
        };
        Ok(document(StatusCode::OK, &v.frame(), &title, content))
    };
    shown
        .await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}

fn custody(v: &Viewer, k: KeyCustody) -> &'static str {
    match k {
        KeyCustody::Managed => v.t(M::KeyManaged),
        _ => v.t(M::KeyCustomer),
    }
}

fn used(v: &Viewer, x: &Vault) -> String {
    match x.quota_bytes {
        Some(q) => M::StorageOf.fill(v.lang, &[&size(x.used_bytes), &size(q)]),
        None => size(x.used_bytes),
    }
}

fn lock(v: &Viewer, days: Option<u32>) -> String {
    match days {
        Some(d) if d > 0 => M::LockDays.fill(v.lang, &[&d.to_string()]),
        _ => v.t(M::NoLock).to_string(),
    }
}

/// `GET /vaults/{vault}`: the vault, its replicas and its snapshots.
pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    let shown = async {
        let x =
            crate::vaults::scoped_vault_text(&state, &v.caller, Permission::VaultRead, &id).await?;
        let t = v
            .caller
            .tenant(&state, Permission::VaultRead, &x.tenant_id)
            .await?;
        let mut replicas = Vec::new();
        for r in crate::db::replicas::of_vault(&state.db.pool, &x.id).await? {
            replicas.push(crate::vaults::replica_view(&state, r).await?);
        }
        let snapshots = match x.key_custody {
            KeyCustody::Managed => {
                let opened = reader::open(&state, &x).await?;
                Some(reader::snapshots(&opened, &x.id).await?)
            }
            _ => None,
        };
        let browse = v.caller.can(Permission::VaultContents, &t.path);
        let title = M::VaultNamed.fill(v.lang, &[&x.name]);
        let content = html! {
            (v.tenant_menu(&t))
            dl.facts {
                dt { (v.t(M::Tenant)) } dd { (t.tenant.name) }
                dt { (v.t(M::Location)) } dd { (x.destination) }
                dt { (v.t(M::Jurisdiction)) } dd { (x.jurisdiction) }
                dt { (v.t(M::Key)) } dd { (custody(&v, x.key_custody)) }
                dt { (v.t(M::Used)) } dd { (used(&v, &x)) }
                dt { (v.t(M::RetentionLock)) } dd { (lock(&v, x.retention_lock_days)) }
                dt { (v.t(M::Created)) } dd { (v.time(x.created_at)) }
            }
            section aria-labelledby="replicas-h" {
                h2 #replicas-h { (v.t(M::Replicas)) }
                @if replicas.is_empty() {
                    p { (v.t(M::NoReplicas)) }
                } @else {
                    (scroll(v.t(M::Replicas), html! { table {
                        thead { tr {
                            th scope="col" { (v.t(M::Location)) }
                            th scope="col" { (v.t(M::Jurisdiction)) }
                            th scope="col" { (v.t(M::State)) }
                            th scope="col" { (v.t(M::LastSynced)) }
                            th scope="col" { (v.t(M::Behind)) }
                            th scope="col" { (v.t(M::Verified)) }
                        } }
                        tbody {
                            @for r in &replicas {
                                tr {
                                    th scope="row" { (r.destination) }
                                    td { (r.jurisdiction) }
                                    td { (r.state) }
                                    td { @match r.synced_at { Some(s) => (v.time(s)), None => (v.t(M::Never)) } }
                                    td { (M::BehindBy.fill(v.lang, &[&r.objects_behind.to_string(), &size(r.bytes_behind)])) }
                                    td {
                                        @match (r.verified_at, r.verify_ok) {
                                            (Some(at), Some(true)) => { span.badge.ok { (v.t(M::Whole)) } " " (v.time(at)) }
                                            (Some(at), _) => { span.badge.failed { (v.t(M::Damaged)) } " " (v.time(at)) }
                                            _ => (v.t(M::Never)),
                                        }
                                    }
                                }
                            }
                        }
                    } }))
                }
            }
            section aria-labelledby="snapshots-h" {
                h2 #snapshots-h { (v.t(M::Snapshots)) }
                @match &snapshots {
                    None => p { (v.t(M::CustomerKeyText)) },
                    Some(list) if list.is_empty() => p { (v.t(M::NoSnapshots)) },
                    Some(list) => (scroll(v.t(M::Snapshots), html! { table {
                        thead { tr {
                            th scope="col" { (v.t(M::Time)) }
                            th scope="col" { (v.t(M::Host)) }
                            th scope="col" { (v.t(M::Paths)) }
                            th scope="col" { (v.t(M::Files)) }
                            th scope="col" { (v.t(M::Size)) }
                        } }
                        tbody {
                            @for (sid, s) in list {
                                @let sum = s.summary.clone().unwrap_or_default();
                                @let at = s.time.with_timezone(&chrono::Utc);
                                tr data-snapshot=(sid.to_hex()) {
                                    th scope="row" {
                                        @if browse {
                                            a href={"/vaults/" (x.id) "/snapshots/" (sid.to_hex())} { (v.time(at)) }
                                        } @else {
                                            (v.time(at))
                                        }
                                    }
                                    td { (s.hostname) }
                                    td { (s.paths.join(", ")) }
                                    td { (sum.total_files_processed) }
                                    td { (size(sum.total_bytes_processed)) }
                                }
                            }
                        }
                    } })),
                }
            }
        };
        Ok(document(StatusCode::OK, &v.frame(), &title, content))
    };
    shown
        .await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}
