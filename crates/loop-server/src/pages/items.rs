//! A tenant's protected items and their schedules: what each device backs up, into which
//! vault, when (a calendar event or a cron line in the tenant's time zone) and when it runs
//! next. A form makes an item; an item's page changes or deletes it and runs it now. The
//! changes go through the API's own functions ([`crate::items`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{CreateItem, DeviceId, ItemId, ProtectedItem, TenantId, UpdateItem, VaultId};
use maud::{Markup, html};
use serde::Deserialize;

use super::catalogue::{M, catalogue};
use super::layout::{Input, document, scroll, token};
use super::names::Names;
use super::reader::{Done, NoFields, Posted, Viewer};
use crate::db::page::Page;
use crate::domain::{Permission, TenantScope};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

catalogue! {
    /// The words of the items' pages.
    W {
        ItemsOf: "Protected items of {0}", "Beschermde items van {0}";
        Vault: "Vault", "Kluis";
        Schedule: "Schedule", "Planning";
        NextRun: "Next run", "Volgende keer";
        OnlyAsked: "only when asked", "alleen op verzoek";
        NewItem: "Protect something", "Iets beschermen";
        NeedsDeviceAndVault: "A protected item needs a device and a vault of this tenant.",
            "Een beschermd item heeft een apparaat en een kluis van deze tenant nodig.";
        PathsHelp: "Folders and files on the device, one absolute path a line",
            "Mappen en bestanden op het apparaat, één absoluut pad per regel";
        ExcludesHelp: "Leave out (patterns, one a line)", "Overslaan (patronen, één per regel)";
        ScheduleHelp: "When, in {0}: daily, mon..fri 22:00, *:0/15 or a cron line; empty: only \
            when asked",
            "Wanneer, in {0}: daily, mon..fri 22:00, *:0/15 of een cron-regel; leeg: alleen op \
            verzoek";
        Make: "Make the item", "Het item maken";
        Change: "Change the item", "Het item wijzigen";
        Delete: "Delete the item", "Het item verwijderen";
        DeleteHelp: "Its snapshots stay in the vault, kept as the vault's policy says.",
            "De momentopnamen blijven in de kluis, bewaard zoals het beleid van de kluis zegt.";
        ItemMade: "The item is made.", "Het item is gemaakt.";
        ItemSaved: "The item is changed.", "Het item is gewijzigd.";
        ItemDeleted: "The item is deleted.", "Het item is verwijderd.";
        Excludes: "Left out", "Overgeslagen";
        UploadLimit: "Upload limit", "Uploadlimiet";
        UploadLimitHelp: "Upload at most this many KiB/s; empty: no limit",
            "Hoogstens zoveel KiB/s uploaden; leeg: geen limiet";
        NoLimit: "none", "geen";
    }
}

/// One path or pattern a line, blank lines dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// A labelled text area of one entry a line.
fn area(name: &str, label: &str, value: &[String], required: bool) -> Markup {
    html! {
        p.field {
            label for=(name) { (label) }
            textarea id=(name) name=(name) rows="3" required[required] { (value.join("\n")) }
        }
    }
}

/// `GET /t/{tenant}/items`.
pub async fn list(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let note = q.note(&[("deleted", W::ItemDeleted.text(v.lang))]);
    list_page(&state, &v, &id, StatusCode::OK, note, &ItemForm::default())
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
    form: &ItemForm,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::DeviceRead, id).await?;
    let pool = &state.db.pool;
    let scope = TenantScope::One(t.tenant.id.clone());
    let items = crate::db::items::items_in(pool, &scope, Some(&Page::first(1000))).await?;
    let names = Names::of(state, &t.tenant.id).await?;
    let (devices, vaults) = (&names.devices, &names.vaults);
    let lang = v.lang;
    let title = W::ItemsOf.fill(lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        @if items.items.is_empty() {
            p { (v.t(M::NoItems)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { (v.t(M::Item)) }
                    th scope="col" { (v.t(M::Device)) }
                    th scope="col" { (W::Vault.text(lang)) }
                    th scope="col" { (v.t(M::Paths)) }
                    th scope="col" { (W::Schedule.text(lang)) }
                    th scope="col" { (W::NextRun.text(lang)) }
                } }
                tbody {
                    @for i in &items.items {
                        tr data-item=(i.id) {
                            th scope="row" { a href={"/items/" (i.id)} { (i.name) } }
                            td { (names.device(&i.device_id)) }
                            td { (names.vault(&i.vault_id)) }
                            td { span.path { (i.paths.join(", ")) } }
                            td { (i.schedule.as_deref().unwrap_or(W::OnlyAsked.text(lang))) }
                            td { @match i.next_run_at { Some(n) => (v.time(n)), None => "—" } }
                        }
                    }
                }
            } }))
        }
        @if v.caller.can(Permission::DeviceWrite, &t.path) {
            section aria-labelledby="item-h" {
                h2 #item-h { (W::NewItem.text(lang)) }
                @if devices.is_empty() || vaults.is_empty() {
                    p { (W::NeedsDeviceAndVault.text(lang)) }
                } @else {
                    form method="post" action={"/t/" (t.tenant.id) "/items"} {
                        (token(&v.csrf))
                        (Input { required: true, autocomplete: Some("off"), value: &form.name,
                                 ..Input::new("name", v.t(M::Name), "text") }.render())
                        p.field {
                            label for="device" { (v.t(M::Device)) }
                            select #device name="device" {
                                @for d in devices {
                                    option value=(d.device.id) selected[form.device == d.device.id] { (d.device.name) }
                                }
                            }
                        }
                        p.field {
                            label for="vault" { (W::Vault.text(lang)) }
                            select #vault name="vault" {
                                @for vault in vaults {
                                    option value=(vault.id) selected[form.vault == vault.id] { (vault.name) }
                                }
                            }
                        }
                        (fields(v, &t.tenant.time_zone, form))
                        p { button type="submit" { (W::Make.text(lang)) } }
                    }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// The fields an item's form shares with the form that makes one.
fn fields(v: &Viewer, time_zone: &str, form: &ItemForm) -> Markup {
    let lang = v.lang;
    html! {
        (area("paths", W::PathsHelp.text(lang), &lines(&form.paths), true))
        (area("excludes", W::ExcludesHelp.text(lang), &lines(&form.excludes), false))
        (Input { autocomplete: Some("off"), value: &form.schedule,
                 ..Input::new("schedule", &W::ScheduleHelp.fill(lang, &[time_zone]), "text") }.render())
        (Input { autocomplete: Some("off"), inputmode: Some("numeric"), value: &form.upload_limit,
                 ..Input::new("upload_limit", W::UploadLimitHelp.text(lang), "text") }.render())
    }
}

/// The upload limit typed in a form: `None` when empty (no limit).
fn upload_limit(typed: &str) -> ApiResult<Option<u32>> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    typed.parse().map(Some).map_err(|_| {
        ApiError::bad_request("upload limit: a whole number of KiB/s, or empty for none")
    })
}

/// What an item's form posts.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ItemForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    vault: String,
    #[serde(default)]
    paths: String,
    #[serde(default)]
    excludes: String,
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    upload_limit: String,
}

impl ItemForm {
    fn of(i: &ProtectedItem) -> ItemForm {
        ItemForm {
            name: i.name.clone(),
            device: i.device_id.clone(),
            vault: i.vault_id.clone(),
            paths: i.paths.join("\n"),
            excludes: i.excludes.join("\n"),
            schedule: i.schedule.clone().unwrap_or_default(),
            upload_limit: i
                .upload_limit_kib
                .map(|k| k.to_string())
                .unwrap_or_default(),
        }
    }
}

/// `POST /t/{tenant}/items`: makes the item, then opens its page.
pub async fn create(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<ItemForm>,
) -> Response {
    let made = async {
        let not_found = |_| ApiError::not_found();
        let req = CreateItem {
            tenant_id: TenantId::parse(&id).map_err(not_found)?,
            device_id: DeviceId::parse(&f.device).map_err(not_found)?,
            vault_id: VaultId::parse(&f.vault).map_err(not_found)?,
            name: f.name.clone(),
            paths: lines(&f.paths),
            excludes: lines(&f.excludes),
            one_file_system: false,
            tags: Vec::new(),
            pre_command: None,
            post_command: None,
            schedule: Some(f.schedule.trim().to_string()).filter(|s| !s.is_empty()),
            jitter_seconds: None,
            window_seconds: None,
            upload_limit_kib: upload_limit(&f.upload_limit)?,
        };
        crate::items::create(&state, &v.caller, req).await
    };
    match made.await {
        Ok(i) => Redirect::to(&format!("/items/{}?done=created", i.id)).into_response(),
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                list_page(&state, &v, &id, status, Some(why), &f)
            })
            .await
        }
    }
}

/// `GET /items/{id}`: the item, with its form.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let w = |w: W| w.text(v.lang);
    let note = q.note(&[("created", w(W::ItemMade)), ("saved", w(W::ItemSaved))]);
    item_page(&state, &v, &id, StatusCode::OK, note, None)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn item_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
    form: Option<&ItemForm>,
) -> ApiResult<Response> {
    let i = crate::jobs::control::scoped_item(state, &v.caller, Permission::DeviceRead, id).await?;
    let t = v
        .caller
        .tenant(state, Permission::DeviceRead, &i.tenant_id)
        .await?;
    let pool = &state.db.pool;
    let device = crate::db::devices::device_by_id(pool, &i.device_id).await?;
    let vault = crate::db::vaults::vault_by_id(pool, &i.vault_id).await?;
    let lang = v.lang;
    let form = form.map_or_else(|| ItemForm::of(&i), ItemForm::clone);
    let can_write = v.caller.can(Permission::DeviceWrite, &t.path);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        dl.facts {
            dt { (v.t(M::Device)) } dd { (device.map(|d| d.name).unwrap_or_default()) }
            dt { (W::Vault.text(lang)) } dd { (vault.map(|v| v.name).unwrap_or_default()) }
            dt { (v.t(M::Paths)) } dd { (i.paths.join(", ")) }
            @if !i.excludes.is_empty() {
                dt { (W::Excludes.text(lang)) } dd { (i.excludes.join(", ")) }
            }
            dt { (W::Schedule.text(lang)) }
            dd { (i.schedule.as_deref().unwrap_or(W::OnlyAsked.text(lang))) " (" (t.tenant.time_zone) ")" }
            dt { (W::NextRun.text(lang)) }
            dd { @match i.next_run_at { Some(n) => (v.time(n)), None => "—" } }
            dt { (W::UploadLimit.text(lang)) }
            dd { @match i.upload_limit_kib { Some(k) => { (k) " KiB/s" }, None => (W::NoLimit.text(lang)) } }
        }
        @if v.caller.can(Permission::JobWrite, &t.path) {
            form method="post" action={"/items/" (i.id) "/run"} {
                (token(&v.csrf))
                p { button type="submit" { (v.t(M::BackUpNow)) } }
            }
        }
        @if can_write {
            section aria-labelledby="change-h" {
                h2 #change-h { (W::Change.text(lang)) }
                form method="post" action={"/items/" (i.id)} {
                    (token(&v.csrf))
                    (Input { required: true, autocomplete: Some("off"), value: &form.name,
                             ..Input::new("name", v.t(M::Name), "text") }.render())
                    (fields(v, &t.tenant.time_zone, &form))
                    p { button type="submit" { (v.t(M::Save)) } }
                }
            }
            section aria-labelledby="delete-h" {
                h2 #delete-h { (W::Delete.text(lang)) }
                p { (W::DeleteHelp.text(lang)) }
                form method="post" action={"/items/" (i.id) "/delete"} {
                    (token(&v.csrf))
                    p { button.danger type="submit" { (W::Delete.text(lang)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &i.name, content))
}

/// `POST /items/{id}`: changes the item's name, paths, exclusions, schedule and upload limit.
pub async fn update(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<ItemForm>,
) -> Response {
    let changed = async {
        let item = ItemId::parse(&id).map_err(|_| ApiError::not_found())?;
        let req = UpdateItem {
            name: Some(f.name.clone()),
            paths: Some(lines(&f.paths)),
            excludes: Some(lines(&f.excludes)),
            schedule: Some(f.schedule.trim().to_string()),
            one_file_system: None,
            tags: None,
            pre_command: None,
            post_command: None,
            jitter_seconds: None,
            window_seconds: None,
            // Emptied: the limit is removed.
            upload_limit_kib: Some(upload_limit(&f.upload_limit)?.unwrap_or(0)),
        };
        crate::items::update(&state, &v.caller, &item, req).await
    };
    match changed.await {
        Ok(i) => Redirect::to(&format!("/items/{}?done=saved", i.id)).into_response(),
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                item_page(&state, &v, &id, status, Some(why), Some(&f))
            })
            .await
        }
    }
}

/// `POST /items/{id}/delete`: deletes the item; back to the tenant's items.
pub async fn delete(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    let deleted = async {
        let item = ItemId::parse(&id).map_err(|_| ApiError::not_found())?;
        let i = crate::jobs::control::scoped_item(&state, &v.caller, Permission::DeviceRead, &id)
            .await?;
        crate::items::delete(&state, &v.caller, &item).await?;
        Ok::<_, ApiError>(i.tenant_id)
    };
    match deleted.await {
        Ok(t) => Redirect::to(&format!("/t/{t}/items?done=deleted")).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_is_one_entry_a_line_without_blanks() {
        assert_eq!(lines(" /home \n\n/etc\r\n  "), ["/home", "/etc"]);
        assert!(lines("").is_empty());
    }
}
