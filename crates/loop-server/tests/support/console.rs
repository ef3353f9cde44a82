//! The console's pages as a browser without scripts meets them: cookies sent and kept by
//! hand, redirects seen rather than followed, forms posted with the token the page gave.

use reqwest::Method;
use reqwest::header::HeaderMap;

use super::Server;

/// A page as the server answered it.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// Where a redirect sends the browser.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }

    /// The value the page sets for the cookie `name`, when it sets one.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let (k, rest) = c.split_once('=')?;
                (k == name).then(|| rest.split(';').next().unwrap_or("").to_string())
            })
    }

    /// The token of the page's forms.
    pub fn form_token(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no form token on the page: {}", self.body));
        let rest = &self.body[at + "name=\"csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

impl Server {
    /// Opens `path` with `cookie` (`name=value; …`) in `language`, following no redirect.
    pub fn page(&self, path: &str, cookie: &str, language: &str) -> Page {
        self.page_request(Method::GET, path, cookie, language, None)
    }

    /// Posts the form `fields` to `path`, as a page of this site does.
    pub fn post_page(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let form = (
            "application/x-www-form-urlencoded".to_string(),
            body.into_bytes(),
        );
        self.page_request(Method::POST, path, cookie, "en", Some(form))
    }

    /// Posts the `multipart/form-data` form `fields` (a form that uploads a file) to `path`.
    pub fn post_multipart(&self, path: &str, cookie: &str, fields: &[(&str, &[u8])]) -> Page {
        const BOUNDARY: &str = "loop-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                    .as_bytes(),
            );
            body.extend_from_slice(value);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        let kind = format!("multipart/form-data; boundary={BOUNDARY}");
        self.page_request(Method::POST, path, cookie, "en", Some((kind, body)))
    }

    /// A download's status, headers and bytes, fetched with the browser's `cookie`.
    pub fn download(&self, path: &str, cookie: &str) -> (u16, HeaderMap, Vec<u8>) {
        let r = self.get_with(path, cookie);
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.bytes().expect("a whole body").to_vec())
    }

    /// [`Server::download`] for a body that may break off: then `Err`, with why.
    pub fn try_download(&self, path: &str, cookie: &str) -> (u16, Result<Vec<u8>, String>) {
        let r = self.get_with(path, cookie);
        let status = r.status().as_u16();
        (
            status,
            r.bytes().map(|b| b.to_vec()).map_err(|e| e.to_string()),
        )
    }

    /// A stream of server-sent events, opened with the browser's `cookie` (read it as it
    /// comes; it ends when the server closes it, or after the client's 120 s).
    pub fn events(&self, path: &str, cookie: &str) -> reqwest::blocking::Response {
        let r = self.get_with(path, cookie);
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r
    }

    /// `path` fetched with `cookie`, its body unread.
    fn get_with(&self, path: &str, cookie: &str) -> reqwest::blocking::Response {
        self.pages
            .get(self.url(path))
            .header("Cookie", cookie)
            .send()
            .expect("the server answers")
    }

    fn page_request(
        &self,
        method: Method,
        path: &str,
        cookie: &str,
        language: &str,
        form: Option<(String, Vec<u8>)>,
    ) -> Page {
        let mut req = self
            .pages
            .request(method, self.url(path))
            .header("Accept-Language", language);
        if !cookie.is_empty() {
            req = req.header("Cookie", cookie);
        }
        if let Some((kind, body)) = form {
            req = req
                .header("Content-Type", kind)
                .header("Sec-Fetch-Site", "same-origin")
                .body(body);
        }
        let r = req.send().expect("the server answers");
        Page {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.text().expect("a readable body"),
        }
    }
}

/// The session cookie of a session secret.
pub fn session_cookie(secret: &str) -> String {
    format!("{}={secret}", loop_api::SESSION_COOKIE)
}
