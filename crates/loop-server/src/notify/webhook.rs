//! Webhook deliveries: a JSON body, signed, posted to the target's URL.
//!
//! The signature (`Loop-Signature: t=<unix seconds>,v1=<hex>`) is HMAC-SHA256 keyed with
//! the target's secret over `<t>.<body>`; a receiver recomputes it and refuses old `t` to
//! stop replays (docs/PROTOCOL.md). A tenant's URL must not reach into the provider's own
//! network: unless `notify.allow_private_webhooks`, addresses in loopback, private,
//! link-local, shared and unique-local ranges are refused, both when the URL is an address
//! and for every address a name resolves to (checked at connect time, so a name that
//! changes its answer cannot slip past). Redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::hmac;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Everything about a webhook a receiver is told in headers, besides the body.
pub struct Post<'a> {
    pub url: &'a str,
    pub secret: &'a [u8],
    pub delivery_id: &'a str,
    pub event_kind: &'a str,
    pub body: Vec<u8>,
    /// Seconds since the epoch, signed with the body.
    pub timestamp: i64,
}

/// Why a post did not succeed; `status` when the receiver answered.
pub struct PostError {
    pub message: String,
    pub status: Option<u16>,
}

/// The HTTP client for webhooks.
pub struct Poster {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

/// The value of `Loop-Signature` for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={timestamp},v1={}", hex::encode(ctx.sign().as_ref()))
}

/// False for addresses a tenant's webhook must not reach by default.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                // 100.64.0.0/10, shared address space (carrier-grade NAT).
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                // 192.0.0.0/24, protocol assignments.
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                // 198.18.0.0/15, benchmarking.
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            // 2002::/16 (6to4) carries an IPv4 address in its next 32 bits.
            if s[0] == 0x2002 {
                let [a, b] = s[1].to_be_bytes();
                let [c, d] = s[2].to_be_bytes();
                return is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)));
            }
            !(v6.is_loopback()
                // ::/96, IPv4-compatible (deprecated): an IPv4 address in the low 32 bits.
                || s[..6] == [0; 6]
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                // 64:ff9b::/96 translates to IPv4 addresses, which could be private.
                || (s[0] == 0x64 && s[1] == 0xff9b)
                // 2001:db8::/32, documentation; 2001::/32, Teredo (tunnels to IPv4).
                || (s[0] == 0x2001 && (s[1] == 0xdb8 || s[1] == 0))
                // 100::/64, discard-only.
                || (s[0] == 0x100 && s[1..4] == [0; 3]))
        }
    }
}

/// Checks a webhook URL as a target is created or changed: `https` or `http`, a host, no
/// credentials in it, and (unless allowed) no private address written as its host.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), String> {
    let u = reqwest::Url::parse(url).map_err(|e| format!("the URL does not read: {e}"))?;
    if !matches!(u.scheme(), "https" | "http") {
        return Err("a webhook URL is https:// (or http://)".into());
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err("put no credentials in a webhook URL: the signature authenticates".into());
    }
    if url.len() > 2000 {
        return Err("the URL is longer than 2000 characters".into());
    }
    let host = u.host_str().ok_or("the URL has no host")?;
    let ip = if host.eq_ignore_ascii_case("localhost") {
        Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok()
    };
    match ip {
        Some(ip) if !allow_private && !is_public(ip) => Err(format!(
            "{ip} is a private, loopback or reserved address; webhooks go to public addresses"
        )),
        _ => Ok(()),
    }
}

/// Resolves names like the system does, then drops the addresses a webhook (or a remote)
/// must not reach.
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            // A name that resolves to nothing and one that resolves to internal addresses
            // only get the same answer, so a tenant cannot map the internal names.
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(|found| found.collect())
                .unwrap_or_default();
            let kept: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| allow || is_public(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

impl Poster {
    /// A poster whose tries end after `timeout` (connecting within at most 10 s of it).
    pub fn new(allow_private: bool, timeout: Duration) -> Result<Poster, String> {
        // Never through a proxy of the environment (`HTTPS_PROXY`): the proxy would resolve
        // the receiver's name, past the resolver that keeps webhooks off internal addresses.
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .timeout(timeout)
            .user_agent(concat!("loop-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the webhook client: {e}"))?;
        Ok(Poster {
            client,
            allow_private,
            timeout,
        })
    }

    /// How long a try may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Posts once; a 2xx answer is success.
    pub async fn post(&self, p: Post<'_>) -> Result<u16, PostError> {
        let err = |message: String| PostError {
            message,
            status: None,
        };
        check_url(p.url, self.allow_private).map_err(err)?;
        let answer = self
            .client
            .post(p.url)
            .header("content-type", "application/json")
            .header("loop-delivery", p.delivery_id)
            .header("loop-event", p.event_kind)
            .header("loop-signature", signature(p.secret, p.timestamp, &p.body))
            .body(p.body)
            .send()
            .await
            .map_err(|e| err(describe(&e)))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(status)
        } else {
            Err(PostError {
                message: format!("the receiver answered HTTP {status}"),
                status: Some(status),
            })
        }
    }
}

/// What went wrong, for the delivery log: the kind of failure and its innermost cause.
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    let mut inner = None;
    while let Some(s) = source {
        inner = Some(s.to_string());
        source = s.source();
    }
    match inner {
        Some(i) => format!("{what}: {i}"),
        None => what.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231, test case 2, through the same HMAC the signature uses.
    #[test]
    fn the_hmac_is_rfc_4231s() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            hex::encode(hmac::sign(&key, b"what do ya want for nothing?").as_ref()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    /// A known answer for the header, as docs/PROTOCOL.md shows it; computed independently
    /// with `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret`.
    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        assert_eq!(
            signature(b"secret", 1_700_000_000, br#"{"a":1}"#),
            "t=1700000000,v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
        );
    }

    #[test]
    fn private_and_reserved_addresses_are_refused_unless_allowed() {
        for bad in [
            "http://127.0.0.1/x",
            "http://localhost:8080/",
            "https://10.1.2.3/",
            "https://172.16.0.1/",
            "https://192.168.1.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/",
            "https://[::1]/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://[::10.0.0.1]/",
            "https://[2002:a00:1::]/",
            "https://[2002:7f00:1::1]/",
            "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
            "https://[64:ff9b::a00:1]/",
            "https://[100::1]/",
            "https://0.0.0.0/",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
            assert!(check_url(bad, true).is_ok(), "{bad}");
        }
        for good in [
            "https://hooks.example.com/x",
            "https://93.184.216.34/",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/",
            // 6to4 of a public IPv4 address.
            "https://[2002:5db8:d822::1]/",
        ] {
            assert!(check_url(good, false).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.com/",
            "https://u:p@example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
    }

    /// A name passes the URL check, so the guard at connect time decides: a name that
    /// resolves only to private or loopback addresses gets no connection.
    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_not_connected_unless_allowed() {
        use std::str::FromStr;
        let name = || Name::from_str("localhost").unwrap();
        let refused = GuardedResolver {
            allow_private: false,
        }
        .resolve(name())
        .await
        .err()
        .expect("no address for localhost");
        assert!(
            refused.to_string().contains("no public address"),
            "{refused}"
        );
        let allowed: Vec<SocketAddr> = GuardedResolver {
            allow_private: true,
        }
        .resolve(name())
        .await
        .unwrap()
        .collect();
        assert!(allowed.iter().any(|a| a.ip().is_loopback()), "{allowed:?}");
    }

    /// A receiver's redirect is an answer, not a place to go: the client follows none.
    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        elsewhere.set_nonblocking(true).unwrap();
        let target = format!("http://{}/", elsewhere.local_addr().unwrap());
        let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", receiver.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut c, _) = receiver.accept().await.unwrap();
            let mut buf = vec![0u8; 65536];
            let _ = c.read(&mut buf).await;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            c.write_all(answer.as_bytes()).await.unwrap();
        });
        let poster = Poster::new(true, Duration::from_secs(20)).unwrap();
        let answer = poster
            .post(Post {
                url: &url,
                secret: b"s",
                timestamp: 1,
                delivery_id: "d",
                event_kind: "test",
                body: b"{}".to_vec(),
            })
            .await
            .expect_err("a redirect is no success");
        assert_eq!(answer.status, Some(307));
        // Had the client followed it, the connection would wait in the listener's queue.
        let followed = elsewhere.accept();
        assert_eq!(
            followed.map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "the redirect was followed"
        );
    }
}
