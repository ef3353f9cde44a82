//! `loop signup`: an organisation starts its own trial, without an account yet.

use std::process::ExitCode;

use anyhow::Result;
use loop_agent::{ApiClient, Connection};
use loop_api::{ConfirmSignUp, Plan, SignUp};

use super::password_from_env_or_prompt;
use crate::args::Global;
use crate::output::show;
use crate::service_args::SignupCommand;

pub(crate) fn signup(g: &Global, c: SignupCommand) -> Result<ExitCode> {
    let client = |server: &str| -> Result<ApiClient> {
        Ok(ApiClient::new(Connection::new(server, &g.trust())?, None))
    };
    match c {
        SignupCommand::Plans { server } => {
            let plans: Vec<Plan> = client(&server)?.signup_plans()?;
            show(g, &plans, |ps| {
                for p in ps {
                    let price = super::billing::money(p.price_cents, &p.currency);
                    println!("{}  {}  {price}/month", p.id, p.name);
                }
            })
        }
        SignupCommand::Request {
            server,
            organisation,
            email,
            first_name,
            last_name,
            address,
            plan,
            language,
        } => {
            let password =
                password_from_env_or_prompt("LOOP_NEW_USER_PASSWORD", "choose a password: ")?;
            let answer = client(&server)?.sign_up(&SignUp {
                organisation,
                first_name,
                last_name,
                email: email.clone(),
                password: password.into(),
                business_address: address,
                plan_id: plan,
                language,
            })?;
            show(g, &answer, |_| {
                println!(
                    "a confirmation code is on its way to {email}: confirm with `loop signup confirm`"
                )
            })
        }
        SignupCommand::Confirm { server } => {
            let token = password_from_env_or_prompt("LOOP_SIGNUP_TOKEN", "confirmation code: ")?;
            let done = client(&server)?.confirm_sign_up(&ConfirmSignUp {
                token: token.trim().to_string().into(),
            })?;
            show(g, &done, |d| {
                println!(
                    "{}: your organisation; its free trial ends {}. Sign in with `loop login`.",
                    d.tenant_id, d.trial_ends_at
                )
            })
        }
    }
}
