//! Configuration: a TOML file, then `LOOP_*` environment variables, then command-line flags
//! (applied by the caller). Every setting has an embedded default, so an empty file runs a
//! working service: SQLite and a local-disk destination under the data directory, and a
//! self-signed certificate made on first start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroize;

mod billing;
mod database;
mod destinations;
mod env;
mod metrics;
mod notify;
mod privacy;
mod replication;
mod residency;
mod validate;
pub use billing::{BillingConfig, StripeConfig};
pub use database::DatabaseConfig;
pub use destinations::{BackendConfig, DestinationConfig};
pub use metrics::MetricsConfig;
pub use notify::NotifyConfig;
pub use privacy::PrivacyConfig;
pub use replication::ReplicationConfig;
pub use residency::ResidencyConfig;

/// A secret string that never prints and is zeroed on drop.
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: String) -> Self {
        SecretString(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the service listens (HTTPS only).
    pub listen: SocketAddr,
    /// Holds the embedded database, the local destination, the generated certificate and
    /// the generated master key file.
    pub data_dir: PathBuf,
    /// The metadata database: SQLite (the embedded default) or PostgreSQL.
    pub database: DatabaseConfig,
    /// The older spelling of `database.url`, still read.
    pub database_url: Option<SecretString>,
    /// Names this node in job records and log lines, when several nodes share the
    /// database (default: the host name).
    pub node_id: Option<String>,
    /// The address people reach this service at, like `https://backup.example.com`; named in
    /// the e-mail the service sends.
    pub public_url: Option<String>,
    /// The e-mail of the administrator created on first start.
    pub admin_email: String,
    /// The first administrator's password; a random one is printed once when absent.
    pub admin_password: Option<SecretString>,
    /// The server master key as 64 hex digits. Takes precedence over `master_key_file`.
    pub master_key: Option<SecretString>,
    /// A file holding the master key (64 hex digits); created on first start when missing
    /// (default: `DATA_DIR/master.key`). Keep it out of database backups.
    pub master_key_file: Option<PathBuf>,
    /// Files holding earlier master keys (64 hex digits each), during a rotation: what they
    /// wrapped still opens until `loop server rewrap-keys` wraps it under the current key.
    pub previous_master_key_files: Vec<PathBuf>,
    /// Earlier master keys as hex, comma-separated (`LOOP_PREVIOUS_MASTER_KEYS`).
    pub previous_master_keys: Option<SecretString>,
    pub tls: TlsConfig,
    pub session: SessionConfig,
    pub signin: SigninConfig,
    pub limits: Limits,
    pub connections: ConnectionConfig,
    /// Outgoing e-mail (invitations, address confirmations). Without `mail.host`, mail
    /// waits in the outbox until one is configured.
    pub mail: MailConfig,
    /// Events, notification targets and their deliveries.
    pub notify: NotifyConfig,
    /// The job runner: vault erasure, upload staging sweeps, and what later kinds add.
    pub jobs: JobsConfig,
    /// Who may read `/metrics`.
    pub metrics: MetricsConfig,
    /// Where vaults can live. Empty means one local destination `local` under the data
    /// directory.
    pub destinations: Vec<DestinationConfig>,
    /// Jurisdictions: the embedded destination's, and the tree they form.
    pub residency: ResidencyConfig,
    /// Replicas: copies at once, schedule, when one counts as behind, read fallback.
    pub replication: ReplicationConfig,
    /// The subscription lifecycle: trial, due date, suspension, termination, warnings.
    pub billing: BillingConfig,
    /// How long personal data is kept (audit events' addresses, archives).
    pub privacy: PrivacyConfig,
    /// Offer `POST /api/v1/admin/test-clock`, which moves the server's clock forward (for
    /// end-to-end tests of schedules and timers; never in production).
    pub test_clock: bool,
    /// `tracing` filter for the server log, like `info` or `loop_server=debug`.
    pub log: String,
    /// `text` (default) or `json`: one JSON object per line, for log collectors.
    pub log_format: crate::logging::LogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8443".parse().expect("valid address"),
            data_dir: PathBuf::from("loop-data"),
            database: DatabaseConfig::default(),
            database_url: None,
            node_id: None,
            public_url: None,
            admin_email: "admin@localhost".into(),
            admin_password: None,
            master_key: None,
            master_key_file: None,
            previous_master_key_files: Vec::new(),
            previous_master_keys: None,
            tls: TlsConfig::default(),
            session: SessionConfig::default(),
            signin: SigninConfig::default(),
            limits: Limits::default(),
            connections: ConnectionConfig::default(),
            mail: MailConfig::default(),
            notify: NotifyConfig::default(),
            jobs: JobsConfig::default(),
            metrics: MetricsConfig::default(),
            destinations: Vec::new(),
            residency: ResidencyConfig::default(),
            replication: ReplicationConfig::default(),
            billing: BillingConfig::default(),
            privacy: PrivacyConfig::default(),
            test_clock: false,
            log: "info".into(),
            log_format: crate::logging::LogFormat::Text,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain; without it a self-signed certificate is made on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_minutes: u64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_hours: u64,
    /// "Remember me": idle and absolute lifetime of a remembered session.
    pub remember_days: u64,
    /// An ended session's IP address, browser and device are removed this long after.
    pub ended_data_days: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: 30,
            absolute_hours: 12,
            remember_days: 30,
            ended_data_days: 90,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigninConfig {
    /// Failed sign-ins for one account within the window before it is throttled.
    pub max_failures_per_account: u32,
    /// Failed sign-ins from one IP address within the window before it is throttled.
    pub max_failures_per_ip: u32,
    pub window_minutes: u64,
}

impl Default for SigninConfig {
    fn default() -> Self {
        SigninConfig {
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            window_minutes: 15,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest JSON request body.
    pub json_body_bytes: usize,
    /// Largest object (pack, index, snapshot) a client may upload.
    pub object_bytes: u64,
    /// How long an upload's or delete's claim on an object name lasts unless renewed. A
    /// running request renews it every third of this; the claim of a request whose server
    /// node died is taken over once it lapses.
    pub claim_lease_secs: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            json_body_bytes: 64 * 1024,
            object_bytes: loop_repo::pack::max_pack_size(1 << 30),
            claim_lease_secs: 60,
        }
    }
}

/// How many connections the server holds and how long it waits for each client. These keep
/// idle, slow or abandoned connections from using up the server's file descriptors.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionConfig {
    /// Open connections, all clients together. Lowered at start when the open-file limit
    /// cannot hold this many.
    pub max: usize,
    /// Open connections from one client address (IPv6: one /64).
    pub max_per_client: usize,
    /// From accepting a connection to a finished TLS handshake.
    pub tls_handshake_seconds: u64,
    /// For a request's headers to arrive (HTTP/1; the timer also runs while a connection
    /// waits for its next request).
    pub header_read_seconds: u64,
    /// A connection with no request in flight for this long is closed.
    pub idle_seconds: u64,
    /// A request body that sends nothing for this long is aborted (408).
    pub body_read_seconds: u64,
    /// Load balancers that pass TLS through and send the PROXY protocol (v2) header: a
    /// connection from one of these addresses must start with the header, and the client
    /// address it names is the one every limit, session and audit event sees.
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            max: 4096,
            max_per_client: 128,
            tls_handshake_seconds: 10,
            header_read_seconds: 30,
            idle_seconds: 60,
            body_read_seconds: 60,
            trusted_proxies: Vec::new(),
        }
    }
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// STARTTLS, required (the connection fails rather than go on in the clear).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: only for a relay on the same host or a trusted network.
    None,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs this node runs at once; 0 makes a node that only answers requests and leaves
    /// the jobs to the others.
    pub concurrency: u32,
    /// How long a runner's claim on a job lasts unless renewed (it is renewed every third
    /// of this while the job runs). A node that dies lets its jobs go after this.
    pub lease_seconds: u64,
    /// How often due jobs are looked for (a job queued on this node wakes it at once).
    pub poll_seconds: u64,
    /// Runs of a job before a transient failure is final; retries wait 30 s, then twice as
    /// long each time, up to an hour.
    pub max_attempts: u32,
    /// The log lines of a job are kept this many days after it ended; the job's record
    /// itself stays.
    pub log_days: u32,
    /// How often the scheduler looks for protected items whose run is due.
    pub scheduler_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            concurrency: 2,
            lease_seconds: 60,
            poll_seconds: 5,
            max_attempts: 5,
            log_days: 30,
            scheduler_seconds: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// The SMTP server (relay) that takes the service's mail. Unset: nothing is sent.
    pub host: Option<String>,
    /// Default: 587 for STARTTLS, 465 for TLS, 25 without encryption.
    pub port: Option<u16>,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// A PEM file of CA certificates to trust for the relay, besides the system's.
    pub ca_file: Option<PathBuf>,
    /// The sender, like `Loop Backup <no-reply@example.com>`.
    pub from: String,
    /// How often the outbox is looked at (new mail also wakes it at once).
    pub poll_seconds: u64,
    /// A message that could not be sent is retried with a growing delay for this long.
    pub give_up_hours: u64,
    /// One message's whole conversation with the relay (connection, TLS, sign-in, sending)
    /// ends in failure after this long, so a relay that stops answering holds nothing up.
    pub timeout_seconds: u64,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            host: None,
            port: None,
            security: SmtpSecurity::default(),
            username: None,
            password: None,
            ca_file: None,
            from: "Loop Backup <no-reply@localhost>".into(),
            poll_seconds: 30,
            give_up_hours: 72,
            timeout_seconds: 45,
        }
    }
}

impl MailConfig {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.security {
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
            SmtpSecurity::None => 25,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

/// Where in `text` the error is and what it is, without the line itself, nor the value the
/// message quotes (`invalid type: integer `84736251`, expected a string`): a mistyped line
/// may hold a password.
fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let message = without_quoted_value(e.message());
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// `message` with the value a type or value error quotes left out: in backticks (a number,
/// a character) or, as a string, in double quotes with escapes (`string "wJal\"…"`). Names
/// of keys are quoted the same way in "unknown field" errors, and stay.
fn without_quoted_value(message: &str) -> String {
    let quotes_value =
        message.starts_with("invalid type:") || message.starts_with("invalid value:");
    if !quotes_value {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    // The quote that closes the value being left out, when in one.
    let mut closing: Option<char> = None;
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        match (closing, c) {
            (None, '`' | '"') => {
                closing = Some(c);
                out.push_str("(a value)");
            }
            (None, c) => out.push(c),
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => closing = None,
            (Some(_), _) => {}
        }
    }
    out
}

impl Config {
    /// Reads `file` (when given), then applies `LOOP_*` environment overrides.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: parse_error(&text, &e),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        Ok(config)
    }

    pub fn database_url(&self) -> String {
        match self.database.url.as_ref().or(self.database_url.as_ref()) {
            Some(url) => url.expose().to_string(),
            None => format!("sqlite://{}", self.data_dir.join("loop.db").display()),
        }
    }

    /// `node_id`, or this machine's host name.
    pub fn node_id(&self) -> String {
        self.node_id.clone().unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        })
    }

    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    /// The configured destinations, or the embedded local one.
    pub fn destinations(&self) -> Vec<DestinationConfig> {
        if self.destinations.is_empty() {
            vec![DestinationConfig {
                name: "local".into(),
                jurisdiction: self.residency.embedded_jurisdiction.clone(),
                backend: BackendConfig::Local {
                    path: self.data_dir.join("vaults"),
                },
            }]
        } else {
            self.destinations.clone()
        }
    }
}

#[cfg(test)]
mod tests;
