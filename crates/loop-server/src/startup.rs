//! Building and running the application.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use loop_api::{
    ActorKind, Outcome, Role, RoleBinding, RoleBindingId, Tenant, TenantId, TenantKind,
    TenantStatus, User, UserId, UserStatus,
};
use tokio::net::TcpListener;

use crate::config::{Config, ConfigError};
use crate::db::audit::NewEvent;
use crate::db::{self, Db, DbError, bindings, tenants, users};
use crate::destinations::{DestinationError, Destinations};
use crate::domain::{EmailAddress, TenantPath, new_id};
use crate::keys::{KeyError, MasterKey};
use crate::listener::Listener;
use crate::state::{AppState, Clock, Inner, SigninThrottle};
use crate::tls::{self, TlsError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Destination(#[from] DestinationError),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A built service, bound to its port and ready to [`run`](Application::run).
pub struct Application {
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    certificates: Arc<crate::tls::Certificates>,
    router: Router,
    pub state: AppState,
    pub addr: SocketAddr,
    /// SHA-256 of the server certificate (hex), for `--server-fingerprint`.
    pub fingerprint: String,
    /// The generated certificate's path, when the server made its own.
    pub cert_path: Option<std::path::PathBuf>,
    /// The first administrator's password when this start created it randomly: show once.
    pub initial_admin_password: Option<String>,
}

impl Application {
    /// Opens the database (migrating it), the destinations and the certificate, creates the
    /// provider tenant and first administrator on a fresh data directory, and binds the
    /// listener (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<Application, StartError> {
        // SIGHUP's default action ends the process. A renewal's deploy hook may send one while
        // the server starts (migrations, a PostgreSQL lock, the first start's key work): from
        // here on it is caught (the handler stays for the process's life), and [`run`] reloads
        // the certificate at each one.
        let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        config.validate()?;
        crate::fsutil::private_dir(&config.data_dir)
            .map_err(|e| StartError::Io(config.data_dir.display().to_string(), e))?;
        let master = MasterKey::from_config(&config)?;
        if master.previous_count() > 0 {
            tracing::info!(
                previous = master.previous_count(),
                "previous master keys open what they wrapped; loop server rewrap-keys moves it \
                 under the current key"
            );
        }
        let url = config.database_url();
        // A new SQLite database (and so its journal files) is its owner's only.
        if let Some(file) = url.strip_prefix("sqlite://") {
            let file = file.split('?').next().unwrap_or(file);
            crate::fsutil::private_file(std::path::Path::new(file))
                .map_err(|e| StartError::Io(file.to_string(), e))?;
        }
        let db = Db::connect_with(&url, &config.database).await?;
        check_master_key(&db, &master, &config).await?;
        if db.backend == db::Backend::Sqlite {
            release_previous_run(&db).await?;
        }
        let destinations = Destinations::open(&config.destinations())?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError::Io(format!("listening on {}", config.listen), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| StartError::Io("listener address".into(), e))?;
        let mut hosts = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            hosts.push(addr.ip().to_string());
        }
        let identity = tls::load(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.data_dir,
            &hosts,
        )?;
        let cert_path = config
            .tls
            .cert
            .is_none()
            .then(|| config.data_dir.join("tls-cert.pem"));
        let mailer = crate::mail::Mailer::from_config(&config.mail).map_err(StartError::Other)?;
        let jurisdictions = crate::residency::Jurisdictions::new(&config.residency.parents)
            .map_err(StartError::Other)?;
        let state = AppState(Arc::new(Inner {
            jurisdictions,
            throttle: SigninThrottle::new(&config.signin),
            mailer,
            mail_wake: tokio::sync::Notify::new(),
            jobs_wake: tokio::sync::Notify::new(),
            notify_wake: tokio::sync::Notify::new(),
            webhooks: crate::notify::webhook::Poster::new(
                config.notify.allow_private_webhooks,
                std::time::Duration::from_secs(config.notify.webhook_timeout_seconds),
            )
            .map_err(StartError::Other)?,
            stripe: config
                .billing
                .stripe
                .as_ref()
                .map(crate::billing::stripe::Stripe::new)
                .transpose()
                .map_err(StartError::Other)?,
            runner_id: crate::domain::new_id("runner"),
            node_id: config.node_id(),
            metrics: Default::default(),
            readiness: tokio::sync::Mutex::new(None),
            readers: Default::default(),
            config,
            db,
            master,
            destinations,
            clock: Clock::default(),
        }));
        if state.config.test_clock {
            tracing::warn!(
                "test_clock is on: POST /api/v1/admin/test-clock moves this server's clock; never in production"
            );
        }
        let initial_admin_password = bootstrap(&state).await?;
        // Another node starting at once on the same empty database may have made the
        // provider, with its own master key: asked again now that there is one.
        check_master_key(&state.db, &state.master, &state.config).await?;
        queue_staging_sweeps(&state).await?;
        let router = crate::routes::router(state.clone());
        Ok(Application {
            listener,
            tls: identity.config,
            certificates: identity.certificates,
            router,
            state,
            addr,
            fingerprint: identity.fingerprint,
            cert_path,
            initial_admin_password,
        })
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let connections = self.state.config.connections.clone();
        let body_read = std::time::Duration::from_secs(connections.body_read_seconds);
        // Route layers: they run after routing, so the access log sees the route template.
        let router = self
            .router
            .layer(axum::middleware::from_fn_with_state(
                body_read,
                crate::listener::body_timeout::abort_stalled,
            ))
            .layer(axum::middleware::from_fn(crate::access_log::record))
            .layer(axum::middleware::from_fn_with_state(
                self.state.clone(),
                crate::metrics::track,
            ));
        let outbox = tokio::spawn(crate::mail::run_outbox(self.state.clone()));
        let jobs = tokio::spawn(crate::jobs::run_jobs(self.state.clone()));
        let scheduler = tokio::spawn(crate::jobs::scheduler::run_scheduler(self.state.clone()));
        let notifier = tokio::spawn(crate::notify::run_notifier(self.state.clone()));
        Listener::new(self.listener, self.tls, router, &connections)
            .run(shutdown)
            .await;
        outbox.abort();
        jobs.abort();
        scheduler.abort();
        notifier.abort();
    }

    /// Serves until Ctrl-C or SIGTERM; SIGHUP reads the certificate files again.
    pub async fn run(self) {
        let reloads = tokio::spawn(reload_on_hangup(self.certificates.clone()));
        self.run_until(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("shutting down");
        })
        .await;
        reloads.abort();
    }
}

/// Reloads the certificate at every SIGHUP (a renewal's deploy hook sends one); a pair that
/// does not load leaves the one served before.
async fn reload_on_hangup(certificates: Arc<crate::tls::Certificates>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be caught: the certificate is reloaded only by a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        match certificates.reload() {
            Ok(fingerprint) => {
                tracing::info!(%fingerprint, "reloaded the TLS certificate");
            }
            Err(e) => tracing::error!(
                "the TLS certificate was not reloaded, the one before is still served: {e}"
            ),
        }
    }
}

/// First start: the provider tenant and its administrator. Returns the generated password.
/// Refuses to serve a database whose keys the master key does not open (a database restored
/// without its master key, or a node given another key): every managed vault, TOTP secret
/// and webhook secret would be unreadable. The provider tenant's key stands for them all.
async fn check_master_key(db: &Db, master: &MasterKey, config: &Config) -> Result<(), StartError> {
    let Some(provider) = tenants::provider_tenant(&db.pool).await? else {
        return Ok(()); // a fresh database
    };
    let Some(wrapped) = tenants::tenant_key(&db.pool, &provider.tenant.id).await? else {
        return Ok(());
    };
    if master
        .open_tenant_key(&provider.tenant.id, &wrapped)
        .is_err()
    {
        let source = match &config.master_key {
            Some(_) => "master_key (LOOP_MASTER_KEY)".to_string(),
            None => config.master_key_file().display().to_string(),
        };
        return Err(StartError::Other(format!(
            "the master key in {source} does not open the keys in this database: start with \
             the master key this database was made with (restored a database without its key?)"
        )));
    }
    Ok(())
}

/// SQLite serves one process: the object claims and job leases an earlier run left are
/// dead, and are released at once. (On PostgreSQL other nodes may hold them: they lapse.)
async fn release_previous_run(db: &Db) -> Result<(), StartError> {
    let lapsed = db::objects::expire_claims(&db.pool).await?;
    if lapsed > 0 {
        tracing::info!(
            claims = lapsed,
            "released object claims of the previous run"
        );
    }
    let now = chrono::Utc::now().timestamp_millis();
    let released = db::jobs::expire_leases(&db.pool, now).await?;
    if released > 0 {
        tracing::info!(
            jobs = released,
            "taking over the jobs the previous run left running"
        );
    }
    Ok(())
}

async fn bootstrap(state: &AppState) -> Result<Option<String>, StartError> {
    if tenants::provider_tenant(&state.db.pool).await?.is_some() {
        return Ok(None);
    }
    let email = EmailAddress::parse(&state.config.admin_email)
        .map_err(|e| StartError::Other(format!("admin e-mail: {e}")))?;
    let (password, generated) = match &state.config.admin_password {
        Some(p) => (p.expose().to_string(), false),
        None => (crate::domain::new_secret("pw")[3..35].to_string(), true),
    };
    crate::domain::check_new_password(&password)
        .map_err(|e| StartError::Other(format!("LOOP_ADMIN_PASSWORD: {e}")))?;
    let hash = crate::auth::hash_password(password.clone())
        .await
        .map_err(|_| StartError::Other("hashing the admin password".into()))?;
    let now = state.now();
    let tenant = Tenant {
        id: new_id(TenantId::PREFIX),
        parent_id: None,
        kind: TenantKind::Provider,
        name: "Provider".into(),
        status: TenantStatus::Active,
        time_zone: "UTC".into(),
        created_at: db::time(now),
    };
    let user = User {
        id: new_id(UserId::PREFIX),
        tenant_id: tenant.id.clone(),
        email: email.as_str().into(),
        first_name: "Administrator".into(),
        last_name: "-".into(),
        business_address: String::new(),
        status: UserStatus::Active,
        totp_enabled: false,
        language: loop_api::Language::En,
        created_at: db::time(now),
        pending_email: None,
        marketing_consent: false,
        restricted: false,
        time_zone: None,
    };
    let binding = RoleBinding {
        id: new_id(RoleBindingId::PREFIX),
        user_id: user.id.clone(),
        tenant_id: tenant.id.clone(),
        role: Role::ProviderAdmin,
        created_at: db::time(now),
    };
    let (_, wrapped) = state.master.new_tenant_key(&tenant.id);
    let mut tx = state.db.begin().await?;
    match tenants::insert_tenant(
        &mut tx,
        &tenant,
        &TenantPath::root(&tenant.id),
        &wrapped,
        now,
    )
    .await
    {
        // Another node starting on the same empty database made the provider first.
        Err(e) if e.is_unique_violation() => return Ok(None),
        r => r?,
    }
    users::insert_user(&mut tx, &user, Some(&hash), None, now).await?;
    bindings::insert_binding(&mut tx, &binding, now).await?;
    let system = |action, kind, id: &str| NewEvent {
        tenant_id: tenant.id.clone(),
        actor_kind: ActorKind::System,
        actor_id: None,
        action,
        object_kind: kind,
        object_id: Some(id.to_string()),
        outcome: Outcome::Success,
        personal: Default::default(),
        details: serde_json::json!({ "bootstrap": true }),
    };
    db::audit::append(&mut tx, system("tenant.create", "tenant", &tenant.id), now).await?;
    db::audit::append(&mut tx, system("user.create", "user", &user.id), now).await?;
    db::audit::append(
        &mut tx,
        system("role.grant", "role_binding", &binding.id),
        now,
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    Ok(generated.then_some(password))
}

/// Uploads cut off by an earlier crash leave staging files on local destinations: queues a
/// sweep of each (one per destination while an earlier one is still open).
async fn queue_staging_sweeps(state: &AppState) -> Result<(), StartError> {
    let Some(provider) = db::tenants::provider_tenant(&state.db.pool).await? else {
        return Ok(());
    };
    let mut tx = state.db.begin().await?;
    for d in state.config.destinations() {
        if let crate::config::BackendConfig::Local { .. } = d.backend {
            crate::jobs::queue(
                state,
                &mut tx,
                crate::jobs::Work {
                    runner: crate::db::jobs::Runner::Server,
                    tenant_id: &provider.tenant.id,
                    kind: loop_api::JobKind::StagingSweep,
                    target: ("destination", &d.name),
                    trigger: loop_api::JobTrigger::System,
                    started_by_id: None,
                    params: serde_json::json!({}),
                },
            )
            .await?;
        }
    }
    tx.commit().await.map_err(db::DbError::from)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A SIGHUP while the server starts (a renewal's deploy hook at boot) does not end it:
    /// its first step catches the signal. Here the start stops at a configuration error,
    /// after that step; the signal then must not end this process.
    #[test]
    fn a_hangup_while_the_server_starts_does_not_end_it() {
        let mut config = crate::Config::default();
        config.tls.cert = Some("cert.pem".into()); // without its key: refused
        let rt = tokio::runtime::Runtime::new().unwrap();
        let refused = rt.block_on(super::Application::build(config));
        assert!(refused.is_err());
        let me = rustix::process::getpid();
        rustix::process::kill_process(me, rustix::process::Signal::HUP).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}
