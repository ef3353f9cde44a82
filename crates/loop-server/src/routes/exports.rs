//! "Download my data" (`crate::exports`).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::{DataExport, UserId};

use super::Path;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::state::AppState;

/// A zip file, as the OpenAPI document names it (binary).
pub struct ZipFile;

impl utoipa::PartialSchema for ZipFile {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl utoipa::ToSchema for ZipFile {}

/// Download your data
///
/// Asks for an archive of everything the service holds on you (profile, roles, sessions
/// with IP addresses and browsers, devices you registered, consents, notifications sent to
/// you, the audited actions you took and those about you, requests about your data) as JSON files with a
/// README in a zip file. A job makes it; then it can be downloaded for 7 days.
#[utoipa::path(post, path = "/api/v1/me/data-export", tag = "privacy",
    responses((status = 202, description = "Being made", body = DataExport)))]
pub async fn export_mine(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<(StatusCode, axum::Json<DataExport>)> {
    let e = crate::exports::request(&state, &caller, None).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(e)))
}

/// Export a user's data
///
/// The same archive as `POST /api/v1/me/data-export`, for a user of a tenant whose users
/// you administer (a person's access request through their organisation).
#[utoipa::path(post, path = "/api/v1/users/{id}/data-export", tag = "privacy",
    params(("id" = UserId, Path)),
    responses((status = 202, description = "Being made", body = DataExport),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "The person was erased (problem+json)", body = loop_api::Problem)))]
pub async fn export_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<UserId>,
) -> ApiResult<(StatusCode, axum::Json<DataExport>)> {
    let e = crate::exports::request(&state, &caller, Some(id.as_str())).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(e)))
}

/// Show a personal-data archive
///
/// Yours, or one of a user of a tenant whose users you administer.
#[utoipa::path(get, path = "/api/v1/data-exports/{id}", tag = "privacy",
    params(("id" = String, Path)),
    responses((status = 200, description = "Success", body = DataExport),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem)))]
pub async fn get_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DataExport>> {
    let e = crate::exports::visible(&state, &caller, &id).await?;
    Ok(axum::Json(crate::exports::view(&e)))
}

/// Download a personal-data archive
///
/// The zip file, while it is ready. `409 export_not_ready` while its job runs, `410
/// export_expired` once its download period ended.
#[utoipa::path(get, path = "/api/v1/data-exports/{id}/archive", tag = "privacy",
    params(("id" = String, Path)),
    responses((status = 200, description = "The zip file", content_type = "application/zip", body = ZipFile),
        (status = 404, description = "Not found, or outside your tenant scope (problem+json)", body = loop_api::Problem),
        (status = 409, description = "Not ready yet (problem+json)", body = loop_api::Problem)))]
pub async fn download_export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let bytes = crate::exports::download(&state, &caller, &id).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"loop-backup-data-{id}.zip\""
    )) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
