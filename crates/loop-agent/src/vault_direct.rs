//! Direct transfers (docs/PROTOCOL.md): when the server says a vault's destination takes
//! them, packs go to and come from the store with presigned URLs; the server still checks
//! every pack before it is stored, and every read before it is redirected.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use loop_api::{CompleteDirectUpload, DIRECT_HEADER, DirectUpload, DirectUploadRequest};
use loop_repo::{Error, FileKind, Result, RetryBudget};
use reqwest::StatusCode;
use reqwest::blocking::Response;

use crate::api;
use crate::retry::send_retrying;
use crate::vault::VaultStorage;

impl VaultStorage {
    pub(crate) fn direct_for(&self, kind: FileKind) -> bool {
        kind == FileKind::Pack && !self.server_only && self.direct.load(Ordering::Relaxed)
    }

    fn store_client(&self, object: &str) -> Result<&reqwest::blocking::Client> {
        if let Some(c) = self.store_client.get() {
            return Ok(c);
        }
        let client = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .timeout(crate::connection::REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("loop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Storage {
                object: object.into(),
                message: format!("HTTP client for the store: {e}"),
            })?;
        Ok(self.store_client.get_or_init(|| client))
    }

    /// Asks the server for an upload URL, puts the pack there, and has the server check it
    /// and store it: true once stored, false when the server no longer offers direct
    /// transfers for this vault, or when this pack's upload to the store failed after its URL
    /// expired (send it through the server). An upload the server calls expired at its
    /// completion (`410 upload_expired`: a slow link, a long pause, or a promotion that moved
    /// the vault meanwhile) is made again with a new URL, up to [`DIRECT_TRIES`] times in
    /// all.
    pub(crate) fn put_direct(&self, name: &str, body: &bytes::Bytes, hash: &str) -> Result<bool> {
        let mut tries = 1;
        loop {
            match self.upload_direct(name, body, hash)? {
                Direct::Stored => return Ok(true),
                Direct::Unavailable | Direct::Outlived => return Ok(false),
                Direct::Expired(e) if tries >= DIRECT_TRIES => {
                    return Err(Error::Storage {
                        object: self.object(FileKind::Pack, name),
                        message: format!("{e} ({DIRECT_TRIES} uploads in a row)"),
                    });
                }
                Direct::Expired(_) => tries += 1,
            }
        }
    }

    /// One direct upload of a pack, from asking for its URL to its completion.
    fn upload_direct(&self, name: &str, body: &bytes::Bytes, hash: &str) -> Result<Direct> {
        let object = self.object(FileKind::Pack, name);
        let url = self.url(FileKind::Pack, Some(name));
        let ask = DirectUploadRequest {
            size: body.len() as u64,
            hash: hash.into(),
        };
        let (resp, _) = self.send(&object, || {
            self.conn.client.post(format!("{url}/direct")).json(&ask)
        })?;
        if resp.status() == StatusCode::CONFLICT {
            let e = api::problem(resp);
            if e.code() == Some("direct_unavailable") {
                self.direct.store(false, Ordering::Relaxed);
                return Ok(Direct::Unavailable);
            }
            return Err(Error::Storage {
                object,
                message: e.to_string(),
            });
        }
        if !resp.status().is_success() {
            return Err(self.fail(&object, resp));
        }
        // The server's clock as it answered, against which the URL's expiry counts.
        let server_now = resp
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map_or_else(chrono::Utc::now, |d| d.to_utc());
        let upload: DirectUpload = crate::api::json_of(resp).map_err(|e| Error::Storage {
            object: object.clone(),
            message: format!("the upload URL: {e}"),
        })?;
        let client = self.store_client(&object)?;
        // When the URL expires: its life as the server's clock counts it (this machine's may
        // differ), from now. The store checks a presigned URL as each request starts, so no
        // try of the upload starts after that; one that fails then is made again with a new
        // URL.
        let left = (upload.expires_at - server_now)
            .to_std()
            .unwrap_or_default();
        let expires = Instant::now() + left;
        let budget = RetryBudget {
            timeout: self.retry.timeout.min(left),
            ..self.retry
        };
        let expired = || Instant::now() >= expires;
        let put = send_retrying(budget, &object, || {
            let mut r = self.upload(client.put(&upload.url), body);
            for (k, v) in &upload.headers {
                // The body sets its own Content-Length, the one the URL was signed for.
                if !k.eq_ignore_ascii_case("content-length") {
                    r = r.header(k, v);
                }
            }
            r
        });
        // A try that failed after the URL expired (at a slow limit, a pack's upload can take
        // longer than the URL lives; the store may refuse it for that, or be away): a new URL
        // would expire as well, so the pack goes through the server, whose uploads have no
        // such deadline.
        let put = match put {
            Err(_) if expired() => return Ok(Direct::Outlived),
            Ok((put, _)) if !put.status().is_success() && expired() => return Ok(Direct::Outlived),
            put => put?.0,
        };
        if !put.status().is_success() {
            return Err(store_refused(&object, "upload", put));
        }
        let done = CompleteDirectUpload {
            upload_id: upload.upload_id,
        };
        let (resp, _) = self.send(&object, || {
            self.conn
                .client
                .post(format!("{url}/direct/complete"))
                .json(&done)
        })?;
        if resp.status().is_success() {
            return Ok(Direct::Stored);
        }
        if resp.status() == StatusCode::GONE {
            let e = api::problem(resp);
            if e.code() == Some("upload_expired") {
                return Ok(Direct::Expired(e.to_string()));
            }
            return Err(Error::Storage {
                object,
                message: e.to_string(),
            });
        }
        Err(self.fail(&object, resp))
    }

    /// Reads an object (a `range` of it) through the server, or, for a pack of a vault with
    /// direct transfers, from the store at the URL the server redirects to. A store's
    /// answer is returned only when it succeeded.
    /// `len` bounds what is read, for the time a paced read may take.
    pub(crate) fn read(
        &self,
        kind: FileKind,
        name: &str,
        range: Option<&str>,
        len: u64,
    ) -> Result<Response> {
        let object = self.object(kind, name);
        let direct = self.direct_for(kind);
        let (resp, _) = self.send(&object, || {
            let mut r = self.download(self.conn.client.get(self.url(kind, Some(name))), len);
            if let Some(range) = range {
                r = r.header(reqwest::header::RANGE, range);
            }
            if direct {
                r = r.header(DIRECT_HEADER, "1");
            }
            r
        })?;
        if resp.status() != StatusCode::TEMPORARY_REDIRECT {
            return Ok(resp);
        }
        if self.server_only {
            return Err(Error::Storage {
                object,
                message: "the server redirected the read elsewhere, which this client does \
                          not follow from it"
                    .into(),
            });
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| Error::Storage {
                object: object.clone(),
                message: "the server redirected without a location".into(),
            })?
            .to_string();
        let client = self.store_client(&object)?;
        let (got, _) = self.send_to(&object, || {
            let r = self.download(client.get(&location), len);
            match range {
                Some(range) => r.header(reqwest::header::RANGE, range),
                None => r,
            }
        })?;
        if got.status() == StatusCode::NOT_FOUND {
            return Err(Error::NotFound(object));
        }
        if !got.status().is_success() {
            return Err(store_refused(&object, "read", got));
        }
        Ok(got)
    }
}

/// How many direct uploads of one pack may expire before its upload fails.
const DIRECT_TRIES: u32 = 3;

/// How one direct upload ended, short of an error.
enum Direct {
    Stored,
    /// The server no longer offers direct transfers for this vault.
    Unavailable,
    /// The server refused the completion as too late: a new upload may succeed.
    Expired(String),
    /// The upload to the store failed after the URL's time: this pack goes through the
    /// server.
    Outlived,
}

/// A store's refusal: its status only (its XML body names nothing the user can act on).
fn store_refused(object: &str, what: &str, resp: Response) -> Error {
    Error::Storage {
        object: object.into(),
        message: format!(
            "the store refused the direct {what}: HTTP {}",
            resp.status()
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Arc;

    use super::*;
    use crate::{Connection, Trust};

    /// A TLS server on loopback (self-signed, pinned by the client) that answers every
    /// request with a redirect to `location`; its URL and pin.
    fn redirecting_to(location: String) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pin = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            cert.der(),
        ));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], der)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for sock in listener.incoming() {
                let Ok(mut sock) = sock else { return };
                let mut conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::Stream::new(&mut conn, &mut sock);
                let mut reader = BufReader::new(&mut tls);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let _ = write!(
                    tls,
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                let _ = tls.flush();
            }
        });
        (format!("https://127.0.0.1:{port}"), pin)
    }

    /// A server that is not trusted with this machine's network (a remote another operator
    /// runs) redirects a read to an address of this machine's own network: a client that
    /// goes through the server only refuses, and never connects there; it never uploads
    /// directly either. (An ordinary client follows, which is how direct reads work.)
    #[test]
    fn a_server_only_client_follows_no_redirect_and_uploads_nothing_directly() {
        // Counts the connections made to it, and closes each at once.
        let inside = TcpListener::bind("127.0.0.1:0").unwrap();
        let location = format!("http://{}/metadata", inside.local_addr().unwrap());
        let reached = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = reached.clone();
        std::thread::spawn(move || {
            for sock in inside.incoming() {
                drop(sock);
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let (url, pin) = redirecting_to(location);
        let name = "ab".repeat(32);
        let storage = |server_only: bool| {
            let conn = Connection::new(&url, &Trust::Fingerprint(pin.clone())).unwrap();
            let v = VaultStorage::new(conn, "vt_x", "t").with_retry(RetryBudget {
                max_retries: 0,
                timeout: Duration::from_secs(5),
            });
            v.direct.store(true, Ordering::Relaxed);
            if server_only {
                v.through_server_only()
            } else {
                v
            }
        };

        let guarded = storage(true);
        assert!(!guarded.direct_for(FileKind::Pack));
        let refused = guarded.read(FileKind::Pack, &name, None, 100);
        assert!(refused.is_err());
        assert_eq!(
            reached.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );

        let ordinary = storage(false);
        assert!(ordinary.direct_for(FileKind::Pack));
        let _ = ordinary.read(FileKind::Pack, &name, None, 100);
        assert!(
            reached.load(Ordering::SeqCst) > 0,
            "an ordinary client follows the redirect"
        );
    }
}
