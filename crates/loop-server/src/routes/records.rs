//! Data-subject requests, the sub-processor register and the privacy report
//! (`crate::records`).

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use loop_api::{
    CloseSubjectRequest, CreateSubjectRequest, CreateSubprocessor, PageQuery, PrivacyReport,
    SubjectRequest, SubjectRequestQuery, Subprocessor, TenantId,
};

use super::pages::{Listing, page};
use super::{Json, Path, Query};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// List data-subject requests
///
/// The requests recorded for users of the tenants whose users the caller administers:
/// open ones first, each by due date; `overdue` marks an open one past its due date.
#[utoipa::path(get, path = "/api/v1/subject-requests", tag = "privacy",
    params(SubjectRequestQuery, PageQuery),
    responses((status = 200, description = "Success", body = Vec<SubjectRequest>)))]
pub async fn list_requests(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<SubjectRequestQuery>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<SubjectRequest>> {
    let page =
        crate::records::list_requests(&state, &caller, f.tenant_id.as_ref(), f.state, &page(&p)?)
            .await?;
    Ok(Listing::new(uri, page))
}

/// Record a data-subject request
///
/// A person asked their controller (the customer) for access to, rectification, erasure or
/// restriction of their data. The request is due one month after it was received. Admins
/// of the person's tenant.
#[utoipa::path(post, path = "/api/v1/subject-requests", tag = "privacy",
    request_body = CreateSubjectRequest,
    responses((status = 201, description = "Recorded", body = SubjectRequest),
        (status = 400, description = "A field is not valid (problem+json)", body = loop_api::Problem),
        (status = 404, description = "No such person, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The person was erased (problem+json)", body = loop_api::Problem)))]
pub async fn create_request(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateSubjectRequest>,
) -> ApiResult<(StatusCode, axum::Json<SubjectRequest>)> {
    let r = crate::records::create_request(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(r)))
}

/// Show a data-subject request
#[utoipa::path(get, path = "/api/v1/subject-requests/{id}", tag = "privacy",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = SubjectRequest),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SubjectRequest>> {
    Ok(axum::Json(
        crate::records::request(&state, &caller, &id).await?,
    ))
}

/// Close a data-subject request
///
/// With the action taken (or why it was refused).
#[utoipa::path(post, path = "/api/v1/subject-requests/{id}/close", tag = "privacy",
    params(("id" = String, Path)), request_body = CloseSubjectRequest,
    responses((status = 200, description = "Closed", body = SubjectRequest),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Closed already (problem+json)", body = loop_api::Problem)))]
pub async fn close_request(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<CloseSubjectRequest>,
) -> ApiResult<axum::Json<SubjectRequest>> {
    Ok(axum::Json(
        crate::records::close_request(&state, &caller, &id, req).await?,
    ))
}

/// List the sub-processors
///
/// The companies that process personal data for the provider: name, purpose, location.
/// Every signed-in user may read it.
#[utoipa::path(get, path = "/api/v1/subprocessors", tag = "privacy",
    responses((status = 200, description = "Success", body = Vec<Subprocessor>)))]
pub async fn list_subprocessors(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<axum::Json<Vec<Subprocessor>>> {
    caller.user()?;
    Ok(axum::Json(
        crate::db::subprocessors::list(&state.db.pool).await?,
    ))
}

/// Add a sub-processor
///
/// The admins of every customer (and every partner-admin) are told by mail. The provider's
/// admins.
#[utoipa::path(post, path = "/api/v1/subprocessors", tag = "privacy",
    request_body = CreateSubprocessor,
    responses((status = 201, description = "Added", body = Subprocessor),
        (status = 403, description = "Not an admin of the provider (problem+json)", body = loop_api::Problem),
        (status = 409, description = "A sub-processor has this name (problem+json)", body = loop_api::Problem)))]
pub async fn add_subprocessor(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateSubprocessor>,
) -> ApiResult<(StatusCode, axum::Json<Subprocessor>)> {
    let s = crate::records::add_subprocessor(&state, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(s)))
}

/// Remove a sub-processor
///
/// The admins of every customer (and every partner-admin) are told by mail. The provider's
/// admins.
#[utoipa::path(delete, path = "/api/v1/subprocessors/{id}", tag = "privacy",
    params(("id" = String, Path)),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "Not an admin of the provider (problem+json)", body = loop_api::Problem),
        (status = 404, description = "Not found (problem+json)", body = loop_api::Problem)))]
pub async fn remove_subprocessor(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    crate::records::remove_subprocessor(&state, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Privacy report
///
/// The records of processing for the tenant and the tenants below it: the categories of
/// personal data held and how many records of each, where the data lives, the retention in
/// force, the sub-processors, and the open data-subject requests.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/privacy-report", tag = "privacy",
    params(("id" = TenantId, Path)),
    responses((status = 200, description = "Success", body = PrivacyReport),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn privacy_report(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TenantId>,
) -> ApiResult<axum::Json<PrivacyReport>> {
    Ok(axum::Json(
        crate::records::report(&state, &caller, id.as_str()).await?,
    ))
}
