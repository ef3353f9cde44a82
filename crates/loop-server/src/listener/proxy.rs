//! The PROXY protocol, version 2 (HAProxy's `send-proxy-v2`): a load balancer that passes
//! TLS through puts the client's address in a binary header before the first TLS byte.
//! Read only from the balancer addresses the configuration trusts
//! (`connections.trusted_proxies`); from those, a connection without a valid header is
//! closed.
//!
//! Layout (all integers big-endian): a 12-byte signature; one byte of version (high
//! nibble, 2) and command (low nibble: 0 LOCAL, 1 PROXY); one byte of address family (high
//! nibble: 0 unspecified, 1 IPv4, 2 IPv6, 3 Unix) and transport (low nibble); a 16-bit
//! length of what follows: source address, destination address, source port, destination
//! port, then type-length-value extensions, which are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The most bytes after the fixed part that are accepted (addresses and the extensions a
/// balancer adds are far smaller); more is refused before anything is allocated.
const MAX_LEN: usize = 2048;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ProxyError {
    #[error("no PROXY protocol v2 signature")]
    Signature,
    #[error("PROXY protocol version {0} (only 2 is understood)")]
    Version(u8),
    #[error("unknown PROXY command {0}")]
    Command(u8),
    #[error("PROXY header of {0} bytes is longer than allowed")]
    TooLong(usize),
    #[error("PROXY header too short for its address family")]
    Short,
    #[error("reading the PROXY header: {0}")]
    Io(String),
}

/// Reads one PROXY v2 header from `io`, exactly its bytes and nothing after them. The
/// client's address for a proxied connection; `None` for a LOCAL one (the balancer's own
/// health check) or an address family without an IP address.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<Option<SocketAddr>, ProxyError> {
    let mut fixed = [0u8; 16];
    io.read_exact(&mut fixed)
        .await
        .map_err(|e| ProxyError::Io(e.to_string()))?;
    let len = header_len(&fixed)?;
    let mut rest = vec![0u8; len];
    io.read_exact(&mut rest)
        .await
        .map_err(|e| ProxyError::Io(e.to_string()))?;
    parse(&fixed, &rest)
}

/// Checks the fixed part and returns how many bytes follow it.
fn header_len(fixed: &[u8; 16]) -> Result<usize, ProxyError> {
    if fixed[..12] != SIGNATURE {
        return Err(ProxyError::Signature);
    }
    let version = fixed[12] >> 4;
    if version != 2 {
        return Err(ProxyError::Version(version));
    }
    let len = u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
    if len > MAX_LEN {
        return Err(ProxyError::TooLong(len));
    }
    Ok(len)
}

fn parse(fixed: &[u8; 16], rest: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
    match fixed[12] & 0x0f {
        0 => return Ok(None), // LOCAL: the connection is the balancer's own
        1 => {}
        other => return Err(ProxyError::Command(other)),
    }
    let port = |at: usize| u16::from_be_bytes([rest[at], rest[at + 1]]);
    match fixed[13] >> 4 {
        1 => {
            if rest.len() < 12 {
                return Err(ProxyError::Short);
            }
            let ip = Ipv4Addr::new(rest[0], rest[1], rest[2], rest[3]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port(8))))
        }
        2 => {
            if rest.len() < 36 {
                return Err(ProxyError::Short);
            }
            let octets: [u8; 16] = rest[..16].try_into().expect("16 bytes");
            let ip = Ipv6Addr::from(octets);
            Ok(Some(SocketAddr::new(IpAddr::V6(ip), port(32))))
        }
        // Unspecified or Unix: no IP address to take.
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<Option<SocketAddr>, ProxyError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut io = bytes;
            let got = read_header(&mut io).await;
            if got.is_ok() {
                assert_eq!(io, b"TLS", "exactly the header's bytes were read");
            }
            got
        })
    }

    fn hex(s: &str) -> Vec<u8> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut v = hex::decode(digits).unwrap();
        v.extend_from_slice(b"TLS");
        v
    }

    /// Known answer: the header HAProxy 2.6.12 sent (`server ... send-proxy-v2`, captured
    /// byte for byte) for a client at 127.0.0.2:40757 that connected to 127.0.0.1:18443.
    #[test]
    fn a_proxied_ipv4_connection_names_the_client() {
        let h = hex("0d0a0d0a000d0a515549540a 21 11 000c 7f000002 7f000001 9f35 480b");
        assert_eq!(header(&h), Ok(Some("127.0.0.2:40757".parse().unwrap())));
    }

    #[test]
    fn a_proxied_ipv6_connection_names_the_client_and_extensions_are_skipped() {
        // Laid out by the specification: 2001:db8::1 port 51234 -> 2001:db8::2 port 443,
        // TCP over IPv6, then a NOOP extension (type 0x04, length 1, value 0x00).
        let h = hex("0d0a0d0a000d0a515549540a 21 21 0028
             20010db8000000000000000000000001 20010db8000000000000000000000002
             c822 01bb 04 0001 00");
        assert_eq!(h[14..16], [0x00, 0x28]);
        assert_eq!(header(&h), Ok(Some("[2001:db8::1]:51234".parse().unwrap())));
    }

    #[test]
    fn a_local_connection_has_no_client_address() {
        // The balancer's health check: LOCAL, unspecified family, nothing after.
        assert_eq!(
            header(&hex("0d0a0d0a000d0a515549540a 20 00 0000")),
            Ok(None)
        );
    }

    #[test]
    fn anything_else_is_refused_without_a_large_allocation() {
        // A TLS ClientHello where the header should be.
        let mut hello = vec![0x16, 0x03, 0x01, 0x02, 0x00, 0x01];
        hello.extend_from_slice(&[0; 10]);
        assert_eq!(header(&hello), Err(ProxyError::Signature));
        // Version 1's text form and an unknown version.
        assert_eq!(
            header(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 443\r\n"),
            Err(ProxyError::Signature)
        );
        assert_eq!(
            header(&hex("0d0a0d0a000d0a515549540a 31 11 000c")),
            Err(ProxyError::Version(3))
        );
        assert_eq!(
            header(&hex(
                "0d0a0d0a000d0a515549540a 22 11 000c 7f000002 7f000001 9f35 480b"
            )),
            Err(ProxyError::Command(2))
        );
        // A length that promises 64 KiB.
        assert_eq!(
            header(&hex("0d0a0d0a000d0a515549540a 21 11 ffff")),
            Err(ProxyError::TooLong(65535))
        );
        // IPv4 addresses cut short, and a stream that ends inside the header.
        assert_eq!(
            header(&hex("0d0a0d0a000d0a515549540a 21 11 0004 c0000207")),
            Err(ProxyError::Short)
        );
        assert!(matches!(
            header(&hex("0d0a0d0a000d0a515549540a 21 11 000c c000")),
            Err(ProxyError::Io(_))
        ));
    }
}
