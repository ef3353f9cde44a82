//! A tenant's subscription and invoices, for those who may see its billing: the plan and
//! what it includes, the subscription's state and its dates, what the tenant uses against the
//! plan, and every invoice with a link to read or print it (the API's own page of it).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use loop_api::{Collection, InvoiceState, Subscription, SubscriptionState};
use maud::{Markup, html};

use super::catalogue::{M, catalogue};
use super::layout::{document, scroll};
use super::reader::Viewer;
use crate::domain::Permission;
use crate::error::ApiResult;
use crate::mail::money;
use crate::metrics::ONLINE_MS;
use crate::notify::email::size;
use crate::state::AppState;

catalogue! {
    /// The words of the billing page.
    W {
        BillingOf: "Subscription of {0}", "Abonnement van {0}";
        NoSubscription: "This tenant has no subscription.", "Deze tenant heeft geen abonnement.";
        Plan: "Plan", "Abonnementsvorm";
        PricePerMonth: "{0} a month", "{0} per maand";
        Included: "Included", "Inbegrepen";
        Unlimited: "unlimited", "onbeperkt";
        AnyNumber: "any number of devices", "elk aantal apparaten";
        UpTo: "up to {0} devices", "tot {0} apparaten";
        ExtraGib: "{0} a GiB-month above it", "{0} per GiB-maand daarboven";
        State: "State", "Status";
        Trial: "Free trial until {0}", "Gratis proefperiode tot {0}";
        Active: "Active", "Actief";
        PastDue: "An invoice is past due", "Een factuur is te laat betaald";
        Suspended: "Suspended: no new backups until paid", "Opgeschort: geen nieuwe back-ups tot er betaald is";
        Terminated: "Ended", "Beëindigd";
        Period: "This period", "Deze periode";
        PaidBy: "Paid by", "Betaald per";
        Card: "card (charged by the payment processor)", "kaart (door de betaalverwerker afgeschreven)";
        ByInvoice: "invoice (bank transfer)", "factuur (overschrijving)";
        NoCard: "No payment method on file yet.", "Nog geen betaalmiddel bekend.";
        EndsAt: "Ends on {0}", "Eindigt op {0}";
        TerminateAt: "Data is deleted on {0} unless paid before", "Gegevens worden op {0} verwijderd tenzij eerder betaald";
        Usage: "Usage", "Gebruik";
        Stored: "Stored", "Opgeslagen";
        Invoices: "Invoices", "Facturen";
        NoInvoices: "No invoices yet.", "Nog geen facturen.";
        Number: "Number", "Nummer";
        Total: "Total", "Totaal";
        Due: "Due", "Vervalt";
        Paid: "Paid on {0}", "Betaald op {0}";
        Open: "open", "open";
        Read: "Read or print invoice {0}", "Factuur {0} lezen of afdrukken";
    }
}

/// `GET /t/{tenant}/billing`.
pub async fn show(State(state): State<AppState>, v: Viewer, Path(id): Path<String>) -> Response {
    page(&state, &v, &id)
        .await
        .unwrap_or_else(|e| super::failed(v.lang, e))
}

async fn page(state: &AppState, v: &Viewer, id: &str) -> ApiResult<Response> {
    let t = v.caller.tenant(state, Permission::BillingRead, id).await?;
    let pool = &state.db.pool;
    let lang = v.lang;
    let sub = match crate::db::billing::subscription(pool, &t.tenant.id).await? {
        Some(s) => crate::db::billing::plan_by_id(pool, &s.plan_id)
            .await?
            .map(|plan| s.view(plan)),
        None => None,
    };
    let invoices = crate::db::invoices::invoices_of(pool, &t.tenant.id).await?;
    let (used, _) = crate::db::dashboard::storage(pool, &t.tenant.id).await?;
    let since = state.now() - ONLINE_MS;
    let (devices, _) = crate::db::dashboard::devices(pool, &t.tenant.id, since).await?;
    let title = W::BillingOf.fill(lang, &[&t.tenant.name]);
    let content = html! {
        (v.tenant_menu(&t))
        @match &sub {
            None => p { (W::NoSubscription.text(lang)) },
            Some(s) => (subscription(v, s, used, devices)),
        }
        section aria-labelledby="invoices-h" {
            h2 #invoices-h { (W::Invoices.text(lang)) }
            @if invoices.is_empty() {
                p { (W::NoInvoices.text(lang)) }
            } @else {
                (scroll(W::Invoices.text(lang), html! { table {
                    thead { tr {
                        th scope="col" { (W::Number.text(lang)) }
                        th scope="col" { (W::Period.text(lang)) }
                        th scope="col" { (W::Total.text(lang)) }
                        th scope="col" { (W::Due.text(lang)) }
                        th scope="col" { (W::State.text(lang)) }
                    } }
                    tbody {
                        @for i in &invoices {
                            tr data-invoice=(i.id) {
                                th scope="row" {
                                    a href={"/api/v1/invoices/" (i.id) "?format=html"}
                                        aria-label=(W::Read.fill(lang, &[&i.number.to_string()])) { (i.number) }
                                }
                                td { (v.time(i.period_start)) " – " (v.time(i.period_end)) }
                                td { (money(i.total_cents, &i.currency)) }
                                td { (v.time(i.due_at)) }
                                td {
                                    @match (i.state, i.paid_at) {
                                        (InvoiceState::Paid, Some(p)) => span.badge.ok { (W::Paid.fill(lang, &[&v.zone.day(p)])) },
                                        _ => span.badge.warning { (W::Open.text(lang)) },
                                    }
                                }
                            }
                        }
                    }
                } }))
            }
        }
    };
    Ok(document(StatusCode::OK, &v.frame(), &title, content))
}

fn subscription(v: &Viewer, s: &Subscription, used: i64, devices: i64) -> Markup {
    let lang = v.lang;
    let p = &s.plan;
    let day = |t| v.zone.day(t);
    let state = match s.state {
        SubscriptionState::Trial => W::Trial.fill(lang, &[&day(s.trial_ends_at)]),
        SubscriptionState::Active => W::Active.text(lang).to_string(),
        SubscriptionState::PastDue => W::PastDue.text(lang).to_string(),
        SubscriptionState::Suspended => W::Suspended.text(lang).to_string(),
        SubscriptionState::Terminated => W::Terminated.text(lang).to_string(),
    };
    let quota = p
        .quota_bytes
        .map_or(W::Unlimited.text(lang).to_string(), size);
    let device_limit = p
        .device_limit
        .map_or(W::AnyNumber.text(lang).to_string(), |n| {
            W::UpTo.fill(lang, &[&n.to_string()])
        });
    html! {
        dl.facts.subscription {
            dt { (W::Plan.text(lang)) }
            dd { (p.name) ", " (W::PricePerMonth.fill(lang, &[&money(p.price_cents, &p.currency)])) }
            dt { (W::Included.text(lang)) }
            dd {
                (quota) ", " (device_limit)
                @if let Some(extra) = p.extra_gib_cents {
                    "; " (W::ExtraGib.fill(lang, &[&money(extra, &p.currency)]))
                }
            }
            dt { (W::State.text(lang)) }
            dd.state { (state) }
            @if let (Some(a), Some(b)) = (s.period_start, s.period_end) {
                dt { (W::Period.text(lang)) } dd { (v.time(a)) " – " (v.time(b)) }
            }
            dt { (W::PaidBy.text(lang)) }
            dd {
                (match s.collection { Collection::Card => W::Card, Collection::Invoice => W::ByInvoice }.text(lang))
                @if !s.payment_method { " " (W::NoCard.text(lang)) }
            }
            @if let Some(e) = s.ends_at { dt { (W::Terminated.text(lang)) } dd { (W::EndsAt.fill(lang, &[&day(e)])) } }
            @if let Some(e) = s.terminate_at { dt { (W::Suspended.text(lang)) } dd { (W::TerminateAt.fill(lang, &[&day(e)])) } }
            dt { (W::Usage.text(lang)) }
            dd {
                (W::Stored.text(lang)) ": " (M::StorageOf.fill(lang, &[&size(used.max(0) as u64), &quota])) "; "
                (v.t(M::Devices)) ": " (devices)
            }
        }
    }
}
