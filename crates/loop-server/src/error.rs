//! Errors as clients see them: problem+json bodies with a stable `code`.
//!
//! Policy: a handler returns [`ApiError`]. Expected failures carry a code and a message that
//! is safe to show. Anything unexpected becomes [`ApiError::Internal`]: its text goes to the
//! server log with a random incident ID, and the client sees only that ID.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loop_api::Problem;

#[derive(Debug)]
pub enum ApiError {
    /// A failure the client may be told about.
    Client {
        status: StatusCode,
        code: &'static str,
        detail: String,
        /// Sent as `Retry-After` (seconds): the client may try again then.
        retry_after: Option<u64>,
    },
    /// Anything else; the text is logged, never sent.
    Internal(String),
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError::Client {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }
    /// The same error, telling the client to try again in `secs` seconds.
    pub fn retry_after(self, secs: u64) -> Self {
        match self {
            ApiError::Client {
                status,
                code,
                detail,
                ..
            } => ApiError::Client {
                status,
                code,
                detail,
                retry_after: Some(secs),
            },
            internal => internal,
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", detail)
    }
    /// Missing, or outside the caller's scope: the two look the same on purpose.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "your role does not allow this",
        )
    }
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in or present a valid token",
        )
    }
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }
}

/// Errors that can only be internal: their text is for the log.
macro_rules! internal_from {
    ($($t:ty),*) => {
        $(impl From<$t> for ApiError {
            fn from(e: $t) -> Self {
                ApiError::Internal(e.to_string())
            }
        })*
    };
}

internal_from!(
    loop_repo::Error,
    object_store::Error,
    crate::keys::KeyError,
    tokio::task::JoinError
);

/// What a client that found the server busy is told to wait, in seconds.
const BUSY_RETRY_SECS: u64 = 5;

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        match e {
            // A cursor the client brought that fits another listing.
            crate::db::DbError::Cursor => ApiError::bad_request(e.to_string()),
            // Every connection stayed busy for `database.acquire_timeout_seconds`: an
            // overload the client may wait out, not a fault.
            crate::db::DbError::Sql(sqlx::Error::PoolTimedOut) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the server is busy; try again shortly",
            )
            .retry_after(BUSY_RETRY_SECS),
            e => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<crate::domain::Invalid> for ApiError {
    fn from(e: crate::domain::Invalid) -> Self {
        ApiError::bad_request(e.0)
    }
}

pub fn problem(status: StatusCode, code: &str, detail: Option<String>) -> Response {
    let body = Problem {
        type_: format!("urn:loop:problem:{code}"),
        title: status.canonical_reason().unwrap_or("error").to_string(),
        status: status.as_u16(),
        code: code.to_string(),
        detail,
    };
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

impl ApiError {
    /// The status the client will be told.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Client { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client is told: status, code, message, and when to try again. An internal
    /// error is logged here with a random incident ID, which is all the client learns.
    pub fn told(self) -> (StatusCode, &'static str, String, Option<u64>) {
        match self {
            ApiError::Client {
                status,
                code,
                detail,
                retry_after,
            } => (status, code, detail, retry_after),
            ApiError::Internal(text) => {
                let incident = crate::domain::new_id("inc");
                tracing::error!(%incident, error = %text, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("internal error; incident {incident} is in the server log"),
                    None,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail, retry_after) = self.told();
        let mut r = problem(status, code, Some(detail));
        if let Some(secs) = retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
