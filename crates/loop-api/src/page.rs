//! Pages of a listing. Every list operation takes `limit` and `cursor` and answers one page
//! as a JSON array; when more follow, a `Link: <URL>; rel="next"` header names the next
//! page (the same query with its `cursor`).

/// Which page of a listing.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageQuery {
    /// Rows per page, 1 to 1000 (default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Where this page starts: the `cursor` of the previous page's `Link` header (opaque).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// The `cursor` of the `rel="next"` link in a `Link` header value, if there is one.
pub fn next_cursor(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        let url = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        let (_, query) = url.split_once('?')?;
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix("cursor="))
            .map(String::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_cursor_is_read_from_a_link_header() {
        assert_eq!(
            next_cursor("</api/v1/jobs?state=failed&limit=2&cursor=WzFd>; rel=\"next\"").as_deref(),
            Some("WzFd")
        );
        assert_eq!(
            next_cursor("</a?cursor=x>; rel=\"prev\", </a?cursor=y>; rel=\"next\"").as_deref(),
            Some("y")
        );
        assert_eq!(next_cursor("</a?cursor=x>; rel=\"prev\""), None);
        assert_eq!(next_cursor("garbage"), None);
    }
}
