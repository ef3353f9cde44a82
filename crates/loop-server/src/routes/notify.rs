//! Notification targets, their delivery log, and the events of a tenant.

use axum::extract::OriginalUri;
use axum::extract::State;
use axum::http::StatusCode;
use loop_api::{
    CreateTarget, CreatedTarget, Delivery, EmailSettings, Event, EventKind, NotifyTarget, Severity,
    SummaryPeriod, TargetId, TargetKind, TenantId, UpdateTarget, WebhookSettings,
};
use loop_repo::crypto::Key;
use serde::Deserialize;

use super::pages::{Listing, page};
use super::tenants::TenantFilter;
use super::{Json, Path, Query, commit_audited};
use crate::auth::Caller;
use crate::db::notify::{self as db_notify, NewEvent, TargetRow};
use crate::db::{self, tenants};
use crate::domain::{EmailAddress, Permission, new_id, parse_name};
use crate::error::{ApiError, ApiResult};
use crate::notify::{secret_context, webhook};
use crate::state::AppState;
use loop_api::PageQuery;

/// Recipients of one e-mail target at most.
const MAX_RECIPIENTS: usize = 20;

/// The target `id`, when the caller may `perm` on its tenant (else 404 or 403).
async fn scoped_target(
    state: &AppState,
    caller: &Caller,
    perm: Permission,
    id: &TargetId,
) -> ApiResult<TargetRow> {
    caller.user()?;
    let t = db_notify::target_by_id(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller.tenant(state, perm, &t.target.tenant_id).await?;
    Ok(t)
}

fn check_email(e: &EmailSettings) -> ApiResult<EmailSettings> {
    if e.recipients.is_empty() || e.recipients.len() > MAX_RECIPIENTS {
        return Err(ApiError::bad_request(format!(
            "an e-mail target has 1 to {MAX_RECIPIENTS} recipients"
        )));
    }
    let recipients = e
        .recipients
        .iter()
        .map(|r| {
            EmailAddress::parse(r)
                .map(|a| a.as_str().to_string())
                .map_err(|_| ApiError::bad_request(format!("{r:?} is not an e-mail address")))
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(EmailSettings {
        recipients,
        language: e.language,
    })
}

fn check_webhook(state: &AppState, w: &WebhookSettings) -> ApiResult<()> {
    webhook::check_url(&w.url, state.config.notify.allow_private_webhooks)
        .map_err(ApiError::bad_request)
}

/// A webhook URL as it is shown after its creation: scheme, host and port, with the path
/// and query (where services such as chat webhooks put their secret) masked.
fn masked(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = u.path().len() > 1 || u.query().is_some();
            format!(
                "{}://{}{port}/{}",
                u.scheme(),
                u.host_str().unwrap_or_default(),
                if rest { "…" } else { "" }
            )
        }
        Err(_) => "…".into(),
    }
}

/// A target as the API shows it: its webhook URL masked.
fn shown(mut t: NotifyTarget) -> NotifyTarget {
    if let Some(w) = &mut t.webhook {
        w.url = masked(&w.url);
    }
    t
}

/// What the audit log records of a target (never its secret, nor its URL's path).
/// A target as its audit event records it. Recipients' addresses are personal data and the
/// hashed part of an event cannot be erased, so only their number is recorded.
fn details(t: &NotifyTarget) -> serde_json::Value {
    let t = shown(t.clone());
    let email = t
        .email
        .as_ref()
        .map(|e| serde_json::json!({ "recipients": e.recipients.len(), "language": e.language }));
    serde_json::json!({
        "name": t.name, "kind": t.kind, "enabled": t.enabled, "min_severity": t.min_severity,
        "kinds": t.kinds, "include_children": t.include_children, "summary": t.summary,
        "email": email, "webhook": t.webhook,
    })
}

async fn next_summary(state: &AppState, t: &NotifyTarget, now: i64) -> ApiResult<Option<i64>> {
    let tz = tenants::tenant_by_id(&state.db.pool, &t.tenant_id)
        .await?
        .map_or_else(|| "UTC".to_string(), |t| t.tenant.time_zone);
    Ok(crate::notify::next_summary(t.summary, &tz, now))
}

/// List notification targets
#[utoipa::path(get, path = "/api/v1/notify/targets", tag = "notifications", params(TenantFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<NotifyTarget>)))]
pub async fn list_targets(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<TenantFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<NotifyTarget>> {
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::targets_in(&state.db.pool, &scope, Some(&page(&p)?))
        .await?
        .map(|t| Ok(shown(t)))?;
    Ok(Listing::new(uri, page))
}

/// Create a notification target
///
/// An e-mail list (`email`) or a webhook (`webhook`). It hears the tenant's events and,
/// with `include_children` (the default), those of every tenant below it, when at least
/// `min_severity` (default `warning`) and of one of `kinds` (empty: every kind). A webhook
/// target's signing secret is in the answer, once.
#[utoipa::path(post, path = "/api/v1/notify/targets", tag = "notifications", request_body = CreateTarget,
    responses((status = 201, description = "Created", body = CreatedTarget),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn create_target(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<CreateTarget>,
) -> ApiResult<(StatusCode, axum::Json<CreatedTarget>)> {
    let tenant = caller
        .tenant(&state, Permission::NotifyWrite, req.tenant_id.as_str())
        .await?;
    let name = parse_name("target name", &req.name)?;
    let (kind, email, webhook) = match (&req.email, &req.webhook) {
        (Some(e), None) => (TargetKind::Email, Some(check_email(e)?), None),
        (None, Some(w)) => {
            check_webhook(&state, w)?;
            (TargetKind::Webhook, None, Some(w.clone()))
        }
        _ => {
            return Err(ApiError::bad_request(
                "give either email or webhook settings",
            ));
        }
    };
    let now = state.now();
    let target = NotifyTarget {
        id: new_id(TargetId::PREFIX),
        tenant_id: tenant.tenant.id.clone(),
        name,
        kind,
        enabled: true,
        min_severity: req.min_severity.unwrap_or(Severity::Warning),
        kinds: req.kinds,
        include_children: req.include_children.unwrap_or(true),
        summary: req.summary.unwrap_or(SummaryPeriod::Off),
        email,
        webhook,
        created_at: db::time(now),
        updated_at: db::time(now),
    };
    let secret = (kind == TargetKind::Webhook).then(Key::generate);
    let row = TargetRow {
        secret_wrapped: secret
            .as_ref()
            .map(|k| state.master.wrap(&secret_context(&target.id), k)),
        summary_next_at: crate::notify::next_summary(target.summary, &tenant.tenant.time_zone, now),
        target,
    };
    let mut tx = state.db.begin().await?;
    db_notify::insert_target(&mut tx, &row, now).await?;
    let t = row.target;
    commit_audited(
        tx,
        caller.event(
            &t.tenant_id,
            "notify_target.create",
            "notify_target",
            Some(&t.id),
            details(&t),
        ),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedTarget {
            target: t,
            webhook_secret: secret.map(|k| format!("lwh_{}", hex::encode(k.expose()))),
        }),
    ))
}

/// Show a notification target
#[utoipa::path(get, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 200, description = "Success", body = NotifyTarget)))]
pub async fn get_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<axum::Json<NotifyTarget>> {
    let t = scoped_target(&state, &caller, Permission::NotifyRead, &id).await?;
    Ok(axum::Json(shown(t.target)))
}

/// Change a notification target
///
/// What is given replaces what was. Its kind stays: give `email` to an e-mail target and
/// `webhook` to a webhook target.
#[utoipa::path(patch, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    request_body = UpdateTarget,
    responses((status = 200, description = "Success", body = NotifyTarget),
        (status = 400, description = "Invalid request (problem+json)", body = loop_api::Problem)))]
pub async fn update_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
    Json(req): Json<UpdateTarget>,
) -> ApiResult<axum::Json<NotifyTarget>> {
    let mut row = scoped_target(&state, &caller, Permission::NotifyWrite, &id).await?;
    let now = state.now();
    let t = &mut row.target;
    if let Some(n) = &req.name {
        t.name = parse_name("target name", n)?;
    }
    match (t.kind, &req.email, &req.webhook) {
        (_, None, None) => {}
        (TargetKind::Email, Some(e), None) => t.email = Some(check_email(e)?),
        (TargetKind::Webhook, None, Some(w)) => {
            check_webhook(&state, w)?;
            t.webhook = Some(w.clone());
        }
        _ => {
            return Err(ApiError::bad_request(
                "a target keeps its kind: give the settings of its kind",
            ));
        }
    }
    t.enabled = req.enabled.unwrap_or(t.enabled);
    t.min_severity = req.min_severity.unwrap_or(t.min_severity);
    t.include_children = req.include_children.unwrap_or(t.include_children);
    if let Some(k) = req.kinds {
        t.kinds = k;
    }
    if let Some(s) = req.summary
        && s != t.summary
    {
        t.summary = s;
        row.summary_next_at = next_summary(&state, &row.target, now).await?;
    }
    row.target.updated_at = db::time(now);
    let mut tx = state.db.begin().await?;
    db_notify::update_target(&mut tx, &row, now).await?;
    let t = row.target;
    commit_audited(
        tx,
        caller.event(
            &t.tenant_id,
            "notify_target.update",
            "notify_target",
            Some(&t.id),
            details(&t),
        ),
        now,
    )
    .await?;
    Ok(axum::Json(shown(t)))
}

/// Delete a notification target
///
/// What was still queued for it ends as failed; its delivery log stays readable until it
/// is trimmed (`notify.keep_days`).
#[utoipa::path(delete, path = "/api/v1/notify/targets/{id}", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<StatusCode> {
    let row = scoped_target(&state, &caller, Permission::NotifyWrite, &id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db_notify::delete_target(&mut tx, &row.target.id, now).await?;
    commit_audited(
        tx,
        caller.event(
            &row.target.tenant_id,
            "notify_target.delete",
            "notify_target",
            Some(&row.target.id),
            details(&row.target),
        ),
        now,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test notification
///
/// Raises a `test` event addressed to this target only and queues its delivery; the
/// answer is the delivery, to follow in the delivery log.
#[utoipa::path(post, path = "/api/v1/notify/targets/{id}/test", tag = "notifications", params(("id" = TargetId, Path)),
    responses((status = 202, description = "The queued delivery", body = Delivery)))]
pub async fn test_target(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<TargetId>,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    let row = scoped_target(&state, &caller, Permission::NotifyWrite, &id).await?;
    let t = &row.target;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let event = db_notify::raise(
        &mut tx,
        NewEvent {
            tenant_id: &t.tenant_id,
            kind: EventKind::Test,
            subject: Some(("notify_target", &t.id)),
            message: format!("a test of target {}", t.name),
            details: serde_json::json!({ "target_id": t.id, "target_name": t.name }),
            dedupe_key: None,
        },
        Some(&t.id),
        now,
    )
    .await?
    .ok_or_else(|| ApiError::Internal("a test event without dedupe key was refused".into()))?;
    commit_audited(
        tx,
        caller.event(
            &t.tenant_id,
            "notify_target.test",
            "notify_target",
            Some(&t.id),
            serde_json::json!({ "event_id": event }),
        ),
        now,
    )
    .await?;
    state.notify_wake.notify_one();
    let delivery = db_notify::delivery_of(&state.db.pool, &event, &t.id)
        .await?
        .ok_or_else(|| ApiError::Internal("a test delivery vanished".into()))?;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery)))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only this tenant's targets (default: every tenant the caller can see).
    pub tenant_id: Option<TenantId>,
    /// Only this target.
    pub target_id: Option<TargetId>,
}

/// The delivery log
///
/// Each event on its way to each target, newest first: its state, tries, the last error
/// and the receiver's last HTTP status.
#[utoipa::path(get, path = "/api/v1/notify/deliveries", tag = "notifications", params(DeliveryFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Delivery>)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<DeliveryFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Delivery>> {
    if let Some(t) = &f.target_id {
        // Another tenant's target is as absent as one that does not exist.
        scoped_target(&state, &caller, Permission::NotifyRead, t).await?;
    }
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::deliveries_in(
        &state.db.pool,
        &scope,
        f.target_id.as_ref().map(TargetId::as_str),
        &page(&p)?,
    )
    .await?;
    Ok(Listing::new(uri, page))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only this tenant (default: every tenant the caller can see).
    pub tenant_id: Option<TenantId>,
    pub kind: Option<EventKind>,
}

/// List events
///
/// What the service raised for the tenants the caller can see, newest first.
#[utoipa::path(get, path = "/api/v1/events", tag = "notifications", params(EventFilter, PageQuery),
    responses((status = 200, description = "Success", body = Vec<Event>)))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<EventFilter>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<Event>> {
    let scope = caller
        .scope(&state, Permission::NotifyRead, f.tenant_id.as_ref())
        .await?;
    let page = db_notify::events_in(&state.db.pool, &scope, f.kind, &page(&p)?).await?;
    Ok(Listing::new(uri, page))
}
