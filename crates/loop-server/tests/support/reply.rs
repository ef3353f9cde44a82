//! An answer of the server under test.

use serde_json::Value;

/// An answer as a user sees it: status, content type and body text.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    /// The `Retry-After` header, when there is one.
    pub retry_after: Option<String>,
    /// The `Link` header (the next page of a listing), when there is one.
    pub link: Option<String>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The problem+json `code`, when the answer is an error body.
    pub fn code(&self) -> String {
        serde_json::from_str::<Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(String::from))
            .unwrap_or_default()
    }

    /// Requires `status` and returns the body as JSON (`null` when empty).
    pub fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.body);
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Requires an error with this status and code, as problem+json.
    pub fn expect_problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "unexpected answer: {}",
            self.body
        );
        assert_eq!(self.content_type, "application/problem+json");
    }
}
