//! `/metrics`: the service in Prometheus's text format, for a scraper on an allowed address
//! or with the metrics token (`metrics.allow_from`, `metrics.token`); anyone else gets 404.
//!
//! What the database knows (last successful backups, job counts, vault sizes, devices
//! online) is read at each scrape, so every node answers the same; what one process sees
//! (HTTP requests, job durations it recorded) is counted in memory, per node, as Prometheus
//! expects of a target. Names follow Prometheus's conventions: base units, `_total` for
//! counters.

use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder as _, Gauge, GaugeVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::db::metrics as q;
use crate::error::ApiError;
use crate::state::AppState;

pub mod counters;

pub use counters::Metrics;

/// A device heard from within this long counts as online.
pub(crate) const ONLINE_MS: i64 = 5 * 60 * 1000;

/// Counts every request by its route template (never the raw path, which holds IDs).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    // Any token is a method to HTTP: those the API has are labels, every other is one label,
    // so a client cannot grow the series without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "other",
    }
    .to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.http_requests
        .with_label_values(&[route.as_str(), method.as_str(), resp.status().as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[route.as_str()])
        .observe(start.elapsed().as_secs_f64());
    resp
}

fn allowed(state: &AppState, peer: std::net::IpAddr, headers: &HeaderMap) -> bool {
    let cfg = &state.config.metrics;
    if cfg.allow_from.iter().any(|a| match (a, peer) {
        (a, p) if *a == p => true,
        (std::net::IpAddr::V4(a), std::net::IpAddr::V6(p)) => p.to_ipv4_mapped() == Some(*a),
        _ => false,
    }) {
        return true;
    }
    let Some(token) = &cfg.token else {
        return false;
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compared as hashes, so the comparison takes the same time wherever they differ.
    presented.is_some_and(|p| {
        crate::domain::secret_hash(p) == crate::domain::secret_hash(token.expose())
    })
}

/// The metrics of the service, for allowed scrapers.
pub async fn scrape(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !allowed(&state, peer.ip(), &headers) {
        return Err(ApiError::not_found());
    }
    let from_db = database_metrics(&state).await?;
    let mut families = state.metrics.registry.gather();
    families.extend(from_db.gather());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    let encoder = TextEncoder::new();
    let mut out = Vec::new();
    encoder
        .encode(&families, &mut out)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, encoder.format_type().to_string())],
        out,
    )
        .into_response())
}

/// A registry of what the database and the destinations say now.
async fn database_metrics(state: &AppState) -> Result<Registry, ApiError> {
    let pool = &state.db.pool;
    let r = Registry::new();
    let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
        let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
        r.register(Box::new(g.clone()))
            .expect("unique metric names");
        g
    };
    let started = Instant::now();
    let backups = q::last_backups(pool).await?;
    let db_seconds = started.elapsed().as_secs_f64();
    let last = gauge_vec(
        "loop_backup_last_success_timestamp_seconds",
        "When the last successful backup of a protected item ended (Unix time).",
        &["tenant", "device", "item"],
    );
    for (tenant, device, item, at) in backups {
        last.with_label_values(&[tenant.as_str(), device.as_str(), item.as_str()])
            .set(at as f64 / 1000.0);
    }
    // Ended jobs only ever grow in number (a counter); queued and running ones come and go
    // (a gauge), so a rate over the counter never sees a job move on as a reset.
    let ended = IntCounterVec::new(
        Opts::new(
            "loop_jobs_total",
            "Jobs that ended, by kind and final state.",
        ),
        &["kind", "state"],
    )
    .expect("valid metric");
    r.register(Box::new(ended.clone()))
        .expect("unique metric names");
    let open = gauge_vec(
        "loop_jobs_open",
        "Jobs queued or running now, by kind and state.",
        &["kind", "state"],
    );
    for (kind, st, n) in q::job_counts(pool).await? {
        let labels = [kind.as_str(), st.as_str()];
        let is_open = st
            .parse::<loop_api::JobState>()
            .is_ok_and(|s| !s.is_final());
        if is_open {
            open.with_label_values(&labels).set(n as f64);
        } else {
            ended.with_label_values(&labels).inc_by(n.max(0) as u64);
        }
    }
    let size = gauge_vec(
        "loop_vault_size_bytes",
        "Bytes a vault stores.",
        &["tenant", "vault"],
    );
    let quota = gauge_vec(
        "loop_vault_quota_bytes",
        "A vault's quota (vaults without one are left out).",
        &["tenant", "vault"],
    );
    for (tenant, vault, used, limit) in q::vault_sizes(pool).await? {
        let labels = [tenant.as_str(), vault.as_str()];
        size.with_label_values(&labels).set(used as f64);
        if let Some(l) = limit {
            quota.with_label_values(&labels).set(l as f64);
        }
    }
    let online = gauge_vec(
        "loop_devices_online",
        "Devices heard from in the last five minutes.",
        &["tenant"],
    );
    for (tenant, n) in q::devices_online(pool, state.now() - ONLINE_MS).await? {
        online.with_label_values(&[tenant.as_str()]).set(n as f64);
    }
    let db = Gauge::new(
        "loop_database_query_duration_seconds",
        "How long this scrape's first database query took.",
    )
    .expect("valid metric");
    db.set(db_seconds);
    r.register(Box::new(db)).expect("unique metric names");
    let storage = gauge_vec(
        "loop_destination_probe_duration_seconds",
        "How long a listing of each destination took during this scrape (-1: it failed).",
        &["destination"],
    );
    let all: Vec<_> = state.destinations.all().collect();
    let probed = futures_util::future::join_all(all.iter().map(|d| async {
        let t = Instant::now();
        d.probe().await.map(|()| t.elapsed().as_secs_f64())
    }))
    .await;
    for (d, secs) in all.iter().zip(probed) {
        storage
            .with_label_values(&[d.name.as_str()])
            .set(secs.unwrap_or(-1.0));
    }
    Ok(r)
}
