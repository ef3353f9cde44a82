//! `loop user`, including the codes a user redeems from an e-mail.

use std::process::ExitCode;

use anyhow::Result;
use loop_agent::{ApiClient, Connection};
use loop_api::*;
use serde_json::json;

use super::{api, password_from_env_or_prompt};
use crate::args::Global;
use crate::output::show;
use crate::service_args::*;

fn print_users(us: &[User]) {
    for u in us {
        println!(
            "{}  {:<8}  {} {} <{}>{}",
            u.id,
            u.status,
            u.first_name,
            u.last_name,
            u.email,
            u.pending_email
                .as_deref()
                .map(|p| format!(" (changing to <{p}> once confirmed)"))
                .unwrap_or_default()
        );
    }
}

/// A client without a session, for the codes a user redeems from an e-mail.
fn anonymous(g: &Global, server: &str) -> Result<ApiClient> {
    Ok(ApiClient::new(Connection::new(server, &g.trust())?, None))
}

pub(crate) fn user(g: &Global, c: UserCommand) -> Result<ExitCode> {
    match c {
        UserCommand::AcceptInvite { server } => {
            let token = password_from_env_or_prompt("LOOP_INVITE_TOKEN", "invitation code: ")?;
            let password =
                password_from_env_or_prompt("LOOP_NEW_USER_PASSWORD", "choose a password: ")?;
            anonymous(g, &server)?.accept_invite(&AcceptInvite {
                invite_token: token.trim().to_string().into(),
                password: password.into(),
            })?;
            return show(g, &json!({ "accepted": true }), |_| {
                println!("invitation accepted: sign in with `loop login`")
            });
        }
        UserCommand::ConfirmEmail { server } => {
            let token = password_from_env_or_prompt("LOOP_EMAIL_TOKEN", "confirmation code: ")?;
            anonymous(g, &server)?.confirm_email(&ConfirmEmail {
                token: token.trim().to_string().into(),
            })?;
            return show(g, &json!({ "confirmed": true }), |_| {
                println!("address confirmed: sign in with it from now on")
            });
        }
        _ => {}
    }
    let api = api(g)?;
    match c {
        UserCommand::AcceptInvite { .. } | UserCommand::ConfirmEmail { .. } => {
            unreachable!("handled above")
        }
        UserCommand::List { tenant } => {
            let us: Vec<User> = api.users(tenant.as_ref())?;
            show(g, &us, |us| print_users(us))
        }
        UserCommand::Create {
            tenant,
            email,
            first_name,
            last_name,
            address,
            role,
            invite,
        } => {
            let password = if invite {
                None
            } else {
                Some(password_from_env_or_prompt(
                    "LOOP_NEW_USER_PASSWORD",
                    "password for the new user: ",
                )?)
            };
            let r: CreatedUser = api.create_user(&CreateUser {
                tenant_id: tenant,
                email,
                first_name,
                last_name,
                business_address: address,
                password: password.map(SecretText::from),
                role,
            })?;
            show(g, &r, |r| {
                println!("created user {} ({})", r.user.email, r.user.id);
                match &r.invite_token {
                    Some(t) => println!("invite token (shown once): {}", t.expose()),
                    None if r.user.status == UserStatus::Invited => {
                        println!("the invitation goes to {} by e-mail", r.user.email)
                    }
                    None => {}
                }
            })
        }
        UserCommand::Update {
            id,
            email,
            first_name,
            last_name,
            address,
            language,
            time_zone,
        } => {
            let u: User = api.update_user(
                &id,
                &UpdateUser {
                    email,
                    first_name,
                    last_name,
                    business_address: address,
                    language,
                    time_zone,
                    current_password: None,
                },
            )?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Disable { id } => {
            let u: User = api.disable_user(&id)?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Enable { id } => {
            let u: User = api.enable_user(&id)?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Erase { id, confirm } => {
            let e = api.erase_person(&id, &ErasePerson { confirm })?;
            show(g, &e, |e| {
                println!(
                    "erased {}: {} session(s), the audit log's addresses of {} event(s), {} \
                     role(s), {} notification recipient(s); the account stays as a pseudonym",
                    e.user_id,
                    e.sessions_deleted,
                    e.audit_personal_erased,
                    e.role_bindings_removed,
                    e.notify_recipients_removed
                )
            })
        }
        UserCommand::Restrict { id, lift } => {
            let u = api.set_restriction(&id, &SetRestriction { restricted: !lift })?;
            show(g, &u, |u| {
                if u.restricted {
                    println!(
                        "{}: processing restricted (kept; no announcements, no summary reports)",
                        u.id
                    )
                } else {
                    println!("{}: restriction lifted", u.id)
                }
            })
        }
        UserCommand::Roles { id } => {
            let bs: Vec<RoleBinding> = api.user_roles(&id)?;
            show(g, &bs, |bs| {
                for b in bs {
                    println!("{}  {} on {}", b.id, b.role, b.tenant_id);
                }
            })
        }
        UserCommand::Grant { id, tenant, role } => {
            let b: RoleBinding = api.grant_role(
                &id,
                &CreateRoleBinding {
                    tenant_id: tenant,
                    role,
                },
            )?;
            show(g, &b, |b| {
                println!("granted {} on {} ({})", b.role, b.tenant_id, b.id)
            })
        }
        UserCommand::Revoke { id, binding } => {
            api.revoke_role(&id, &binding)?;
            show(g, &json!({"revoked": binding}), |_| {
                println!("revoked {binding}")
            })
        }
    }
}
