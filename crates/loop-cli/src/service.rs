//! `loop server` and the commands that drive the service's API (`login`, `tenant`, `user`,
//! `device`, `token`, `vault`, `session`, `audit`, `admin`).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use loop_agent::{ApiClient, Connection, Trust};
use loop_api::*;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::args::Global;
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
        println!("{}", serde_json::to_string_pretty(&rows)?);
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

pub fn server(a: ServerArgs, json: bool) -> Result<ExitCode> {
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
    loop_server::init_logging(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loop-server")
        .build()?;
    if let Some(ServerCommand::Reconcile { vault }) = a.command {
        return runtime.block_on(reconcile(&config, vault.as_deref(), json));
    }
    runtime.block_on(async {
        let admin_email = config.admin_email.clone();
        let app = loop_server::Application::build(config).await?;
        println!("loop server listening on https://{}", app.addr);
        println!("certificate SHA-256 fingerprint: {}", app.fingerprint);
        if let Some(p) = &app.cert_path {
            println!("certificate: {}", p.display());
        }
        if let Some(pw) = &app.initial_admin_password {
            println!("first administrator: {admin_email}");
            println!("password (shown once, change it after signing in): {pw}");
        }
        std::io::stdout().flush().ok();
        app.run().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Where `loop login` keeps its session: LOOP_CONFIG_DIR, else XDG_CONFIG_HOME/loop, else
/// ~/.config/loop.
fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("LOOP_CONFIG_DIR") {
        return Ok(d.into());
    }
    if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(d).join("loop"));
    }
    let home = std::env::var_os("HOME").context("HOME is not set; set LOOP_CONFIG_DIR")?;
    Ok(PathBuf::from(home).join(".config/loop"))
}

#[derive(Serialize, Deserialize)]
struct SavedSession {
    server: String,
    session_token: String,
    fingerprint: Option<String>,
    cacert: Option<PathBuf>,
}

fn session_file() -> Result<PathBuf> {
    Ok(config_dir()?.join("session.json"))
}

fn api(g: &Global) -> Result<ApiClient> {
    let path = session_file()?;
    let text = std::fs::read_to_string(&path).with_context(
        || "not signed in: run `loop login --server https://HOST:PORT --email ...`",
    )?;
    let s: SavedSession = serde_json::from_str(&text)
        .with_context(|| format!("{} is damaged; sign in again", path.display()))?;
    let t = match (&g.server_fingerprint, &g.cacert, s.fingerprint, s.cacert) {
        (Some(_), _, _, _) | (_, Some(_), _, _) => g.trust(),
        (_, _, Some(f), _) => Trust::Fingerprint(f),
        (_, _, _, Some(c)) => Trust::CaFile(c),
        _ => Trust::System,
    };
    Ok(ApiClient::new(
        Connection::new(&s.server, &t)?,
        Some(s.session_token),
    ))
}

fn password_from_env_or_prompt(var: &str, prompt: &str) -> Result<String> {
    if let Ok(p) = std::env::var(var) {
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        bail!("no password: set {var} or run on a terminal");
    }
    Ok(rpassword::prompt_password(prompt)?)
}

fn show<T: Serialize>(g: &Global, v: &T, human: impl Fn(&T)) -> Result<ExitCode> {
    if g.json {
        println!("{}", serde_json::to_string_pretty(v)?);
    } else if !g.quiet {
        human(v);
    }
    Ok(ExitCode::SUCCESS)
}

/// `?tenant_id=` when a tenant is given.
fn tenant_query(tenant: &Option<String>) -> Vec<(&'static str, String)> {
    tenant.iter().map(|t| ("tenant_id", t.clone())).collect()
}

pub fn login(g: &Global, a: LoginArgs) -> Result<ExitCode> {
    let password = password_from_env_or_prompt("LOOP_LOGIN_PASSWORD", "password: ")?;
    let conn = Connection::new(&a.server, &g.trust())?;
    let client = ApiClient::new(conn, None);
    let r: LoginResponse = client.call(
        Method::POST,
        "/api/v1/auth/login",
        Some(&LoginRequest {
            email: a.email.clone(),
            password: password.into(),
            totp: a.totp.clone(),
            remember: a.remember,
            device_label: Some(
                a.device_label
                    .clone()
                    .unwrap_or_else(|| format!("loop CLI on {}", crate::repo_open::hostname())),
            ),
        }),
    )?;
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir)?;
    let saved = SavedSession {
        server: client.conn.base.clone(),
        session_token: r.session_token.expose().to_string(),
        fingerprint: g.server_fingerprint.clone(),
        cacert: g.cacert.clone(),
    };
    write_private(
        &session_file()?,
        serde_json::to_string_pretty(&saved)?.as_bytes(),
    )?;
    show(g, &json!({"user": r.user, "session": r.session}), |_| {
        println!("signed in as {} ({})", r.user.email, r.user.id)
    })
}

fn write_private(path: &std::path::Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    // `mode` applies only when the file is created; an older file may be more open.
    use std::os::unix::fs::PermissionsExt as _;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(data)?;
    Ok(())
}

pub fn logout(g: &Global) -> Result<ExitCode> {
    let client = api(g)?;
    client.call_empty::<()>(Method::POST, "/api/v1/auth/logout", None)?;
    std::fs::remove_file(session_file()?).ok();
    if !g.quiet {
        println!("signed out");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn whoami(g: &Global) -> Result<ExitCode> {
    let me: Me = api(g)?.get("/api/v1/me")?;
    show(g, &me, |m| {
        println!(
            "{} {} <{}> {}",
            m.user.first_name, m.user.last_name, m.user.email, m.user.id
        );
        for r in &m.roles {
            println!("  {} on {}", r.role, r.tenant_id);
        }
    })
}

pub fn tenant(g: &Global, c: TenantCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        TenantCommand::List => {
            let ts: Vec<Tenant> = api.get("/api/v1/tenants")?;
            show(g, &ts, |ts| {
                for t in ts {
                    println!("{}  {:<8}  {}", t.id, t.kind, t.name);
                }
            })
        }
        TenantCommand::Create { parent, kind, name } => {
            let t: Tenant = api.call(
                Method::POST,
                "/api/v1/tenants",
                Some(&CreateTenant {
                    parent_id: parent,
                    kind,
                    name,
                }),
            )?;
            show(g, &t, |t| {
                println!("created {} tenant {} ({})", t.kind, t.name, t.id)
            })
        }
        TenantCommand::Show { id } => {
            let t: Tenant = api.get(&format!("/api/v1/tenants/{id}"))?;
            show(g, &t, |t| {
                println!("{}  {}  {}  {}", t.id, t.kind, t.name, t.status)
            })
        }
        TenantCommand::Erase { id, confirm } => {
            let e: TenantErasure = api.call(
                Method::POST,
                &format!("/api/v1/tenants/{id}/erase"),
                Some(&EraseTenant { confirm }),
            )?;
            show(g, &e, |e| {
                println!("erased tenant {}", e.tenant_id);
                if e.tenant_key_destroyed {
                    println!("  tenant key destroyed");
                }
                for v in &e.vaults {
                    println!(
                        "  vault {}: {} key slot(s) deleted",
                        v.vault_id,
                        v.key_slots_deleted.len()
                    );
                }
                println!(
                    "  {} token(s) revoked, {} session(s) ended, {} user(s) disabled",
                    e.tokens_revoked, e.sessions_ended, e.users_disabled
                );
            })
        }
    }
}

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

/// Sends a one-time code from an e-mail (and maybe a new password) without a session.
fn redeem(g: &Global, server: &str, path: &str, body: serde_json::Value) -> Result<ExitCode> {
    let client = ApiClient::new(Connection::new(server, &g.trust())?, None);
    client.call_empty(Method::POST, path, Some(&body))?;
    Ok(ExitCode::SUCCESS)
}

pub fn user(g: &Global, c: UserCommand) -> Result<ExitCode> {
    match c {
        UserCommand::AcceptInvite { server } => {
            let token = password_from_env_or_prompt("LOOP_INVITE_TOKEN", "invitation code: ")?;
            let password =
                password_from_env_or_prompt("LOOP_NEW_USER_PASSWORD", "choose a password: ")?;
            let r = redeem(
                g,
                &server,
                "/api/v1/auth/accept-invite",
                json!({ "invite_token": token.trim(), "password": password }),
            )?;
            if !g.quiet {
                println!("invitation accepted: sign in with `loop login`");
            }
            return Ok(r);
        }
        UserCommand::ConfirmEmail { server } => {
            let token = password_from_env_or_prompt("LOOP_EMAIL_TOKEN", "confirmation code: ")?;
            let r = redeem(
                g,
                &server,
                "/api/v1/auth/confirm-email",
                json!({ "token": token.trim() }),
            )?;
            if !g.quiet {
                println!("address confirmed: sign in with it from now on");
            }
            return Ok(r);
        }
        _ => {}
    }
    let api = api(g)?;
    match c {
        UserCommand::AcceptInvite { .. } | UserCommand::ConfirmEmail { .. } => {
            unreachable!("handled above")
        }
        UserCommand::List { tenant } => {
            let us: Vec<User> = api.get_query("/api/v1/users", &tenant_query(&tenant))?;
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
            let r: CreatedUser = api.call(
                Method::POST,
                "/api/v1/users",
                Some(&CreateUser {
                    tenant_id: tenant,
                    email,
                    first_name,
                    last_name,
                    business_address: address,
                    password: password.map(SecretText::from),
                    role,
                }),
            )?;
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
        } => {
            let u: User = api.call(
                Method::PATCH,
                &format!("/api/v1/users/{id}"),
                Some(&UpdateUser {
                    email,
                    first_name,
                    last_name,
                    business_address: address,
                }),
            )?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Disable { id } => {
            let u: User =
                api.call::<(), _>(Method::POST, &format!("/api/v1/users/{id}/disable"), None)?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Enable { id } => {
            let u: User =
                api.call::<(), _>(Method::POST, &format!("/api/v1/users/{id}/enable"), None)?;
            show(g, &u, |u| print_users(std::slice::from_ref(u)))
        }
        UserCommand::Roles { id } => {
            let bs: Vec<RoleBinding> = api.get(&format!("/api/v1/users/{id}/roles"))?;
            show(g, &bs, |bs| {
                for b in bs {
                    println!("{}  {} on {}", b.id, b.role, b.tenant_id);
                }
            })
        }
        UserCommand::Grant { id, tenant, role } => {
            let b: RoleBinding = api.call(
                Method::POST,
                &format!("/api/v1/users/{id}/roles"),
                Some(&CreateRoleBinding {
                    tenant_id: tenant,
                    role,
                }),
            )?;
            show(g, &b, |b| {
                println!("granted {} on {} ({})", b.role, b.tenant_id, b.id)
            })
        }
        UserCommand::Revoke { id, binding } => {
            api.call_empty::<()>(
                Method::DELETE,
                &format!("/api/v1/users/{id}/roles/{binding}"),
                None,
            )?;
            show(g, &json!({"revoked": binding}), |_| {
                println!("revoked {binding}")
            })
        }
    }
}

pub fn device(g: &Global, c: DeviceCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        DeviceCommand::List { tenant } => {
            let ds: Vec<Device> = api.get_query("/api/v1/devices", &tenant_query(&tenant))?;
            show(g, &ds, |ds| {
                for d in ds {
                    println!("{}  {}  {}", d.id, d.tenant_id, d.name);
                }
            })
        }
        DeviceCommand::Create { tenant, name } => {
            let d: Device = api.call(
                Method::POST,
                "/api/v1/devices",
                Some(&CreateDevice {
                    tenant_id: tenant,
                    name,
                }),
            )?;
            show(g, &d, |d| println!("created device {} ({})", d.name, d.id))
        }
        DeviceCommand::Delete { id } => {
            api.call_empty::<()>(Method::DELETE, &format!("/api/v1/devices/{id}"), None)?;
            show(g, &json!({"deleted": id}), |_| {
                println!("deleted device {id}")
            })
        }
    }
}

pub fn token(g: &Global, c: TokenCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        TokenCommand::List { tenant } => {
            let ts: Vec<Token> = api.get_query("/api/v1/tokens", &tenant_query(&tenant))?;
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
            let r: CreatedToken = api.call(
                Method::POST,
                "/api/v1/tokens",
                Some(&CreateToken {
                    tenant_id: tenant,
                    name,
                    kind,
                    device_id: device,
                    vault_ids: vaults,
                    permissions,
                    expires_in_days: expires_days,
                }),
            )?;
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
            api.call_empty::<()>(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)?;
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

fn print_vaults(vs: &[Vault]) {
    for v in vs {
        println!(
            "{}  {}  {}@{} ({})  {} used{}",
            v.id,
            v.name,
            v.destination,
            v.jurisdiction,
            v.key_custody,
            loop_repo::human_bytes(v.used_bytes),
            v.quota_bytes
                .map(|q| format!(" of {}", loop_repo::human_bytes(q)))
                .unwrap_or_default()
        );
    }
}

pub fn vault(g: &Global, c: VaultCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        VaultCommand::List { tenant } => {
            let vs: Vec<Vault> = api.get_query("/api/v1/vaults", &tenant_query(&tenant))?;
            show(g, &vs, |vs| print_vaults(vs))
        }
        VaultCommand::Create {
            tenant,
            name,
            destination,
            quota,
            customer_key,
        } => {
            let v: Vault = api.call(
                Method::POST,
                "/api/v1/vaults",
                Some(&CreateVault {
                    tenant_id: tenant,
                    name,
                    destination,
                    quota_bytes: quota,
                    key_custody: Some(if customer_key {
                        KeyCustody::Customer
                    } else {
                        KeyCustody::Managed
                    }),
                }),
            )?;
            show(g, &v, |v| {
                println!("created vault {} ({})", v.name, v.id);
                println!("repository: {}/vaults/{}", api.conn.base, v.id);
            })
        }
        VaultCommand::Show { id } => {
            let v: Vault = api.get(&format!("/api/v1/vaults/{id}"))?;
            show(g, &v, |v| print_vaults(std::slice::from_ref(v)))
        }
        VaultCommand::Snapshots { id } => {
            let ss: Vec<SnapshotInfo> = api.get(&format!("/api/v1/vaults/{id}/snapshots"))?;
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
        VaultCommand::Delete { id } => {
            api.call_empty::<()>(Method::DELETE, &format!("/api/v1/vaults/{id}"), None)?;
            show(g, &json!({"deleted": id}), |_| {
                println!("deleted vault {id}")
            })
        }
        VaultCommand::Destinations => {
            let ds: Vec<Destination> = api.get("/api/v1/destinations")?;
            show(g, &ds, |ds| {
                for d in ds {
                    println!("{}  {}  {}", d.name, d.jurisdiction, d.backend);
                }
            })
        }
    }
}

pub fn session(g: &Global, c: SessionCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        SessionCommand::List { tenant } => {
            let ss: Vec<Session> = api.get_query("/api/v1/sessions", &tenant_query(&tenant))?;
            show(g, &ss, |ss| {
                for s in ss {
                    let state = if s.ended_at.is_some() {
                        "ended"
                    } else {
                        "active"
                    };
                    println!(
                        "{}{}  {:<6}  {}  {}  {} / {}  {}",
                        if s.current { "*" } else { " " },
                        s.id,
                        state,
                        s.created_at.to_rfc3339(),
                        s.ip.as_deref().unwrap_or("-"),
                        s.browser.as_deref().unwrap_or("-"),
                        s.os.as_deref().unwrap_or("-"),
                        s.device_label.as_deref().unwrap_or("")
                    );
                }
            })
        }
        SessionCommand::Revoke { id } => {
            api.call_empty::<()>(Method::DELETE, &format!("/api/v1/sessions/{id}"), None)?;
            show(g, &json!({"revoked": id}), |_| {
                println!("ended session {id}")
            })
        }
    }
}

/// The query parameters of an audit filter.
fn audit_query(f: &AuditFilter) -> Vec<(&'static str, String)> {
    [
        ("tenant_id", f.tenant.clone()),
        ("action", f.action.clone()),
        ("actor_id", f.actor.clone()),
        ("object_id", f.object.clone()),
        ("since", f.since.clone()),
        ("until", f.until.clone()),
        ("limit", f.limit.map(|l| l.to_string())),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect()
}

pub fn audit(g: &Global, c: AuditCommand) -> Result<ExitCode> {
    let api = api(g)?;
    match c {
        AuditCommand::List(f) => {
            let es: Vec<AuditEvent> = api.get_query("/api/v1/audit", &audit_query(&f))?;
            show(g, &es, |es| {
                for e in es {
                    println!(
                        "{}  {} #{}  {:<22} {:<7} {}:{} by {}:{}",
                        e.at.to_rfc3339(),
                        e.tenant_id,
                        e.seq,
                        e.action,
                        e.outcome,
                        e.object_kind,
                        e.object_id.as_deref().unwrap_or("-"),
                        e.actor_kind,
                        e.actor_id.as_deref().unwrap_or("-")
                    );
                }
            })
        }
        AuditCommand::Export {
            filter,
            format,
            output,
        } => {
            let mut query = audit_query(&filter);
            query.push(("format", format));
            let text = api.get_text("/api/v1/audit/export", &query)?;
            match output {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn admin(g: &Global, c: AdminCommand) -> Result<ExitCode> {
    let AdminCommand::Audit(AdminAuditCommand::Verify { tenant, file }) = c;
    let (text, heads) = match file {
        Some(f) => (
            std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?,
            Vec::new(),
        ),
        None => {
            let filter = AuditFilter {
                tenant,
                ..Default::default()
            };
            let api = api(g)?;
            // Heads first: events appended after this moment may follow them in the export.
            let query = audit_query(&filter);
            let heads: Vec<AuditHead> = api.get_query("/api/v1/audit/heads", &query)?;
            let mut query = query;
            query.push(("format", "jsonl".into()));
            let text = api.get_text("/api/v1/audit/export", &query)?;
            (text, heads)
        }
    };
    let mut events = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let e: AuditEvent = serde_json::from_str(line)
            .with_context(|| format!("line {}: not an audit event", n + 1))?;
        events.push(e);
    }
    let tenants: std::collections::BTreeSet<&str> =
        events.iter().map(|e| e.tenant_id.as_str()).collect();
    let verified = loop_api::audit::verify(&events)
        .and_then(|n| loop_api::audit::check_heads(&events, &heads).map(|()| n));
    // Personal data lies outside the chain, so it cannot break it; its commitment still
    // shows an edit, which an auditor wants to hear about.
    let altered = events
        .iter()
        .filter(|e| loop_api::audit::personal_matches(e) == Some(false))
        .count();
    match verified {
        Ok(n) => {
            show(
                g,
                &json!({"verified": true, "events": n, "tenants": tenants.len(),
                        "personal_data_altered": altered}),
                |_| {
                    println!(
                        "audit log verified: {n} events in {} tenant chains",
                        tenants.len()
                    );
                    if altered > 0 {
                        println!(
                            "warning: {altered} events carry personal data (IP, user agent) \
                             that differs from what was recorded"
                        );
                    }
                },
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(b) => {
            if g.json {
                println!(
                    "{}",
                    json!({"verified": false, "tenant_id": b.tenant_id, "seq": b.seq, "reason": b.reason})
                );
            }
            bail!(
                "audit log broken in tenant {} at event {}: {}",
                b.tenant_id,
                b.seq,
                b.reason
            )
        }
    }
}
