//! Destinations: where vaults live. Each is an `object_store` backend plus a prefix; a
//! vault's objects sit under `PREFIX/VAULT_ID/` in the repository layout of `loop-repo`.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path as StorePath;

use crate::config::{BackendConfig, DestinationConfig};

pub struct Destination {
    pub name: String,
    pub jurisdiction: String,
    pub backend: &'static str,
    pub store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Destination {
    /// The store path of a vault object (`rel` as `FileKind::path` gives it).
    pub fn path(&self, vault_id: &str, rel: &str) -> StorePath {
        StorePath::from(self.vault_prefix(vault_id) + "/" + rel)
    }

    pub fn vault_prefix(&self, vault_id: &str) -> String {
        if self.prefix.is_empty() {
            vault_id.to_string()
        } else {
            format!("{}/{vault_id}", self.prefix)
        }
    }

    /// The vault as `loop-repo` storage, for the server's own engine calls (creating a
    /// managed vault, listing its snapshots). Blocking: call from a blocking task.
    pub fn repo_storage(&self, vault_id: &str) -> loop_repo::Result<loop_repo::ObjectStorage> {
        loop_repo::ObjectStorage::from_store(
            self.store.clone(),
            &self.vault_prefix(vault_id),
            &format!("{}:{vault_id}", self.name),
        )
    }
}

pub struct Destinations(BTreeMap<String, Arc<Destination>>);

#[derive(Debug, thiserror::Error)]
#[error("destination {name}: {message}")]
pub struct DestinationError {
    name: String,
    message: String,
}

impl Destinations {
    pub fn open(configs: &[DestinationConfig]) -> Result<Destinations, DestinationError> {
        let mut map = BTreeMap::new();
        for c in configs {
            let err = |message: String| DestinationError {
                name: c.name.clone(),
                message,
            };
            let (backend, store, prefix): (&'static str, Arc<dyn ObjectStore>, String) =
                match &c.backend {
                    BackendConfig::Local { path } => {
                        std::fs::create_dir_all(path)
                            .map_err(|e| err(format!("{}: {e}", path.display())))?;
                        let fs = object_store::local::LocalFileSystem::new_with_prefix(path)
                            .map_err(|e| err(e.to_string()))?
                            .with_fsync(true);
                        ("local", Arc::new(fs), String::new())
                    }
                    BackendConfig::S3 {
                        bucket,
                        prefix,
                        endpoint,
                        region,
                        access_key_id,
                        secret_access_key,
                        allow_http,
                    } => {
                        let mut b = object_store::aws::AmazonS3Builder::new()
                            .with_bucket_name(bucket)
                            .with_region(region.clone().unwrap_or_else(|| "us-east-1".into()))
                            .with_access_key_id(access_key_id)
                            .with_secret_access_key(secret_access_key.expose())
                            .with_allow_http(*allow_http);
                        if let Some(e) = endpoint {
                            b = b.with_endpoint(e).with_virtual_hosted_style_request(false);
                        }
                        let s3 = b.build().map_err(|e| err(e.to_string()))?;
                        ("s3", Arc::new(s3), prefix.trim_matches('/').to_string())
                    }
                };
            map.insert(
                c.name.clone(),
                Arc::new(Destination {
                    name: c.name.clone(),
                    jurisdiction: c.jurisdiction.clone(),
                    backend,
                    store,
                    prefix,
                }),
            );
        }
        Ok(Destinations(map))
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Destination>> {
        self.0.get(name)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<Destination>> {
        self.0.values()
    }
}
