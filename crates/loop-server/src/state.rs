//! What every request handler shares.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::config::Config;
use crate::db::{Db, DbResult};
use crate::destinations::Destinations;
use crate::keys::MasterKey;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub master: MasterKey,
    pub destinations: Destinations,
    /// The tree of jurisdictions that residency rules are read against.
    pub jurisdictions: crate::residency::Jurisdictions,
    pub clock: Clock,
    pub throttle: SigninThrottle,
    pub mailer: crate::mail::smtp::Mailer,
    /// Wakes the outbox worker when a handler queued mail.
    pub mail_wake: tokio::sync::Notify,
    /// Wakes the notifier when a job ended or a target was tested.
    pub notify_wake: tokio::sync::Notify,
    /// Posts webhook deliveries.
    pub webhooks: crate::notify::webhook::Poster,
    /// The payment processor, when `[billing.stripe]` is configured.
    pub stripe: Option<crate::billing::stripe::Stripe>,
    /// Wakes this node's job runner when a handler queued a job.
    pub jobs_wake: tokio::sync::Notify,
    /// What this process counts for `/metrics`.
    pub metrics: crate::metrics::counters::Metrics,
    /// Names this process as the owner of the job leases it holds.
    pub runner_id: String,
    /// This node's name (`node_id`, or the host name), in job records and log lines.
    pub node_id: String,
    /// The last readiness answer and when it was made, in [`AppState::now`] milliseconds
    /// (see `routes::health`).
    pub readiness: tokio::sync::Mutex<Option<(i64, crate::probes::Readiness)>>,
    /// Managed vaults opened lately for reading (the console's snapshot browser).
    pub readers: crate::vaults::opened::Readers,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// Wall-clock time with an adjustable offset, so tests can move time forward (session
/// expiry, throttling windows) without sleeping. The offset is zero in production.
#[derive(Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis() + self.offset_ms.load(Ordering::Relaxed)
    }
    pub fn advance(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as i64, Ordering::Relaxed);
    }
    /// Moves the clock back, as a wall clock stepped back by its time service is.
    pub fn step_back(&self, by: std::time::Duration) {
        self.offset_ms
            .fetch_sub(by.as_millis() as i64, Ordering::Relaxed);
    }
}

/// Counts sign-in attempts per account and per IP address over a sliding window. An
/// attempt counts as a failure from the moment it starts (so a burst of concurrent attempts
/// cannot all slip under the limit before the first one fails), and a success takes its
/// count back. The counts live in the database (`db::throttle`), so every node of the
/// service counts the same attempts.
pub struct SigninThrottle {
    limits: crate::db::throttle::Limits,
    /// When this node last dropped expired counts.
    last_sweep: AtomicI64,
}

/// What [`SigninThrottle::begin`] decided.
pub enum Attempt {
    /// Go ahead and check the credentials; the attempt already counts as a failure, until
    /// [`SigninThrottle::succeeded`] or [`SigninThrottle::undecided`] takes it back.
    Allowed(AttemptId),
    /// Refuse without checking; `audit` is false while the flood was recorded recently.
    /// `retry_after_secs` is when the oldest failure that holds the limit leaves the window.
    Throttled { audit: bool, retry_after_secs: u64 },
}

/// An attempt that counts as a failure.
pub struct AttemptId(String);

/// How often a node drops the counts that left the window.
const SWEEP_MS: i64 = 60_000;

/// The throttle's key of an account (or of a sign-up's address).
pub fn account_key(account: &str) -> String {
    // Hashed: whatever was typed as an e-mail address is neither kept nor allowed to be large.
    format!("a:{}", &blake3::hash(account.as_bytes()).to_hex()[..32])
}

/// The throttle's key of a client address: one IPv4 address or one IPv6 /64, as the
/// connection limits count clients (a host usually holds a whole /64).
pub fn ip_key(ip: &str) -> String {
    format!("i:{}", client(ip))
}

/// [`ip_key`] of the counts kept apart for `purpose` (`signup`, `reset`).
pub fn ip_key_for(purpose: &str, ip: &str) -> String {
    format!("i:{purpose}:{}", client(ip))
}

fn client(ip: &str) -> String {
    match ip.parse() {
        Ok(addr) => crate::listener::client_key(addr).to_string(),
        Err(_) => ip.to_string(),
    }
}

impl SigninThrottle {
    pub fn new(c: &crate::config::SigninConfig) -> Self {
        SigninThrottle {
            limits: crate::db::throttle::Limits {
                window_ms: c.window_minutes as i64 * 60_000,
                max_account: c.max_failures_per_account as i64,
                max_ip: c.max_failures_per_ip as i64,
            },
            last_sweep: AtomicI64::new(0),
        }
    }

    /// Starts a sign-in attempt for `account` from `ip`.
    pub async fn begin(&self, db: &Db, account: &str, ip: &str, now: i64) -> DbResult<Attempt> {
        use crate::db::throttle::Begun;
        let (account, key) = (account_key(account), ip_key(ip));
        let limits = (self.limits.max_account, self.limits.max_ip);
        Ok(match self.count(db, (&account, &key), limits, now).await? {
            Begun::Counted(id) => Attempt::Allowed(AttemptId(id)),
            Begun::Throttled { wait_ms, audit } => Attempt::Throttled {
                audit,
                retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000),
            },
        })
    }

    /// The attempt proved the password of `account`: it is not a failure, and the
    /// account's earlier failures are forgiven.
    pub async fn succeeded(&self, db: &Db, account: &str, attempt: AttemptId) -> DbResult<()> {
        crate::db::throttle::take_back(&db.pool, &attempt.0, Some(&account_key(account))).await
    }

    /// The attempt neither failed nor succeeded (a TOTP code is still due).
    pub async fn undecided(&self, db: &Db, attempt: AttemptId) -> DbResult<()> {
        crate::db::throttle::take_back(&db.pool, &attempt.0, None).await
    }

    /// Counts an attempt under the sign-in window against the keys `(account, client)`, at
    /// most `(max_account, max_client)` of each (sign-ins, and what is throttled like them:
    /// password resets, sign-ups, test sends). Counts that left the window are dropped
    /// once a minute on each node.
    pub async fn count(
        &self,
        db: &Db,
        (account, client): (&str, &str),
        (max_account, max_ip): (i64, i64),
        now: i64,
    ) -> DbResult<crate::db::throttle::Begun> {
        use crate::db::throttle;
        let last = self.last_sweep.load(Ordering::Relaxed);
        // Moved on only by the attempt that sweeps: attempts coming more often than the
        // sweep's interval must not put it off for ever.
        if now - last >= SWEEP_MS
            && self
                .last_sweep
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            throttle::sweep(&db.pool, now, self.limits.window_ms).await?;
        }
        let limits = throttle::Limits {
            window_ms: self.limits.window_ms,
            max_account,
            max_ip,
        };
        throttle::begin(&db.pool, account, client, now, &limits).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sign-in throttle counts clients as the connection limits do: one IPv6 host holds
    /// a whole /64, and must not get a fresh allowance from each of its addresses.
    #[test]
    fn an_ipv6_64_is_one_client_to_the_throttle() {
        assert_eq!(ip_key("2001:db8::1"), ip_key("2001:db8::ffff:1"));
        assert_ne!(ip_key("2001:db8::1"), ip_key("2001:db8:0:1::1"));
        assert_ne!(ip_key("192.0.2.1"), ip_key("192.0.2.2"));
        assert_eq!(
            ip_key_for("signup", "2001:db8::1"),
            ip_key_for("signup", "2001:db8::2")
        );
        assert_ne!(ip_key_for("signup", "192.0.2.1"), ip_key("192.0.2.1"));
    }
}
