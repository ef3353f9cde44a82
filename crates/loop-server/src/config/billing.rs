//! `[billing]`: the subscription lifecycle's periods (docs/OPERATIONS.md, "Subscriptions").

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingConfig {
    /// A new subscription's free trial.
    pub trial_days: u32,
    /// An invoice is due this long after it is issued.
    pub due_days: u32,
    /// Unpaid this long after its due date (or this long after a trial ended without a
    /// payment method: at once), the subscription is suspended.
    pub suspend_after_days: u32,
    /// Unpaid this long after its due date, or this long after an unconverted trial ended,
    /// the subscription is terminated and the tenant's vaults erased.
    pub terminate_after_days: u32,
    /// The "your trial ends soon" mail goes this long before the trial's end.
    pub warn_trial_days: u32,
    /// The "your data will be deleted" mail goes this long before a termination.
    pub warn_deletion_days: u32,
}

impl Default for BillingConfig {
    fn default() -> Self {
        BillingConfig {
            trial_days: 14,
            due_days: 14,
            suspend_after_days: 15,
            terminate_after_days: 30,
            warn_trial_days: 3,
            warn_deletion_days: 7,
        }
    }
}
