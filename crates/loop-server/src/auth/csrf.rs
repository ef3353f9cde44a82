//! Cross-site request forgery: a change made with the session cookie must come from this
//! site's own pages.

use axum::http::request::Parts;

use crate::error::ApiError;

/// True when a browser says the request comes from another origin. Browsers send
/// `Sec-Fetch-Site` (and `Origin` on unsafe requests); clients that are not browsers send
/// neither and authenticate with a bearer token anyway. This, with SameSite=Lax cookies, is
/// the defence against cross-site request forgery.
pub(crate) fn is_cross_site(parts: &Parts) -> bool {
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return !matches!(site, "same-origin" | "none");
    }
    // HTTP/1.1 names the server in Host; HTTP/2 in the :authority of the URI.
    let host = header("host").or_else(|| parts.uri.authority().map(|a| a.as_str()));
    match (header("origin"), host) {
        (Some(origin), Some(host)) => origin != format!("https://{host}"),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The answer to a cross-site change.
pub(crate) fn refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "cross_site_request",
        "a change with the session cookie must come from this site's own pages",
    )
}
