//! A page of a listing as the API answers it: a JSON array, and when more rows follow, a
//! `Link: <PATH?QUERY&cursor=…>; rel="next"` header (RFC 8288) that repeats the request's own
//! query with the next page's cursor.

use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use loop_api::PageQuery;

use crate::db::page::{Page, Paged};
use crate::error::{ApiError, ApiResult};

/// The page `q` asks for.
pub fn page(q: &PageQuery) -> ApiResult<Page> {
    Page::parse(q.limit, q.cursor.as_deref()).map_err(|e| ApiError::bad_request(e.to_string()))
}

/// A page answered to the request for `uri`.
pub struct Listing<T> {
    pub page: Paged<T>,
    pub uri: Uri,
}

impl<T> Listing<T> {
    pub fn new(uri: Uri, page: Paged<T>) -> Self {
        Listing { page, uri }
    }
}

/// `uri` with its `cursor` parameter set to `cursor` (the others kept as sent).
fn next_link(uri: &Uri, cursor: &str) -> String {
    let mut query: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
        .collect();
    let own = format!("cursor={cursor}");
    query.push(&own);
    format!("<{}?{}>; rel=\"next\"", uri.path(), query.join("&"))
}

impl<T: serde::Serialize> IntoResponse for Listing<T> {
    fn into_response(self) -> Response {
        let mut r = axum::Json(self.page.items).into_response();
        if let Some(c) = &self.page.next
            && let Ok(v) = HeaderValue::from_str(&next_link(&self.uri, c))
        {
            r.headers_mut().insert(header::LINK, v);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_cursor() {
        let uri: Uri = "/api/v1/jobs?state=failed&cursor=old&limit=2"
            .parse()
            .unwrap();
        assert_eq!(
            next_link(&uri, "WzFd"),
            "</api/v1/jobs?state=failed&limit=2&cursor=WzFd>; rel=\"next\""
        );
        let bare: Uri = "/api/v1/tenants".parse().unwrap();
        assert_eq!(
            next_link(&bare, "WzFd"),
            "</api/v1/tenants?cursor=WzFd>; rel=\"next\""
        );
    }
}
