//! `loop job`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::JobCommand;

fn print_jobs(js: &[Job]) {
    for j in js {
        let p = &j.progress;
        let done = match (p.files_total, p.bytes_total) {
            (Some(f), _) if f > 0 => format!("  {}/{f} objects", p.files_done),
            (_, Some(b)) if b > 0 => format!("  {}/{b} bytes", p.bytes_done),
            _ => String::new(),
        };
        println!(
            "{}  {:<24} {:<16} {}:{}  {}  attempt {}{done}{}",
            j.id,
            j.state,
            j.kind,
            j.target_kind,
            j.target_id,
            j.scheduled_at.format("%Y-%m-%d %H:%M:%S"),
            j.attempts,
            j.error
                .as_deref()
                .map(|e| format!("  ({})", crate::output::printable(e)))
                .unwrap_or_default()
        );
    }
}

pub(crate) fn job(g: &Global, c: JobCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        JobCommand::List {
            tenant,
            state,
            kind,
            limit,
        } => {
            let q = JobQuery {
                tenant_id: tenant,
                state,
                kind,
            };
            let js: Vec<Job> = api.jobs(&q, Some(limit.unwrap_or(100)))?;
            show(g, &js, |js| print_jobs(js))
        }
        JobCommand::Show { id } => {
            let j: Job = api.job(&id)?;
            show(g, &j, |j| {
                print_jobs(std::slice::from_ref(j));
                if let Some(n) = &j.node {
                    println!("node: {n}");
                }
                if let Some(s) = &j.summary {
                    println!("summary: {s}");
                }
            })
        }
        JobCommand::Logs { id } => {
            let lines: Vec<JobLogLine> = api.job_log(&id)?;
            show(g, &lines, |lines| {
                for l in lines {
                    println!(
                        "{}  {:<7} {}",
                        l.at.format("%Y-%m-%d %H:%M:%S"),
                        l.level,
                        crate::output::printable(&l.message)
                    );
                }
            })
        }
        JobCommand::Cancel { id } => {
            let j: Job = api.cancel_job(&id)?;
            show(g, &j, |j| {
                if j.state == JobState::Cancelled {
                    println!("cancelled job {}", j.id)
                } else {
                    println!("job {} stops at its next check", j.id)
                }
            })
        }
    }
}
