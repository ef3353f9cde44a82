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

/// Counts failed sign-ins per account and per IP address over a sliding window. Kept in
/// memory: with several server nodes each node throttles on its own (documented).
pub struct SigninThrottle {
    window_ms: i64,
    max_account: usize,
    max_ip: usize,
    failures: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl SigninThrottle {
    pub fn new(c: &crate::config::SigninConfig) -> Self {
        SigninThrottle {
            window_ms: c.window_minutes as i64 * 60_000,
            max_account: c.max_failures_per_account as usize,
            max_ip: c.max_failures_per_ip as usize,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, key: &str, now: i64) -> usize {
        let mut map = self.failures.lock().expect("throttle lock");
        let Some(q) = map.get_mut(key) else { return 0 };
        while q.front().is_some_and(|t| *t <= now - self.window_ms) {
            q.pop_front();
        }
        let n = q.len();
        if n == 0 {
            map.remove(key);
        }
        n
    }

    /// True when a sign-in for `account` from `ip` must be refused without checking it.
    pub fn is_throttled(&self, account: &str, ip: &str, now: i64) -> bool {
        self.count(&format!("a:{account}"), now) >= self.max_account
            || self.count(&format!("i:{ip}"), now) >= self.max_ip
    }

    pub fn record_failure(&self, account: &str, ip: &str, now: i64) {
        let mut map = self.failures.lock().expect("throttle lock");
        // Bound the map: a flood of distinct accounts cannot grow it without limit.
        if map.len() > 100_000 {
            map.retain(|_, q| q.back().is_some_and(|t| *t > now - self.window_ms));
        }
        for key in [format!("a:{account}"), format!("i:{ip}")] {
            map.entry(key).or_default().push_back(now);
        }
    }

    pub fn record_success(&self, account: &str) {
        self.failures
            .lock()
            .expect("throttle lock")
            .remove(&format!("a:{account}"));
    }
}
