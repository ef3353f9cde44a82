//! Plans, subscriptions and invoices: the subscription lifecycle of a customer tenant.

closed_set! {
    /// Where a subscription stands. `trial` (14 days from sign-up, no payment method
    /// needed) → `active` → `past-due` (an invoice is unpaid after its due date) →
    /// `suspended` (no new backups, devices or vaults; restores work) → `terminated` (every
    /// vault of the tenant erased).
    pub enum SubscriptionState("subscription state") {
        Trial = "trial",
        Active = "active",
        PastDue = "past-due",
        Suspended = "suspended",
        Terminated = "terminated",
    }

    /// How a subscription is paid.
    pub enum Collection("collection") {
        /// The payment processor charges the customer's payment method.
        Card = "card",
        /// The customer pays each invoice by transfer; the issuer records the payment.
        Invoice = "invoice",
    }

    /// Why a subscription was suspended or terminated.
    pub enum LifecycleReason("lifecycle reason") {
        /// The trial ended without a payment method.
        TrialEnded = "trial-ended",
        /// An invoice stayed unpaid.
        Unpaid = "unpaid",
        /// The customer ended the subscription.
        Ended = "ended",
        /// The tenant was erased by hand (`loop tenant erase`).
        Erased = "erased",
    }

    pub enum InvoiceState("invoice state") {
        Open = "open",
        Paid = "paid",
    }

    /// What came of charging an invoice through the payment processor.
    pub enum ChargeState("charge state") {
        /// Asked; the processor's answer is not in yet.
        Pending = "pending",
        Succeeded = "succeeded",
        /// Declined, or the payment method needs the customer.
        Failed = "failed",
    }
}

wire! {
    /// What a provider or partner sells (`GET /api/v1/plans`).
    pub struct Plan {
        pub id: String,
        /// The provider or partner that sells it and issues its invoices.
        pub issuer_id: String,
        pub name: String,
        /// Stored data included in the price; null: unlimited.
        pub quota_bytes: Option<u64>,
        /// Devices a subscriber may have; null: any number.
        pub device_limit: Option<u64>,
        /// The price per month, in the currency's minor unit (cents).
        pub price_cents: u64,
        /// Stored data above the quota, per GiB-month (average of the period's daily
        /// measurements), in cents; null: not billed.
        pub extra_gib_cents: Option<u64>,
        /// ISO 4217 (`EUR`).
        pub currency: String,
        /// Offered on the self-service sign-up (`POST /api/v1/signup`).
        pub signup: bool,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `POST /api/v1/plans`.
    pub struct CreatePlan {
        /// The provider or partner selling it (an admin or billing user of it asks).
        pub issuer_id: crate::TenantId,
        pub name: String,
        #[serde(default)]
        pub quota_bytes: Option<u64>,
        #[serde(default)]
        pub device_limit: Option<u64>,
        pub price_cents: u64,
        #[serde(default)]
        pub extra_gib_cents: Option<u64>,
        pub currency: String,
        /// Offer it on the self-service sign-up (default false): a customer who signs up for
        /// it is created under the plan's issuer.
        #[serde(default)]
        pub signup: bool,
    }

    /// A customer tenant's subscription (`GET /api/v1/tenants/{id}/subscription`).
    pub struct Subscription {
        pub tenant_id: String,
        pub plan: Plan,
        pub state: SubscriptionState,
        pub collection: Collection,
        /// Whether the customer can be charged: a payment method is on file, or the
        /// subscription is paid by invoice.
        pub payment_method: bool,
        pub trial_ends_at: chrono::DateTime<chrono::Utc>,
        /// The billing period under way (null during the trial and while suspended).
        pub period_start: Option<chrono::DateTime<chrono::Utc>>,
        pub period_end: Option<chrono::DateTime<chrono::Utc>>,
        pub suspended_at: Option<chrono::DateTime<chrono::Utc>>,
        pub reason: Option<LifecycleReason>,
        /// Ended by the customer: terminated then.
        pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
        /// Terminated (every vault erased) then unless paid before.
        pub terminate_at: Option<chrono::DateTime<chrono::Utc>>,
        pub terminated_at: Option<chrono::DateTime<chrono::Utc>>,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }

    /// `PUT /api/v1/tenants/{id}/subscription`: subscribe a customer to a plan of its
    /// partner (or provider). A new subscription starts its trial; an existing one moves to
    /// the plan.
    pub struct SetSubscription {
        pub plan_id: String,
        /// How it is paid (the issuer's choice; default `card` where the server takes card
        /// payments, else `invoice`).
        #[serde(default)]
        pub collection: Option<Collection>,
    }

    /// `POST /api/v1/tenants/{id}/subscription/end`: the customer ends its subscription.
    /// Its data is erased at the end of the period it paid for (of the trial during the
    /// trial; while suspended, at the termination due, 7 days from now at the earliest).
    /// Until then the issuer withdraws it by choosing a plan again. `confirm` repeats the
    /// tenant's name or ID.
    pub struct EndSubscription {
        pub confirm: String,
    }

    /// One line of an invoice.
    pub struct InvoiceLine {
        pub description: String,
        /// How many units (months, GiB-months in hundredths: see `description`).
        pub quantity: String,
        pub unit_cents: u64,
        pub amount_cents: u64,
    }

    /// An invoice (`GET /api/v1/invoices/{id}`; as HTML with `Accept: text/html`).
    pub struct Invoice {
        pub id: String,
        pub issuer_id: String,
        /// Sequential per issuer, without gaps.
        pub number: u64,
        pub tenant_id: String,
        /// The customer's name when it was issued.
        pub bill_to: String,
        pub plan_id: String,
        pub period_start: chrono::DateTime<chrono::Utc>,
        pub period_end: chrono::DateTime<chrono::Utc>,
        pub currency: String,
        pub lines: Vec<InvoiceLine>,
        pub total_cents: u64,
        pub state: InvoiceState,
        pub issued_at: chrono::DateTime<chrono::Utc>,
        pub due_at: chrono::DateTime<chrono::Utc>,
        pub paid_at: Option<chrono::DateTime<chrono::Utc>>,
        pub payment_reference: Option<String>,
    }

    /// `POST /api/v1/invoices/{id}/payment`: the issuer records that an invoice was paid
    /// (a transfer arrived). A suspended subscription with nothing else unpaid is active
    /// again at once.
    pub struct RecordPayment {
        /// The bank's or processor's reference of the payment.
        pub reference: String,
    }

    /// `POST /api/v1/tenants/{id}/subscription/payment-method`: the payment processor's page
    /// where the customer enters a card (or another payment method). The card goes to the
    /// processor only; the service learns which payment method it holds from the
    /// processor's signed webhook.
    pub struct PaymentSetup {
        pub url: String,
    }

    /// One attempt to charge an invoice (`GET /api/v1/tenants/{id}/charges`).
    pub struct Charge {
        pub id: String,
        pub invoice_id: String,
        /// 1 for the first attempt at this invoice.
        pub attempt: u64,
        pub amount_cents: u64,
        pub currency: String,
        pub state: ChargeState,
        /// The processor's reference of the payment (a Stripe payment intent).
        pub processor_reference: Option<String>,
        /// Why it failed, as the processor says (`insufficient_funds`).
        pub failure_code: Option<String>,
        pub failure_message: Option<String>,
        pub created_at: chrono::DateTime<chrono::Utc>,
    }
}
