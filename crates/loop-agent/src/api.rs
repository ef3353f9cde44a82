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

/// The most of an error answer's body that is read: a problem+json document is a few hundred
/// bytes, and a server (or something in its place) may answer an error with anything.
const PROBLEM_MAX: u64 = 64 * 1024;

/// The most of a JSON answer that is read. The largest this server sends is a vault's
/// object listing (about 100 bytes an object, whole): this leaves room for millions of
/// objects, and keeps a server (or anything in its place) that answers without end from
/// filling this machine's memory.
pub const JSON_MAX: u64 = 1 << 30;

/// The most of an archive or export that is read into memory.
const BODY_MAX: u64 = 4 << 30;

/// The body of `resp`, or an error once it passes `limit` bytes.
pub(crate) fn read_limited(
    resp: reqwest::blocking::Response,
    limit: u64,
) -> Result<Vec<u8>, ApiError> {
    use std::io::Read;
    let mut body = Vec::new();
    resp.take(limit + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::Transport(loop_repo::one_line(&e)))?;
    if body.len() as u64 > limit {
        return Err(ApiError::Decode(format!(
            "the answer is larger than {limit} bytes, more than this server sends"
        )));
    }
    Ok(body)
}

/// The JSON answer of `resp`, read up to [`JSON_MAX`].
pub(crate) fn json_of<T: DeserializeOwned>(
    resp: reqwest::blocking::Response,
) -> Result<T, ApiError> {
    serde_json::from_slice(&read_limited(resp, JSON_MAX)?)
        .map_err(|e| ApiError::Decode(e.to_string()))
}

/// The most of a problem's words kept, in characters: a server's own are a sentence, and
/// what another operator's server says lands in job errors, logs and certificates.
const PROBLEM_WORDS_MAX: usize = 300;

/// What a server said, as one line of at most `max` characters: control characters (a
/// line break, a terminal escape) become spaces, and a longer text ends in "…".
fn as_said(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Turns a non-success response into [`ApiError::Problem`].
pub(crate) fn problem(resp: reqwest::blocking::Response) -> ApiError {
    use std::io::Read;
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let read = resp.take(PROBLEM_MAX).read_to_end(&mut body);
    match read
        .ok()
        .and_then(|_| serde_json::from_slice::<Problem>(&body).ok())
    {
        Some(p) => ApiError::Problem {
            status,
            message: as_said(&p.detail.unwrap_or(p.title), PROBLEM_WORDS_MAX),
            code: as_said(&p.code, 64),
        },
        None => ApiError::Problem {
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
        json_of(self.send(r)?)
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
        json_of(self.send(self.request(Method::GET, path).query(query))?)
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
            let rows: Vec<T> = json_of(resp)?;
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
        read_limited(self.send(self.request(Method::GET, path))?, BODY_MAX)
    }

    /// A GET with query parameters whose body is returned as text (exports).
    pub(crate) fn get_text<Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: &Q,
    ) -> Result<String, ApiError> {
        let body = read_limited(
            self.send(self.request(Method::GET, path).query(query))?,
            BODY_MAX,
        )?;
        String::from_utf8(body).map_err(|e| ApiError::Decode(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    const BODY: usize = 256 << 20;

    /// A server on loopback that answers its one request with `status` and a body of spaces
    /// of [`BODY`] bytes, as long as the client reads; how much it sent.
    fn answering_at_length(status: &'static str) -> (u16, std::thread::JoinHandle<usize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            let head = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                 content-length: {BODY}\r\n\r\n"
            );
            conn.write_all(head.as_bytes()).unwrap();
            let block = vec![b' '; 1 << 20];
            let mut sent = 0;
            while sent < BODY {
                if conn.write_all(&block).is_err() {
                    break;
                }
                sent += block.len();
            }
            sent
        });
        (port, server)
    }

    fn get(port: u16) -> reqwest::blocking::Response {
        reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .unwrap()
    }

    /// An error answer with a body far larger than any problem document: the client reads
    /// what a problem document may take, not the body, and says what the status was.
    #[test]
    fn an_error_answer_is_read_only_as_far_as_a_problem_document_goes() {
        let (port, server) = answering_at_length("500 Internal Server Error");
        let e = problem(get(port));
        assert_eq!(e.code(), Some("http_error"));
        assert!(e.to_string().contains("500"), "{e}");
        let sent = server.join().unwrap();
        assert!(sent < BODY, "the whole body was read ({sent} bytes)");
    }

    /// A problem's words are kept to one short line: another operator's server cannot fill
    /// a job's error, a log line or a deletion certificate, or write a terminal escape there.
    #[test]
    fn a_problems_words_are_one_short_line() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let detail = format!("first line\n\u{1b}[31mred{}", "x".repeat(20_000));
        let body = serde_json::json!({ "type": "about:blank", "title": "Bad", "status": 503,
            "code": "busy\r\nX-Injected: 1", "detail": detail })
        .to_string();
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let _ = conn.read(&mut [0u8; 4096]);
            let head = format!(
                "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\n\
                 content-length: {}\r\n\r\n",
                body.len()
            );
            conn.write_all(head.as_bytes()).unwrap();
            conn.write_all(body.as_bytes()).unwrap();
        });
        let e = problem(get(port));
        server.join().unwrap();
        let ApiError::Problem {
            status,
            code,
            message,
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!((*status, code.as_str()), (503, "busy  X-Injected: 1"));
        assert!(message.starts_with("first line  [31mredxxx"), "{message}");
        assert_eq!(message.chars().count(), PROBLEM_WORDS_MAX + 1);
        assert!(message.ends_with('…'), "{message}");
        assert_eq!(as_said("short", 300), "short");
    }

    /// A success answer is read only up to its limit ([`JSON_MAX`] for JSON): a server, or
    /// anything in its place, that answers without end cannot fill this machine's memory.
    #[test]
    fn a_success_answer_is_read_only_up_to_its_limit() {
        let (port, server) = answering_at_length("200 OK");
        let e = read_limited(get(port), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
        let sent = server.join().unwrap();
        assert!(sent < BODY, "the whole body was read ({sent} bytes)");
    }
}
