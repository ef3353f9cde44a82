//! `loop server`: runs the service.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Result;
use loop_api::VaultId;

use crate::service_args::*;

/// `loop server reconcile`: one line per vault, or JSON.
async fn reconcile(
    config: &loop_server::Config,
    vault: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let done = loop_server::usage::reconcile(config, vault).await?;
    if json {
        let rows: Vec<_> = done
            .iter()
            .map(|v| {
                serde_json::json!({
                    "vault_id": v.vault_id,
                    "tenant_id": v.tenant_id,
                    "objects": v.objects,
                    "used_bytes_before": v.change.used_before,
                    "used_bytes": v.change.used_after,
                    "recorded": v.change.recorded,
                    "dropped": v.change.dropped,
                    "resized": v.change.resized,
                })
            })
            .collect();
        crate::output::print_json(&rows)?;
    } else {
        for v in &done {
            println!(
                "vault {}: {} objects, used {} -> {} bytes ({} recorded, {} dropped, {} resized)",
                v.vault_id,
                v.objects,
                v.change.used_before,
                v.change.used_after,
                v.change.recorded,
                v.change.dropped,
                v.change.resized
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `loop server rewrap-keys`: one line per wrapped column, or JSON. Fails while any value
/// opens with no configured key.
async fn rewrap_keys(config: &loop_server::Config, json: bool) -> Result<ExitCode> {
    let done = loop_server::rewrap::rewrap(config).await?;
    if json {
        let rows: Vec<_> = done
            .iter()
            .map(|c| {
                serde_json::json!({
                    "column": c.column, "values": c.values, "rewrapped": c.rewrapped,
                    "unreadable": c.unreadable,
                })
            })
            .collect();
        crate::output::print_json(&rows)?;
    } else {
        for c in &done {
            println!(
                "{}: {} values, {} rewrapped, {} unreadable",
                c.column,
                c.values,
                c.rewrapped,
                c.unreadable.len()
            );
        }
    }
    let unreadable: Vec<_> = done
        .iter()
        .flat_map(|c| {
            c.unreadable
                .iter()
                .map(move |id| format!("{} {id}", c.column))
        })
        .collect();
    if unreadable.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::bail!(
        "{} values open with no configured master key and were left as they are: {}",
        unreadable.len(),
        unreadable.join(", ")
    )
}

pub(crate) fn server(a: ServerArgs, json: bool) -> Result<ExitCode> {
    let mut config = loop_server::Config::load(a.config.as_deref())?;
    if let Some(d) = a.data_dir {
        config.data_dir = d;
    }
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(e) = a.admin_email {
        config.admin_email = e;
    }
    if let (Some(c), Some(k)) = (a.tls_cert, a.tls_key) {
        config.tls.cert = Some(c);
        config.tls.key = Some(k);
    }
    if let Some(f) = a.log_format {
        config.log_format = f;
    }
    loop_server::init_logging(&config.log, config.log_format, &config.node_id())
        .map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loop-server")
        .build()?;
    match a.command {
        Some(ServerCommand::Reconcile { vault }) => {
            return runtime.block_on(reconcile(
                &config,
                vault.as_ref().map(VaultId::as_str),
                json,
            ));
        }
        Some(ServerCommand::RewrapKeys) => return runtime.block_on(rewrap_keys(&config, json)),
        None => {}
    }
    runtime.block_on(async {
        let admin_email = config.admin_email.clone();
        let public_url = config.public_url.clone();
        let app = loop_server::Application::build(config).await?;
        println!("loop server listening on https://{}", app.addr);
        println!(
            "console: {}/",
            console_address(public_url.as_deref(), app.addr)
        );
        println!("certificate SHA-256 fingerprint: {}", app.fingerprint);
        if let Some(p) = &app.cert_path {
            println!("certificate: {}", p.display());
        }
        if let Some(pw) = &app.initial_admin_password {
            println!("first administrator: {admin_email}");
            println!("password (shown once, change it after signing in): {pw}");
            println!("sign in at the console with this address and password");
        }
        std::io::stdout().flush().ok();
        app.run().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where a browser finds the console: the configured public address, else this machine on
/// the port listened on (`localhost` when listening on every address).
fn console_address(public_url: Option<&str>, addr: std::net::SocketAddr) -> String {
    match public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None if addr.ip().is_unspecified() => format!("https://localhost:{}", addr.port()),
        None => format!("https://{addr}"),
    }
}
