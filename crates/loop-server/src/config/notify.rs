//! `[notify]`: how events become e-mail and webhook deliveries.

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// How often queued deliveries are looked for (a new event also wakes the sender).
    pub poll_seconds: u64,
    /// How often the checks run that raise events from what they find: jobs that ended
    /// badly, items without a recent success, quiet devices, full vaults, due summaries.
    pub check_seconds: u64,
    /// A delivery that keeps failing is retried with a growing delay (15 s, doubling, at
    /// most an hour) for this long, then ends as failed.
    pub give_up_hours: u64,
    /// A device whose agent has not been heard from this long raises `device-offline`.
    pub device_offline_hours: u64,
    /// A scheduled item with no successful backup this long after its window closed
    /// raises `item-missed`.
    pub missed_grace_minutes: u64,
    /// Webhooks may post to loopback, private and link-local addresses. Off by default: a
    /// tenant's webhook must not reach into the provider's own network.
    pub allow_private_webhooks: bool,
    /// Events and their deliveries are kept this many days.
    pub keep_days: u32,
    /// A webhook's try ends as failed (to be retried) when the receiver has not answered
    /// in this many seconds.
    pub webhook_timeout_seconds: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            poll_seconds: 10,
            check_seconds: 60,
            give_up_hours: 24,
            device_offline_hours: 24,
            missed_grace_minutes: 60,
            allow_private_webhooks: false,
            keep_days: 90,
            webhook_timeout_seconds: 20,
        }
    }
}
