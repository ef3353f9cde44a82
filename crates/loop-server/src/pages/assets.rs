//! The console's own files (its style sheet and its one script), built into the server: nothing is fetched from
//! anywhere else. Their addresses carry a hash of their content, so a browser may keep them
//! for a year and still never uses a stale one.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

/// `GET /assets/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let asked = format!("/assets/{file}");
    let (body, kind) = if asked == *STYLE {
        (CONSOLE_CSS, "text/css; charset=utf-8")
    } else if asked == *SCRIPT {
        (LIVE_JS, "text/javascript; charset=utf-8")
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
    r
}
