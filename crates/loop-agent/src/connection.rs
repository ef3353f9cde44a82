//! HTTPS connections to the server, with the three ways of trusting it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// How the client decides the server is the right one.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The server certificate's SHA-256 (hex; colons allowed), as `loop server` prints it.
    Fingerprint(String),
    /// A PEM file of trusted certificates (a private CA, or the server's own certificate).
    CaFile(PathBuf),
    /// The operating system's trust store.
    System,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Invalid(String),
    #[error("{path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("HTTP client: {0}")]
    Client(String),
}

/// A client bound to one server.
#[derive(Clone)]
pub struct Connection {
    pub base: String,
    pub client: reqwest::blocking::Client,
}

#[derive(Debug)]
struct PinnedCert {
    sha256: Vec<u8>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, end_entity);
        if got.as_ref() == self.sha256.as_slice() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server certificate does not match the pinned fingerprint".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn tls_config(trust: &Trust) -> Result<Option<rustls::ClientConfig>, ConnectError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConnectError::Client(e.to_string()))?;
    let mut config = match trust {
        Trust::System => return Ok(None),
        Trust::Fingerprint(hexfp) => {
            let clean: String = hexfp.chars().filter(|c| *c != ':').collect();
            let sha256 = hex::decode(clean.to_ascii_lowercase())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    ConnectError::Invalid("the server fingerprint must be 64 hex digits".into())
                })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCert { sha256, provider }))
                .with_no_client_auth()
        }
        Trust::CaFile(path) => {
            let err = |message: String| ConnectError::CaFile {
                path: path.clone(),
                message,
            };
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).map_err(|e| err(e.to_string()))? {
                roots
                    .add(cert.map_err(|e| err(e.to_string()))?)
                    .map_err(|e| err(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(err("no certificate in the file".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(config))
}

/// How long a request may take from connecting to the end of its answer, unless it moves
/// bytes at a bandwidth limit (`VaultStorage::paced`).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

impl Connection {
    /// A client for the server at `base` (`https://HOST:PORT`).
    pub fn new(base: &str, trust: &Trust) -> Result<Connection, ConnectError> {
        Connection::build(base, trust, |b| b)
    }

    /// [`Connection::new`], with names resolved by `resolver` (which may refuse addresses),
    /// and never through a proxy of the environment, which would resolve them itself.
    pub fn with_resolver<R: reqwest::dns::Resolve + 'static>(
        base: &str,
        trust: &Trust,
        resolver: Arc<R>,
    ) -> Result<Connection, ConnectError> {
        Connection::build(base, trust, |b| b.no_proxy().dns_resolver(resolver))
    }

    fn build(
        base: &str,
        trust: &Trust,
        adjust: impl FnOnce(reqwest::blocking::ClientBuilder) -> reqwest::blocking::ClientBuilder,
    ) -> Result<Connection, ConnectError> {
        let base = base.trim_end_matches('/').to_string();
        if !base.starts_with("https://") {
            return Err(ConnectError::Invalid(format!(
                "{base}: the server address must start with https://"
            )));
        }
        let mut b = reqwest::blocking::Client::builder()
            .https_only(true)
            // A vault read may be redirected to a presigned store URL, which the vault
            // storage follows itself with a client that trusts the store (vault_direct.rs).
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(30))
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("loop/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls_config(trust)? {
            b = b.tls_backend_preconfigured(tls);
        }
        let client = adjust(b)
            .build()
            .map_err(|e| ConnectError::Client(e.to_string()))?;
        Ok(Connection { base, client })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::sign::CertifiedKey;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[derive(Debug)]
    struct Always(Arc<CertifiedKey>);

    impl rustls::server::ResolvesServerCert for Always {
        fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    fn key_pair() -> rcgen::KeyPair {
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap()
    }

    /// Shakes hands, over `version`, with a server that presents `cert` and signs with
    /// `signer`'s key, as a client pinning `cert`'s fingerprint.
    fn handshake(
        cert: &rcgen::Certificate,
        signer: &rcgen::KeyPair,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Result<(), std::io::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                signer.serialize_der(),
            )))
            .unwrap();
        let certified = CertifiedKey::new(vec![cert.der().clone()], key);
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Always(Arc::new(certified))));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let serving = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = rustls::ServerConnection::new(Arc::new(server)).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            let mut byte = [0u8; 1];
            if tls.read_exact(&mut byte).is_ok() {
                let _ = tls.write_all(&byte);
            }
        });
        let pin = hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            cert.der(),
        ));
        let client = tls_config(&Trust::Fingerprint(pin)).unwrap().unwrap();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(client), "localhost".try_into().unwrap())
                .unwrap();
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        let answered = tls.write_all(b"x").and_then(|()| {
            let mut byte = [0u8; 1];
            tls.read_exact(&mut byte).map(|()| assert_eq!(&byte, b"x"))
        });
        drop(sock);
        serving.join().unwrap();
        answered
    }

    #[test]
    fn a_pinned_certificate_is_trusted_only_from_the_holder_of_its_key() {
        let owner = key_pair();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&owner)
            .unwrap();
        let thief = key_pair();
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            handshake(&cert, &owner, version)
                .unwrap_or_else(|e| panic!("{version:?} with the right key: {e}"));
            // A copy of the certificate (it is public) is not enough to pose as the server.
            let e = handshake(&cert, &thief, version).unwrap_err();
            let refused = e
                .get_ref()
                .and_then(|e| e.downcast_ref::<rustls::Error>())
                .unwrap_or_else(|| panic!("{version:?}: not a TLS error: {e}"));
            assert!(
                matches!(
                    refused,
                    rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature)
                ),
                "{version:?}: {refused:?}"
            );
        }
    }
}
