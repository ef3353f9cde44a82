//! `loop agent`: enrol this machine as a device, then run the backups the server schedules
//! or is asked for, reporting each job's progress, log and end under the job's fence; and
//! the maintenance of the customer-key vaults this device maintains (`maintain.rs`). A
//! backup job is in `backup.rs`, a restore job in `restore.rs`.

mod backup;
mod maintain;
mod restore;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use loop_agent::{ApiClient, ApiError, Connection, Trust, VaultStorage};
use loop_api::{
    AgentFinish, AgentHeartbeat, AgentJob, AgentReport, EnrollAgent, JobKind, JobProgress, JobState,
};
use loop_repo::Repository;
use loop_repo::backup::BackupProgress;
use loop_repo::check::CheckProgress;
use loop_repo::keys::Secret;
use loop_repo::pace::Limits;
use loop_repo::restore::RestoreProgress;
use serde::{Deserialize, Serialize};

use crate::args::Global;
use crate::known_vaults::KnownVaults;
use crate::output::show;
use crate::repo_open::{hostname, open_served, passphrase};
use crate::service_args::AgentCommand;

/// What enrolment leaves in the state directory (`agent.json`, mode 0600).
#[derive(Serialize, Deserialize)]
struct Enrolled {
    server: String,
    fingerprint: Option<String>,
    cacert: Option<PathBuf>,
    tenant_id: String,
    device_id: String,
    token: String,
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join("agent.json")
}

/// The file an enrolment is written to before it takes its name, made before the server is
/// asked (so a state directory this user cannot write fails before the code is used up),
/// where only this user (root, for the system's agent) can read it.
fn prepare_save(dir: &Path) -> Result<(std::fs::File, PathBuf)> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join("agent.json.tmp");
    // One an earlier enrolment left goes (a link is removed, not followed); the new one is
    // made afresh, never through something already there.
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", tmp.display())),
    }
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("writing {}", tmp.display()))?;
    Ok((f, tmp))
}

/// Writes the enrolment whole, then gives it its name: a crash leaves either no enrolment
/// or all of it.
fn save(dir: &Path, (mut f, tmp): (std::fs::File, PathBuf), e: &Enrolled) -> Result<()> {
    use std::io::Write as _;
    f.write_all(serde_json::to_string_pretty(e)?.as_bytes())?;
    f.sync_all()?;
    let path = state_file(dir);
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn load(dir: &Path) -> Result<Enrolled> {
    let path = state_file(dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: not enrolled; run `loop agent enroll --server URL` first",
            path.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("{}: damaged", path.display()))
}

fn trust(e: &Enrolled) -> Trust {
    match (&e.fingerprint, &e.cacert) {
        (Some(f), _) => Trust::Fingerprint(f.clone()),
        (None, Some(c)) => Trust::CaFile(c.clone()),
        (None, None) => Trust::System,
    }
}

pub(crate) fn agent(g: &Global, c: AgentCommand) -> Result<ExitCode> {
    match c {
        AgentCommand::Enroll {
            server,
            code,
            name,
            state,
        } => {
            if state_file(&state.state_dir).exists() {
                bail!(
                    "{} exists: this machine is enrolled already (remove it to enrol again)",
                    state_file(&state.state_dir).display()
                );
            }
            let server = server.trim_end_matches('/').to_string();
            let cacert = super::cacert_to_keep(g)?;
            let code = match code {
                Some(c) => c,
                None => super::password_from_env_or_prompt("LOOP_ENROL_CODE", "enrolment code: ")?,
            };
            let conn = Connection::new(&server, &g.trust())?;
            let file = prepare_save(&state.state_dir)?;
            let enrolled = ApiClient::new(conn, None)
                .enroll(&EnrollAgent {
                    code: code.into(),
                    name: name.unwrap_or_else(hostname),
                })
                .context("enrolling");
            let enrolled = match enrolled {
                Ok(e) => e,
                Err(e) => {
                    let _ = std::fs::remove_file(&file.1);
                    return Err(e);
                }
            };
            let e = Enrolled {
                server,
                fingerprint: g.server_fingerprint.clone(),
                cacert,
                tenant_id: enrolled.tenant_id,
                device_id: enrolled.device_id,
                token: enrolled.token.expose().to_string(),
            };
            save(&state.state_dir, file, &e)?;
            show(
                g,
                &serde_json::json!({ "device_id": e.device_id, "tenant_id": e.tenant_id }),
                |_| {
                    println!(
                        "enrolled as device {} of tenant {}",
                        e.device_id, e.tenant_id
                    )
                },
            )
        }
        AgentCommand::Run {
            state,
            poll_seconds,
            allow_commands,
            restore_roots,
            once,
        } => {
            let e = load(&state.state_dir)?;
            let restore_roots = if restore_roots.is_empty() {
                use std::os::unix::fs::DirBuilderExt as _;
                // The default root, which only this user (root, for the system's agent) reads.
                let default = state.state_dir.join("restores");
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&default)
                    .with_context(|| format!("creating {}", default.display()))?;
                vec![default]
            } else {
                restore_roots
            };
            let conn = Connection::new(&e.server, &trust(&e))?;
            let agent = Agent {
                client: ApiClient::new(conn.clone(), Some(e.token.clone())),
                conn,
                token: e.token,
                allow_commands,
                restore_roots,
                pending: state.state_dir.join("pending"),
                known: KnownVaults::at(Some(state.state_dir.join("known-vaults"))),
            };
            agent.run(g, Duration::from_secs(poll_seconds.max(1)), once)
        }
    }
}

struct Agent {
    client: ApiClient,
    conn: Connection,
    token: String,
    allow_commands: bool,
    /// Directories under which a restore the server asks for may write.
    restore_roots: Vec<PathBuf>,
    /// Ends of jobs the server has not taken yet (one JSON file per job), sent first in
    /// every round: a result made while the server was away is reported once it is back,
    /// also after the agent restarts.
    pending: PathBuf,
    /// The vaults this agent opened with a passphrase, whose key the server may never offer.
    known: KnownVaults,
}

/// A job's end waiting in [`Agent::pending`].
#[derive(Serialize, Deserialize)]
struct PendingFinish {
    job_id: String,
    finish: AgentFinish,
}

/// Where the end of job `job_id` waits. The ID comes from the server: one that is not an ID
/// (a path, say) is refused, so it cannot name a file elsewhere.
fn pending_file(dir: &Path, job_id: &str) -> Result<PathBuf> {
    let plain = (1..=64).contains(&job_id.len())
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !plain {
        bail!("the server named a job {job_id:?}, which is not a job ID");
    }
    Ok(dir.join(format!("{job_id}.json")))
}

/// Waits after the server could not be reached: 1 s, doubling, at most a minute.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.min(6)).min(60))
}

impl Agent {
    fn run(&self, g: &Global, poll: Duration, once: bool) -> Result<ExitCode> {
        let mut failures = 0;
        loop {
            match self.round(g) {
                Ok(()) => failures = 0,
                Err(e) if once => return Err(e),
                Err(e) => {
                    failures += 1;
                    let line = loop_repo::one_line(&*e);
                    let line = crate::output::printable(&line);
                    eprintln!("loop agent: {line}; trying again");
                    std::thread::sleep(backoff(failures));
                    continue;
                }
            }
            if once {
                return Ok(ExitCode::SUCCESS);
            }
            std::thread::sleep(poll);
        }
    }

    /// Keeps a job's end to send later, durably (written whole, then renamed into place).
    fn keep_finish(&self, job_id: &str, finish: AgentFinish) -> Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.pending)
            .with_context(|| format!("creating {}", self.pending.display()))?;
        let path = pending_file(&self.pending, job_id)?;
        let p = PendingFinish {
            job_id: job_id.into(),
            finish,
        };
        crate::service::account::write_private(&path, serde_json::to_string(&p)?.as_bytes())
    }

    /// Sends the kept ends of jobs; stops at the first the server does not answer.
    fn send_pending(&self) -> Result<()> {
        let Ok(entries) = std::fs::read_dir(&self.pending) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for path in files {
            let p: PendingFinish = match std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                Some(p) => p,
                None => {
                    eprintln!("loop agent: {} does not read; removed", path.display());
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
            };
            match self.client.finish_job(&p.job_id, &p.finish) {
                Ok(()) => {}
                Err(e @ ApiError::Transport(_)) => {
                    return Err(e).context("reporting the end of an earlier job");
                }
                // The server failed this one for a moment: kept for the next round, and the
                // agent goes on (a result the server keeps failing never stops its backups).
                Err(e) if e.is_temporary() => {
                    eprintln!(
                        "loop agent: the end of job {} was not taken ({e}); kept",
                        p.job_id
                    );
                    continue;
                }
                // Refused for good (the job was taken from this agent, or is gone).
                Err(e) => eprintln!("loop agent: the end of job {} was refused: {e}", p.job_id),
            }
            // Another agent on this state directory may have sent and removed it first.
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
            }
        }
        Ok(())
    }

    /// One heartbeat, the ends of jobs still to report, then every due job of this device.
    fn round(&self, g: &Global) -> Result<()> {
        self.send_pending()?;
        self.client
            .heartbeat(&AgentHeartbeat {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .context("heartbeat")?;
        while let Some(job) = self.client.claim_job().context("claiming a job")? {
            self.run_job(g, job)?;
        }
        Ok(())
    }

    fn run_job(&self, g: &Global, job: AgentJob) -> Result<()> {
        let id = job.job.id.clone();
        let watch = Arc::new(Watch::default());
        let done = Arc::new(AtomicBool::new(false));
        let reporter = {
            let (client, watch, done) = (
                ApiClient::new(self.conn.clone(), Some(self.token.clone())),
                watch.clone(),
                done.clone(),
            );
            let (id, fence) = (id.clone(), job.fence);
            std::thread::spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    for _ in 0..50 {
                        if done.load(Ordering::Relaxed) {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    let report = AgentReport {
                        fence,
                        level: None,
                        message: None,
                        progress: Some(watch.progress()),
                    };
                    match client.report_job(&id, &report) {
                        Ok(lease) if lease.cancel_requested && !watch.stopped() => {
                            watch.stop();
                            let said = AgentReport {
                                fence,
                                level: Some("info".into()),
                                message: Some("a cancel was asked for: stopping".into()),
                                progress: None,
                            };
                            let _ = client.report_job(&id, &said);
                        }
                        Ok(_) => {}
                        // The server no longer counts the job as held by this agent: its
                        // lease lapsed while the agent was away (a laptop asleep, a network
                        // cut), and it was recorded `abandoned`. The work goes on; the server
                        // takes the end of such a job when it comes, and `finish` tells.
                        Err(ApiError::Problem { ref code, .. }) if code == "lease_lost" => {
                            eprintln!(
                                "loop agent: job {id}: its lease lapsed while this agent was \
                                 away; it goes on and reports its end when done"
                            );
                            return;
                        }
                        // The server is away for a moment: the next report tries again.
                        Err(e) => eprintln!("loop agent: reporting on job {id}: {e}"),
                    }
                }
            })
        };
        let outcome = match job.job.kind {
            JobKind::Backup => self.back_up(g, &job, &watch.backup),
            JobKind::Restore => self.restore(g, &job, &watch.restore),
            JobKind::Retention => self.retention(g, &job, &watch),
            JobKind::Verify => self.verify(g, &job, &watch.check),
            other => Err(anyhow::anyhow!("this agent does not run {other} jobs")),
        };
        done.store(true, Ordering::Relaxed);
        let _ = reporter.join();
        let (state, summary, error) = match outcome {
            Ok((summary, warnings)) if warnings > 0 => {
                (JobState::SucceededWithWarnings, Some(summary), None)
            }
            Ok((summary, _)) => (JobState::Succeeded, Some(summary), None),
            Err(_) if watch.stopped() => (JobState::Cancelled, None, None),
            Err(e) => (JobState::Failed, None, Some(loop_repo::one_line(&*e))),
        };
        let finish = AgentFinish {
            fence: job.fence,
            state,
            summary,
            error,
        };
        match self.client.finish_job(&id, &finish) {
            Ok(()) => Ok(()),
            Err(ApiError::Problem { ref code, .. }) if code == "lease_lost" => {
                eprintln!(
                    "loop agent: job {id} ended on the server meanwhile; its result is dropped"
                );
                Ok(())
            }
            // The server is away, restarting, or failed for a moment (a 5xx from it or a
            // proxy): the end is kept, not lost.
            Err(e) if e.is_temporary() => {
                self.keep_finish(&id, finish)?;
                Err(e).context(
                    "reporting the end of a job; it is kept and sent once the server answers",
                )
            }
            Err(e) => Err(e).context("reporting the end of a job"),
        }
    }

    fn log(&self, job: &AgentJob, level: &str, message: &str) {
        let r = AgentReport {
            fence: job.fence,
            level: Some(level.into()),
            message: Some(message.into()),
            progress: None,
        };
        if let Err(e) = self.client.report_job(&job.job.id, &r) {
            eprintln!("loop agent: logging on job {}: {e}", job.job.id);
        }
    }
}

impl Agent {
    /// A vault of the tenant, through the vault protocol with the device token: a managed
    /// vault opens with the key the server hands over, another with the passphrase.
    fn open_vault(&self, g: &Global, vault_id: &str, operation: &str) -> Result<Repository> {
        self.open_vault_at(g, vault_id, operation, crate::repo_open::limits(g))
    }

    /// [`Agent::open_vault`], moving its objects at `limits`.
    fn open_vault_at(
        &self,
        g: &Global,
        vault_id: &str,
        operation: &str,
        limits: Limits,
    ) -> Result<Repository> {
        let storage = VaultStorage::new(self.conn.clone(), vault_id, &self.token)
            .with_retry(crate::repo_open::retry_budget(g, loop_agent::SERVER_RETRY))
            .with_limits(limits);
        let session = storage
            .open(operation, &hostname())
            .with_context(|| format!("opening vault {vault_id}"))?;
        let repo = open_served(Arc::new(storage), &session, &self.known, |storage| {
            let pass = passphrase(g)?;
            Ok(Repository::open(storage, Secret::Passphrase(&pass.0))?)
        })?;
        Ok(match crate::repo_open::cache_for(g, operation) {
            Some(root) => repo.with_cache(&root),
            None => repo,
        })
    }
}

/// A running job's live counters, as the engine keeps them for its kind (the others stay
/// zero), and the flags that stop it.
#[derive(Default)]
pub(super) struct Watch {
    backup: BackupProgress,
    restore: RestoreProgress,
    check: CheckProgress,
}

impl Watch {
    /// Asks the job to stop (a cancel, or the job taken from this agent), whatever its kind.
    fn stop(&self) {
        self.backup.cancel.store(true, Ordering::Relaxed);
        self.restore.cancel.store(true, Ordering::Relaxed);
        self.check.stop.store(true, Ordering::Relaxed);
    }

    pub(super) fn stopped(&self) -> bool {
        self.backup.cancel.load(Ordering::Relaxed)
    }

    /// What the job reports it has done. A restore's totals grow as it plans, and a check
    /// counts bytes only, so neither says a total.
    fn progress(&self) -> JobProgress {
        let load = |v: &std::sync::atomic::AtomicU64| v.load(Ordering::Relaxed);
        let (b, r) = (&self.backup, &self.restore);
        let total = |v| b.scan_finished.load(Ordering::Relaxed).then_some(v);
        JobProgress {
            bytes_done: load(&b.bytes_done) + load(&r.bytes_done) + load(&self.check.bytes_done),
            bytes_total: total(load(&b.bytes_total)),
            files_done: load(&b.files_done) + load(&r.files_done),
            files_total: total(load(&b.files_total)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_id_from_the_server_names_a_file_of_the_pending_directory_or_nothing() {
        let dir = Path::new("/var/lib/loop-agent/pending");
        assert_eq!(
            pending_file(dir, "jb_0123abcd").unwrap(),
            dir.join("jb_0123abcd.json")
        );
        for bad in [
            "",
            "../../etc/cron.d/x",
            "a/b",
            "..",
            "x.json",
            &"j".repeat(65),
        ] {
            assert!(pending_file(dir, bad).is_err(), "{bad:?}");
        }
    }
}
