//! Cross-site request forgery: a change made with the session cookie must come from this
//! site's own pages. Two defences: the browser's word on where a request comes from
//! ([`is_cross_site`]), and on the console's forms a token only this site's pages know
//! ([`form_token`]).

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

/// The cookie that gives a browser without a session its form tokens (sign-in, sign-up,
/// password reset): random, never sent to another site, gone when the browser closes.
pub(crate) const FORM_COOKIE: &str = "loop_form";

/// The token the console puts in every form it shows a browser holding the cookie `secret`
/// (its session's, or the form cookie's). A page of another site cannot read the cookie, so it
/// cannot know the token; a stolen database holds only the secret's other hash.
pub(crate) fn form_token(secret: &str) -> String {
    hex::encode(blake3::derive_key(
        "loop-backup 2026-12-04 console form token v1",
        secret.as_bytes(),
    ))
}

/// True when `token` is the form token of a cookie the request carries.
pub(crate) fn form_token_ok(parts: &Parts, token: &str) -> bool {
    [
        super::request::session_cookie(parts),
        super::request::cookie(&parts.headers, FORM_COOKIE),
    ]
    .into_iter()
    .flatten()
    .filter(|secret| !secret.is_empty())
    .any(|secret| {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            form_token(&secret).as_bytes(),
            token.as_bytes(),
        )
        .is_ok()
    })
}

/// The answer to a form without its token, or with another browser's.
pub(crate) fn token_refused() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::FORBIDDEN,
        "form_token_missing",
        "this form has no valid token: open the page again",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known answer (BLAKE3 in key-derivation mode, as the reference implementation gives
    /// it): the token is a hash of the cookie's value in a context of its own, and changes with it.
    #[test]
    fn the_form_token_is_fixed_by_the_cookie() {
        let t = form_token("lps_00");
        assert_eq!(
            t,
            "f53db8982734b388a22536f8e25489c9e48841b07d4586411d98a96593de8b06"
        );
        assert_eq!(t, form_token("lps_00"));
        assert_ne!(t, form_token("lps_01"));
        assert_ne!(t, crate::domain::secret_hash("lps_00"));
    }

    #[test]
    fn a_token_counts_only_with_the_cookie_it_was_made_for() {
        let parts = |cookie: &str| {
            axum::http::Request::builder()
                .header("cookie", cookie)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let session = format!("{}=lps_aa", loop_api::SESSION_COOKIE);
        let form = format!("{FORM_COOKIE}=lpf_bb");
        assert!(form_token_ok(&parts(&session), &form_token("lps_aa")));
        assert!(form_token_ok(&parts(&form), &form_token("lpf_bb")));
        assert!(!form_token_ok(&parts(&session), &form_token("lpf_bb")));
        assert!(!form_token_ok(&parts(&session), ""));
        assert!(!form_token_ok(
            &parts(&format!("{FORM_COOKIE}=")),
            &form_token("")
        ));
    }
}
