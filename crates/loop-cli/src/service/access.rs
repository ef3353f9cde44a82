//! `loop device` and `loop token`.

use std::process::ExitCode;

use anyhow::Result;
use loop_api::*;
use serde_json::json;

use super::api;
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

pub(crate) fn device(g: &Global, c: DeviceCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        DeviceCommand::List { tenant } => {
            let ds: Vec<Device> = api.devices(tenant.as_ref())?;
            show(g, &ds, |ds| {
                for d in ds {
                    println!("{}  {}  {}", d.id, d.tenant_id, d.name);
                }
            })
        }
        DeviceCommand::Create { tenant, name } => {
            let d: Device = api.create_device(&CreateDevice {
                tenant_id: tenant,
                name,
            })?;
            show(g, &d, |d| println!("created device {} ({})", d.name, d.id))
        }
        DeviceCommand::EnrollCode {
            tenant,
            expires_minutes,
        } => {
            let c: EnrolmentCode = api.create_enrolment_code(&CreateEnrolmentCode {
                tenant_id: tenant,
                expires_in_minutes: expires_minutes,
            })?;
            show(g, &c, |c| {
                println!("enrolment code (shown once, valid until {}):", c.expires_at);
                println!("{}", c.code.expose());
                println!(
                    "on the machine: loop agent enroll --server {} (it asks for the code; \
                     or set LOOP_ENROL_CODE)",
                    api.conn.base
                );
            })
        }
        DeviceCommand::Restore {
            id,
            vault,
            snapshot,
            paths,
            target,
        } => {
            let job: Job = api.restore_to_device(
                &id,
                &RestoreToDevice {
                    vault_id: vault,
                    snapshot,
                    paths,
                    target,
                },
            )?;
            show(g, &job, |job| {
                println!(
                    "job {} restores to device {id} when its agent takes it (loop job show {})",
                    job.id, job.id
                )
            })
        }
        DeviceCommand::Delete { id } => {
            api.delete_device(&id)?;
            show(g, &json!({"deleted": id}), |_| {
                println!("deleted device {id}")
            })
        }
    }
}

pub(crate) fn token(g: &Global, c: TokenCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        TokenCommand::List { tenant } => {
            let ts: Vec<Token> = api.tokens(tenant.as_ref())?;
            show(g, &ts, |ts| {
                for t in ts {
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{}  {:<7}  {:<6}  {}  [{}]",
                        t.id,
                        state,
                        t.kind,
                        t.name,
                        permission_list(&t.permissions)
                    );
                }
            })
        }
        TokenCommand::Create {
            tenant,
            name,
            kind,
            device,
            vaults,
            permissions,
            expires_days,
        } => {
            let r: CreatedToken = api.create_token(&CreateToken {
                tenant_id: tenant,
                name,
                kind,
                device_id: device,
                vault_ids: vaults,
                permissions,
                expires_in_days: expires_days,
            })?;
            show(g, &r, |r| {
                println!(
                    "created token {} [{}]",
                    r.token.id,
                    permission_list(&r.token.permissions)
                );
                println!(
                    "secret (shown once; use it as LOOP_TOKEN): {}",
                    r.secret.expose()
                );
            })
        }
        TokenCommand::Revoke { id } => {
            api.revoke_token(&id)?;
            show(g, &json!({"revoked": id}), |_| {
                println!("revoked token {id}")
            })
        }
    }
}

/// `backup,restore`: a token's permissions as `--permission` takes them.
fn permission_list(ps: &[TokenPermission]) -> String {
    ps.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(",")
}
