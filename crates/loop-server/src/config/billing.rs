//! `[billing]`: the subscription lifecycle's periods (docs/OPERATIONS.md, "Subscriptions").

use serde::Deserialize;

use super::SecretString;

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
    /// A declined charge is tried again this long after (a new payment method: at once).
    pub retry_days: u32,
    /// Charges of one invoice at most (each after `retry_days`) while its payment method
    /// stays the same.
    pub charge_attempts: u32,
    /// The smallest invoice that is charged or falls due, in the currency's minor unit (the
    /// payment processor's smallest charge: 0.50 in EUR and USD). A smaller one is paid by
    /// carrying its total to the next invoice, as a line of it.
    pub min_invoice_cents: u64,
    /// The payment processor that charges cards (`collection: card`). Without it, a payment
    /// method cannot be added and invoices are paid by transfer.
    pub stripe: Option<StripeConfig>,
}

/// `[billing.stripe]`: Stripe's HTTP API (docs/OPERATIONS.md, "Payments").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// The account's secret API key (`sk_live_…`; `LOOP_STRIPE_SECRET_KEY`).
    #[serde(default)]
    pub secret_key: SecretString,
    /// The webhook endpoint's signing secret (`whsec_…`; `LOOP_STRIPE_WEBHOOK_SECRET`).
    #[serde(default)]
    pub webhook_secret: SecretString,
    /// Where the API answers; `http://` only for a processor on this machine (tests).
    #[serde(default = "stripe_api")]
    pub api_base: String,
    /// Where the processor's payment page sends the customer back (default: the public
    /// address).
    #[serde(default)]
    pub return_url: Option<String>,
}

fn stripe_api() -> String {
    "https://api.stripe.com".into()
}

impl StripeConfig {
    /// A processor at `api_base` with these secrets.
    pub fn new(api_base: &str, secret_key: &str, webhook_secret: &str) -> StripeConfig {
        StripeConfig {
            secret_key: SecretString::new(secret_key.into()),
            webhook_secret: SecretString::new(webhook_secret.into()),
            api_base: api_base.into(),
            return_url: None,
        }
    }

    /// Refuses a configuration that cannot work.
    pub fn check(&self) -> Result<(), String> {
        if self.secret_key.expose().trim().is_empty()
            || self.webhook_secret.expose().trim().is_empty()
        {
            return Err("secret_key and webhook_secret are both needed".into());
        }
        let url = reqwest::Url::parse(&self.api_base).map_err(|e| format!("api_base: {e}"))?;
        let loopback = url.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        match url.scheme() {
            "https" => Ok(()),
            "http" if loopback => Ok(()),
            _ => Err("api_base must be https:// (http:// only on this machine)".into()),
        }
    }
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
            retry_days: 3,
            charge_attempts: 4,
            min_invoice_cents: 50,
            stripe: None,
        }
    }
}
