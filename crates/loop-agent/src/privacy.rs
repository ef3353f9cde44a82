//! The privacy operations of the management API: the privacy policy, consent to marketing,
//! restriction of processing, announcements.

use loop_api::*;
use reqwest::Method;

use crate::api::{ApiClient, ApiError};

impl ApiClient {
    /// The privacy policy in force; needs no session.
    pub fn privacy_policy(&self) -> Result<PrivacyPolicy, ApiError> {
        self.get("/api/v1/privacy/policy")
    }

    pub fn publish_policy(&self, r: &PublishPolicy) -> Result<PrivacyPolicy, ApiError> {
        self.call(Method::POST, "/api/v1/privacy/policies", Some(r))
    }

    pub fn acknowledge_policy(&self, r: &AcknowledgePolicy) -> Result<(), ApiError> {
        self.call_empty(Method::POST, "/api/v1/me/policy-acknowledgement", Some(r))
    }

    pub fn marketing_consent(&self) -> Result<MarketingConsent, ApiError> {
        self.get("/api/v1/me/marketing-consent")
    }

    pub fn set_marketing_consent(
        &self,
        r: &SetMarketingConsent,
    ) -> Result<MarketingConsent, ApiError> {
        self.call(Method::PUT, "/api/v1/me/marketing-consent", Some(r))
    }

    pub fn set_restriction(&self, id: &UserId, r: &SetRestriction) -> Result<User, ApiError> {
        self.call(
            Method::PUT,
            &format!("/api/v1/users/{id}/restriction"),
            Some(r),
        )
    }

    pub fn announce(&self, r: &Announce) -> Result<Announcement, ApiError> {
        self.call(Method::POST, "/api/v1/announcements", Some(r))
    }
}

impl ApiClient {
    pub fn subject_requests(
        &self,
        q: &SubjectRequestQuery,
    ) -> Result<Vec<SubjectRequest>, ApiError> {
        self.get_pages("/api/v1/subject-requests", q, None)
    }

    pub fn create_subject_request(
        &self,
        r: &CreateSubjectRequest,
    ) -> Result<SubjectRequest, ApiError> {
        self.call(Method::POST, "/api/v1/subject-requests", Some(r))
    }

    pub fn close_subject_request(
        &self,
        id: &str,
        r: &CloseSubjectRequest,
    ) -> Result<SubjectRequest, ApiError> {
        self.call(
            Method::POST,
            &format!("/api/v1/subject-requests/{id}/close"),
            Some(r),
        )
    }

    pub fn subprocessors(&self) -> Result<Vec<Subprocessor>, ApiError> {
        self.get("/api/v1/subprocessors")
    }

    pub fn add_subprocessor(&self, r: &CreateSubprocessor) -> Result<Subprocessor, ApiError> {
        self.call(Method::POST, "/api/v1/subprocessors", Some(r))
    }

    pub fn remove_subprocessor(&self, id: &str) -> Result<(), ApiError> {
        self.call_empty::<()>(Method::DELETE, &format!("/api/v1/subprocessors/{id}"), None)
    }

    pub fn privacy_report(&self, tenant: &TenantId) -> Result<PrivacyReport, ApiError> {
        self.get(&format!("/api/v1/tenants/{tenant}/privacy-report"))
    }

    /// Asks for an archive of the data of `user` (the caller's own when `None`).
    pub fn request_data_export(&self, user: Option<&UserId>) -> Result<DataExport, ApiError> {
        let path = match user {
            Some(u) => format!("/api/v1/users/{u}/data-export"),
            None => "/api/v1/me/data-export".into(),
        };
        self.call::<(), _>(Method::POST, &path, None)
    }

    pub fn data_export(&self, id: &str) -> Result<DataExport, ApiError> {
        self.get(&format!("/api/v1/data-exports/{id}"))
    }

    /// The archive's zip file.
    pub fn data_export_archive(&self, id: &str) -> Result<Vec<u8>, ApiError> {
        self.get_bytes(&format!("/api/v1/data-exports/{id}/archive"))
    }
}
