//! Probes for supervisors and load balancers, outside the API and without authentication:
//! `/healthz` answers while the process serves requests; `/readyz` also checks what a
//! request needs (the database and every destination) and answers 503 naming each part
//! that does not answer. Neither says why a part failed (that goes to the server log), and
//! `/readyz` probes at most once per [`READY_CACHE`], however often it is asked.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::destinations::PROBE_TIMEOUT;
use crate::probes::{Check, Readiness};
use crate::state::AppState;

/// How long a readiness answer is reused.
const READY_CACHE: Duration = Duration::from_secs(2);

pub async fn healthz() -> Response {
    axum::Json(serde_json::json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut last = state.readiness.lock().await;
    let answer = match last.as_ref() {
        // An answer from the future is one the wall clock stepped back over: probe again.
        Some((at, r)) if (0..READY_CACHE.as_millis() as i64).contains(&(state.now() - at)) => {
            r.clone()
        }
        _ => {
            let r = probe(&state).await;
            *last = Some((state.now(), r.clone()));
            r
        }
    };
    drop(last);
    let status = if answer.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        axum::Json(answer),
    )
        .into_response()
}

async fn probe(state: &AppState) -> Readiness {
    let mut checks = Vec::new();
    let db = sqlx::query("SELECT 1").execute(&state.db.pool);
    let db = match tokio::time::timeout(PROBE_TIMEOUT, db).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".to_string()),
    };
    checks.push(check("database".into(), db));
    let all: Vec<_> = state.destinations.all().collect();
    let probed = futures_util::future::join_all(all.iter().map(|d| d.probe())).await;
    for (d, r) in all.iter().zip(probed) {
        checks.push(check(format!("destination:{}", d.name), r));
    }
    let ready = checks.iter().all(|c| c.ok);
    Readiness {
        status: if ready { "ready" } else { "not_ready" },
        checks,
    }
}

fn check(component: String, result: Result<(), String>) -> Check {
    if let Err(e) = &result {
        tracing::warn!(component = %component, error = %e, "readiness check failed");
    }
    Check {
        component,
        ok: result.is_ok(),
    }
}
