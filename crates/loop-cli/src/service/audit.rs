//! `loop audit` and `loop admin audit verify`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loop_agent::{AuditQuery, ExportFormat};
use loop_api::*;
use serde_json::json;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

/// The API's audit query for the command's filter options.
fn audit_query(f: &AuditFilter) -> AuditQuery {
    AuditQuery {
        tenant_id: f.tenant.clone(),
        action: f.action.clone(),
        actor_id: f.actor.clone(),
        object_id: f.object.clone(),
        since: f.since.clone(),
        until: f.until.clone(),
        limit: f.limit.map(i64::from),
    }
}

pub(crate) fn audit(g: &Global, c: AuditCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        AuditCommand::List(f) => {
            let es: Vec<AuditEvent> = api.audit(&audit_query(&f))?;
            show(g, &es, |es| {
                for e in es {
                    println!(
                        "{}  {} #{}  {:<22} {:<7} {}:{} by {}:{}",
                        e.at.to_rfc3339(),
                        e.tenant_id,
                        e.seq,
                        e.action,
                        e.outcome,
                        e.object_kind,
                        e.object_id.as_deref().unwrap_or("-"),
                        e.actor_kind,
                        e.actor_id.as_deref().unwrap_or("-")
                    );
                }
            })
        }
        AuditCommand::Export {
            filter,
            format,
            output,
        } => {
            let text = api.audit_export(&audit_query(&filter), format)?;
            match output {
                // It holds IP addresses and browsers: readable by its owner only.
                Some(p) => super::account::write_private(&p, text.as_bytes())?,
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub(crate) fn admin(g: &Global, c: AdminCommand) -> Result<ExitCode> {
    let AdminCommand::Audit(c) = c;
    let (tenant, file, kept_heads) = match c {
        AdminAuditCommand::Verify {
            tenant,
            file,
            heads,
        } => (tenant, file, heads),
        AdminAuditCommand::Heads { tenant } => {
            crate::output::print_json(&api(g)?.audit_heads(tenant.as_ref())?)?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    let (text, heads) = match file {
        Some(f) => {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            let heads: Vec<AuditHead> = match &kept_heads {
                Some(h) => serde_json::from_str(
                    &std::fs::read_to_string(h)
                        .with_context(|| format!("reading {}", h.display()))?,
                )
                .with_context(|| format!("{}: not a list of chain heads", h.display()))?,
                None => {
                    eprintln!(
                        "note: a file alone cannot show events cut from its end; give --heads \
                         (kept from `loop admin audit heads`) or verify against the server"
                    );
                    Vec::new()
                }
            };
            (text, heads)
        }
        None => {
            let api = api(g)?;
            // Heads first: events appended after this moment may follow them in the export.
            let heads = api.audit_heads(tenant.as_ref())?;
            let query = AuditQuery {
                tenant_id: tenant,
                ..Default::default()
            };
            let text = api.audit_export(&query, ExportFormat::JsonLines)?;
            (text, heads)
        }
    };
    let mut events = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let e: AuditEvent = serde_json::from_str(line)
            .with_context(|| format!("line {}: not an audit event", n + 1))?;
        events.push(e);
    }
    let tenants: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.tenant_id.as_str()).collect();
    let verified = loop_api::audit::verify(&events)
        .and_then(|n| loop_api::audit::check_heads(&events, &heads).map(|()| n));
    // Personal data lies outside the chain, so it cannot break it; its commitment still
    // shows an edit, which an auditor wants to hear about.
    let altered = events
        .iter()
        .filter(|e| loop_api::audit::personal_matches(e) == Some(false))
        .count();
    match verified {
        Ok(n) => {
            show(
                g,
                &json!({"verified": true, "events": n, "tenants": tenants.len(),
                        "personal_data_altered": altered}),
                |_| {
                    println!(
                        "audit log verified: {n} events in {} tenant chains",
                        tenants.len()
                    );
                    if altered > 0 {
                        println!(
                            "warning: {altered} events carry personal data (IP, user agent) \
                             that differs from what was recorded"
                        );
                    }
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(b) => {
            if g.json {
                crate::output::print_json(
                    &json!({"verified": false, "tenant_id": b.tenant_id, "seq": b.seq, "reason": b.reason}),
                )?;
            }
            bail!(
                "audit log broken in tenant {} at event {}: {}",
                b.tenant_id,
                b.seq,
                b.reason
            )
        }
    }
}
