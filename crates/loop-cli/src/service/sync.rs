//! `loop remote` and `loop sync`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::{api, password_from_env_or_prompt};
use crate::args::Global;
use crate::output::show;
use crate::service_args::{RemoteCommand, SyncCommand};

fn print_remote(r: &Remote) {
    println!(
        "{}  {}  {}  {}  {}",
        r.id,
        r.tenant_id,
        r.name,
        r.url,
        r.fingerprint.as_deref().unwrap_or("(system roots)")
    );
}

fn print_sync_job(j: &SyncJob) {
    let (way, other) = match j.direction {
        SyncDirection::Push => ("->", "to"),
        SyncDirection::Pull => ("<-", "from"),
    };
    let (ours, theirs) = match (&j.vault_id, &j.remote_vault_id) {
        (Some(v), Some(r)) => (v.clone(), r.clone()),
        _ if j.vaults.is_empty() => ("every vault".to_string(), "same name".to_string()),
        _ => (j.vaults.join(","), "same name".to_string()),
    };
    println!(
        "{}  {}  {ours} {way} {}:{theirs}  {}{}{}",
        j.id,
        j.direction,
        j.remote_id,
        j.schedule
            .as_deref()
            .map(|s| format!("schedule {s}"))
            .unwrap_or_else(|| "by hand".into()),
        if j.remove_vanished {
            format!(", removes what vanished {other} the sender")
        } else {
            String::new()
        },
        j.bytes_per_sec
            .map(|b| format!(", at most {b} B/s"))
            .unwrap_or_default(),
    );
}

pub(crate) fn remote(g: &Global, c: RemoteCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        RemoteCommand::List { tenant } => {
            let rs = api.remotes(tenant.as_ref())?;
            show(g, &rs, |rs| rs.iter().for_each(print_remote))
        }
        RemoteCommand::Add {
            tenant,
            name,
            url,
            fingerprint,
        } => {
            let token = password_from_env_or_prompt(
                "LOOP_REMOTE_TOKEN",
                "the other server's replication token: ",
            )?;
            let r = api.create_remote(&CreateRemote {
                tenant_id: tenant,
                name,
                url,
                fingerprint,
                token: SecretText::new(token),
            })?;
            show(g, &r, |r| {
                println!("added remote {}", r.id);
                print_remote(r);
            })
        }
        RemoteCommand::Remove { id } => {
            api.delete_remote(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("removed remote {id} and its sync jobs")
            })
        }
    }
}

pub(crate) fn sync(g: &Global, c: SyncCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        SyncCommand::List { tenant } => {
            let js = api.sync_jobs(tenant.as_ref())?;
            show(g, &js, |js| js.iter().for_each(print_sync_job))
        }
        SyncCommand::Add {
            direction,
            remote,
            vault,
            remote_vault,
            patterns,
            schedule,
            remove_vanished,
            bytes_per_sec,
        } => {
            let j = api.create_sync_job(&CreateSyncJob {
                remote_id: remote,
                direction,
                vault_id: vault,
                remote_vault_id: remote_vault,
                vaults: patterns,
                remove_vanished,
                bytes_per_sec,
                schedule,
            })?;
            show(g, &j, |j| {
                println!("created sync job {}", j.id);
                print_sync_job(j);
            })
        }
        SyncCommand::Remove { id } => {
            api.delete_sync_job(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("deleted sync job {id}")
            })
        }
        SyncCommand::Run { id } => {
            let job = api.run_sync_job(&id)?;
            show(g, &job, |job| {
                println!(
                    "job {} runs sync job {id} (loop job show {})",
                    job.id, job.id
                )
            })
        }
    }
}
