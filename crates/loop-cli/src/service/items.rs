//! `loop item`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::ItemCommand;

fn print_item(i: &ProtectedItem) {
    println!(
        "{}  {}  device {} -> vault {}  {}",
        i.id,
        i.name,
        i.device_id,
        i.vault_id,
        i.paths.join(" ")
    );
    match (&i.schedule, &i.next_run_at) {
        (Some(s), Some(next)) => println!("    schedule {s}, next run {next}"),
        (Some(s), None) => println!("    schedule {s}, no next run"),
        _ => println!("    no schedule: runs when asked (loop item run {})", i.id),
    }
    if let Some(k) = i.upload_limit_kib {
        println!("    uploads at most {k} KiB/s");
    }
}

fn nonempty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

pub(crate) fn item(g: &Global, c: ItemCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        ItemCommand::List { tenant } => {
            let is: Vec<ProtectedItem> = api.items(tenant.as_ref())?;
            show(g, &is, |is| is.iter().for_each(print_item))
        }
        ItemCommand::Show { id } => {
            let i: ProtectedItem = api.item(&id)?;
            show(g, &i, print_item)
        }
        ItemCommand::Create {
            tenant,
            device,
            vault,
            name,
            paths,
            settings: s,
        } => {
            let i: ProtectedItem = api.create_item(&CreateItem {
                tenant_id: tenant,
                device_id: device,
                vault_id: vault,
                name,
                paths,
                excludes: s.excludes,
                one_file_system: s.one_file_system.unwrap_or(false),
                tags: s.tags,
                pre_command: s.pre_command,
                post_command: s.post_command,
                schedule: s.schedule,
                jitter_seconds: s.jitter_seconds,
                window_seconds: s.window_seconds,
                upload_limit_kib: s.upload_limit,
            })?;
            show(g, &i, |i| {
                println!("created protected item {}", i.id);
                print_item(i);
            })
        }
        ItemCommand::Update {
            id,
            name,
            paths,
            settings: s,
        } => {
            let i: ProtectedItem = api.update_item(
                &id,
                &UpdateItem {
                    name,
                    paths: nonempty(paths),
                    excludes: nonempty(s.excludes),
                    one_file_system: s.one_file_system,
                    tags: nonempty(s.tags),
                    pre_command: s.pre_command,
                    post_command: s.post_command,
                    schedule: s.schedule,
                    jitter_seconds: s.jitter_seconds,
                    window_seconds: s.window_seconds,
                    upload_limit_kib: s.upload_limit,
                },
            )?;
            show(g, &i, print_item)
        }
        ItemCommand::Delete { id } => {
            api.delete_item(&id)?;
            show(g, &serde_json::json!({ "deleted": id }), |_| {
                println!("deleted protected item {id}")
            })
        }
        ItemCommand::Run { id } => {
            let job: Job = api.run_item(&id)?;
            show(g, &job, |job| {
                println!(
                    "job {} backs up item {id} when its device's agent takes it (loop job show {})",
                    job.id, job.id
                )
            })
        }
    }
}
