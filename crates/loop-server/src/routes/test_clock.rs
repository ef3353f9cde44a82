//! `POST /api/v1/admin/test-clock`: moves the server's clock forward, for end-to-end tests
//! of schedules, leases and timers against a real server process (the subscription
//! lifecycle's timer runs right after the move). It exists only when the
//! configuration sets `test_clock = true` (never in production: every time-based rule of
//! the service follows this clock), answers provider-admins only, and is not in the API
//! document.

use axum::extract::State;
use serde::Deserialize;

use super::Json;
use crate::auth::Caller;
use crate::db::tenants;
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Advance {
    pub advance_seconds: u64,
}

pub async fn advance(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<Advance>,
) -> ApiResult<axum::Json<serde_json::Value>> {
    let provider = tenants::provider_tenant(&state.db.pool)
        .await?
        .ok_or_else(ApiError::not_found)?;
    // Erasing a tenant is the provider-admins' own permission.
    caller
        .tenant(&state, Permission::TenantErase, &provider.tenant.id)
        .await?;
    if req.advance_seconds > 10 * 366 * 86_400 {
        return Err(ApiError::bad_request("advance at most ten years at a time"));
    }
    state
        .clock
        .advance(std::time::Duration::from_secs(req.advance_seconds));
    tracing::warn!(
        seconds = req.advance_seconds,
        "the test clock moved forward"
    );
    // The subscription lifecycle's timers fire as the clock passes them.
    crate::billing::tick(&state).await?;
    state.jobs_wake.notify_one();
    state.notify_wake.notify_one();
    Ok(axum::Json(
        serde_json::json!({ "now": crate::db::time(state.now()) }),
    ))
}
