//! `[metrics]`: who may read `/metrics`.

use serde::Deserialize;

use super::SecretString;

/// `/metrics` answers a request from one of `allow_from` (client addresses; by default this
/// machine's), or one that presents `token` as `Authorization: Bearer`; others get 404.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub allow_from: Vec<std::net::IpAddr>,
    pub token: Option<SecretString>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            allow_from: vec![
                std::net::Ipv4Addr::LOCALHOST.into(),
                std::net::Ipv6Addr::LOCALHOST.into(),
            ],
            token: None,
        }
    }
}
