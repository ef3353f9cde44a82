//! Retries of a request to a server or a store: transport failures, server errors and
//! answers that ask for a retry, with backoff, within a [`RetryBudget`].

use std::time::Duration;

use loop_repo::{Error, Result, RetryBudget};
use reqwest::blocking::Response;

/// Sends a request, retrying transport failures, server errors and answers that ask for a
/// retry (`Retry-After`) with backoff from 200 ms, within `budget` (no retry starts once its
/// time is up): the answer the server gave at last (HTTP errors are the caller's to map) and
/// the attempts it took.
pub(crate) fn send_retrying(
    budget: RetryBudget,
    object: &str,
    build: impl Fn() -> reqwest::blocking::RequestBuilder,
) -> Result<(Response, u32)> {
    let mut delay = Duration::from_millis(200);
    let start = std::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = build().send();
        let last = attempt > budget.max_retries || start.elapsed() + delay >= budget.timeout;
        match answer {
            Ok(r)
                if (r.status().is_server_error()
                    || r.headers().contains_key(reqwest::header::RETRY_AFTER))
                    && !last => {}
            Ok(r) => return Ok((r, attempt as u32)),
            Err(mut e) if last => {
                // A transport error names its URL, and a store's presigned URL carries its
                // credential and signature in the query: the message goes to job logs.
                if let Some(url) = e.url_mut() {
                    url.set_query(None);
                }
                return Err(Error::Storage {
                    object: object.into(),
                    message: loop_repo::one_line(&e),
                });
            }
            Err(_) => {}
        }
        std::thread::sleep(delay);
        delay *= 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port nobody listens on (it was free a moment ago): every try fails at once.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    #[test]
    fn no_retry_starts_once_the_budget_is_spent() {
        let port = closed_port();
        let client = reqwest::blocking::Client::new();
        let tries = std::cell::Cell::new(0);
        let budget = RetryBudget {
            max_retries: 100,
            timeout: Duration::from_secs(1),
        };
        let r = send_retrying(budget, "x", || {
            tries.set(tries.get() + 1);
            client.get(format!("http://127.0.0.1:{port}/"))
        });
        assert!(r.is_err());
        // Tries at 0, 0.2 and 0.6 s; the next would start at 1.4 s, after the budget.
        assert_eq!(tries.get(), 3);
    }

    #[test]
    fn a_failed_requests_message_names_the_store_but_not_the_urls_signature() {
        let port = closed_port();
        let client = reqwest::blocking::Client::new();
        let url = format!(
            "http://127.0.0.1:{port}/bucket/pack?X-Amz-Credential=AKIDEXAMPLE&X-Amz-Signature=5ecret"
        );
        let budget = RetryBudget {
            max_retries: 0,
            timeout: Duration::from_secs(1),
        };
        let Err(e) = send_retrying(budget, "data/ab/pack", || client.put(&url)) else {
            panic!("nobody listens there");
        };
        let message = e.to_string();
        assert!(
            message.contains(&format!("127.0.0.1:{port}/bucket/pack")),
            "{message}"
        );
        assert!(!message.contains("5ecret"), "{message}");
        assert!(!message.contains("AKIDEXAMPLE"), "{message}");
    }
}
