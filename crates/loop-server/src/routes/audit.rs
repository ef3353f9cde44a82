//! The audit log: query and export.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use loop_api::AuditEvent;
use serde::Deserialize;

use super::Query;
use crate::auth::Caller;
use crate::db::audit::{self, Filter};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
pub struct AuditQuery {
    /// Only this tenant (default: every tenant the caller may audit).
    pub tenant_id: Option<String>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub object_id: Option<String>,
    /// RFC 3339; events at or after.
    pub since: Option<String>,
    /// RFC 3339; events before.
    pub until: Option<String>,
    /// Events after this sequence number (a cursor within one tenant).
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000, at most 10000).
    pub limit: Option<i64>,
    /// Export format: jsonl (default) or csv.
    pub format: Option<String>,
}

fn parse_time(what: &str, s: &Option<String>) -> ApiResult<Option<i64>> {
    s.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.timestamp_millis())
                .map_err(|_| ApiError::bad_request(format!("{what} must be RFC 3339")))
        })
        .transpose()
}

async fn fetch(
    state: &AppState,
    caller: &Caller,
    q: &AuditQuery,
    max: i64,
) -> ApiResult<Vec<AuditEvent>> {
    let tenant_ids = caller
        .tenant_ids(state, Permission::AuditRead, q.tenant_id.as_deref())
        .await?;
    let f = Filter {
        tenant_ids,
        action: q.action.clone(),
        actor_id: q.actor_id.clone(),
        object_id: q.object_id.clone(),
        since_ms: parse_time("since", &q.since)?,
        until_ms: parse_time("until", &q.until)?,
        after_seq: q.after_seq,
        limit: q.limit.unwrap_or(max.min(1000)).clamp(1, max),
    };
    Ok(audit::query(&state.db.pool, &f).await?)
}

/// Query audit events, ordered by tenant and sequence.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEvent>)))]
pub async fn query_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEvent>>> {
    Ok(axum::Json(fetch(&state, &caller, &q, 10_000).await?))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Export audit events as JSON Lines (one event per line, verifiable with `loop admin audit
/// verify --file`) or CSV.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String)))]
pub async fn export_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let events = fetch(&state, &caller, &q, 1_000_000).await?;
    let (body, ctype) = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => {
            let mut out = String::new();
            for e in &events {
                out.push_str(
                    &serde_json::to_string(e).map_err(|e| ApiError::Internal(e.to_string()))?,
                );
                out.push('\n');
            }
            (out, "application/x-ndjson")
        }
        "csv" => {
            let mut out = String::from(
                "tenant_id,seq,at,actor_kind,actor_id,action,object_kind,object_id,outcome,ip,details,prev_hash,hash\n",
            );
            for e in &events {
                let row = [
                    e.tenant_id.clone(),
                    e.seq.to_string(),
                    e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    e.actor_kind.clone(),
                    e.actor_id.clone().unwrap_or_default(),
                    e.action.clone(),
                    e.object_kind.clone(),
                    e.object_id.clone().unwrap_or_default(),
                    e.outcome.clone(),
                    e.ip.clone().unwrap_or_default(),
                    e.details.to_string(),
                    e.prev_hash.clone(),
                    e.hash.clone(),
                ];
                let line: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
                out.push_str(&line.join(","));
                out.push('\n');
            }
            (out, "text/csv")
        }
        _ => return Err(ApiError::bad_request("format is jsonl or csv")),
    };
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    Ok(r)
}
