//! `loop plan`, `loop subscription` and `loop invoice`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::{InvoiceCommand, PlanCommand, SubscriptionCommand};

/// `12.50 EUR`.
pub(super) fn money(cents: u64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

pub(crate) fn plan(g: &Global, c: PlanCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        PlanCommand::List => {
            let ps = api.plans()?;
            show(g, &ps, |ps| {
                for p in ps {
                    println!(
                        "{}  {}  {}/month  issuer {}{}",
                        p.id,
                        p.name,
                        money(p.price_cents, &p.currency),
                        p.issuer_id,
                        if p.signup { "  (sign-up)" } else { "" }
                    );
                }
            })
        }
        PlanCommand::Create {
            issuer,
            name,
            price_cents,
            currency,
            quota_bytes,
            device_limit,
            extra_gib_cents,
            signup,
        } => {
            let p = api.create_plan(&CreatePlan {
                issuer_id: issuer,
                name,
                quota_bytes,
                device_limit,
                price_cents,
                extra_gib_cents,
                currency,
                signup,
            })?;
            show(g, &p, |p| println!("created plan {} ({})", p.name, p.id))
        }
        PlanCommand::Delete { id } => {
            api.delete_plan(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("deleted plan {id}")
            })
        }
    }
}

fn print_subscription(s: &Subscription) {
    println!(
        "{}  {}  plan {} ({})  {}  payment method: {}",
        s.tenant_id,
        s.state,
        s.plan.name,
        s.plan.id,
        s.collection,
        if s.payment_method { "yes" } else { "no" }
    );
    match s.state {
        SubscriptionState::Trial => println!("trial ends {}", s.trial_ends_at),
        _ => {
            if let (Some(a), Some(b)) = (s.period_start, s.period_end) {
                println!("period {a} – {b}");
            }
        }
    }
    if let Some(at) = s.terminate_at.or(s.ends_at) {
        println!("its data is erased {at} unless paid before");
    }
}

pub(crate) fn subscription(g: &Global, c: SubscriptionCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        SubscriptionCommand::Show { tenant } => {
            show(g, &api.subscription(&tenant)?, print_subscription)
        }
        SubscriptionCommand::Set {
            tenant,
            plan,
            collection,
        } => {
            let s = api.set_subscription(
                &tenant,
                &SetSubscription {
                    plan_id: plan,
                    collection,
                },
            )?;
            show(g, &s, print_subscription)
        }
        SubscriptionCommand::End { tenant, confirm } => {
            let s = api.end_subscription(&tenant, &EndSubscription { confirm })?;
            show(g, &s, print_subscription)
        }
        SubscriptionCommand::Card { tenant } => {
            let p = api.payment_setup(&tenant)?;
            show(g, &p, |p| println!("enter the card at {}", p.url))
        }
        SubscriptionCommand::Charges { tenant } => {
            let cs = api.charges(&tenant)?;
            show(g, &cs, |cs| {
                for c in cs {
                    println!(
                        "{}  invoice {} #{}  {}  {}{}",
                        c.created_at,
                        c.invoice_id,
                        c.attempt,
                        money(c.amount_cents, &c.currency),
                        c.state,
                        c.failure_code
                            .as_deref()
                            .map(|f| format!(" ({f})"))
                            .unwrap_or_default()
                    );
                }
            })
        }
    }
}

pub(crate) fn invoice(g: &Global, c: InvoiceCommand) -> Result<ExitCode> {
    let api = api(g)?;
    let line = |i: &Invoice| {
        println!(
            "{}  no. {}  {} – {}  {}  {}  due {}",
            i.id,
            i.number,
            i.period_start.format("%Y-%m-%d"),
            i.period_end.format("%Y-%m-%d"),
            money(i.total_cents, &i.currency),
            i.state,
            i.due_at.format("%Y-%m-%d")
        )
    };
    match c {
        InvoiceCommand::List { tenant } => {
            let is = api.invoices(&tenant)?;
            show(g, &is, |is| is.iter().for_each(line))
        }
        InvoiceCommand::Show { id, html: true } => {
            print!("{}", api.invoice_html(&id)?);
            Ok(ExitCode::SUCCESS)
        }
        InvoiceCommand::Show { id, html: false } => {
            let i = api.invoice(&id)?;
            show(g, &i, |i| {
                line(i);
                for l in &i.lines {
                    println!(
                        "  {}  {} × {}  {}",
                        l.description,
                        l.quantity,
                        money(l.unit_cents, &i.currency),
                        money(l.amount_cents, &i.currency)
                    );
                }
            })
        }
        InvoiceCommand::Pay { id, reference } => {
            let i = api.record_payment(&id, &RecordPayment { reference })?;
            show(g, &i, line)
        }
    }
}
