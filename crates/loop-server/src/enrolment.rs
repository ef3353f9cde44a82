//! Enrolment codes: a single-use code with which `loop agent enroll` registers one machine
//! as a device of the tenant. The API and the console's devices page make them here.

use loop_api::EnrolmentCode;

use crate::auth::Caller;
use crate::db::{self, agents};
use crate::domain::{Permission, new_secret, secret_hash};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// A new code for tenant `tenant_id` (device-write there), valid `expires_in_minutes`
/// (default 60, at most a week); audited. The code is shown once.
pub async fn new_code(
    state: &AppState,
    caller: &Caller,
    tenant_id: &str,
    expires_in_minutes: Option<u32>,
) -> ApiResult<EnrolmentCode> {
    let tenant = caller
        .tenant(state, Permission::DeviceWrite, tenant_id)
        .await?;
    let minutes = expires_in_minutes.unwrap_or(60);
    if !(1..=7 * 24 * 60).contains(&minutes) {
        return Err(ApiError::bad_request(
            "expires_in_minutes is between 1 and 10080 (a week)",
        ));
    }
    let now = state.now();
    let expires = now + minutes as i64 * 60_000;
    let code = new_secret("lpc");
    let hash = secret_hash(&code);
    let (_, actor) = caller.actor();
    let mut tx = state.db.begin().await?;
    agents::insert_code(&mut tx, &hash, &tenant.tenant.id, &actor, now, expires).await?;
    db::audit::commit_audited(
        tx,
        caller.event(
            &tenant.tenant.id,
            "device.enroll_code",
            "tenant",
            Some(&tenant.tenant.id),
            serde_json::json!({ "expires_at": db::time(expires) }),
        ),
        now,
    )
    .await?;
    Ok(EnrolmentCode {
        tenant_id: tenant.tenant.id,
        code: code.into(),
        expires_at: db::time(expires),
    })
}
