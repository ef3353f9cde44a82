//! `[[destinations]]`: where vaults are stored (a local directory or an S3 bucket), each
//! table read with every key checked against its backend.

use std::path::PathBuf;

use serde::Deserialize;

use super::SecretString;

/// A `[[destinations]]` table. Read through [`RawDestination`], which knows every key of
/// every backend: serde cannot refuse unknown keys beside a flattened, tagged backend, and a
/// mistyped optional key (`prefx`, `direct_url_sec`) must stop the server, not fall back to
/// its default.
#[derive(Clone, Debug, Deserialize)]
#[serde(try_from = "RawDestination")]
pub struct DestinationConfig {
    pub name: String,
    /// eu, uk, us, ...: where the data lives, shown to customers.
    pub jurisdiction: String,
    pub backend: BackendConfig,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDestination {
    name: String,
    jurisdiction: String,
    backend: String,
    path: Option<PathBuf>,
    bucket: Option<String>,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<SecretString>,
    allow_http: Option<bool>,
    retries: Option<usize>,
    retry_secs: Option<u64>,
    direct: Option<bool>,
    direct_url_secs: Option<u64>,
}

impl TryFrom<RawDestination> for DestinationConfig {
    type Error = String;

    fn try_from(r: RawDestination) -> Result<Self, String> {
        let name = r.name;
        let s3_keys = [
            ("bucket", r.bucket.is_some()),
            ("prefix", r.prefix.is_some()),
            ("endpoint", r.endpoint.is_some()),
            ("region", r.region.is_some()),
            ("access_key_id", r.access_key_id.is_some()),
            ("secret_access_key", r.secret_access_key.is_some()),
            ("allow_http", r.allow_http.is_some()),
            ("retries", r.retries.is_some()),
            ("retry_secs", r.retry_secs.is_some()),
            ("direct", r.direct.is_some()),
            ("direct_url_secs", r.direct_url_secs.is_some()),
        ];
        let misplaced = |key: &str, backend: &str| {
            format!("destination {name}: `{key}` is not a key of a {backend} destination")
        };
        let missing = |key: &str| format!("destination {name}: `{key}` is missing");
        let backend = match r.backend.as_str() {
            "local" => {
                if let Some((key, _)) = s3_keys.iter().find(|(_, given)| *given) {
                    return Err(misplaced(key, "local"));
                }
                BackendConfig::Local {
                    path: r.path.ok_or_else(|| missing("path"))?,
                }
            }
            "s3" => {
                if r.path.is_some() {
                    return Err(misplaced("path", "s3"));
                }
                BackendConfig::S3 {
                    bucket: r.bucket.ok_or_else(|| missing("bucket"))?,
                    prefix: r.prefix.unwrap_or_default(),
                    endpoint: r.endpoint,
                    region: r.region,
                    access_key_id: r.access_key_id.ok_or_else(|| missing("access_key_id"))?,
                    secret_access_key: r
                        .secret_access_key
                        .ok_or_else(|| missing("secret_access_key"))?,
                    allow_http: r.allow_http.unwrap_or(false),
                    retries: r.retries.unwrap_or_else(default_retries),
                    retry_secs: r.retry_secs.unwrap_or_else(default_retry_secs),
                    direct: r.direct.unwrap_or(false),
                    direct_url_secs: r.direct_url_secs.unwrap_or_else(default_direct_url_secs),
                }
            }
            other => {
                return Err(format!(
                    "destination {name}: backend {other:?} is not one of local, s3"
                ));
            }
        };
        Ok(DestinationConfig {
            name,
            jurisdiction: r.jurisdiction,
            backend,
        })
    }
}

#[derive(Clone, Debug)]
pub enum BackendConfig {
    Local {
        path: PathBuf,
    },
    S3 {
        bucket: String,
        prefix: String,
        endpoint: Option<String>,
        region: Option<String>,
        access_key_id: String,
        secret_access_key: SecretString,
        /// Allow plain HTTP to the endpoint (a loopback test store only).
        allow_http: bool,
        /// Retries of a failed request to the store (10 by default).
        retries: usize,
        /// Seconds after which no retry starts (180 by default).
        retry_secs: u64,
        /// Direct transfers: clients upload packs to the store with presigned URLs (the server
        /// checks each and moves it into place) and download them the same way, so pack bytes
        /// do not pass through the server (docs/SECURITY.md).
        direct: bool,
        /// How long a presigned URL stays valid (900 seconds by default).
        direct_url_secs: u64,
    },
}

fn default_direct_url_secs() -> u64 {
    900
}

fn default_retries() -> usize {
    loop_repo::RetryBudget::default().max_retries
}

fn default_retry_secs() -> u64 {
    loop_repo::RetryBudget::default().timeout.as_secs()
}
