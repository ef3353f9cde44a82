//! The checks a configuration passes before the server starts.

use super::{Config, ConfigError};

impl Config {
    /// Refuses settings out of range or inconsistent with each other, naming the setting.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(ConfigError::Invalid(
                "tls.cert and tls.key must be given together".into(),
            ));
        }
        if self.session.idle_minutes == 0 || self.session.absolute_hours == 0 {
            return Err(ConfigError::Invalid(
                "session lifetimes must be positive".into(),
            ));
        }
        let c = &self.connections;
        if c.max == 0
            || c.max_per_client == 0
            || c.tls_handshake_seconds == 0
            || c.header_read_seconds == 0
            || c.idle_seconds == 0
            || c.body_read_seconds == 0
        {
            return Err(ConfigError::Invalid(
                "connection limits and timeouts must be positive".into(),
            ));
        }
        if self.notify.poll_seconds == 0 || self.notify.check_seconds == 0 {
            return Err(ConfigError::Invalid(
                "notify.poll_seconds and notify.check_seconds must be positive".into(),
            ));
        }
        // An event kept less than a day would be raised again by the next check that looks
        // back a day for what it reports.
        if self.notify.keep_days == 0 {
            return Err(ConfigError::Invalid(
                "notify.keep_days must be at least 1".into(),
            ));
        }
        // An empty token would let anyone in with an empty bearer.
        if self
            .metrics
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(ConfigError::Invalid(
                "metrics.token is empty (leave it out to allow only metrics.allow_from)".into(),
            ));
        }
        if self.replication.bytes_per_sec == Some(0) {
            return Err(ConfigError::Invalid(
                "replication.bytes_per_sec must be positive (leave it out for no limit)".into(),
            ));
        }
        if !(1..=600).contains(&self.mail.timeout_seconds) {
            return Err(ConfigError::Invalid(
                "mail.timeout_seconds must be between 1 and 600".into(),
            ));
        }
        if self.mail.poll_seconds == 0 {
            return Err(ConfigError::Invalid(
                "mail.poll_seconds must be positive".into(),
            ));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!(
                "mail.from is not an address: {}",
                self.mail.from
            )));
        }
        if self.mail.username.is_some() != self.mail.password.is_some() {
            return Err(ConfigError::Invalid(
                "mail.username and mail.password must be given together".into(),
            ));
        }
        if let Some(node) = &self.node_id
            && (node.is_empty()
                || node.len() > 64
                || !node
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(ConfigError::Invalid(
                "node_id: 1 to 64 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        // Zero would not mean "off" for any of these: no sign-in window forgets every
        // failure at once (no throttling, of resets and sign-ups too), no allowed failure
        // locks every account, and a lease of nothing hands a running job or upload to the
        // next request.
        for (name, value) in [
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("signin.window_minutes", self.signin.window_minutes),
            (
                "signin.max_failures_per_account",
                u64::from(self.signin.max_failures_per_account),
            ),
            (
                "signin.max_failures_per_ip",
                u64::from(self.signin.max_failures_per_ip),
            ),
            ("session.remember_days", self.session.remember_days),
            ("jobs.lease_seconds", self.jobs.lease_seconds),
            ("limits.claim_lease_secs", self.limits.claim_lease_secs),
            (
                "notify.webhook_timeout_seconds",
                self.notify.webhook_timeout_seconds,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{name} must be positive")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for d in &self.destinations() {
            if !names.insert(d.name.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "destination {} is defined twice",
                    d.name
                )));
            }
            if !crate::residency::valid_label(&d.jurisdiction) {
                return Err(ConfigError::Invalid(format!(
                    "destination {}: jurisdiction {:?} is not a lowercase label like nl or eu",
                    d.name, d.jurisdiction
                )));
            }
        }
        crate::residency::Jurisdictions::new(&self.residency.parents)
            .map_err(|e| ConfigError::Invalid(format!("residency.parents: {e}")))?;
        if self.billing.charge_attempts == 0 {
            return Err(ConfigError::Invalid(
                "billing.charge_attempts must be positive".into(),
            ));
        }
        if let Some(s) = &self.billing.stripe {
            s.check()
                .map_err(|e| ConfigError::Invalid(format!("billing.stripe: {e}")))?;
        }
        Ok(())
    }
}
