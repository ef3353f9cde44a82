//! Tests the real-S3 test harness itself: a fresh Garage server starts,
//! hands out credentials, and its S3 endpoint speaks HTTP.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::garage::Garage;

#[test]
fn garage_starts_and_answers_http() {
    let Some(garage) = Garage::start() else {
        return;
    };

    assert!(garage.endpoint.starts_with("http://127.0.0.1:"));
    assert_eq!(garage.region, "garage");
    assert!(!garage.bucket.is_empty());
    assert!(!garage.access_key_id.is_empty());
    assert!(!garage.secret_access_key.is_empty());

    let env = garage.env();
    let get = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{k} missing from Garage::env()"))
    };
    assert_eq!(get("AWS_ACCESS_KEY_ID"), garage.access_key_id);
    assert_eq!(get("AWS_SECRET_ACCESS_KEY"), garage.secret_access_key);
    assert_eq!(get("AWS_DEFAULT_REGION"), "garage");
    assert_eq!(get("AWS_ENDPOINT_URL"), garage.endpoint);
    assert_eq!(get("AWS_ALLOW_HTTP"), "true");

    // An unauthenticated GET must get an HTTP response (an S3 error is fine).
    let port = garage.port();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to S3 endpoint");
    // Only guards against a hang; not a timing assertion.
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("set read timeout");
    write!(
        stream,
        "GET /{} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n",
        garage.bucket
    )
    .expect("write request");
    let mut status_line = String::new();
    BufReader::new(stream)
        .read_line(&mut status_line)
        .expect("read status line");
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    assert!(
        version.starts_with("HTTP/1."),
        "not an HTTP status line: {status_line:?}"
    );
    assert!(
        code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()),
        "no status code in {status_line:?}"
    );
}

#[test]
fn two_servers_run_side_by_side() {
    let (Some(a), Some(b)) = (Garage::start(), Garage::start()) else {
        return;
    };
    assert_ne!(a.endpoint, b.endpoint);
}
