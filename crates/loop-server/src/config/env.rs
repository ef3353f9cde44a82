//! `LOOP_*` environment variables: they override the configuration file.

use super::{Config, ConfigError, SecretString};

impl Config {
    /// Applies the environment overrides read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let bad = |name: &str, message: String| ConfigError::Env {
            name: name.into(),
            message,
        };
        if let Some(v) = get("LOOP_LISTEN") {
            self.listen = v.parse().map_err(|e| bad("LOOP_LISTEN", format!("{e}")))?;
        }
        if let Some(v) = get("LOOP_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("LOOP_DATABASE_URL") {
            self.database.url = Some(SecretString::new(v));
        }
        if let Some(v) = get("LOOP_JURISDICTION") {
            self.residency.embedded_jurisdiction = v;
        }
        if let Some(v) = get("LOOP_NODE_ID") {
            self.node_id = Some(v);
        }
        if let Some(v) = get("LOOP_ADMIN_EMAIL") {
            self.admin_email = v;
        }
        if let Some(v) = get("LOOP_ADMIN_PASSWORD") {
            self.admin_password = Some(SecretString::new(v));
        }
        if let Some(v) = get("LOOP_MASTER_KEY") {
            self.master_key = Some(SecretString::new(v));
        }
        if let Some(v) = get("LOOP_PREVIOUS_MASTER_KEYS") {
            self.previous_master_keys = Some(SecretString::new(v));
        }
        if let Some(v) = get("LOOP_MASTER_KEY_FILE") {
            self.master_key_file = Some(v.into());
        }
        if let Some(v) = get("LOOP_TLS_CERT") {
            self.tls.cert = Some(v.into());
        }
        if let Some(v) = get("LOOP_TLS_KEY") {
            self.tls.key = Some(v.into());
        }
        if let Some(v) = get("LOOP_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("LOOP_MAIL_HOST") {
            self.mail.host = Some(v);
        }
        if let Some(v) = get("LOOP_METRICS_TOKEN") {
            self.metrics.token = Some(SecretString::new(v));
        }
        if let Some(v) = get("LOOP_MAIL_PASSWORD") {
            self.mail.password = Some(SecretString::new(v));
        }
        for (name, secret) in [
            ("LOOP_STRIPE_SECRET_KEY", true),
            ("LOOP_STRIPE_WEBHOOK_SECRET", false),
        ] {
            if let Some(v) = get(name) {
                let stripe = self.billing.stripe.get_or_insert_with(|| {
                    super::StripeConfig::new("https://api.stripe.com", "", "")
                });
                let field = if secret {
                    &mut stripe.secret_key
                } else {
                    &mut stripe.webhook_secret
                };
                *field = SecretString::new(v);
            }
        }
        if let Some(v) = get("LOOP_LOG") {
            self.log = v;
        }
        if let Some(v) = get("LOOP_LOG_FORMAT") {
            self.log_format = v.parse().map_err(|e| bad("LOOP_LOG_FORMAT", e))?;
        }
        let num = |name: &str, v: String| -> Result<u64, ConfigError> {
            v.parse().map_err(|e| bad(name, format!("{e}")))
        };
        if let Some(v) = get("LOOP_SESSION_IDLE_MINUTES") {
            self.session.idle_minutes = num("LOOP_SESSION_IDLE_MINUTES", v)?;
        }
        if let Some(v) = get("LOOP_SESSION_ABSOLUTE_HOURS") {
            self.session.absolute_hours = num("LOOP_SESSION_ABSOLUTE_HOURS", v)?;
        }
        let c = &mut self.connections;
        for (name, field) in [
            (
                "LOOP_CONNECTIONS_TLS_HANDSHAKE_SECONDS",
                &mut c.tls_handshake_seconds,
            ),
            (
                "LOOP_CONNECTIONS_HEADER_READ_SECONDS",
                &mut c.header_read_seconds,
            ),
            ("LOOP_CONNECTIONS_IDLE_SECONDS", &mut c.idle_seconds),
            (
                "LOOP_CONNECTIONS_BODY_READ_SECONDS",
                &mut c.body_read_seconds,
            ),
        ] {
            if let Some(v) = get(name) {
                *field = num(name, v)?;
            }
        }
        for (name, field) in [
            ("LOOP_CONNECTIONS_MAX", &mut c.max),
            ("LOOP_CONNECTIONS_MAX_PER_CLIENT", &mut c.max_per_client),
        ] {
            if let Some(v) = get(name) {
                *field = v.parse().map_err(|e| bad(name, format!("{e}")))?;
            }
        }
        Ok(())
    }
}
