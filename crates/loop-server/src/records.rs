//! A controller's records: data-subject requests (recorded by a customer's admin for a
//! person, due one month after they were received, closed with the action taken), the
//! provider's sub-processor register (each change notified to the controllers' admins,
//! GDPR Art. 28), and the records of processing for a tenant (`loop privacy report`,
//! GDPR Art. 30).

use chrono::Months;
use loop_api::{
    CloseSubjectRequest, CreateSubjectRequest, CreateSubprocessor, DataCategory, PrivacyReport,
    RetentionRule, SubjectRequest, SubjectRequestState, Subprocessor,
};

use crate::auth::Caller;
use crate::db::page::Page;
use crate::db::{self, subject_requests, subprocessors, users};
use crate::domain::{Permission, new_id};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

const MAX_DETAILS: usize = 2000;

/// `v` trimmed, when it has `min` to `max` characters and no control character but line
/// breaks; else a clear refusal naming `what`.
pub fn text(what: &str, v: &str, min: usize, max: usize) -> ApiResult<String> {
    let v = v.trim();
    let n = v.chars().count();
    if n < min || n > max || v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::bad_request(format!(
            "{what} must be {min} to {max} characters, without control characters"
        )));
    }
    Ok(v.to_string())
}

/// Records a data-subject request for a user of a tenant the caller administers.
pub async fn create_request(
    state: &AppState,
    caller: &Caller,
    req: CreateSubjectRequest,
) -> ApiResult<SubjectRequest> {
    caller.user()?;
    let person = users::user_by_id(&state.db.pool, req.user_id.as_str())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::UserWrite, &person.user.tenant_id)
        .await?;
    let details = text("details", &req.details, 0, MAX_DETAILS)?;
    let now = state.now();
    let received = db::time(now);
    let r = SubjectRequest {
        id: new_id("dr"),
        tenant_id: person.user.tenant_id.clone(),
        user_id: person.user.id.clone(),
        kind: req.kind,
        details,
        state: SubjectRequestState::Open,
        received_at: received,
        // One month, as GDPR Art. 12(3) gives the controller.
        due_at: received
            .checked_add_months(Months::new(1))
            .unwrap_or(received),
        overdue: false,
        closed_at: None,
        outcome: None,
        action: None,
    };
    let (_, by) = caller.actor();
    let mut tx = state.db.begin().await?;
    // What the person asked is theirs: not recorded once they are erased.
    if !users::hold_unerased(&mut tx, &r.user_id, &crate::person::pseudonym(&r.user_id)).await? {
        return Err(ApiError::conflict(
            "user_erased",
            "this person was erased: nothing more is recorded about them",
        ));
    }
    subject_requests::insert(&mut tx, &r, &by).await?;
    let event = caller.event(
        &r.tenant_id,
        "subject_request.create",
        "subject_request",
        Some(&r.id),
        serde_json::json!({ "kind": r.kind, "user_id": r.user_id }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    Ok(r)
}

/// A request of a tenant the caller administers.
pub async fn request(state: &AppState, caller: &Caller, id: &str) -> ApiResult<SubjectRequest> {
    caller.user()?;
    let r = subject_requests::by_id(&state.db.pool, id, state.now())
        .await?
        .ok_or_else(ApiError::not_found)?;
    caller
        .tenant(state, Permission::UserWrite, &r.tenant_id)
        .await?;
    Ok(r)
}

/// The requests of the tenants the caller administers (or of `tenant_id`'s subtree).
pub async fn list_requests(
    state: &AppState,
    caller: &Caller,
    tenant_id: Option<&loop_api::TenantId>,
    filter: Option<SubjectRequestState>,
    page: &Page,
) -> ApiResult<db::page::Paged<SubjectRequest>> {
    let scope = caller
        .scope(state, Permission::UserWrite, tenant_id)
        .await?;
    Ok(subject_requests::list(&state.db.pool, &scope, filter, Some(page), state.now()).await?)
}

/// Closes an open request with the action taken.
pub async fn close_request(
    state: &AppState,
    caller: &Caller,
    id: &str,
    req: CloseSubjectRequest,
) -> ApiResult<SubjectRequest> {
    let r = request(state, caller, id).await?;
    let action = text("action", &req.action, 1, MAX_DETAILS)?;
    let now = state.now();
    let (_, by) = caller.actor();
    let mut tx = state.db.begin().await?;
    if !subject_requests::close(&mut tx, id, req.outcome, &action, &by, now).await? {
        return Err(ApiError::conflict(
            "request_closed",
            "this request was closed already",
        ));
    }
    let event = caller.event(
        &r.tenant_id,
        "subject_request.close",
        "subject_request",
        Some(id),
        serde_json::json!({ "kind": r.kind, "outcome": req.outcome, "overdue": r.overdue }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    request(state, caller, id).await
}

/// Mails the change of the register to the controllers' admins, in the same transaction.
async fn notify_change(
    tx: &mut db::Tx,
    s: &Subprocessor,
    change: &str,
    now: i64,
) -> ApiResult<u64> {
    let params = serde_json::json!({
        "change": change, "name": s.name, "purpose": s.purpose, "location": s.location,
    });
    Ok(subprocessors::queue_notices(tx, &new_id("sc"), &params, now).await?)
}

/// Adds a sub-processor to the register (the provider's admins).
pub async fn add_subprocessor(
    state: &AppState,
    caller: &Caller,
    req: CreateSubprocessor,
) -> ApiResult<Subprocessor> {
    let provider = caller.provider(state, Permission::TenantWrite).await?;
    let now = state.now();
    let s = Subprocessor {
        id: new_id("sp"),
        name: text("name", &req.name, 1, 200)?,
        purpose: text("purpose", &req.purpose, 1, 1000)?,
        location: text("location", &req.location, 1, 200)?,
        added_at: db::time(now),
    };
    let mut tx = state.db.begin().await?;
    subprocessors::insert(&mut tx, &s).await.map_err(|e| {
        if e.is_unique_violation() {
            ApiError::conflict("subprocessor_exists", "a sub-processor has this name")
        } else {
            e.into()
        }
    })?;
    let notified = notify_change(&mut tx, &s, "added", now).await?;
    let event = caller.event(
        &provider.tenant.id,
        "subprocessor.add",
        "subprocessor",
        Some(&s.id),
        serde_json::json!({ "name": s.name, "location": s.location, "notified": notified }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    state.mail_wake.notify_one();
    Ok(s)
}

/// Removes a sub-processor from the register (the provider's admins).
pub async fn remove_subprocessor(state: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    let provider = caller.provider(state, Permission::TenantWrite).await?;
    let s = subprocessors::by_id(&state.db.pool, id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    if !subprocessors::delete(&mut tx, id).await? {
        return Err(ApiError::not_found());
    }
    let notified = notify_change(&mut tx, &s, "removed", now).await?;
    let event = caller.event(
        &provider.tenant.id,
        "subprocessor.remove",
        "subprocessor",
        Some(id),
        serde_json::json!({ "name": s.name, "notified": notified }),
    );
    crate::db::audit::commit_audited(tx, event, now).await?;
    state.mail_wake.notify_one();
    Ok(())
}

/// The records of processing of a tenant and the tenants below it.
pub async fn report(
    state: &AppState,
    caller: &Caller,
    tenant_id: &str,
) -> ApiResult<PrivacyReport> {
    let t = caller
        .tenant(state, Permission::AuditRead, tenant_id)
        .await?;
    let pool = &state.db.pool;
    let categories = db::privacy::personal_data_counts(pool, t.path.as_str())
        .await?
        .into_iter()
        .map(|(category, records)| DataCategory { category, records })
        .collect();
    let c = &state.config;
    let days = |n: u64| format!("{n} days");
    let retention = vec![
        RetentionRule {
            data: "ended sessions' IP addresses, browsers and devices".into(),
            kept: format!(
                "{} after the session ended",
                days(c.session.ended_data_days)
            ),
        },
        RetentionRule {
            data: "audit events' IP addresses and browsers".into(),
            kept: format!(
                "{} (privacy.audit_personal_days)",
                days(c.privacy.audit_personal_days)
            ),
        },
        RetentionRule {
            data: "personal-data archives (download my data)".into(),
            kept: format!("{} after they are ready", days(c.privacy.export_days)),
        },
        RetentionRule {
            data: "records of mail sent to people (kind, when, how it went)".into(),
            kept: format!(
                "{} after it was sent (privacy.mail_days)",
                days(c.privacy.mail_days)
            ),
        },
        RetentionRule {
            data: "unconfirmed sign-ups".into(),
            kept: "7 days".into(),
        },
        RetentionRule {
            data: "a customer's content and data after its subscription ended".into(),
            kept: format!(
                "deleted {} after an unpaid due date or an unconverted trial, at once when \
                 the customer ended it; invoices stay for the books",
                days(u64::from(c.billing.terminate_after_days))
            ),
        },
        RetentionRule {
            data: "users: name, e-mail, address; consents; role bindings".into(),
            kept: "while the account exists; erasing the person removes them".into(),
        },
    ];
    let scope = crate::domain::TenantScope::Subtrees(vec![t.path.clone()]);
    let mut open_requests = subject_requests::list(
        pool,
        &scope,
        Some(SubjectRequestState::Open),
        None,
        state.now(),
    )
    .await?
    .items;
    // What a person asked, in their words, is read only by those who may handle the
    // request (user-write on its tenant, as `GET /api/v1/subject-requests`); anyone else who
    // reads the report (an auditor) sees that it is open, its kind, and when it is due.
    let mut handles = std::collections::HashMap::new();
    for r in &mut open_requests {
        if !handles.contains_key(&r.tenant_id) {
            let path = crate::db::tenants::tenant_by_id(pool, &r.tenant_id)
                .await?
                .map(|t| t.path);
            let may = path.is_some_and(|p| caller.can(Permission::UserWrite, &p));
            handles.insert(r.tenant_id.clone(), may);
        }
        if !handles[&r.tenant_id] {
            r.details.clear();
        }
    }
    Ok(PrivacyReport {
        tenant_id: t.tenant.id.clone(),
        generated_at: db::time(state.now()),
        categories,
        residency: crate::placement::report(state, &t).await?,
        retention,
        subprocessors: subprocessors::list(pool).await?,
        open_requests,
    })
}
