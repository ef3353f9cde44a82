//! Privacy: the versioned privacy policy, consent to marketing with one-click unsubscribe,
//! restriction of processing, and the provider's announcements.

use chrono::{DateTime, Utc};

wire! {
    /// A version of the privacy policy, as the provider published it.
    pub struct PrivacyPolicy {
        /// The provider's name for the version, such as `2026-12`.
        pub version: String,
        /// Where the policy's text is published.
        pub url: String,
        /// What changed, in a few lines.
        pub summary: String,
        pub published_at: DateTime<Utc>,
    }

    /// `POST /api/v1/privacy/policies`: publish a new version. Every user is shown it at
    /// their next sign-in until they acknowledge it.
    pub struct PublishPolicy {
        pub version: String,
        pub url: String,
        #[serde(default)]
        pub summary: String,
    }

    /// `POST /api/v1/me/policy-acknowledgement`: the version the user read.
    pub struct AcknowledgePolicy {
        pub version: String,
    }

    /// `PUT /api/v1/me/marketing-consent`.
    pub struct SetMarketingConsent {
        pub given: bool,
    }

    /// A user's consent to marketing as it stands, and when and under which policy it was
    /// last changed.
    pub struct MarketingConsent {
        pub given: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub policy_version: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub changed_at: Option<DateTime<Utc>>,
    }

    /// `PUT /api/v1/users/{id}/restriction`: restrict processing of a person's data, or
    /// lift the restriction.
    pub struct SetRestriction {
        pub restricted: bool,
    }

    /// `POST /api/v1/announcements`: product news from the provider, mailed to every user
    /// who consented to marketing and is not restricted.
    pub struct Announce {
        pub subject: String,
        pub text: String,
    }

    /// An announcement and the number of users it is mailed to.
    pub struct Announcement {
        pub id: String,
        pub subject: String,
        pub recipients: u64,
        pub created_at: DateTime<Utc>,
    }

    /// The answer to a one-click unsubscribe.
    pub struct Unsubscribed {
        /// Always `unsubscribed`, also for a link used before.
        pub status: String,
    }
}

closed_set! {
    /// What a data-subject request asks for (GDPR Art. 15 to 18).
    pub enum SubjectRequestKind("data-subject request kind") {
        Access = "access",
        Rectification = "rectification",
        Erasure = "erasure",
        Restriction = "restriction",
    }

    /// Whether a data-subject request is still to be answered.
    pub enum SubjectRequestState("data-subject request state") {
        Open = "open",
        Closed = "closed",
    }

    /// How a data-subject request was closed.
    pub enum SubjectRequestOutcome("data-subject request outcome") {
        /// What was asked was done.
        Done = "done",
        /// Refused (say why in `action`: the person could not be identified, the law
        /// requires the data to be kept, ...).
        Refused = "refused",
    }
}

wire! {
    /// `POST /api/v1/subject-requests`: a controller (a customer's admin) records a
    /// request a person made about their data.
    pub struct CreateSubjectRequest {
        /// The person: a user of the tenant or of a tenant below it.
        pub user_id: crate::UserId,
        pub kind: SubjectRequestKind,
        /// What the person asked, in a few lines (no more than needed).
        #[serde(default)]
        pub details: String,
    }

    /// `POST /api/v1/subject-requests/{id}/close`.
    pub struct CloseSubjectRequest {
        pub outcome: SubjectRequestOutcome,
        /// The action taken (or why it was refused).
        pub action: String,
    }

    /// A data-subject request and where it stands. It is due one month after it was
    /// received.
    pub struct SubjectRequest {
        pub id: String,
        pub tenant_id: String,
        pub user_id: String,
        pub kind: SubjectRequestKind,
        pub details: String,
        pub state: SubjectRequestState,
        pub received_at: DateTime<Utc>,
        pub due_at: DateTime<Utc>,
        /// Open past its due date.
        pub overdue: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub closed_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub outcome: Option<SubjectRequestOutcome>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub action: Option<String>,
    }

    /// A company that processes personal data for the provider (GDPR Art. 28).
    pub struct Subprocessor {
        pub id: String,
        pub name: String,
        /// What it does with the data.
        pub purpose: String,
        /// Where it processes the data (country or region).
        pub location: String,
        pub added_at: DateTime<Utc>,
    }

    /// `POST /api/v1/subprocessors`.
    pub struct CreateSubprocessor {
        pub name: String,
        pub purpose: String,
        pub location: String,
    }

    /// One category of personal data a tenant's records hold, and how many records.
    pub struct DataCategory {
        pub category: String,
        pub records: u64,
    }

    /// How long a kind of personal data is kept.
    pub struct RetentionRule {
        pub data: String,
        pub kept: String,
    }

    /// `GET /api/v1/tenants/{id}/privacy-report`: the records of processing for a tenant
    /// and the tenants below it (GDPR Art. 30).
    pub struct PrivacyReport {
        pub tenant_id: String,
        pub generated_at: DateTime<Utc>,
        pub categories: Vec<DataCategory>,
        /// Where the tenants' vaults keep their data, with each place's jurisdiction.
        pub residency: crate::ResidencyReport,
        pub retention: Vec<RetentionRule>,
        pub subprocessors: Vec<Subprocessor>,
        /// The data-subject requests still open, the oldest due first. Their `details`
        /// are empty for a reader who may not handle them (user-write on the request's
        /// tenant), such as an auditor.
        pub open_requests: Vec<SubjectRequest>,
    }
}

/// Filters of `GET /api/v1/subject-requests`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct SubjectRequestQuery {
    /// Only this tenant (default: every tenant whose users the caller administers).
    pub tenant_id: Option<crate::TenantId>,
    pub state: Option<SubjectRequestState>,
}

closed_set! {
    /// Where a personal-data archive stands.
    pub enum DataExportState("data export state") {
        /// Its job is gathering the data.
        Preparing = "preparing",
        /// Downloadable until `expires_at`.
        Ready = "ready",
        /// Deleted: its time ran out.
        Expired = "expired",
    }
}

wire! {
    /// A personal-data archive ("download my data"): everything the service holds on one
    /// person, as JSON files with a README in a zip file, made by a job and downloadable
    /// for 7 days.
    pub struct DataExport {
        pub id: String,
        /// Whose data it holds.
        pub user_id: String,
        pub state: DataExportState,
        /// The job that makes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub job_id: Option<String>,
        pub created_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub ready_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub expires_at: Option<DateTime<Utc>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub size: Option<u64>,
        /// SHA-256 of the zip file (hex).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sha256: Option<String>,
        /// Where to download it while it is ready.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub download: Option<String>,
    }
}
