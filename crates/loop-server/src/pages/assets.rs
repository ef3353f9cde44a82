//! The console's own files (its style sheet and its one script), built into the server, and
//! a partner's style sheet and logo, kept in the database: nothing is fetched from anywhere
//! else. Their addresses carry a hash of their content, so a browser may keep them
//! for a year and still never uses a stale one.

use std::sync::LazyLock;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const CONSOLE_CSS: &str = include_str!("assets/console.css");

/// The style sheet's address.
pub static STYLE: LazyLock<String> = LazyLock::new(|| {
    let hash = blake3::hash(CONSOLE_CSS.as_bytes()).to_hex();
    format!("/assets/console-{}.css", &hash[..16])
});

const LIVE_JS: &str = include_str!("assets/live.js");

/// The script's address (the job page's live progress).
pub static SCRIPT: LazyLock<String> = LazyLock::new(|| {
    let hash = blake3::hash(LIVE_JS.as_bytes()).to_hex();
    format!("/assets/live-{}.js", &hash[..16])
});

/// `GET /assets/{file}`: the console's own files, and a partner's style sheet and logo
/// (`brand-{tenant}-{hash}.css` and `.png`, answered only while the branding has that hash).
pub async fn serve(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let asked = format!("/assets/{file}");
    let (body, kind): (Body, _) = if asked == *STYLE {
        (CONSOLE_CSS.into(), "text/css; charset=utf-8")
    } else if asked == *SCRIPT {
        (LIVE_JS.into(), "text/javascript; charset=utf-8")
    } else if let Some(brand) = brand_file(&state, &file).await {
        brand
    } else {
        return crate::error::ApiError::not_found().into_response();
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Opened on its own, a file of ours runs nothing and reaches nothing.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    r
}

/// A partner's style sheet or logo named `file`, when its branding is current.
async fn brand_file(state: &AppState, file: &str) -> Option<(Body, &'static str)> {
    let (stem, ext) = file.strip_prefix("brand-")?.rsplit_once('.')?;
    let (tenant, hash) = stem.rsplit_once('-')?;
    // Only a well-formed name reaches the database.
    loop_api::TenantId::parse(tenant).ok()?;
    if hash.len() != 16 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let row = crate::db::brandings::branding_of(&state.db.pool, tenant)
        .await
        .ok()??;
    let brand = crate::branding::Brand::of(row).filter(|b| b.hash == hash)?;
    match ext {
        "css" => Some((brand.css().into(), "text/css; charset=utf-8")),
        "png" => Some((brand.logo?.into(), "image/png")),
        _ => None,
    }
}
