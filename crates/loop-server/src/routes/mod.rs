//! The HTTP surface: the JSON API under `/api/v1` (documented by the generated OpenAPI
//! document at `/api/v1/openapi.json`) and the vault protocol under `/vaults/{id}/v1`.

mod access;
mod audit;
mod directory;
mod erasure;
mod session;
mod vault_protocol;
mod vaults;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, problem};
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Loop Backup API",
        description = "Management API of `loop server`. Errors are application/problem+json \
                       with a stable `code`. Authenticate with the `loop_session` cookie or \
                       `Authorization: Bearer <session token>`."
    ),
    components(schemas(loop_api::Problem))
)]
struct ApiDoc;

/// The API routes and their OpenAPI document, built from the same list.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me))
        .routes(routes!(session::change_password))
        .routes(routes!(session::enroll_totp))
        .routes(routes!(session::confirm_totp))
        .routes(routes!(session::accept_invite))
        .routes(routes!(directory::list_tenants, directory::create_tenant))
        .routes(routes!(directory::get_tenant))
        .routes(routes!(erasure::erase_tenant))
        .routes(routes!(directory::list_users, directory::create_user))
        .routes(routes!(directory::get_user, directory::update_user))
        .routes(routes!(directory::disable_user))
        .routes(routes!(directory::enable_user))
        .routes(routes!(directory::list_roles, directory::grant_role))
        .routes(routes!(directory::revoke_role))
        .routes(routes!(access::list_devices, access::create_device))
        .routes(routes!(access::delete_device))
        .routes(routes!(access::list_tokens, access::create_token))
        .routes(routes!(access::revoke_token))
        .routes(routes!(access::list_sessions))
        .routes(routes!(access::revoke_session))
        .routes(routes!(vaults::list_destinations))
        .routes(routes!(vaults::list_vaults, vaults::create_vault))
        .routes(routes!(vaults::get_vault, vaults::delete_vault))
        .routes(routes!(vaults::list_snapshots))
        .routes(routes!(audit::query_audit))
        .routes(routes!(audit::export_audit))
        .routes(routes!(audit::audit_heads))
        .split_for_parts()
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = std::sync::Arc::new(doc);
    let json_limit = state.config.limits.json_body_bytes;
    let api = api
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json((*doc).clone()) }
            }),
        )
        .layer(DefaultBodyLimit::max(json_limit));
    let vault = vault_protocol::router(json_limit).layer(DefaultBodyLimit::disable());
    Router::new()
        .merge(api)
        .merge(vault)
        .fallback(|| async { ApiError::not_found().into_response() })
        .method_not_allowed_fallback(|| async {
            problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                Some("this method is not allowed here".into()),
            )
        })
        .with_state(state)
}

/// A JSON body extractor whose rejections are problem+json (malformed JSON, wrong content
/// type, too large) instead of axum's plain-text defaults.
pub struct Json<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            )),
            Err(JsonRejection::BytesRejection(_)) => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is too large",
            )),
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Path parameters with problem+json rejections.
pub struct Path<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Path<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|_| ApiError::not_found())
    }
}

/// Query parameters with problem+json rejections.
pub struct Query<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for Query<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Appends `event` to the audit log inside `tx` and commits: the change and its record land
/// together or not at all.
pub(crate) async fn commit_audited(
    mut tx: crate::db::Tx,
    event: crate::db::audit::NewEvent,
    now: i64,
) -> Result<(), ApiError> {
    crate::db::audit::append(&mut tx, event, now).await?;
    commit(tx).await
}

/// Commits a transaction, mapping the error.
pub(crate) async fn commit(tx: crate::db::Tx) -> Result<(), ApiError> {
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(())
}
