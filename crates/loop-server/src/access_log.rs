//! The access log: one line per request at info level.
//!
//! It names the route template (`/api/v1/tenants/{tenant}`), never the request's own path
//! or query, and no header: IDs, query values, tokens and cookies stay out of the log. The
//! caller's tenant is added by the authentication step once it is known ([`note_tenant`]).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// Middleware: logs method, route, status, the caller's tenant and the time until the
/// answer started, inside a `request` span that other log lines of the request share.
pub(crate) async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("(no route)", |p| p.as_str())
        .to_string();
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route = %route,
        tenant = tracing::field::Empty,
    );
    let start = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        tracing::info!(status = response.status().as_u16(), ms, "answered");
    });
    response
}

/// Adds the caller's tenant to the current request's log lines.
pub(crate) fn note_tenant(tenant_id: &str) {
    tracing::Span::current().record("tenant", tracing::field::display(tenant_id));
}
