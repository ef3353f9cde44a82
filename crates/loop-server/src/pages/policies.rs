//! A tenant's retention policies: what each keeps and when it is applied and the vault
//! verified, for the tenant, one of its vaults or one of its protected items (the nearest
//! applies). A form makes one; a policy's page changes or deletes it. The changes go
//! through the API's own functions ([`crate::policies`]).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use loop_api::{
    CreatePolicy, ItemId, KeepRules, Language, Maintenance, Policy, PolicyId, ProtectedItem,
    TenantId, UpdatePolicy, VaultId,
};
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
    /// The words of the policies' pages.
    W {
        PoliciesOf: "Retention policies of {0}", "Bewaarbeleid van {0}";
        Nearest: "The nearest policy applies: an item's own, else its vault's, else its \
            tenant's, else the one above it. Without any, every snapshot is kept.",
            "Het dichtstbijzijnde beleid geldt: dat van het item, anders dat van de kluis, \
            anders dat van de tenant, anders het bovenliggende. Zonder beleid blijft elke \
            momentopname bewaard.";
        NoPolicies: "No policy here: every snapshot is kept, unless a policy above applies.",
            "Hier geen beleid: elke momentopname blijft bewaard, tenzij een bovenliggend \
            beleid geldt.";
        AppliesTo: "Applies to", "Geldt voor";
        WholeTenant: "every vault of {0}", "elke kluis van {0}";
        VaultNamed: "vault {0}", "kluis {0}";
        ItemNamed: "item {0}", "item {0}";
        Keeps: "Keeps", "Bewaart";
        Everything: "everything", "alles";
        KeepLast: "the newest {0}", "de nieuwste {0}";
        KeepHourly: "{0} hourly", "{0} per uur";
        KeepDaily: "{0} daily", "{0} per dag";
        KeepWeekly: "{0} weekly", "{0} per week";
        KeepMonthly: "{0} monthly", "{0} per maand";
        KeepYearly: "{0} yearly", "{0} per jaar";
        KeepWithin: "all of the last {0}", "alles van de laatste {0}";
        KeepTagged: "all tagged {0}", "alles met label {0}";
        Applied: "Applied", "Toegepast";
        Verified: "Verified", "Gecontroleerd";
        OnlyAsked: "only when asked", "alleen op verzoek";
        NewPolicy: "Make a policy", "Een beleid maken";
        Last: "The newest (number)", "De nieuwste (aantal)";
        Hourly: "Hourly (number of hours)", "Per uur (aantal uren)";
        Daily: "Daily (number of days)", "Per dag (aantal dagen)";
        Weekly: "Weekly (number of weeks)", "Per week (aantal weken)";
        Monthly: "Monthly (number of months)", "Per maand (aantal maanden)";
        Yearly: "Yearly (number of years)", "Per jaar (aantal jaren)";
        Within: "All of the last (30d, 6m, 1y)", "Alles van de laatste (30d, 6m, 1y)";
        KeepRules: "What to keep", "Wat bewaard blijft";
        RetentionSchedule: "Apply and prune, in {0} (daily, sun 03:00 or a cron line; empty: only \
            when asked)",
            "Toepassen en opruimen, in {0} (daily, sun 03:00 of een cron-regel; leeg: alleen op \
            verzoek)";
        VerifySchedule: "Verify the vault, in {0} (empty: only when asked)",
            "De kluis controleren, in {0} (leeg: alleen op verzoek)";
        SchedulesItem: "An item's policy has keep rules only: its vault's policy says when.",
            "Het beleid van een item heeft alleen bewaarregels: dat van de kluis zegt wanneer.";
        Make: "Make the policy", "Het beleid maken";
        Change: "Change the policy", "Het beleid wijzigen";
        Delete: "Delete the policy", "Het beleid verwijderen";
        DeleteHelp: "What it applied to then follows the nearest policy above it.",
            "Waarvoor het gold, volgt dan het dichtstbijzijnde bovenliggende beleid.";
        Made: "The policy is made.", "Het beleid is gemaakt.";
        Saved: "The policy is changed.", "Het beleid is gewijzigd.";
        Deleted: "The policy is deleted.", "Het beleid is verwijderd.";
        PolicyFor: "Policy for {0}", "Beleid voor {0}";
        NotANumber: "A number of snapshots is a whole number.",
            "Een aantal momentopnamen is een heel getal.";
    }
}

/// What a policy keeps, in words.
fn keeps(lang: loop_api::Language, k: &KeepRules) -> String {
    let mut parts: Vec<String> = [
        (k.last, W::KeepLast),
        (k.hourly, W::KeepHourly),
        (k.daily, W::KeepDaily),
        (k.weekly, W::KeepWeekly),
        (k.monthly, W::KeepMonthly),
        (k.yearly, W::KeepYearly),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, w)| w.fill(lang, &[&n.to_string()]))
    .collect();
    if let Some(w) = &k.within {
        parts.push(W::KeepWithin.fill(lang, &[w]));
    }
    if !k.tags.is_empty() {
        parts.push(W::KeepTagged.fill(lang, &[&k.tags.join(", ")]));
    }
    if parts.is_empty() {
        W::Everything.text(lang).to_string()
    } else {
        parts.join(", ")
    }
}

/// What a policy applies to, in words.
fn applies_to(
    v: &Viewer,
    p: &Policy,
    tenant: &str,
    names: &Names,
    items: &[ProtectedItem],
) -> String {
    let lang = v.lang;
    match (&p.vault_id, &p.item_id) {
        (Some(vault), _) => W::VaultNamed.fill(lang, &[names.vault(vault)]),
        (_, Some(item)) => {
            let name = items
                .iter()
                .find(|i| &i.id == item)
                .map_or("—", |i| i.name.as_str());
            W::ItemNamed.fill(lang, &[name])
        }
        _ => W::WholeTenant.fill(lang, &[tenant]),
    }
}

/// `GET /t/{tenant}/policies`.
pub async fn list(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let note = q.note(&[("deleted", W::Deleted.text(v.lang))]);
    list_page(
        &state,
        &v,
        &id,
        StatusCode::OK,
        note,
        &PolicyForm::default(),
    )
    .await
    .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn list_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
    form: &PolicyForm,
) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::VaultRead, id).await?;
    let pool = &state.db.pool;
    let scope = TenantScope::One(t.tenant.id.clone());
    let policies = crate::db::policies::policies_in(pool, &scope, Some(&Page::first(500))).await?;
    let items = crate::db::items::items_in(pool, &scope, Some(&Page::first(1000)))
        .await?
        .items;
    let names = Names::of(state, &t.tenant.id).await?;
    let lang = v.lang;
    let w = |w: W| w.text(lang);
    let schedule = |s: &Option<String>| s.clone().unwrap_or_else(|| w(W::OnlyAsked).into());
    let title = W::PoliciesOf.fill(lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        p { (w(W::Nearest)) }
        @if policies.items.is_empty() {
            p { (w(W::NoPolicies)) }
        } @else {
            (scroll(&title, html! { table {
                thead { tr {
                    th scope="col" { (w(W::AppliesTo)) }
                    th scope="col" { (w(W::Keeps)) }
                    th scope="col" { (w(W::Applied)) }
                    th scope="col" { (w(W::Verified)) }
                } }
                tbody {
                    @for p in &policies.items {
                        tr data-policy=(p.id) {
                            th scope="row" {
                                a href={"/policies/" (p.id)} { (applies_to(v, p, &t.tenant.name, &names, &items)) }
                            }
                            td { (keeps(lang, &p.keep)) }
                            td { (schedule(&p.maintenance.retention_schedule)) }
                            td { (schedule(&p.maintenance.verify_schedule)) }
                        }
                    }
                }
            } }))
        }
        @if v.caller.can(Permission::VaultWrite, &t.path) {
            section aria-labelledby="policy-h" {
                h2 #policy-h { (w(W::NewPolicy)) }
                form method="post" action={"/t/" (t.tenant.id) "/policies"} {
                    (token(&v.csrf))
                    p.field {
                        label for="target" { (w(W::AppliesTo)) }
                        select #target name="target" {
                            option value="" { (W::WholeTenant.fill(lang, &[&t.tenant.name])) }
                            @for vault in &names.vaults {
                                @let value = format!("vault:{}", vault.id);
                                option value=(value) selected[form.target == value] { (W::VaultNamed.fill(lang, &[&vault.name])) }
                            }
                            @for i in &items {
                                @let value = format!("item:{}", i.id);
                                option value=(value) selected[form.target == value] { (W::ItemNamed.fill(lang, &[&i.name])) }
                            }
                        }
                    }
                    (fields(v, &t.tenant.time_zone, form, true))
                    p { button type="submit" { (w(W::Make)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// The keep rules and schedules, as a policy's forms show them.
fn fields(v: &Viewer, time_zone: &str, form: &PolicyForm, schedules: bool) -> Markup {
    let lang = v.lang;
    let number = |name, w: W, value| Input {
        value,
        autocomplete: Some("off"),
        inputmode: Some("numeric"),
        ..Input::new(name, w.text(lang), "text")
    };
    html! {
        fieldset {
            legend { (W::KeepRules.text(lang)) }
            (number("last", W::Last, &form.last).render())
            (number("hourly", W::Hourly, &form.hourly).render())
            (number("daily", W::Daily, &form.daily).render())
            (number("weekly", W::Weekly, &form.weekly).render())
            (number("monthly", W::Monthly, &form.monthly).render())
            (number("yearly", W::Yearly, &form.yearly).render())
            (Input { value: &form.within, autocomplete: Some("off"),
                     ..Input::new("within", W::Within.text(lang), "text") }.render())
        }
        @if schedules {
            (Input { value: &form.retention_schedule, autocomplete: Some("off"),
                     ..Input::new("retention_schedule", &W::RetentionSchedule.fill(lang, &[time_zone]), "text") }.render())
            (Input { value: &form.verify_schedule, autocomplete: Some("off"),
                     ..Input::new("verify_schedule", &W::VerifySchedule.fill(lang, &[time_zone]), "text") }.render())
        } @else {
            p { (W::SchedulesItem.text(lang)) }
        }
    }
}

/// What a policy's form posts.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct PolicyForm {
    /// Empty: the tenant; `vault:ID` or `item:ID`.
    #[serde(default)]
    target: String,
    #[serde(default)]
    last: String,
    #[serde(default)]
    hourly: String,
    #[serde(default)]
    daily: String,
    #[serde(default)]
    weekly: String,
    #[serde(default)]
    monthly: String,
    #[serde(default)]
    yearly: String,
    #[serde(default)]
    within: String,
    #[serde(default)]
    retention_schedule: String,
    #[serde(default)]
    verify_schedule: String,
}

/// A text field as an optional value: empty is none.
fn given(s: &str) -> Option<String> {
    Some(s.trim().to_string()).filter(|s| !s.is_empty())
}

impl PolicyForm {
    fn of(p: &Policy) -> PolicyForm {
        let n = |n: u32| if n == 0 { String::new() } else { n.to_string() };
        let k = &p.keep;
        PolicyForm {
            target: String::new(),
            last: n(k.last),
            hourly: n(k.hourly),
            daily: n(k.daily),
            weekly: n(k.weekly),
            monthly: n(k.monthly),
            yearly: n(k.yearly),
            within: k.within.clone().unwrap_or_default(),
            retention_schedule: p.maintenance.retention_schedule.clone().unwrap_or_default(),
            verify_schedule: p.maintenance.verify_schedule.clone().unwrap_or_default(),
        }
    }

    /// The keep rules, keeping the tags a policy already had (the API sets those); a count
    /// that is not a number is refused in `lang`.
    fn keep(&self, tags: Vec<String>, lang: Language) -> ApiResult<KeepRules> {
        let n = |s: &str| match s.trim() {
            "" => Ok(0),
            s => s
                .parse::<u32>()
                .map_err(|_| ApiError::bad_request(W::NotANumber.text(lang))),
        };
        Ok(KeepRules {
            last: n(&self.last)?,
            hourly: n(&self.hourly)?,
            daily: n(&self.daily)?,
            weekly: n(&self.weekly)?,
            monthly: n(&self.monthly)?,
            yearly: n(&self.yearly)?,
            within: given(&self.within),
            tags,
        })
    }

    /// `base` with the form's schedules.
    fn maintenance(&self, base: Maintenance) -> Maintenance {
        Maintenance {
            retention_schedule: given(&self.retention_schedule),
            verify_schedule: given(&self.verify_schedule),
            ..base
        }
    }
}

/// `POST /t/{tenant}/policies`: makes the policy, then opens its page.
pub async fn create(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<PolicyForm>,
) -> Response {
    let made = async {
        // Who may write here before what the form says.
        let t = v.caller.tenant(&state, Permission::VaultWrite, &id).await?;
        let not_found = |_| ApiError::not_found();
        let tenant_id = TenantId::parse(&t.tenant.id).map_err(not_found)?;
        let (vault_id, item_id) = match f.target.split_once(':') {
            None if f.target.is_empty() => (None, None),
            Some(("vault", v)) => (Some(VaultId::parse(v).map_err(not_found)?), None),
            Some(("item", i)) => (None, Some(ItemId::parse(i).map_err(not_found)?)),
            _ => return Err(ApiError::not_found()),
        };
        let maintenance = f.maintenance(Maintenance::default());
        let req = CreatePolicy {
            tenant_id,
            vault_id,
            item_id,
            keep: f.keep(Vec::new(), v.lang)?,
            prune_max_unused_percent: None,
            prune_grace_seconds: None,
            // Given for an item too, so the API says why an item's policy takes none.
            maintenance: (maintenance != Maintenance::default()).then_some(maintenance),
        };
        crate::policies::create(&state, &v.caller, req).await
    };
    match made.await {
        Ok(p) => Redirect::to(&format!("/policies/{}?done=created", p.id)).into_response(),
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                list_page(&state, &v, &id, status, Some(why), &f)
            })
            .await
        }
    }
}

/// `GET /policies/{id}`: the policy, with its form.
pub async fn show(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Query(q): Query<Done>,
) -> Response {
    let w = |w: W| w.text(v.lang);
    let note = q.note(&[("created", w(W::Made)), ("saved", w(W::Saved))]);
    policy_page(&state, &v, &id, StatusCode::OK, note, None)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn scoped(state: &AppState, v: &Viewer, id: &str) -> ApiResult<Policy> {
    let id = PolicyId::parse(id).map_err(|_| ApiError::not_found())?;
    crate::policies::scoped(state, &v.caller, Permission::VaultRead, &id).await
}

async fn policy_page(
    state: &AppState,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    above: Option<Markup>,
    form: Option<&PolicyForm>,
) -> ApiResult<Response> {
    let p = scoped(state, v, id).await?;
    let t = v
        .caller
        .tenant(state, Permission::VaultRead, &p.tenant_id)
        .await?;
    let names = Names::of(state, &t.tenant.id).await?;
    let items = match &p.item_id {
        Some(i) => crate::db::items::item_by_id(&state.db.pool, i)
            .await?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    let lang = v.lang;
    let form = form.map_or_else(|| PolicyForm::of(&p), PolicyForm::clone);
    let target = applies_to(v, &p, &t.tenant.name, &names, &items);
    let title = W::PolicyFor.fill(lang, &[&target]);
    let content = html! {
        (v.tenant_menu(&t))
        @if let Some(a) = above { (a) }
        dl.facts {
            dt { (W::AppliesTo.text(lang)) } dd { (target) }
            dt { (W::Keeps.text(lang)) } dd { (keeps(lang, &p.keep)) }
        }
        @if v.caller.can(Permission::VaultWrite, &t.path) {
            section aria-labelledby="change-h" {
                h2 #change-h { (W::Change.text(lang)) }
                form method="post" action={"/policies/" (p.id)} {
                    (token(&v.csrf))
                    (fields(v, &t.tenant.time_zone, &form, p.item_id.is_none()))
                    p { button type="submit" { (v.t(M::Save)) } }
                }
            }
            section aria-labelledby="delete-h" {
                h2 #delete-h { (W::Delete.text(lang)) }
                p { (W::DeleteHelp.text(lang)) }
                form method="post" action={"/policies/" (p.id) "/delete"} {
                    (token(&v.csrf))
                    p { button.danger type="submit" { (W::Delete.text(lang)) } }
                }
            }
        }
    };
    Ok(document(status, &v.frame(), &title, content))
}

/// `POST /policies/{id}`: changes the keep rules (and, for a tenant's or vault's policy,
/// the schedules).
pub async fn update(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(f): Posted<PolicyForm>,
) -> Response {
    let changed = async {
        // Who may write it before what the form says.
        let pid = PolicyId::parse(&id).map_err(|_| ApiError::not_found())?;
        let p = crate::policies::scoped(&state, &v.caller, Permission::VaultWrite, &pid).await?;
        let req = UpdatePolicy {
            keep: Some(f.keep(p.keep.tags.clone(), v.lang)?),
            prune_max_unused_percent: None,
            prune_grace_seconds: None,
            maintenance: p
                .item_id
                .is_none()
                .then(|| f.maintenance(p.maintenance.clone())),
        };
        crate::policies::update(&state, &v.caller, &pid, req).await
    };
    match changed.await {
        Ok(p) => Redirect::to(&format!("/policies/{}?done=saved", p.id)).into_response(),
        Err(e) => {
            super::refused(v.lang, e, |status, why| {
                policy_page(&state, &v, &id, status, Some(why), Some(&f))
            })
            .await
        }
    }
}

/// `POST /policies/{id}/delete`: back to the tenant's policies.
pub async fn delete(
    State(state): State<AppState>,
    v: Viewer,
    Path(id): Path<String>,
    Posted(_): Posted<NoFields>,
) -> Response {
    let deleted = async {
        let id = PolicyId::parse(&id).map_err(|_| ApiError::not_found())?;
        crate::policies::delete(&state, &v.caller, &id).await
    };
    match deleted.await {
        Ok(p) => Redirect::to(&format!("/t/{}/policies?done=deleted", p.tenant_id)).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_rules_read_as_words_and_nothing_reads_as_everything() {
        let mut k = KeepRules {
            last: 3,
            hourly: 0,
            daily: 7,
            weekly: 0,
            monthly: 12,
            yearly: 0,
            within: Some("30d".into()),
            tags: vec!["keep".into()],
        };
        assert_eq!(
            keeps(loop_api::Language::En, &k),
            "the newest 3, 7 daily, 12 monthly, all of the last 30d, all tagged keep"
        );
        k = KeepRules {
            last: 0,
            daily: 0,
            monthly: 0,
            within: None,
            tags: Vec::new(),
            ..k
        };
        assert_eq!(keeps(loop_api::Language::Nl, &k), "alles");
    }

    #[test]
    fn a_form_reads_empty_numbers_as_zero_and_refuses_words() {
        let f = PolicyForm {
            daily: " 14 ".into(),
            within: " ".into(),
            ..PolicyForm::default()
        };
        let k = f.keep(vec!["x".into()], Language::En).unwrap();
        assert_eq!(
            (k.last, k.daily, k.within, k.tags),
            (0, 14, None, vec!["x".to_string()])
        );
        let bad = PolicyForm {
            weekly: "four".into(),
            ..PolicyForm::default()
        };
        assert!(bad.keep(Vec::new(), Language::En).is_err());
    }
}
