//! Pages for browsers, served by the server itself: plain HTML without scripts or outside
//! resources, under a Content-Security-Policy that allows nothing else, never framed, never
//! cached, and sending no referrer (a page's address may carry a one-time code). Forms post
//! only to this site: a post another site's page makes is refused.

mod signup;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::Language;

pub use crate::notify::email::esc;
use crate::state::AppState;

/// The pages' routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/signup",
            axum::routing::get(signup::form).post(signup::submit),
        )
        .route(
            "/signup/confirm",
            axum::routing::get(signup::confirm_form).post(signup::confirm),
        )
}

/// The reader's language: `nl` when the browser puts Dutch before English, else English.
pub fn language(headers: &axum::http::HeaderMap) -> Language {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let first = accept
        .split(',')
        .map(|part| part.split(';').next().unwrap_or("").trim())
        .find(|tag| tag.starts_with("nl") || tag.starts_with("en"));
    match first {
        Some(tag) if tag.starts_with("nl") => Language::Nl,
        _ => Language::En,
    }
}

/// The same words in both languages.
pub fn t(lang: Language, en: &'static str, nl: &'static str) -> &'static str {
    match lang {
        Language::En => en,
        Language::Nl => nl,
    }
}

/// A whole page: `title` and `body` (HTML, escaped by the caller) with the security headers.
pub fn page(status: StatusCode, lang: Language, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Loop Backup</title></head><body><main><h1>{title}</h1>{body}\
         </main></body></html>",
        lang = lang.as_str(),
        title = esc(title),
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        HeaderName::from_static("x-frame-options"),
        HeaderValue::from_static("DENY"),
    );
    r
}

/// A page saying why a request failed, with the status the API would answer.
pub fn failed(lang: Language, e: crate::error::ApiError) -> Response {
    let (status, _, message, retry_after) = e.told();
    let mut r = page(
        status,
        lang,
        t(lang, "That did not work", "Dat is niet gelukt"),
        &format!("<p role=\"alert\">{}</p>", esc(&message)),
    );
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

/// The refusal of a form another site's page posted, if this is one.
pub fn cross_site(parts: &axum::http::request::Parts, lang: Language) -> Option<Response> {
    crate::auth::csrf::is_cross_site(parts).then(|| failed(lang, crate::auth::csrf::refused()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dutch_only_when_the_browser_prefers_it_to_english() {
        let with = |v: &str| {
            let mut h = axum::http::HeaderMap::new();
            h.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(v).unwrap());
            language(&h)
        };
        assert_eq!(with("nl-BE,nl;q=0.9,en;q=0.8"), Language::Nl);
        assert_eq!(with("en-GB,nl;q=0.5"), Language::En);
        assert_eq!(with("de-DE,nl;q=0.7"), Language::Nl);
        assert_eq!(with("fr"), Language::En);
        assert_eq!(language(&axum::http::HeaderMap::new()), Language::En);
    }
}
