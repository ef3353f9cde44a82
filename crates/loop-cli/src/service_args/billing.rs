//! Arguments of `loop plan`, `loop subscription` and `loop invoice`.

use clap::Subcommand;
use loop_api::{Collection, TenantId};

#[derive(Subcommand, Debug)]
pub enum PlanCommand {
    /// The plans sold by the providers and partners you can see
    List,
    /// Sell a plan (as an admin or billing user of the provider or partner)
    Create {
        /// The provider or partner that sells it and issues its invoices
        #[arg(long)]
        issuer: TenantId,
        #[arg(long)]
        name: String,
        /// The monthly price in cents
        #[arg(long)]
        price_cents: u64,
        /// ISO 4217, like EUR
        #[arg(long)]
        currency: String,
        /// Stored data included (default: unlimited)
        #[arg(long)]
        quota_bytes: Option<u64>,
        #[arg(long)]
        device_limit: Option<u64>,
        /// Price per GiB-month above the quota, in cents
        #[arg(long)]
        extra_gib_cents: Option<u64>,
        /// Offer it on the self-service sign-up
        #[arg(long)]
        signup: bool,
    },
    /// Withdraw a plan no subscription uses
    Delete { id: String },
}

#[derive(Subcommand, Debug)]
pub enum SubscriptionCommand {
    /// A customer's subscription
    Show { tenant: TenantId },
    /// Subscribe a customer to a plan (its trial starts now), or move it to another
    Set {
        tenant: TenantId,
        #[arg(long)]
        plan: String,
        /// card (through the payment processor) or invoice (paid by transfer)
        #[arg(long)]
        collection: Option<Collection>,
    },
    /// End the subscription: the customer's data is erased when the paid period ends
    End {
        tenant: TenantId,
        /// The tenant's name (or ID) again
        #[arg(long)]
        confirm: String,
    },
    /// The payment processor's page where the customer enters a card
    Card { tenant: TenantId },
    /// Every attempt to charge the customer's invoices
    Charges { tenant: TenantId },
}

#[derive(Subcommand, Debug)]
pub enum InvoiceCommand {
    /// A customer's invoices
    List {
        #[arg(long)]
        tenant: TenantId,
    },
    /// One invoice; with --html the page to print
    Show {
        id: String,
        #[arg(long)]
        html: bool,
    },
    /// Record that an invoice was paid (as its issuer)
    Pay {
        id: String,
        /// The bank's or processor's reference of the payment
        #[arg(long)]
        reference: String,
    },
}
