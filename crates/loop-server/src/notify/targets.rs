//! Notification targets made, changed, deleted and tried: the API and the console both call
//! these. Each change is audited; a webhook target's signing secret is in the answer that
//! makes it, once, and its URL's path and query are masked wherever it is shown.

use loop_api::{
    CreateTarget, CreatedTarget, Delivery, EmailSettings, EventKind, NotifyTarget, Severity,
    SummaryPeriod, TargetId, TargetKind, UpdateTarget, WebhookSettings,
};
use loop_repo::crypto::Key;

use super::{secret_context, webhook};
use crate::auth::Caller;
use crate::db::notify::{self as db_notify, NewEvent, TargetRow};
use crate::db::{self, Tx, tenants};
use crate::domain::{EmailAddress, Permission, new_id, parse_name};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Recipients of one e-mail target at most.
const MAX_RECIPIENTS: usize = 20;

/// The target `id`, when the caller may `perm` on its tenant (else 404 or 403).
pub async fn scoped(
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

/// Checks that the caller may read the delivery log of target `id`, also once it was
/// deleted (its log stays until trimmed); another tenant's is as absent as none.
pub async fn scoped_log(state: &AppState, caller: &Caller, id: &TargetId) -> ApiResult<()> {
    caller.user()?;
    let tenant = db_notify::target_tenant(&state.db.pool, id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::NotifyRead, &tenant)
        .await?;
    Ok(())
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
pub fn shown(mut t: NotifyTarget) -> NotifyTarget {
    if let Some(w) = &mut t.webhook {
        w.url = masked(&w.url);
    }
    t
}

/// What the audit log records of a target: never its secret, nor its URL's path. Recipients' addresses are personal data and the
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

/// Commits `tx` with the audit event `action` of target `t`.
async fn commit(
    tx: Tx,
    caller: &Caller,
    action: &'static str,
    t: &NotifyTarget,
    now: i64,
) -> ApiResult<()> {
    let event = caller.event(
        &t.tenant_id,
        action,
        "notify_target",
        Some(&t.id),
        details(t),
    );
    Ok(db::audit::commit_audited(tx, event, now).await?)
}

async fn next_summary(state: &AppState, t: &NotifyTarget, now: i64) -> ApiResult<Option<i64>> {
    let tz = tenants::tenant_by_id(&state.db.pool, &t.tenant_id)
        .await?
        .map_or_else(|| "UTC".to_string(), |t| t.tenant.time_zone);
    Ok(crate::notify::next_summary(t.summary, &tz, now))
}

/// Targets one tenant may have: each event is delivered to every target that hears it, and a
/// tenant's deliveries share the senders with every other tenant's.
pub const MAX_TARGETS: u64 = 20;

/// Makes the target `req` describes in its tenant (notify-write there).
pub async fn create(
    state: &AppState,
    caller: &Caller,
    req: CreateTarget,
) -> ApiResult<CreatedTarget> {
    let tenant = caller
        .tenant(state, Permission::NotifyWrite, req.tenant_id.as_str())
        .await?;
    let name = parse_name("target name", &req.name)?;
    let (kind, email, webhook) = match (&req.email, &req.webhook) {
        (Some(e), None) => (TargetKind::Email, Some(check_email(e)?), None),
        (None, Some(w)) => {
            check_webhook(state, w)?;
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
    if db_notify::targets_of_tenant(&mut tx, &row.target.tenant_id).await? >= MAX_TARGETS {
        return Err(ApiError::conflict(
            "too_many_targets",
            format!("a tenant has at most {MAX_TARGETS} notification targets"),
        ));
    }
    db_notify::insert_target(&mut tx, &row, now).await?;
    let t = row.target;
    commit(tx, caller, "notify_target.create", &t, now).await?;
    Ok(CreatedTarget {
        target: t,
        webhook_secret: secret.map(|k| format!("lwh_{}", hex::encode(k.expose()))),
    })
}

/// Changes target `id` (notify-write on its tenant): what `req` gives replaces what was.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    id: &TargetId,
    req: UpdateTarget,
) -> ApiResult<NotifyTarget> {
    let mut row = scoped(state, caller, Permission::NotifyWrite, id).await?;
    let now = state.now();
    let t = &mut row.target;
    if let Some(n) = &req.name {
        t.name = parse_name("target name", n)?;
    }
    match (t.kind, &req.email, &req.webhook) {
        (_, None, None) => {}
        (TargetKind::Email, Some(e), None) => t.email = Some(check_email(e)?),
        (TargetKind::Webhook, None, Some(w)) => {
            check_webhook(state, w)?;
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
        row.summary_next_at = next_summary(state, &row.target, now).await?;
    }
    row.target.updated_at = db::time(now);
    let mut tx = state.db.begin().await?;
    db_notify::update_target(&mut tx, &row, now).await?;
    let t = row.target;
    commit(tx, caller, "notify_target.update", &t, now).await?;
    Ok(shown(t))
}

/// Deletes target `id` (notify-write on its tenant).
pub async fn delete(state: &AppState, caller: &Caller, id: &TargetId) -> ApiResult<()> {
    let row = scoped(state, caller, Permission::NotifyWrite, id).await?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    db_notify::delete_target(&mut tx, &row.target.id, now).await?;
    commit(tx, caller, "notify_target.delete", &row.target, now).await?;
    Ok(())
}

/// Raises a test event for target `id` only (notify-write on its tenant) and wakes the
/// sender: the answer is the queued delivery.
/// Test sends a target takes within the sign-in window, and a tenant's targets together: a
/// target's addresses are anyone's, so the test must not make the server a mail cannon.
const TESTS_PER_TARGET: i64 = 5;
const TESTS_PER_TENANT: i64 = 20;

pub async fn test(state: &AppState, caller: &Caller, id: &TargetId) -> ApiResult<Delivery> {
    let row = scoped(state, caller, Permission::NotifyWrite, id).await?;
    let t = &row.target;
    let now = state.now();
    let keys = (
        format!("notify-test:{}", t.id),
        format!("notify-test-tenant:{}", t.tenant_id),
    );
    let limits = (TESTS_PER_TARGET, TESTS_PER_TENANT);
    if let crate::db::throttle::Begun::Throttled { wait_ms, .. } = (state.throttle)
        .count(&state.db, (&keys.0, &keys.1), limits, now)
        .await?
    {
        return Err(ApiError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many test notifications; try again later",
        )
        .retry_after((wait_ms.max(0) as u64).div_ceil(1000).max(1)));
    }
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
    db::audit::commit_audited(
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
    Ok(delivery)
}
