//! The HTTP surface: the JSON API under `/api/v1` (documented by the generated OpenAPI
//! document at `/api/v1/openapi.json`) and the vault protocol under `/vaults/{id}/v1`.

mod access;
mod agent;
mod audit;
mod billing;
mod branding;
mod codes;
mod directory;
mod erasure;
mod exports;
mod health;
mod items;
mod jobs;
mod notify;
mod openapi;
mod pages;
mod payments;
mod person;
mod policies;
mod privacy;
mod records;
mod remotes;
pub(crate) mod replicas;
mod residency;
mod retention_lock;
mod session;
mod signup;
mod tenants;
mod test_clock;
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
                       `Authorization: Bearer <session token>` (the `cookie` and `bearer` \
                       security schemes)."
    ),
    // IDs that only path parameters name are not collected from the operations.
    components(schemas(
        loop_api::Problem,
        loop_api::TenantId,
        loop_api::UserId,
        loop_api::RoleBindingId,
        loop_api::DeviceId,
        loop_api::TokenId,
        loop_api::VaultId,
        loop_api::SessionId,
        loop_api::JobId,
        loop_api::PolicyId,
        loop_api::ItemId,
        loop_api::TargetId,
        loop_api::EventId,
        loop_api::DeliveryId
    ))
)]
struct ApiDoc;

/// The API routes and their OpenAPI document, built from the same list.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(session::login))
        .routes(routes!(session::logout))
        .routes(routes!(session::me, directory::update_me))
        .routes(routes!(session::change_password))
        .routes(routes!(session::enroll_totp))
        .routes(routes!(session::confirm_totp))
        .routes(routes!(codes::accept_invite))
        .routes(routes!(codes::confirm_email))
        .routes(routes!(codes::request_password_reset))
        .routes(routes!(codes::reset_password))
        .routes(routes!(tenants::list_tenants, tenants::create_tenant))
        .routes(routes!(tenants::get_tenant, tenants::update_tenant))
        .routes(routes!(tenants::rotate_tenant_key))
        // A logo travels as base64: its route takes a body a third larger than the logo.
        .merge(
            OpenApiRouter::new()
                .routes(routes!(
                    branding::get_branding,
                    branding::set_branding,
                    branding::clear_branding
                ))
                .layer(DefaultBodyLimit::max(branding::BODY_BYTES)),
        )
        .routes(routes!(residency::get_residency, residency::set_residency))
        .routes(routes!(residency::residency_report))
        .routes(routes!(erasure::erase_tenant))
        .routes(routes!(erasure::erasure_certificate))
        .routes(routes!(directory::list_users, directory::create_user))
        .routes(routes!(directory::get_user, directory::update_user))
        .routes(routes!(directory::disable_user))
        .routes(routes!(directory::enable_user))
        .routes(routes!(directory::list_roles, directory::grant_role))
        .routes(routes!(directory::revoke_role))
        .routes(routes!(access::list_devices, access::create_device))
        .routes(routes!(access::delete_device))
        .routes(routes!(agent::create_enrolment_code))
        .routes(routes!(agent::restore_to_device))
        .routes(routes!(access::list_tokens, access::create_token))
        .routes(routes!(access::revoke_token))
        .routes(routes!(access::list_sessions))
        .routes(routes!(access::revoke_session))
        .routes(routes!(vaults::list_destinations))
        .routes(routes!(vaults::list_vaults, vaults::create_vault))
        .routes(routes!(vaults::get_vault, vaults::delete_vault))
        .routes(routes!(vaults::list_snapshots))
        .routes(routes!(vaults::verify_vault))
        .routes(routes!(vaults::set_maintainer))
        .routes(routes!(vaults::set_quota))
        .routes(routes!(residency::vault_locations))
        .routes(routes!(retention_lock::set_retention_lock))
        .routes(routes!(replicas::list_replicas, replicas::create_replica))
        .routes(routes!(replicas::delete_replica))
        .routes(routes!(replicas::promote_replica))
        .routes(routes!(replicas::verify_replica))
        .routes(routes!(replicas::replicate_now))
        .routes(routes!(billing::list_plans, billing::create_plan))
        .routes(routes!(billing::delete_plan))
        .routes(routes!(
            billing::get_subscription,
            billing::set_subscription
        ))
        .routes(routes!(billing::end_subscription))
        .routes(routes!(billing::list_invoices))
        .routes(routes!(billing::get_invoice))
        .routes(routes!(billing::record_payment))
        .routes(routes!(person::erase_person))
        .routes(routes!(payments::add_payment_method))
        .routes(routes!(payments::list_charges))
        .routes(routes!(payments::stripe_webhook))
        .routes(routes!(privacy::current_policy))
        .routes(routes!(privacy::publish_policy))
        .routes(routes!(privacy::acknowledge_policy))
        .routes(routes!(
            privacy::marketing_consent,
            privacy::set_marketing_consent
        ))
        .routes(routes!(privacy::unsubscribe_page, privacy::unsubscribe))
        .routes(routes!(privacy::set_restriction))
        .routes(routes!(privacy::announce))
        .routes(routes!(records::list_requests, records::create_request))
        .routes(routes!(records::get_request))
        .routes(routes!(records::close_request))
        .routes(routes!(
            records::list_subprocessors,
            records::add_subprocessor
        ))
        .routes(routes!(records::remove_subprocessor))
        .routes(routes!(records::privacy_report))
        .routes(routes!(exports::export_mine))
        .routes(routes!(exports::export_user))
        .routes(routes!(exports::get_export))
        .routes(routes!(exports::download_export))
        .routes(routes!(signup::signup_plans))
        .routes(routes!(signup::sign_up))
        .routes(routes!(signup::confirm_sign_up))
        .routes(routes!(remotes::list_remotes, remotes::create_remote))
        .routes(routes!(remotes::delete_remote))
        .routes(routes!(remotes::list_sync_jobs, remotes::create_sync_job))
        .routes(routes!(remotes::delete_sync_job))
        .routes(routes!(remotes::run_sync_job))
        .routes(routes!(policies::list_policies, policies::create_policy))
        .routes(routes!(
            policies::get_policy,
            policies::update_policy,
            policies::delete_policy
        ))
        .routes(routes!(policies::vault_policy))
        .routes(routes!(policies::run_retention))
        .routes(routes!(items::list_items, items::create_item))
        .routes(routes!(
            items::get_item,
            items::update_item,
            items::delete_item
        ))
        .routes(routes!(items::run_item))
        .routes(routes!(audit::query_audit))
        .routes(routes!(audit::export_audit))
        .routes(routes!(audit::audit_heads))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::job_log))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(notify::list_targets, notify::create_target))
        .routes(routes!(
            notify::get_target,
            notify::update_target,
            notify::delete_target
        ))
        .routes(routes!(notify::test_target))
        .routes(routes!(notify::list_deliveries))
        .routes(routes!(notify::list_events))
        .split_for_parts();
    openapi::document_security(&mut doc);
    openapi::document_errors(&mut doc);
    (router, doc)
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
    let agent = agent::router(json_limit);
    let mut service = Router::new();
    if state.config.test_clock {
        service = service.route(
            "/api/v1/admin/test-clock",
            axum::routing::post(test_clock::advance),
        );
    }
    service
        .route("/healthz", axum::routing::get(health::healthz))
        .route("/readyz", axum::routing::get(health::readyz))
        .route("/metrics", axum::routing::get(crate::metrics::scrape))
        .merge(api)
        .merge(crate::pages::router())
        .merge(vault)
        .merge(agent)
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
    tx: crate::db::Tx,
    event: crate::db::audit::NewEvent,
    now: i64,
) -> Result<(), ApiError> {
    Ok(crate::db::audit::commit_audited(tx, event, now).await?)
}

/// Records `event` as a refused action (outcome `failure`), in a transaction of its own: the
/// refused change itself wrote nothing.
pub(crate) async fn audit_refused(
    state: &crate::state::AppState,
    mut event: crate::db::audit::NewEvent,
) -> Result<(), ApiError> {
    event.outcome = loop_api::Outcome::Failure;
    commit_audited(state.db.begin().await?, event, state.now()).await
}

/// The request's media type (`Content-Type` without parameters, lowercase; empty without
/// one).
pub(crate) fn media_type(headers: &axum::http::HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// Commits a transaction, mapping the error.
pub(crate) async fn commit(tx: crate::db::Tx) -> Result<(), ApiError> {
    tx.commit().await.map_err(crate::db::DbError::from)?;
    Ok(())
}

/// Queues `work` in `tx` and commits both with the audit event `event` makes from the job's
/// ID; then wakes the runner and answers 202 with the job.
pub(crate) async fn queue_audited(
    state: &crate::state::AppState,
    mut tx: crate::db::Tx,
    work: crate::jobs::Work<'_>,
    event: impl FnOnce(&str) -> crate::db::audit::NewEvent,
) -> crate::error::ApiResult<(axum::http::StatusCode, axum::Json<loop_api::Job>)> {
    let now = state.now();
    let asked = work.params.clone();
    let job_id = crate::jobs::queue(state, &mut tx, work).await?;
    crate::jobs::refuse_other_settings(&mut tx, &job_id, &asked).await?;
    commit_audited(tx, event(&job_id), now).await?;
    state.jobs_wake.notify_one();
    Ok((
        axum::http::StatusCode::ACCEPTED,
        axum::Json(queued(state, &job_id).await?),
    ))
}

/// Queues job `kind` on vault `v` for the caller, run by `runner`, audited as `action` (with
/// `params` and the job's ID); answers 202 with the job.
pub(crate) async fn queue_vault_job(
    state: &crate::state::AppState,
    caller: &crate::auth::Caller,
    v: &loop_api::Vault,
    runner: crate::db::jobs::Runner,
    kind: loop_api::JobKind,
    action: &'static str,
    params: serde_json::Value,
) -> crate::error::ApiResult<(axum::http::StatusCode, axum::Json<loop_api::Job>)> {
    let (_, actor) = caller.actor();
    let tx = state.db.begin().await?;
    let work = crate::jobs::Work {
        runner,
        tenant_id: &v.tenant_id,
        kind,
        target: ("vault", &v.id),
        trigger: loop_api::JobTrigger::User,
        started_by_id: Some(&actor),
        params: params.clone(),
    };
    queue_audited(state, tx, work, |job_id| {
        let mut details = params;
        details["job_id"] = job_id.into();
        caller.event(&v.tenant_id, action, "vault", Some(&v.id), details)
    })
    .await
}

pub(crate) use crate::jobs::queued;
