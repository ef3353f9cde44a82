//! The audit log: query and export.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use loop_api::{AuditEvent, AuditHead, TenantId};
use serde::Deserialize;

use super::Query;
use super::pages::{Listing, page};
use crate::auth::Caller;
use crate::db::audit::{self, Filter};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::OriginalUri;
use loop_api::PageQuery;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this tenant (default: every tenant the caller may audit).
    pub tenant_id: Option<TenantId>,
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub object_id: Option<String>,
    /// RFC 3339; events at or after.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339; events before.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// Events after this sequence number: a cursor within one tenant, so refused when the
    /// query covers several (give `tenant_id`).
    pub after_seq: Option<i64>,
    /// At most this many events (default 1000, at most 10000).
    pub limit: Option<i64>,
    /// Export format: jsonl (default) or csv.
    pub format: Option<String>,
}

/// The query of [`audit_heads`]: the heads do not filter by anything but tenant.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeadsQuery {
    /// Only this tenant (default: every tenant the caller may audit).
    pub tenant_id: Option<TenantId>,
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

/// A sequence number counts within one tenant's chain: `after_seq` over several tenants
/// would skip some of their events and repeat others, so it is refused there.
fn one_tenant_for_a_cursor(q: &AuditQuery, tenant_ids: &[String]) -> ApiResult<()> {
    if q.after_seq.is_some() && tenant_ids.len() > 1 {
        return Err(ApiError::bad_request(
            "after_seq is a cursor within one tenant: give tenant_id with it",
        ));
    }
    Ok(())
}

async fn fetch(
    state: &AppState,
    caller: &Caller,
    q: &AuditQuery,
    max: i64,
) -> ApiResult<Vec<AuditEvent>> {
    let tenant_ids = caller
        .tenant_ids(state, Permission::AuditRead, q.tenant_id.as_ref())
        .await?;
    one_tenant_for_a_cursor(q, &tenant_ids)?;
    let f = Filter {
        tenant_ids,
        action: q.action.clone(),
        actor_id: q.actor_id.clone(),
        object_id: q.object_id.clone(),
        since_ms: parse_time("since", &q.since)?,
        until_ms: parse_time("until", &q.until)?,
        after_seq: q.after_seq,
        limit: q.limit.unwrap_or(max.min(1000)).clamp(1, max),
        ..Filter::default()
    };
    Ok(audit::query(&state.db.pool, &f).await?)
}

/// Query audit events
///
/// Ordered by tenant and sequence.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Success", body = Vec<AuditEvent>)))]
pub async fn query_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<Vec<AuditEvent>>> {
    Ok(axum::Json(fetch(&state, &caller, &q, 10_000).await?))
}

/// One field of a CSV row. A field a spreadsheet would take for a formula (starting with
/// `=`, `+`, `-`, `@`, a tab or a carriage return; a user agent or a name can) gets a `'`
/// before it, so it shows as text; the JSON Lines export holds the exact bytes.
fn csv_field(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        return format!("\"'{}\"", s.replace('"', "\"\""));
    }
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The hashed fields first, then the personal ones (outside the hash from version 2 on),
/// then the links; a JSON Lines export holds the same fields.
const CSV_HEADER: &str = "tenant_id,seq,version,at,actor_kind,actor_id,action,object_kind,object_id,outcome,details,ip,user_agent,personal_salt,personal_hash,prev_hash,hash\n";

fn csv_line(e: &AuditEvent) -> String {
    let row = [
        e.tenant_id.clone(),
        e.seq.to_string(),
        e.version.to_string(),
        e.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        e.actor_kind.to_string(),
        e.actor_id.clone().unwrap_or_default(),
        e.action.clone(),
        e.object_kind.clone(),
        e.object_id.clone().unwrap_or_default(),
        e.outcome.to_string(),
        e.details.to_string(),
        e.ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.personal_salt.clone().unwrap_or_default(),
        e.personal_hash.clone(),
        e.prev_hash.clone(),
        e.hash.clone(),
    ];
    let mut line = row
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// Events per database round trip of an export.
const EXPORT_PAGE: i64 = 2000;

/// Where an export stream stands: which tenant, after which sequence number.
struct ExportCursor {
    state: AppState,
    filter: Filter,
    tenants: Vec<String>,
    tenant: usize,
    after_seq: i64,
    remaining: i64,
    csv: bool,
    header_sent: bool,
}

impl ExportCursor {
    /// The next chunk of the export, or `None` at the end. Pages through one tenant at a
    /// time by sequence number, so memory stays bounded whatever the log's length.
    async fn next_chunk(&mut self) -> Option<Result<bytes::Bytes, std::io::Error>> {
        if self.csv && !self.header_sent {
            self.header_sent = true;
            return Some(Ok(bytes::Bytes::from_static(CSV_HEADER.as_bytes())));
        }
        while self.tenant < self.tenants.len() && self.remaining > 0 {
            let mut f = self.filter.clone();
            f.tenant_ids = vec![self.tenants[self.tenant].clone()];
            f.after_seq = Some(self.after_seq);
            f.limit = EXPORT_PAGE.min(self.remaining);
            let page = match audit::query(&self.state.db.pool, &f).await {
                Ok(p) => p,
                Err(e) => {
                    // The status line is already sent: end the body with an error, which
                    // the client sees as a broken transfer rather than a short log.
                    tracing::error!(error = %e, "audit export");
                    return Some(Err(std::io::Error::other("audit export failed")));
                }
            };
            if (page.len() as i64) < f.limit {
                self.tenant += 1;
                self.after_seq = 0;
            } else if let Some(last) = page.last() {
                self.after_seq = last.seq as i64;
            }
            if page.is_empty() {
                continue;
            }
            self.remaining -= page.len() as i64;
            let mut out = String::new();
            for e in &page {
                if self.csv {
                    out.push_str(&csv_line(e));
                } else {
                    match serde_json::to_string(e) {
                        Ok(line) => out.push_str(&line),
                        Err(e) => return Some(Err(std::io::Error::other(e))),
                    }
                    out.push('\n');
                }
            }
            return Some(Ok(bytes::Bytes::from(out)));
        }
        None
    }
}

/// Export audit events
///
/// As JSON Lines (one event per line, verifiable with `loop admin audit verify --file`) or CSV.
/// Without `limit`, every matching event; streamed.
#[utoipa::path(get, path = "/api/v1/audit/export", tag = "audit", params(AuditQuery),
    responses((status = 200, description = "Success: JSON Lines, or CSV with `format=csv`",
        content((String = "application/x-ndjson"), (String = "text/csv")))))]
pub async fn export_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Response> {
    let csv = match q.format.as_deref().unwrap_or("jsonl") {
        "jsonl" => false,
        "csv" => true,
        _ => return Err(ApiError::bad_request("format is jsonl or csv")),
    };
    let mut tenants = caller
        .tenant_ids(&state, Permission::AuditRead, q.tenant_id.as_ref())
        .await?;
    one_tenant_for_a_cursor(&q, &tenants)?;
    // The same order as the query endpoint: by tenant ID, then sequence.
    tenants.sort();
    let filter = Filter {
        tenant_ids: Vec::new(),
        action: q.action.clone(),
        actor_id: q.actor_id.clone(),
        object_id: q.object_id.clone(),
        since_ms: parse_time("since", &q.since)?,
        until_ms: parse_time("until", &q.until)?,
        limit: 0,
        ..Filter::default()
    };
    let cursor = ExportCursor {
        state,
        filter,
        tenants,
        tenant: 0,
        after_seq: q.after_seq.unwrap_or(0).max(0),
        remaining: q.limit.unwrap_or(i64::MAX).max(0),
        csv,
        header_sent: false,
    };
    let stream = futures_util::stream::unfold(cursor, |mut c| async move {
        c.next_chunk().await.map(|chunk| (chunk, c))
    });
    let mut r = axum::body::Body::from_stream(stream).into_response();
    let ctype = if csv {
        "text/csv"
    } else {
        "application/x-ndjson"
    };
    let name = if csv {
        "attachment; filename=\"loop-audit.csv\""
    } else {
        "attachment; filename=\"loop-audit.jsonl\""
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static(name));
    Ok(r)
}

/// Audit chain heads
///
/// The head of each visible tenant's chain: its last sequence number and hash. A verifier
/// compares an export's last event with it, which catches a log cut short at its end.
#[utoipa::path(get, path = "/api/v1/audit/heads", tag = "audit", params(HeadsQuery, PageQuery),
    responses((status = 200, description = "Success", body = Vec<AuditHead>)))]
pub async fn audit_heads(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<HeadsQuery>,
    Query(p): Query<PageQuery>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Listing<AuditHead>> {
    let scope = caller
        .scope(&state, Permission::AuditRead, q.tenant_id.as_ref())
        .await?;
    let page = audit::heads(&state.db.pool, &scope, &page(&p)?).await?;
    Ok(Listing::new(uri, page))
}
