//! What every request handler shares.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::config::Config;
use crate::db::Db;
use crate::destinations::Destinations;
use crate::keys::MasterKey;

#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub db: Db,
    pub master: MasterKey,
    pub destinations: Destinations,
    pub clock: Clock,
    pub throttle: SigninThrottle,
    pub mailer: crate::mail::smtp::Mailer,
    /// Wakes the outbox worker when a handler queued mail.
    pub mail_wake: tokio::sync::Notify,
    /// Wakes the notifier when a job ended or a target was tested.
    pub notify_wake: tokio::sync::Notify,
    /// Posts webhook deliveries.
    pub webhooks: crate::notify::webhook::Poster,
    /// Wakes this node's job runner when a handler queued a job.
    pub jobs_wake: tokio::sync::Notify,
    /// What this process counts for `/metrics`.
    pub metrics: crate::metrics::counters::Metrics,
    /// Names this process as the owner of the job leases it holds.
    pub runner_id: String,
    /// The last readiness answer and when it was made, in [`AppState::now`] milliseconds
    /// (see `routes::health`).
    pub readiness: tokio::sync::Mutex<Option<(i64, crate::probes::Readiness)>>,
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
}

/// Counts sign-in attempts per account and per IP address over a sliding window. An
/// attempt counts as a failure from the moment it starts (so a burst of concurrent attempts
/// cannot all slip under the limit before the first one fails), and a success takes its
/// count back. Kept in memory: with several server nodes each node throttles on its own
/// (documented).
pub struct SigninThrottle {
    window_ms: i64,
    max_account: usize,
    max_ip: usize,
    inner: Mutex<ThrottleState>,
}

#[derive(Default)]
struct ThrottleState {
    failures: HashMap<String, VecDeque<i64>>,
    /// When a throttled attempt of a key was last audited: a flood is recorded once a minute.
    audited: HashMap<String, i64>,
}

/// What [`SigninThrottle::begin`] decided.
pub enum Attempt {
    /// Go ahead and check the credentials; the attempt already counts as a failure.
    Allowed,
    /// Refuse without checking; `audit` is false while the flood was recorded recently.
    /// `retry_after_secs` is when the oldest failure that holds the limit leaves the window.
    Throttled { audit: bool, retry_after_secs: u64 },
}

/// The most keys kept; past it, expired ones are dropped, and then everything (a flood from
/// countless addresses must not exhaust memory).
const MAX_KEYS: usize = 100_000;

fn account_key(account: &str) -> String {
    // Hashed: whatever was typed as an e-mail address is neither kept nor allowed to be large.
    format!("a:{}", &blake3::hash(account.as_bytes()).to_hex()[..32])
}

impl SigninThrottle {
    pub fn new(c: &crate::config::SigninConfig) -> Self {
        SigninThrottle {
            window_ms: c.window_minutes as i64 * 60_000,
            max_account: c.max_failures_per_account as usize,
            max_ip: c.max_failures_per_ip as usize,
            inner: Mutex::new(ThrottleState::default()),
        }
    }

    fn count(&self, st: &mut ThrottleState, key: &str, now: i64) -> usize {
        let Some(q) = st.failures.get_mut(key) else {
            return 0;
        };
        while q.front().is_some_and(|t| *t <= now - self.window_ms) {
            q.pop_front();
        }
        let n = q.len();
        if n == 0 {
            st.failures.remove(key);
        }
        n
    }

    /// Starts a sign-in attempt for `account` from `ip`.
    pub fn begin(&self, account: &str, ip: &str, now: i64) -> Attempt {
        let (a, i) = (account_key(account), format!("i:{ip}"));
        let mut st = self.inner.lock().expect("throttle lock");
        if st.failures.len() > MAX_KEYS {
            let window = self.window_ms;
            st.failures
                .retain(|_, q| q.back().is_some_and(|t| *t > now - window));
            st.audited.retain(|_, t| *t > now - 60_000);
            if st.failures.len() > MAX_KEYS {
                tracing::warn!("sign-in throttle table full; starting over");
                st.failures.clear();
            }
        }
        if self.count(&mut st, &a, now) >= self.max_account
            || self.count(&mut st, &i, now) >= self.max_ip
        {
            let wait_ms = self
                .wait_ms(&st, &a, self.max_account, now)
                .max(self.wait_ms(&st, &i, self.max_ip, now));
            let key = format!("{a}|{i}");
            let audit = st.audited.get(&key).is_none_or(|t| now - *t >= 60_000);
            if audit {
                st.audited.insert(key, now);
            }
            return Attempt::Throttled {
                audit,
                retry_after_secs: (wait_ms.max(1) as u64).div_ceil(1000),
            };
        }
        for key in [a, i] {
            st.failures.entry(key).or_default().push_back(now);
        }
        Attempt::Allowed
    }

    /// How long until `key` has fewer than `max` failures in the window (after [`Self::count`]
    /// dropped the expired ones).
    fn wait_ms(&self, st: &ThrottleState, key: &str, max: usize, now: i64) -> i64 {
        let q = st.failures.get(key);
        let n = q.map_or(0, |q| q.len());
        if n < max {
            return 0;
        }
        match q.and_then(|q| q.get(n - max)) {
            Some(t) => t + self.window_ms - now,
            // A limit of zero: no attempt is ever allowed.
            None => self.window_ms,
        }
    }

    /// The attempt started at `at` proved the password: it is not a failure, and the
    /// account's earlier failures are forgiven.
    pub fn succeeded(&self, account: &str, ip: &str, at: i64) {
        let mut st = self.inner.lock().expect("throttle lock");
        st.failures.remove(&account_key(account));
        Self::take_back(&mut st, &format!("i:{ip}"), at);
    }

    /// The attempt started at `at` neither failed nor succeeded (a TOTP code is still due).
    pub fn undecided(&self, account: &str, ip: &str, at: i64) {
        let mut st = self.inner.lock().expect("throttle lock");
        Self::take_back(&mut st, &account_key(account), at);
        Self::take_back(&mut st, &format!("i:{ip}"), at);
    }

    fn take_back(st: &mut ThrottleState, key: &str, at: i64) {
        if let Some(q) = st.failures.get_mut(key)
            && let Some(pos) = q.iter().rposition(|t| *t == at)
        {
            q.remove(pos);
        }
    }
}
