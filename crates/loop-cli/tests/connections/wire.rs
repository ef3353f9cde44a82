//! Clients at the byte level: plain TCP, TLS without HTTP, and HTTP/1.1 written by hand, so
//! a test can be exactly as slow, silent or oversized as it needs.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// How long a test waits for the server to do something it must do. Generous: it only
/// bounds a failing test.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// A TCP connection from `source` (any address in 127.0.0.0/8 is this machine).
pub fn tcp_from(source: IpAddr, server: SocketAddr) -> io::Result<TcpStream> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = rt.block_on(socket.connect(server))?.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    Ok(stream)
}

pub fn tcp(server: SocketAddr) -> io::Result<TcpStream> {
    tcp_from("127.0.0.1".parse().unwrap(), server)
}

/// A TLS connection that has finished its handshake (or the error that ended it).
pub fn tls_from(source: IpAddr, server: SocketAddr, cert_pem: &[u8]) -> io::Result<Tls> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem).expect("PEM certificate"))
        .expect("trusted certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp_from(source, server)?);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

pub fn tls(server: SocketAddr, cert_pem: &[u8]) -> io::Result<Tls> {
    tls_from("127.0.0.1".parse().unwrap(), server, cert_pem)
}

/// Reads until the server closes the connection; returns what arrived. An error means the
/// server did not close it within [`PATIENCE`] (or reset it: see the error kind).
pub fn read_until_closed(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            // The server closed without a TLS close_notify: closed all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(got),
            Err(e) => return Err(e),
        }
    }
}

/// True when the error says the server kept the connection open past the test's patience.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The status code of an HTTP/1.1 answer.
pub fn status(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP/1.1 answer: {:?}", &text[..text.len().min(200)]))
}

/// Writes all of `bytes` in pieces, as a client sending a large request does.
pub fn send(stream: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    for piece in bytes.chunks(64 * 1024) {
        stream.write_all(piece)?;
    }
    stream.flush()
}
