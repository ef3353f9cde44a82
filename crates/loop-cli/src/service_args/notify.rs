//! Arguments of `loop notify`.

use clap::{Args, Subcommand};
use loop_api::{EventKind, Language, Severity, SummaryPeriod, TargetId, TenantId};

#[derive(Subcommand, Debug)]
pub enum NotifyCommand {
    /// Notification targets: e-mail lists and webhooks
    #[command(subcommand)]
    Target(TargetCommand),
    /// The delivery log: each event on its way to each target
    Deliveries {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long)]
        target: Option<TargetId>,
        /// The newest this many (default 100)
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Events raised for the tenants you can see
    Events {
        #[arg(long)]
        tenant: Option<TenantId>,
        #[arg(long)]
        kind: Option<EventKind>,
        #[arg(long)]
        limit: Option<u32>,
    },
}

/// Which events a target hears.
#[derive(Args, Debug)]
pub struct TargetMatch {
    /// The least severity it hears: info, warning (default) or error
    #[arg(long)]
    pub min_severity: Option<Severity>,
    /// Only these kinds of events (repeatable; default every kind)
    #[arg(long = "kind")]
    pub kinds: Vec<EventKind>,
    /// Hear only this tenant's events, not those of the tenants below it
    #[arg(long)]
    pub own_only: bool,
    /// Also send the tenant's summary report: off, daily or weekly (07:00 tenant time)
    #[arg(long)]
    pub summary: Option<SummaryPeriod>,
}

#[derive(Subcommand, Debug)]
pub enum TargetCommand {
    /// Targets of the tenants you can see
    List {
        #[arg(long)]
        tenant: Option<TenantId>,
    },
    /// Create a target: --email (repeatable) or --webhook URL; a webhook's signing secret
    /// is printed once
    Create {
        #[arg(long)]
        tenant: TenantId,
        #[arg(long)]
        name: String,
        /// Send e-mail to this address (repeatable)
        #[arg(long = "email", conflicts_with = "webhook")]
        emails: Vec<String>,
        /// The e-mail's language: en or nl
        #[arg(long)]
        language: Option<Language>,
        /// Post signed JSON to this URL
        #[arg(long)]
        webhook: Option<String>,
        #[command(flatten)]
        matching: TargetMatch,
    },
    /// Change what a target hears, or turn it off and on
    Update {
        id: TargetId,
        #[arg(long)]
        enabled: Option<bool>,
        #[command(flatten)]
        matching: TargetMatch,
    },
    /// Send a test notification to a target now
    Test {
        id: TargetId,
    },
    Delete {
        id: TargetId,
    },
}
