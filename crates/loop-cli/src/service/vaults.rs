//! `loop vault`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

fn print_vaults(vs: &[Vault]) {
    for v in vs {
        println!(
            "{}  {}  {}@{} ({})  {} used{}{}",
            v.id,
            v.name,
            v.destination,
            v.jurisdiction,
            v.key_custody,
            loop_repo::human_bytes(v.used_bytes),
            v.quota_bytes
                .map(|q| format!(" of {}", loop_repo::human_bytes(q)))
                .unwrap_or_default(),
            v.retention_lock_days
                .map(|d| format!("  locked {d} days"))
                .unwrap_or_default()
        );
    }
}

/// One line per place: vault, role, destination, jurisdiction, and whether it is allowed.
pub(crate) fn print_locations(ls: &[VaultLocation]) {
    for l in ls {
        println!(
            "{}  {:<7}  {}@{} ({})  {}",
            l.vault_id,
            l.role,
            l.destination,
            l.jurisdiction,
            l.backend,
            if l.allowed {
                "allowed"
            } else {
                "OUTSIDE the tenant's residency"
            }
        );
    }
}

pub(crate) fn vault(g: &Global, c: VaultCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        VaultCommand::List { tenant } => {
            let vs: Vec<Vault> = api.vaults(tenant.as_ref())?;
            show(g, &vs, |vs| print_vaults(vs))
        }
        VaultCommand::Create {
            tenant,
            name,
            destination,
            quota,
            customer_key,
            lock_days,
        } => {
            let v: Vault = api.create_vault(&CreateVault {
                tenant_id: tenant,
                name,
                destination,
                quota_bytes: quota,
                key_custody: Some(if customer_key {
                    KeyCustody::Customer
                } else {
                    KeyCustody::Managed
                }),
                retention_lock_days: lock_days,
            })?;
            show(g, &v, |v| {
                println!("created vault {} ({})", v.name, v.id);
                println!("repository: {}/vaults/{}", api.conn.base, v.id);
            })
        }
        VaultCommand::Show { id } => {
            let v: Vault = api.vault(&id)?;
            show(g, &v, |v| print_vaults(std::slice::from_ref(v)))
        }
        VaultCommand::Snapshots { id } => {
            let ss: Vec<SnapshotInfo> = api.vault_snapshots(&id)?;
            show(g, &ss, |ss| {
                for s in ss {
                    println!(
                        "{}  {}  {}  {}",
                        s.id.get(..8).unwrap_or(&s.id),
                        s.time,
                        s.host,
                        s.paths.join(" ")
                    );
                }
            })
        }
        VaultCommand::Verify {
            id,
            read_data_percent,
        } => {
            let job: Job = api.verify_vault(&id, &VerifyVault { read_data_percent })?;
            show(g, &job, |job| {
                println!(
                    "job {} verifies vault {id} (loop job show {})",
                    job.id, job.id
                )
            })
        }
        VaultCommand::Maintainer {
            id,
            device,
            none: _,
        } => {
            let v = api.set_maintainer(&id, &SetMaintainer { device_id: device })?;
            show(g, &v, |v| match &v.maintainer_device_id {
                Some(d) => println!("device {d} maintains vault {}", v.id),
                None => println!("vault {} has no maintainer", v.id),
            })
        }
        VaultCommand::Delete { id } => {
            let job: Job = api.delete_vault(&id)?;
            show(g, &job, |job| {
                println!(
                    "deleted vault {id}; job {} erases its objects (loop job show {})",
                    job.id, job.id
                )
            })
        }
        VaultCommand::Policy { id } => {
            let e: EffectivePolicy = api.vault_policy(&id)?;
            show(g, &e, |e| match (&e.policy, &e.source) {
                (Some(p), Some(source)) => {
                    println!("policy {} (attached to the {source})", p.id);
                    super::policies::print_policy(p);
                }
                _ => println!("no retention policy applies: every snapshot is kept"),
            })
        }
        VaultCommand::Retention { id, dry_run } => {
            let job: Job = api.run_retention(&id, &RunRetention { dry_run })?;
            show(g, &job, |job| {
                println!(
                    "job {} applies the retention policy of vault {id} (loop job show {})",
                    job.id, job.id
                )
            })
        }
        VaultCommand::Quota { id, bytes, none: _ } => {
            let v = api.set_vault_quota(&id, &SetVaultQuota { quota_bytes: bytes })?;
            show(g, &v, |v| print_vaults(std::slice::from_ref(v)))
        }
        VaultCommand::Lock { id, days } => {
            let v: Vault = api.set_retention_lock(&id, &SetRetentionLock { days })?;
            show(g, &v, |v| {
                println!(
                    "vault {} ({}): no object goes before it is {} days old",
                    v.name,
                    v.id,
                    v.retention_lock_days.unwrap_or(days)
                )
            })
        }
        VaultCommand::Locations { id } => {
            let ls: Vec<VaultLocation> = api.vault_locations(&id)?;
            show(g, &ls, |ls| print_locations(ls))
        }
        VaultCommand::Replica { command } => replica(g, &api, command),
        VaultCommand::Replicate { id } => {
            let job: Job = api.replicate(&id)?;
            show(g, &job, |job| {
                println!(
                    "job {} brings the replicas of vault {id} up to date (loop job show {})",
                    job.id, job.id
                )
            })
        }
        VaultCommand::Destinations => {
            let ds: Vec<Destination> = api.destinations()?;
            show(g, &ds, |ds| {
                for d in ds {
                    println!("{}  {}  {}", d.name, d.jurisdiction, d.backend);
                }
            })
        }
    }
}

fn print_replicas(rs: &[Replica]) {
    for r in rs {
        println!(
            "{}  {}@{}  {}  synced {}  behind {} objects ({}){}{}",
            r.id,
            r.destination,
            r.jurisdiction,
            r.state,
            r.synced_at
                .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_else(|| "never".into()),
            r.objects_behind,
            loop_repo::human_bytes(r.bytes_behind),
            match r.verify_ok {
                Some(true) => "  verified",
                Some(false) => "  verify FOUND DAMAGE",
                None => "",
            },
            r.last_error
                .as_deref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default()
        );
    }
}

fn replica(g: &Global, api: &super::ApiClient, c: ReplicaCommand) -> Result<ExitCode> {
    let job_line = |what: &str| {
        let what = what.to_string();
        move |job: &Job| println!("job {} {what} (loop job show {})", job.id, job.id)
    };
    match c {
        ReplicaCommand::List { vault } => {
            let rs: Vec<Replica> = api.replicas(&vault)?;
            show(g, &rs, |rs: &Vec<Replica>| print_replicas(rs))
        }
        ReplicaCommand::Add { vault, destination } => {
            let r: Replica = api.create_replica(&vault, &CreateReplica { destination })?;
            show(g, &r, |r| {
                println!(
                    "replica {} of vault {vault} at {}@{}; a replication job seeds it",
                    r.id, r.destination, r.jurisdiction
                )
            })
        }
        ReplicaCommand::Remove { vault, replica } => {
            let job: Job = api.delete_replica(&vault, &replica)?;
            show(g, &job, job_line("erases the replica's objects"))
        }
        ReplicaCommand::Promote { vault, replica } => {
            let v: Vault = api.promote_replica(&vault, &replica)?;
            show(g, &v, |v| {
                println!(
                    "vault {} now lives at {}@{}; the old primary is a replica, seeded again",
                    v.id, v.destination, v.jurisdiction
                )
            })
        }
        ReplicaCommand::Verify {
            vault,
            replica,
            read_data,
        } => {
            let job: Job = api.verify_replica(&vault, &replica, &VerifyReplica { read_data })?;
            show(g, &job, job_line("verifies the replica"))
        }
    }
}
