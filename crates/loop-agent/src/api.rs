//! The JSON API client.

use loop_api::Problem;
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::connection::Connection;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server answered with a problem body.
    #[error("{status}: {message} ({code})")]
    Problem {
        status: u16,
        code: String,
        message: String,
    },
    #[error("cannot reach the server: {0}")]
    Transport(String),
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ApiError {
    /// Whether asking again later may be answered: the server could not be reached, or it
    /// (or a proxy before it) failed or asked to be left alone for a moment (5xx, 429). A
    /// refusal (any other 4xx) would be answered the same.
    pub fn is_temporary(&self) -> bool {
        match self {
            ApiError::Transport(_) => true,
            ApiError::Problem { status, .. } => *status >= 500 || *status == 429,
            ApiError::Decode(_) => false,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            ApiError::Problem { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Turns a non-success response into [`ApiError::Problem`].
pub(crate) fn problem(resp: reqwest::blocking::Response) -> ApiError {
    let status = resp.status().as_u16();
    match resp.json::<Problem>() {
        Ok(p) => ApiError::Problem {
            status,
            message: p.detail.unwrap_or(p.title),
            code: p.code,
        },
        Err(_) => ApiError::Problem {
            status,
            code: "http_error".into(),
            message: format!("HTTP {status}"),
        },
    }
}

/// The management API, authenticated with a session token.
pub struct ApiClient {
    pub conn: Connection,
    pub session: Option<String>,
}

impl ApiClient {
    pub fn new(conn: Connection, session: Option<String>) -> ApiClient {
        ApiClient { conn, session }
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> reqwest::blocking::RequestBuilder {
        let mut r = self
            .conn
            .client
            .request(method, format!("{}{path}", self.conn.base));
        if let Some(s) = &self.session {
            r = r.bearer_auth(s);
        }
        r
    }

    pub(crate) fn send(
        &self,
        r: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, ApiError> {
        let resp = r
            .send()
            .map_err(|e| ApiError::Transport(loop_repo::one_line(&e)))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(problem(resp))
        }
    }

    /// A request whose JSON answer is decoded into `T`.
    pub(crate) fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        self.send(r)?
            .json()
            .map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// A request without a JSON answer (204).
    pub(crate) fn call_empty<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), ApiError> {
        let mut r = self.request(method, path);
        if let Some(b) = body {
            r = r.json(b);
        }
        self.send(r).map(|_| ())
    }

    pub(crate) fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        self.call::<(), T>(Method::GET, path, None)
    }

    /// A GET with query parameters, decoded from JSON.
    pub(crate) fn get_query<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<T, ApiError> {
        self.send(self.request(Method::GET, path).query(query))?
            .json()
            .map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// Every row of a listing, page after page (following its `Link: rel="next"`), or the
    /// first `at_most` of them.
    pub(crate) fn get_pages<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
        at_most: Option<usize>,
    ) -> Result<Vec<T>, ApiError> {
        let mut out: Vec<T> = Vec::new();
        let mut cursor = None;
        loop {
            let page = loop_api::PageQuery {
                limit: Some(at_most.map_or(1000, |m| (m - out.len()).clamp(1, 1000)) as u32),
                cursor: cursor.take(),
            };
            let resp = self.send(self.request(Method::GET, path).query(query).query(&page))?;
            let next = resp
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(loop_api::next_cursor);
            let rows: Vec<T> = resp.json().map_err(|e| ApiError::Decode(e.to_string()))?;
            let empty = rows.is_empty();
            out.extend(rows);
            match next {
                Some(c) if !empty && at_most.is_none_or(|m| out.len() < m) => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// A GET whose body is returned as bytes (archives).
    pub(crate) fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        self.send(self.request(Method::GET, path))?
            .bytes()
            .map(|b| b.to_vec())
            .map_err(|e| ApiError::Decode(e.to_string()))
    }

    /// A GET with query parameters whose body is returned as text (exports).
    pub(crate) fn get_text<Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<String, ApiError> {
        self.send(self.request(Method::GET, path).query(query))?
            .text()
            .map_err(|e| ApiError::Decode(e.to_string()))
    }
}
