//! The server keeps answering whatever its clients do: idle, silent, slow or oversized
//! requests are closed or answered within their budgets, too many connections are refused
//! at once instead of exhausting the server, and every request leaves a line in the
//! access log that holds no secret.

mod process;
mod wire;

use std::net::IpAddr;
use std::time::Duration;

use process::{ADMIN_EMAIL, ADMIN_PASSWORD, Served};
use wire::*;

/// Short budgets, so that tests wait seconds; the header timer is long so that the idle
/// timeout is what closes idle connections.
const QUICK: &str = "[connections]
tls_handshake_seconds = 2
idle_seconds = 2
body_read_seconds = 2
header_read_seconds = 600
";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn login_body() -> String {
    serde_json::json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).to_string()
}

#[test]
fn a_tcp_connection_that_never_starts_tls_is_closed() {
    let server = Served::start(QUICK);
    let mut silent = tcp(server.addr).unwrap();
    let got = read_until_closed(&mut silent).expect("the server closes the connection");
    assert!(
        got.is_empty(),
        "nothing is sent to a client that never said hello"
    );
}

#[test]
fn a_tls_connection_that_never_sends_a_request_is_closed() {
    let server = Served::start(QUICK);
    let mut silent = tls(server.addr, &server.cert_pem).expect("handshake");
    read_until_closed(&mut silent).expect("the server closes the connection");
}

#[test]
fn a_keep_alive_connection_is_closed_once_idle_after_its_answer() {
    let server = Served::start(QUICK);
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    send(
        &mut conn,
        b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\n\r\n",
    )
    .unwrap();
    let got = read_until_closed(&mut conn).expect("the server closes the idle connection");
    assert_eq!(status(&got), 401, "the request itself was answered first");
}

#[test]
fn an_http2_connection_without_requests_is_closed_with_a_goaway() {
    let server = Served::start(QUICK);
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    // The HTTP/2 preface and an empty SETTINGS frame, then silence.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    send(&mut conn, &hello).unwrap();
    let got = read_until_closed(&mut conn).expect("the server closes the idle connection");
    let frames = frame_types(&got);
    assert!(
        frames.contains(&7),
        "a GOAWAY frame told the client why: {frames:?}"
    );
}

/// The types of the HTTP/2 frames in `got`, in order.
fn frame_types(got: &[u8]) -> Vec<u8> {
    let mut frames = Vec::new();
    let mut rest = got;
    while rest.len() >= 9 {
        let len = u32::from_be_bytes([0, rest[0], rest[1], rest[2]]) as usize;
        frames.push(rest[3]);
        rest = &rest[(9 + len).min(rest.len())..];
    }
    frames
}

/// An HTTP/2 frame: its type, flags, stream and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn an_http2_client_that_never_takes_its_answer_is_closed() {
    let server = Served::start(QUICK);
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    // SETTINGS with an initial window of 0: no answer's body may ever be sent.
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(frame(4, 0, 0, &[0, 4, 0, 0, 0, 0]));
    // GET /api/v1/me (an answer with a body), HPACK: :method GET, :scheme https, then
    // :path and :authority as literals.
    let mut headers = vec![0x82, 0x87, 0x44, 10];
    headers.extend_from_slice(b"/api/v1/me");
    headers.extend_from_slice(&[0x41, 9]);
    headers.extend_from_slice(b"localhost");
    hello.extend(frame(1, 0x5, 1, &headers));
    send(&mut conn, &hello).unwrap();
    let got = read_until_closed(&mut conn).expect("the server closes the stalled connection");
    let frames = frame_types(&got);
    assert!(frames.contains(&1), "the answer's headers came: {frames:?}");
    assert!(!frames.contains(&0), "its body could not: {frames:?}");
}

#[test]
fn request_headers_that_never_finish_are_cut_off() {
    let server = Served::start("[connections]\nheader_read_seconds = 2\nidle_seconds = 600\n");
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    send(&mut conn, b"GET /api/v1/me HTTP/1.1\r\nHost: local").unwrap();
    read_until_closed(&mut conn).expect("the server closes the connection");
}

#[test]
fn a_request_body_that_stops_arriving_is_answered_408() {
    let server = Served::start(QUICK);
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    let head = "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\"";
    send(&mut conn, head.as_bytes()).unwrap();
    let got = read_until_closed(&mut conn).expect("the server answers and closes");
    assert_eq!(status(&got), 408);
    assert!(String::from_utf8_lossy(&got).contains("body_timeout"));
}

#[test]
fn a_slow_but_steady_body_is_not_cut_off() {
    let server = Served::start(QUICK);
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    let body = login_body();
    let head = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    send(&mut conn, head.as_bytes()).unwrap();
    // Six pieces with pauses shorter than the body timeout: in all, longer than it.
    for piece in body.as_bytes().chunks(body.len().div_ceil(6)) {
        std::thread::sleep(Duration::from_millis(700));
        send(&mut conn, piece).unwrap();
    }
    let got = read_until_closed(&mut conn).expect("answer");
    assert_eq!(status(&got), 200, "{}", String::from_utf8_lossy(&got));
}

/// A client that sends its whole request before it reads the answer.
fn send_then_read(server: &Served, request: &[u8]) -> Vec<u8> {
    let mut conn = tls(server.addr, &server.cert_pem).unwrap();
    send(&mut conn, request).expect("the server reads the request instead of resetting");
    read_until_closed(&mut conn).expect("the answer, then the close")
}

#[test]
fn a_body_too_large_for_a_json_route_gets_413_not_a_reset() {
    let server = Served::start("");
    let body = vec![b' '; 8 << 20];
    let mut request = format!(
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: localhost\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    let got = send_then_read(&server, &request);
    assert_eq!(status(&got), 413);
}

#[test]
fn oversized_headers_get_431_not_a_reset() {
    let server = Served::start("");
    let request = format!(
        "GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(8 << 20)
    );
    let got = send_then_read(&server, request.as_bytes());
    assert_eq!(status(&got), 431);
}

/// Either the connection is refused (closed before the handshake ends) or it is served.
fn refused(attempt: std::io::Result<Tls>) -> bool {
    match attempt {
        Ok(_) => false,
        Err(e) => {
            assert!(
                !is_timeout(&e),
                "a connection over the limit must be closed at once, not left waiting"
            );
            true
        }
    }
}

/// Signs in, retrying while the server still counts connections the test just closed.
fn signs_in_soon(server: &Served) {
    let client = server.client();
    for _ in 0..100 {
        if server.sign_in(&client).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("the server did not answer a sign-in once connections were free");
}

#[test]
fn over_the_connection_limits_new_connections_are_closed_at_once() {
    let server = Served::start(
        "[connections]\nmax = 3\nmax_per_client = 2\ntls_handshake_seconds = 600\n\
         idle_seconds = 600\n",
    );
    let (pem, addr) = (&server.cert_pem, server.addr);
    let first = tls_from(ip("127.0.0.1"), addr, pem).expect("within both limits");
    let _second = tls_from(ip("127.0.0.1"), addr, pem).expect("within both limits");
    assert!(
        refused(tls_from(ip("127.0.0.1"), addr, pem)),
        "a third from one client"
    );
    let _other = tls_from(ip("127.0.0.2"), addr, pem).expect("another client gets in");
    assert!(
        refused(tls_from(ip("127.0.0.3"), addr, pem)),
        "a fourth in all"
    );
    // A connection the server holds is still served while others are refused.
    let mut held = first;
    send(
        &mut held,
        b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status(&read_until_closed(&mut held).unwrap()), 401);
    drop(held);
    signs_in_soon(&server);
}

#[test]
fn under_a_low_open_file_limit_extra_connections_are_refused_not_fatal() {
    let files = 96;
    let mut server = Served::start_with_file_limit(
        "[connections]\ntls_handshake_seconds = 600\nidle_seconds = 600\n",
        files,
    );
    let mut held = Vec::new();
    let mut refusals = 0;
    // More connections than the server has descriptors: the ones it cannot hold are
    // refused at once.
    for _ in 0..files + 8 {
        match tls(server.addr, &server.cert_pem) {
            Ok(c) => held.push(c),
            Err(e) => {
                assert!(!is_timeout(&e), "refused at once, not left waiting");
                refusals += 1;
            }
        }
    }
    assert!(refusals > 8, "{refusals} refused, {} held", held.len());
    assert!(held.len() < files as usize);
    // Connections it holds are still served.
    let mut first = held.swap_remove(0);
    send(
        &mut first,
        b"GET /api/v1/me HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert_eq!(status(&read_until_closed(&mut first).unwrap()), 401);
    drop(held);
    signs_in_soon(&server);
    assert!(server.is_running());
    let log = server.log();
    assert!(
        !log.contains("Too many open files"),
        "the server ran out of descriptors:\n{log}"
    );
}

#[test]
fn the_access_log_names_routes_and_never_secrets() {
    let server = Served::start("");
    let client = server.client();
    let token = server.sign_in(&client).unwrap();
    let me: serde_json::Value = client
        .get(server.url("/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let tenant = me["user"]["tenant_id"]
        .as_str()
        .expect("tenant")
        .to_string();
    let reply = client
        .get(server.url(&format!("/api/v1/tenants/{tenant}?note=query-secret-value")))
        .header(
            "Cookie",
            format!(
                "{}={token}; other=cookie-secret-value",
                loop_api::SESSION_COOKIE
            ),
        )
        .send()
        .unwrap();
    assert_eq!(reply.status(), 200);
    let missing = client
        .get(server.url("/no/such/path-secret"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);

    let log = server.log();
    let lines = |route: &str| -> Vec<&str> {
        log.lines()
            .filter(|l| {
                let named = l.contains(&format!("route={route} "))
                    || l.contains(&format!("route={route}}}"));
                named && l.contains("answered")
            })
            .collect()
    };
    let login = lines("/api/v1/auth/login");
    assert!(
        login
            .iter()
            .any(|l| l.contains("method=POST") && l.contains("status=200")),
        "{log}"
    );
    let me_lines = lines("/api/v1/me");
    assert!(
        me_lines
            .iter()
            .any(|l| l.contains("status=200") && l.contains(&format!("tenant={tenant}"))),
        "the caller's tenant is named: {log}"
    );
    let tenant_lines = lines("/api/v1/tenants/{id}");
    assert!(
        tenant_lines
            .iter()
            .any(|l| l.contains("status=200") && l.contains("ms=")),
        "{log}"
    );
    assert!(log.contains("status=404"), "{log}");
    for secret in [
        token.as_str(),
        "cookie-secret-value",
        "query-secret-value",
        "path-secret",
        ADMIN_PASSWORD,
    ] {
        assert!(!log.contains(secret), "the log holds {secret:?}:\n{log}");
    }
    assert!(
        !log.contains(&format!("/api/v1/tenants/{tenant}")),
        "raw paths stay out"
    );
}
