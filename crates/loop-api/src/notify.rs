//! Notifications: events the service raises, the targets that hear of them (e-mail,
//! webhooks) and the log of each delivery.

use chrono::{DateTime, Utc};

use crate::ids::TenantId;

closed_set! {
    /// How much an event matters. Ordered: a target's `min_severity` hears that severity
    /// and every higher one.
    pub enum Severity("severity") {
        Info = "info",
        Warning = "warning",
        Error = "error",
    }

    /// What happened.
    pub enum EventKind("event kind") {
        /// A job failed for good, or its runner disappeared (abandoned).
        JobFailed = "job-failed",
        /// A job succeeded with warnings in its log.
        JobWarnings = "job-warnings",
        /// A scheduled run's window passed without it starting.
        JobMissed = "job-missed",
        /// A protected item had no successful backup within its schedule plus the grace.
        ItemMissed = "item-missed",
        /// A device has not been heard from for `notify.device_offline_hours`.
        DeviceOffline = "device-offline",
        /// A vault holds more than 90% of its quota.
        VaultQuota = "vault-quota",
        /// The deletions a customer-key vault's maintainer announced hold more than half
        /// of the vault's bytes (taking the maintainer away drops them).
        VaultMassDeletion = "vault-mass-deletion",
        /// A replica has not completed a replication for `replication.behind_hours`.
        ReplicaBehind = "replica-behind",
        /// A replica verify found the replica differing from its primary, or damaged.
        ReplicaDamaged = "replica-damaged",
        /// A user signed in from a browser or device their account had not used before.
        SignInNewDevice = "sign-in-new-device",
        /// A token was created.
        TokenCreated = "token-created",
        /// Sign-in attempts from an address or for an account were throttled.
        SecurityThrottled = "security-throttled",
        /// An authenticator code was refused.
        SecurityTotpFailed = "security-totp-failed",
        /// The daily or weekly summary of a tenant (only to targets that ask for it).
        SummaryReport = "summary-report",
        /// A test-send (only to the target tested).
        Test = "test",
    }

    /// How a target is reached.
    pub enum TargetKind("target kind") {
        Email = "email",
        Webhook = "webhook",
    }

    /// The language of a target's e-mail.
    pub enum Language("language") {
        En = "en",
        Nl = "nl",
    }

    /// How often a target gets the tenant's summary report.
    pub enum SummaryPeriod("summary period") {
        Off = "off",
        /// Every day at 07:00 in the tenant's time zone, about the day before.
        Daily = "daily",
        /// Every Monday at 07:00 in the tenant's time zone, about the week before.
        Weekly = "weekly",
    }

    /// Where a delivery is.
    pub enum DeliveryState("delivery state") {
        /// Waiting for its first try, or for the next after a failure.
        Queued = "queued",
        Succeeded = "succeeded",
        /// Every try failed until `notify.give_up_hours` passed.
        Failed = "failed",
    }
}

impl EventKind {
    /// The severity an event of this kind carries.
    pub fn severity(self) -> Severity {
        use EventKind::*;
        match self {
            JobFailed | ItemMissed | ReplicaDamaged => Severity::Error,
            JobWarnings | JobMissed | DeviceOffline | VaultQuota | VaultMassDeletion
            | ReplicaBehind | SecurityThrottled | SecurityTotpFailed => Severity::Warning,
            SignInNewDevice | TokenCreated | SummaryReport | Test => Severity::Info,
        }
    }

    /// True for kinds that go only to the targets they are addressed to, whatever the
    /// matchers say.
    pub fn addressed(self) -> bool {
        matches!(self, EventKind::SummaryReport | EventKind::Test)
    }
}

wire! {
    /// Something the service raised for a tenant.
    pub struct Event {
        pub id: String,
        pub tenant_id: String,
        pub kind: EventKind,
        pub severity: Severity,
        /// What it is about (`job`, `item`, `device`, `vault`, `user`, `token`), when one
        /// thing.
        pub subject_kind: Option<String>,
        pub subject_id: Option<String>,
        /// One line in English; e-mail says it in the target's language from `details`.
        pub message: String,
        /// What the event is about, by kind (job, item, device and vault names and IDs).
        #[cfg_attr(feature = "openapi", schema(value_type = Object))]
        pub details: serde_json::Value,
        pub created_at: DateTime<Utc>,
    }

    /// Where an e-mail target sends.
    pub struct EmailSettings {
        /// One to 20 addresses.
        pub recipients: Vec<String>,
        #[serde(default = "default_language")]
        pub language: Language,
    }

    /// Where a webhook target posts.
    pub struct WebhookSettings {
        /// `https://` (or `http://`); addresses inside private, loopback and link-local
        /// ranges are refused unless the server allows them (`notify.allow_private_webhooks`).
        /// Shown in full only in the answer to a create; afterwards as scheme, host and port
        /// with the path and query masked (`https://hooks.example.com/…`), since services
        /// put a secret there.
        pub url: String,
    }

    /// A notification target of a tenant: who hears of which events. It hears the events
    /// of its tenant and, with `include_children`, of every tenant below (a partner watching
    /// all its customers), when they are at least `min_severity` and, if `kinds` is not
    /// empty, of one of those kinds.
    pub struct NotifyTarget {
        pub id: String,
        pub tenant_id: String,
        pub name: String,
        pub kind: TargetKind,
        pub enabled: bool,
        pub min_severity: Severity,
        /// Empty: every kind.
        pub kinds: Vec<EventKind>,
        pub include_children: bool,
        pub summary: SummaryPeriod,
        pub email: Option<EmailSettings>,
        pub webhook: Option<WebhookSettings>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    /// `POST /api/v1/notify/targets`: give `email` or `webhook`.
    pub struct CreateTarget {
        pub tenant_id: TenantId,
        pub name: String,
        #[serde(default)]
        pub email: Option<EmailSettings>,
        #[serde(default)]
        pub webhook: Option<WebhookSettings>,
        /// Default `warning`.
        #[serde(default)]
        pub min_severity: Option<Severity>,
        #[serde(default)]
        pub kinds: Vec<EventKind>,
        /// Default true.
        #[serde(default)]
        pub include_children: Option<bool>,
        /// Default `off`.
        #[serde(default)]
        pub summary: Option<SummaryPeriod>,
    }

    /// The answer to a create: a webhook target's signing secret is shown here, once.
    pub struct CreatedTarget {
        pub target: NotifyTarget,
        /// `lwh_` and 64 hex digits: the key of the `Loop-Signature` HMAC.
        pub webhook_secret: Option<String>,
    }

    /// `PATCH /api/v1/notify/targets/{id}`: what is given replaces what was; the kind stays.
    pub struct UpdateTarget {
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub enabled: Option<bool>,
        #[serde(default)]
        pub min_severity: Option<Severity>,
        #[serde(default)]
        pub kinds: Option<Vec<EventKind>>,
        #[serde(default)]
        pub include_children: Option<bool>,
        #[serde(default)]
        pub summary: Option<SummaryPeriod>,
        #[serde(default)]
        pub email: Option<EmailSettings>,
        #[serde(default)]
        pub webhook: Option<WebhookSettings>,
    }

    /// One event on its way to one target.
    pub struct Delivery {
        pub id: String,
        pub target_id: String,
        pub event_id: String,
        pub event_kind: EventKind,
        pub state: DeliveryState,
        pub attempts: u32,
        /// Why the last try failed.
        pub last_error: Option<String>,
        /// The webhook receiver's last HTTP status.
        pub response_status: Option<u16>,
        pub created_at: DateTime<Utc>,
        pub next_attempt_at: Option<DateTime<Utc>>,
        pub finished_at: Option<DateTime<Utc>>,
    }
}

pub(crate) fn default_language() -> Language {
    Language::En
}
