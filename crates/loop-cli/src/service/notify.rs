//! `loop notify`.

use std::process::ExitCode;

use anyhow::{Result, bail};
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::{NotifyCommand, TargetCommand};

fn print_target(t: &NotifyTarget) {
    let to = match (&t.email, &t.webhook) {
        (Some(e), _) => format!("email {} ({})", e.recipients.join(", "), e.language),
        (_, Some(w)) => format!("webhook {}", w.url),
        _ => String::new(),
    };
    let kinds = if t.kinds.is_empty() {
        "every kind".to_string()
    } else {
        t.kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "{}  {}  {}  {to}  from {}: {kinds}{}{}{}",
        t.id,
        t.tenant_id,
        t.name,
        t.min_severity,
        if t.include_children {
            ", with sub-tenants"
        } else {
            ""
        },
        match t.summary {
            SummaryPeriod::Off => String::new(),
            s => format!(", {s} summary"),
        },
        if t.enabled { "" } else { "  (disabled)" },
    );
}

fn print_delivery(d: &Delivery) {
    let status = d
        .response_status
        .map(|s| format!(" HTTP {s}"))
        .unwrap_or_default();
    let error = d
        .last_error
        .as_deref()
        .map(|e| format!("  {e}"))
        .unwrap_or_default();
    println!(
        "{}  {}  {}  {:<9} tries {}{status}{error}",
        d.created_at.format("%Y-%m-%d %H:%M:%S"),
        d.target_id,
        d.event_kind,
        d.state,
        d.attempts
    );
}

pub(crate) fn notify(g: &Global, c: NotifyCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        NotifyCommand::Target(TargetCommand::List { tenant }) => {
            let ts = api.notify_targets(tenant.as_ref())?;
            show(g, &ts, |ts| ts.iter().for_each(print_target))
        }
        NotifyCommand::Target(TargetCommand::Create {
            tenant,
            name,
            emails,
            language,
            webhook,
            matching,
        }) => {
            let (email, webhook) = match (emails.is_empty(), webhook) {
                (false, None) => (
                    Some(EmailSettings {
                        recipients: emails,
                        language: language.unwrap_or(Language::En),
                    }),
                    None,
                ),
                (true, Some(url)) => (None, Some(WebhookSettings { url })),
                _ => bail!("give --email ADDRESS (repeatable) or --webhook URL"),
            };
            let created = api.create_notify_target(&CreateTarget {
                tenant_id: tenant,
                name,
                email,
                webhook,
                min_severity: matching.min_severity,
                kinds: matching.kinds,
                include_children: Some(!matching.own_only),
                summary: matching.summary,
            })?;
            show(g, &created, |c| {
                println!("created target {}", c.target.id);
                print_target(&c.target);
                if let Some(s) = &c.webhook_secret {
                    println!("signing secret (shown once): {s}");
                }
            })
        }
        NotifyCommand::Target(TargetCommand::Update {
            id,
            enabled,
            matching,
        }) => {
            let t = api.update_notify_target(
                &id,
                &UpdateTarget {
                    name: None,
                    enabled,
                    min_severity: matching.min_severity,
                    kinds: (!matching.kinds.is_empty()).then_some(matching.kinds),
                    include_children: matching.own_only.then_some(false),
                    summary: matching.summary,
                    email: None,
                    webhook: None,
                },
            )?;
            show(g, &t, print_target)
        }
        NotifyCommand::Target(TargetCommand::Test { id }) => {
            let d = api.test_notify_target(&id)?;
            show(g, &d, |d| {
                println!(
                    "test queued as delivery {} (loop notify deliveries --target {id})",
                    d.id
                )
            })
        }
        NotifyCommand::Target(TargetCommand::Delete { id }) => {
            api.delete_notify_target(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("deleted target {id}")
            })
        }
        NotifyCommand::Deliveries {
            tenant,
            target,
            limit,
        } => {
            let ds = api.deliveries(tenant.as_ref(), target.as_ref(), limit.or(Some(100)))?;
            show(g, &ds, |ds| ds.iter().for_each(print_delivery))
        }
        NotifyCommand::Events {
            tenant,
            kind,
            limit,
        } => {
            let es = api.events(tenant.as_ref(), kind, limit.or(Some(100)))?;
            show(g, &es, |es| {
                for e in es {
                    println!(
                        "{}  {}  {:<7} {:<20} {}",
                        e.created_at.format("%Y-%m-%d %H:%M:%S"),
                        e.tenant_id,
                        e.severity,
                        e.kind,
                        e.message
                    );
                }
            })
        }
    }
}
