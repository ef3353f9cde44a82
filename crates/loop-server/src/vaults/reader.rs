//! A managed vault's snapshots, read on the server with the key it holds for the vault: the
//! list, one directory, a search by name, and the nodes a download's archive streams. A
//! customer-key vault cannot be read here (`409 customer_key`): the server never had its key.
//!
//! An opened vault is kept with its index while the vault's index files stay the same, so a
//! reader moving from directory to directory costs one listing of the index files and the
//! trees it opens, not a reload of the index. The tenant key is still asked for at every
//! open, so an erased tenant's vault is unreadable at once. An index file that cannot be read
//! is skipped with a warning in the log, as a restore skips it.

use std::ops::ControlFlow;
use std::sync::Arc;

use loop_api::{KeyCustody, Vault};
use loop_repo::keys::Secret;
use loop_repo::snapshot::Snapshot;
use loop_repo::tree::{Node, NodeKind};
use loop_repo::{FileKind, Id, Repository, Storage as _};

use crate::error::{ApiError, ApiResult};
use crate::managed_keys::managed_kek;
use crate::state::AppState;

use super::opened::Opened;
use super::opened::walk;

/// Entries a directory page shows at most; the rest are on the pages after it.
pub const DIR_PAGE: usize = 1000;

/// Matches a search returns at most.
pub const FOUND_MAX: usize = 500;

/// Why the server cannot read a vault whose key the customer holds.
pub fn customer_key() -> ApiError {
    ApiError::conflict(
        "customer_key",
        "the server cannot read a vault whose key the customer holds",
    )
}

/// Opens the managed vault `v` (or takes it as kept, when its index files did not change).
pub async fn open(state: &AppState, v: &Vault) -> ApiResult<Arc<Opened>> {
    if v.key_custody != KeyCustody::Managed {
        return Err(customer_key());
    }
    let kek = managed_kek(state, v).await?;
    let dest = state
        .destinations
        .get(&v.destination)
        .ok_or_else(|| ApiError::Internal(format!("destination {} is gone", v.destination)))?;
    let storage = Arc::new(dest.repo_storage(&v.id)?);
    let kept = state
        .readers
        .get(&v.id)
        .filter(|k| k.destination == v.destination);
    let destination = v.destination.clone();
    let vault = v.id.clone();
    let opened = tokio::task::spawn_blocking(move || -> loop_repo::Result<Arc<Opened>> {
        let mut names: Vec<String> = storage
            .list(FileKind::Index)?
            .into_iter()
            .map(|o| o.name)
            .collect();
        names.sort_unstable();
        if let Some(k) = kept.filter(|k| k.index_files == names) {
            return Ok(k);
        }
        let repo =
            Repository::open(storage, Secret::RawKey(&kek))?.with_tree_limit(super::TREE_LIMIT);
        // A damaged index file costs only what it alone lists (a 404 or a failed download of
        // that), as in a restore; `loop check` and `loop repair index` deal with it.
        let (index, warnings) = repo.load_index_lenient(&Default::default())?;
        for w in warnings {
            tracing::warn!(vault = %vault, "reading the vault: {w}");
        }
        Ok(Arc::new(Opened {
            repo,
            index,
            index_files: names,
            destination,
        }))
    })
    .await??;
    state.readers.keep(&v.id, opened.clone());
    Ok(opened)
}

/// Runs `f` on the opened vault off the async threads.
pub async fn with<T: Send + 'static>(
    opened: &Arc<Opened>,
    f: impl FnOnce(&Opened) -> loop_repo::Result<T> + Send + 'static,
) -> ApiResult<T> {
    let o = opened.clone();
    Ok(tokio::task::spawn_blocking(move || f(&o)).await??)
}

/// The vault's snapshots, newest first. A snapshot object the server cannot read (a token
/// holder may write anything) is left out and logged; `loop check` reports it.
pub async fn snapshots(opened: &Arc<Opened>, vault: &str) -> ApiResult<Vec<(Id, Snapshot)>> {
    let list = with(opened, |o| o.repo.list_snapshots()).await?;
    for (name, e) in &list.damaged {
        tracing::warn!(%vault, snapshot = %name, error = %e, "skipping a damaged snapshot");
    }
    let mut snaps = list.snapshots;
    snaps.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(b.0.cmp(&a.0)));
    Ok(snaps)
}

/// The snapshot `id` (64 hex digits) of the vault; 404 for anything else.
pub async fn snapshot(opened: &Arc<Opened>, id: &str) -> ApiResult<(Id, Snapshot)> {
    let id = Id::parse(id).map_err(|_| ApiError::not_found())?;
    let found = with(opened, move |o| match o.repo.load_snapshot(&id) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    })
    .await?;
    found.map(|s| (id, s)).ok_or_else(ApiError::not_found)
}

/// The node at `path` (`/`-separated, from the snapshot's root) of the tree `root`; 404 when
/// there is none.
pub async fn node(opened: &Arc<Opened>, root: Id, path: &str) -> ApiResult<Node> {
    let path = path.to_string();
    with(opened, move |o| {
        loop_repo::restore::find_node(&o.repo, &o.index, &root, &path)
    })
    .await?
    .ok_or_else(ApiError::not_found)
}

/// One entry of a directory as a page lists it.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub kind: NodeKind,
    pub size: u64,
    pub mtime: chrono::DateTime<chrono::Utc>,
}

impl Entry {
    fn of(name: String, n: &Node) -> Entry {
        Entry {
            name,
            kind: n.kind,
            size: n.size,
            mtime: chrono::DateTime::from_timestamp_nanos(n.mtime_ns),
        }
    }
}

/// A directory's entries, directories first, each group by name; `from` and at most
/// [`DIR_PAGE`] of them, with the number of all.
pub async fn directory(
    opened: &Arc<Opened>,
    dir: &Node,
    from: usize,
) -> ApiResult<(Vec<Entry>, usize)> {
    let Some(tree) = dir.subtree.filter(|_| dir.kind == NodeKind::Dir) else {
        return Err(ApiError::not_found());
    };
    with(opened, move |o| {
        let t = o.repo.load_tree(&o.index, &tree)?;
        let all = t.nodes.len();
        let mut order: Vec<&Node> = t.nodes.iter().collect();
        // Stable: each group keeps the tree's name order.
        order.sort_by_key(|n| n.kind != NodeKind::Dir);
        let page = order
            .into_iter()
            .skip(from)
            .take(DIR_PAGE)
            .map(|n| Entry::of(n.name.to_string(), n))
            .collect();
        Ok((page, all))
    })
    .await
}

/// The entries below the directory `top` whose name holds `query` (ignoring case), as
/// (path from the snapshot's root, entry), in walk order; at most [`FOUND_MAX`], and whether
/// there were more.
pub async fn search(
    opened: &Arc<Opened>,
    top: Node,
    at: &str,
    query: &str,
) -> ApiResult<(Vec<(String, Entry)>, bool)> {
    let needle = query.to_lowercase();
    let at = at.trim_end_matches('/').as_bytes().to_vec();
    with(opened, move |o| {
        let mut found = Vec::new();
        let mut more = false;
        let depth0 = at.len();
        walk::<loop_repo::Error>(o, at, top, &mut |path, n| {
            if path.len() == depth0 {
                return Ok(ControlFlow::Continue(()));
            }
            let name = n.name.to_string();
            if name.to_lowercase().contains(&needle) {
                if found.len() == FOUND_MAX {
                    more = true;
                    return Ok(ControlFlow::Break(()));
                }
                found.push((
                    String::from_utf8_lossy(path).into_owned(),
                    Entry::of(name, n),
                ));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok((found, more))
    })
    .await
}
