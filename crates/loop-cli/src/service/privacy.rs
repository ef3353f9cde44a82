//! `loop privacy`: the privacy policy, your consent to product news, announcements.

use std::process::ExitCode;

use anyhow::{Context, Result};
use loop_api::*;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::{OnOff, PrivacyCommand, RequestCommand, SubprocessorCommand};

fn print_policy(p: &PrivacyPolicy) {
    println!(
        "privacy policy {} of {}: {}",
        p.version, p.published_at, p.url
    );
    if !p.summary.is_empty() {
        println!("{}", p.summary);
    }
}

fn print_consent(c: &MarketingConsent) {
    let state = if c.given { "given" } else { "not given" };
    match (&c.changed_at, &c.policy_version) {
        (Some(at), Some(v)) => println!("consent to product news: {state} ({at}, policy {v})"),
        (Some(at), None) => println!("consent to product news: {state} ({at})"),
        _ => println!("consent to product news: {state}"),
    }
}

pub(crate) fn privacy(g: &Global, c: PrivacyCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        PrivacyCommand::Policy => show(g, &api.privacy_policy()?, print_policy),
        PrivacyCommand::Accept => {
            let p = api.privacy_policy()?;
            api.acknowledge_policy(&AcknowledgePolicy {
                version: p.version.clone(),
            })?;
            show(g, &p, |p| {
                println!("acknowledged privacy policy {}", p.version)
            })
        }
        PrivacyCommand::Publish {
            version,
            url,
            summary,
        } => {
            let p = api.publish_policy(&PublishPolicy {
                version,
                url,
                summary,
            })?;
            show(g, &p, |p| {
                println!(
                    "published privacy policy {}: users are shown it at their next sign-in",
                    p.version
                )
            })
        }
        PrivacyCommand::Consent { set: None } => show(g, &api.marketing_consent()?, print_consent),
        PrivacyCommand::Consent { set: Some(s) } => {
            let c = api.set_marketing_consent(&SetMarketingConsent {
                given: s == OnOff::On,
            })?;
            show(g, &c, print_consent)
        }
        PrivacyCommand::Request(c) => request(g, &api, c),
        PrivacyCommand::Subprocessor(c) => subprocessor(g, &api, c),
        PrivacyCommand::Report { tenant } => {
            let r = api.privacy_report(&tenant)?;
            show(g, &r, print_report)
        }
        PrivacyCommand::Export {
            user,
            output,
            wait_secs,
        } => export(g, &api, user.as_ref(), &output, wait_secs),
        PrivacyCommand::Announce { subject, text_file } => {
            let text = std::fs::read_to_string(&text_file)
                .with_context(|| format!("reading {}", text_file.display()))?;
            let a = api.announce(&Announce { subject, text })?;
            show(g, &a, |a| {
                println!(
                    "{}: queued for {} user(s) who consented to product news",
                    a.id, a.recipients
                )
            })
        }
    }
}

fn print_requests(rs: &[SubjectRequest]) {
    for r in rs {
        let due = if r.overdue {
            format!("OVERDUE since {}", r.due_at)
        } else {
            format!("due {}", r.due_at)
        };
        let closed = match (&r.outcome, &r.action) {
            (Some(o), Some(a)) => format!(" ({o}: {a})"),
            _ => String::new(),
        };
        println!(
            "{}  {:<13} {:<6} user {}  {due}{closed}",
            r.id, r.kind, r.state, r.user_id
        );
    }
}

fn request(g: &Global, api: &loop_agent::ApiClient, c: RequestCommand) -> Result<ExitCode> {
    match c {
        RequestCommand::Add {
            user,
            kind,
            details,
        } => {
            let r = api.create_subject_request(&CreateSubjectRequest {
                user_id: user,
                kind,
                details,
            })?;
            show(g, &r, |r| print_requests(std::slice::from_ref(r)))
        }
        RequestCommand::List {
            tenant,
            open,
            overdue,
        } => {
            let mut rs = api.subject_requests(&SubjectRequestQuery {
                tenant_id: tenant,
                state: (open || overdue).then_some(SubjectRequestState::Open),
            })?;
            if overdue {
                rs.retain(|r| r.overdue);
            }
            show(g, &rs, |rs| print_requests(rs))
        }
        RequestCommand::Close {
            id,
            action,
            refused,
        } => {
            let outcome = if refused {
                SubjectRequestOutcome::Refused
            } else {
                SubjectRequestOutcome::Done
            };
            let r = api.close_subject_request(&id, &CloseSubjectRequest { outcome, action })?;
            show(g, &r, |r| print_requests(std::slice::from_ref(r)))
        }
    }
}

fn subprocessor(
    g: &Global,
    api: &loop_agent::ApiClient,
    c: SubprocessorCommand,
) -> Result<ExitCode> {
    let print = |ss: &[Subprocessor]| {
        for s in ss {
            println!("{}  {} ({}): {}", s.id, s.name, s.location, s.purpose);
        }
    };
    match c {
        SubprocessorCommand::List => show(g, &api.subprocessors()?, |ss| print(ss)),
        SubprocessorCommand::Add {
            name,
            purpose,
            location,
        } => {
            let s = api.add_subprocessor(&CreateSubprocessor {
                name,
                purpose,
                location,
            })?;
            show(g, &s, |s| print(std::slice::from_ref(s)))
        }
        SubprocessorCommand::Remove { id } => {
            api.remove_subprocessor(&id)?;
            show(g, &serde_json::json!({ "removed": id }), |_| {
                println!("removed {id}; the controllers' admins are told")
            })
        }
    }
}

fn print_report(r: &PrivacyReport) {
    println!(
        "records of processing for {} ({})",
        r.tenant_id, r.generated_at
    );
    println!("\npersonal data held:");
    for c in &r.categories {
        println!("  {:>8}  {}", c.records, c.category);
    }
    println!("\nwhere it lives:");
    for l in &r.residency.locations {
        println!(
            "  vault {} ({}): {} in {}",
            l.vault_id, l.role, l.destination, l.jurisdiction
        );
    }
    println!("\nretention:");
    for k in &r.retention {
        println!("  {}: {}", k.data, k.kept);
    }
    println!("\nsub-processors:");
    for s in &r.subprocessors {
        println!("  {} ({}): {}", s.name, s.location, s.purpose);
    }
    println!("\nopen data-subject requests: {}", r.open_requests.len());
    print_requests(&r.open_requests);
}

/// Asks for the archive, waits (at most `wait_secs`) for its job, and writes the zip file.
fn export(
    g: &Global,
    api: &loop_agent::ApiClient,
    user: Option<&UserId>,
    output: &std::path::Path,
    wait_secs: u64,
) -> Result<ExitCode> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(wait_secs);
    let mut pause = std::time::Duration::from_millis(300);
    let mut e = api.request_data_export(user)?;
    while e.state == DataExportState::Preparing {
        let mut state = None;
        // The job says why an archive failed, to those who may read jobs; anyone may ask
        // for their own archive, and then only waits for it.
        let job = match &e.job_id {
            Some(job) => match api.job(&job.parse().context("the server named a malformed job")?) {
                Ok(j) => Some(j),
                Err(loop_agent::ApiError::Problem {
                    status: 403 | 404, ..
                }) => None,
                Err(err) => return Err(err.into()),
            },
            None => None,
        };
        if let Some(j) = job {
            if j.state.is_final() && j.state != JobState::Succeeded {
                anyhow::bail!(
                    "making the archive failed: {}",
                    j.error.unwrap_or_else(|| j.state.to_string())
                );
            }
            state = Some(format!(
                "job {} is {}; `loop job show {}` follows it",
                j.id, j.state, j.id
            ));
        }
        if std::time::Instant::now() + pause > deadline {
            anyhow::bail!(
                "export {} is not ready after {wait_secs} s: {}",
                e.id,
                state.unwrap_or_else(|| "no job yet".into())
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
        e = api.data_export(&e.id)?;
    }
    let zip = api.data_export_archive(&e.id)?;
    // Personal data: readable by its owner only.
    super::account::write_private(output, &zip)?;
    show(g, &e, |e| {
        println!(
            "{}: {} bytes written to {} (SHA-256 {}); on the server until {}",
            e.id,
            zip.len(),
            output.display(),
            e.sha256.as_deref().unwrap_or("?"),
            e.expires_at.map(|t| t.to_string()).unwrap_or_default()
        )
    })
}
