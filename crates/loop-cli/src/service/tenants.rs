//! `loop tenant`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

pub(crate) fn tenant(g: &Global, c: TenantCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        TenantCommand::List => {
            let ts: Vec<Tenant> = api.tenants()?;
            show(g, &ts, |ts| {
                for t in ts {
                    println!("{}  {:<8}  {}", t.id, t.kind, t.name);
                }
            })
        }
        TenantCommand::Create {
            parent,
            kind,
            name,
            time_zone,
            plan,
        } => {
            let t: Tenant = api.create_tenant(&CreateTenant {
                parent_id: parent,
                kind,
                name,
                time_zone,
                plan_id: plan,
            })?;
            show(g, &t, |t| {
                println!("created {} tenant {} ({})", t.kind, t.name, t.id)
            })
        }
        TenantCommand::Show { id } => {
            let t: Tenant = api.tenant(&id)?;
            show(g, &t, |t| {
                println!(
                    "{}  {}  {}  {}  {}",
                    t.id, t.kind, t.name, t.status, t.time_zone
                )
            })
        }
        TenantCommand::Update {
            id,
            name,
            time_zone,
        } => {
            let t: Tenant = api.update_tenant(&id, &UpdateTenant { name, time_zone })?;
            show(g, &t, |t| {
                println!(
                    "updated tenant {} ({}), time zone {}",
                    t.name, t.id, t.time_zone
                )
            })
        }
        TenantCommand::RotateKey { id } => {
            let job: Job = api.rotate_tenant_key(&id)?;
            show(g, &job, |job| {
                println!(
                    "job {} rotates the key of tenant {id} (loop job show {})",
                    job.id, job.id
                )
            })
        }
        TenantCommand::Residency { id, allow, inherit } => {
            let r: Residency = if allow.is_some() || inherit {
                api.set_residency(&id, &SetResidency { allowed: allow })?
            } else {
                api.residency(&id)?
            };
            show(g, &r, |r| {
                let list = |s: &Option<Vec<String>>| match s {
                    Some(s) => s.join(", "),
                    None => "any".to_string(),
                };
                println!("tenant {}", r.tenant_id);
                match &r.allowed {
                    Some(own) => println!("  allows:     {}", own.join(", ")),
                    None => println!("  allows:     (what its parent allows)"),
                }
                println!("  may use:    {}", list(&r.effective));
            })
        }
        TenantCommand::ResidencyReport { id } => {
            let r: ResidencyReport = api.residency_report(&id)?;
            show(g, &r, |r| {
                let may = r.effective.as_ref().map(|e| e.join(", "));
                println!(
                    "tenant {} may use: {}",
                    r.tenant_id,
                    may.as_deref().unwrap_or("any")
                );
                crate::service::vaults::print_locations(&r.locations);
                println!(
                    "{} location(s), {} outside the owning tenant's residency",
                    r.locations.len(),
                    r.outside
                );
            })
        }
        TenantCommand::Erase { id, confirm } => {
            let e: TenantErasure = api.erase_tenant(&id, &EraseTenant { confirm })?;
            show(g, &e, |e| {
                println!("erased tenant {}", e.tenant_id);
                if e.tenant_key_destroyed {
                    println!("  tenant key destroyed");
                }
                for v in &e.vaults {
                    println!(
                        "  vault {}: {} key slot(s) deleted",
                        v.vault_id,
                        v.key_slots_deleted.len()
                    );
                }
                println!(
                    "  {} token(s) revoked, {} session(s) ended, {} user(s) disabled",
                    e.tokens_revoked, e.sessions_ended, e.users_disabled
                );
                if let Some(job) = &e.erasure_job_id {
                    println!(
                        "  job {job} deletes every object at every place; then `loop tenant \
                         certificate {}` shows the deletion certificate",
                        e.tenant_id
                    );
                }
            })
        }
        TenantCommand::Certificate { id } => {
            let c = api.erasure_certificate(&id)?;
            show(g, &c, |c| {
                println!("{}", c.body);
                println!("SHA-256 {} (in the tenant's audit log)", c.sha256);
            })
        }
    }
}
