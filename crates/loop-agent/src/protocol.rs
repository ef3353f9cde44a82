//! The agent protocol (`/agent/v1/...`): enrolment with a code, then heartbeats, job claims
//! and reports with the device token (an [`ApiClient`] whose session is that token).

use loop_api::{
    AgentConfig, AgentEnrolled, AgentFinish, AgentHeartbeat, AgentJob, AgentLease, AgentReport,
    EnrollAgent,
};
use reqwest::{Method, StatusCode};

use crate::api::{ApiClient, ApiError};

impl ApiClient {
    /// Registers this machine with a single-use code (no token yet).
    pub fn enroll(&self, r: &EnrollAgent) -> Result<AgentEnrolled, ApiError> {
        self.call(Method::POST, "/agent/v1/enroll", Some(r))
    }

    /// Reports the agent alive; answers the device's protected items.
    pub fn heartbeat(&self, r: &AgentHeartbeat) -> Result<AgentConfig, ApiError> {
        self.call(Method::POST, "/agent/v1/heartbeat", Some(r))
    }

    /// Claims the next due backup of this device, if any.
    pub fn claim_job(&self) -> Result<Option<AgentJob>, ApiError> {
        let resp = self.send(self.request(Method::POST, "/agent/v1/jobs/claim").json(&()))?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        crate::api::json_of(resp).map(Some)
    }

    /// Renews the claim and records progress and a log line.
    pub fn report_job(&self, id: &str, r: &AgentReport) -> Result<AgentLease, ApiError> {
        self.call(
            Method::POST,
            &format!("/agent/v1/jobs/{id}/report"),
            Some(r),
        )
    }

    pub fn finish_job(&self, id: &str, r: &AgentFinish) -> Result<(), ApiError> {
        self.call_empty(
            Method::POST,
            &format!("/agent/v1/jobs/{id}/finish"),
            Some(r),
        )
    }
}
