//! What a token may do on the vault protocol: the protocol's permission table, beside the
//! management API's ([`crate::domain::RoleRules`]) and applied by the same [`super::Caller`].

use loop_repo::FileKind;

use crate::domain::TokenPermission;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Op {
    List,
    Read,
    Write,
    Delete,
    /// Announce (or read the announcements of) deletions a maintainer may carry out once
    /// their grace period has passed.
    Announce,
}

/// The permission table of the vault protocol.
///
/// - backup: read the repository's config, keys, indexes, locks and prune plans (it needs
///   them to encrypt and deduplicate); list packs (their names are in the indexes it reads;
///   a backup checks that the packs it relies on exist before it saves a snapshot); write
///   packs, indexes, snapshots and locks. It cannot list or read snapshots, read packs,
///   or overwrite or delete anything but the lock markers it wrote itself.
/// - restore: read and list everything; write locks, and rewrite or delete its own.
/// - maintain (a customer-key vault's maintainer agent): read and list everything; write
///   packs, indexes, prune plans and locks; delete snapshots, indexes, packs and plans, each
///   only within the server's limits (the snapshot's recorded age, an announced deletion past
///   its grace), which the vault protocol checks per object; announce those deletions. Never
///   keys or the config, and never a stored object rewritten.
/// - replicate (another server syncing the vault): read and list everything; write every
///   kind but lock markers, create-once; delete every kind it writes (the config too, so the
///   server that pushed a copy can erase all of it), but only what a replication token wrote
///   (decided per object).
/// - manage: everything, including deletion (forget, prune), key slots and anyone's lock.
///
/// Which marker is whose, and a maintainer's limits, are decided per object, not here.
pub fn allowed(perms: &[TokenPermission], op: Op, kind: FileKind) -> bool {
    use FileKind::*;
    let has = |p| perms.contains(&p);
    if has(TokenPermission::Manage) {
        return true;
    }
    let backup = has(TokenPermission::Backup);
    let restore = has(TokenPermission::Restore);
    let maintain = has(TokenPermission::Maintain);
    let replicate = has(TokenPermission::Replicate);
    match (op, kind) {
        (Op::List | Op::Read, _) if replicate => true,
        (Op::Write, Config | Key | Pack | Index | Plan | Snapshot) if replicate => true,
        (Op::Delete, Config | Key | Pack | Index | Plan | Snapshot) if replicate => true,
        (Op::List | Op::Read, _) if maintain => true,
        (Op::List | Op::Read, Config | Key | Index | Lock | Plan) => backup || restore,
        (Op::List, Pack) => backup || restore,
        (Op::List | Op::Read, Snapshot | Pack) => restore,
        (Op::Write, Pack | Index | Plan) if maintain => true,
        (Op::Delete | Op::Announce, Snapshot | Index | Pack | Plan) => maintain,
        (Op::Write, Pack | Index | Snapshot) => backup,
        (Op::Write | Op::Delete, Lock) => backup || restore || maintain,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenPermission::*;

    #[test]
    fn a_backup_token_appends_but_never_reads_or_deletes_data() {
        let p = [Backup];
        assert!(allowed(&p, Op::Write, FileKind::Pack));
        assert!(allowed(&p, Op::Write, FileKind::Snapshot));
        assert!(allowed(&p, Op::Read, FileKind::Index));
        assert!(
            allowed(&p, Op::List, FileKind::Pack),
            "names only, as in the indexes"
        );
        assert!(!allowed(&p, Op::List, FileKind::Snapshot));
        for kind in [FileKind::Pack, FileKind::Snapshot] {
            assert!(!allowed(&p, Op::Read, kind));
            assert!(!allowed(&p, Op::Delete, kind));
        }
        assert!(!allowed(&p, Op::Write, FileKind::Key));
        assert!(!allowed(&p, Op::Write, FileKind::Config));
        assert!(!allowed(&p, Op::Delete, FileKind::Index));
    }

    #[test]
    fn a_maintainer_reads_and_prunes_but_never_touches_keys_config_or_new_snapshots() {
        let p = [Maintain];
        for kind in FileKind::ALL {
            assert!(allowed(&p, Op::Read, kind), "{kind:?}");
            assert!(allowed(&p, Op::List, kind), "{kind:?}");
        }
        for kind in [
            FileKind::Pack,
            FileKind::Index,
            FileKind::Plan,
            FileKind::Lock,
        ] {
            assert!(allowed(&p, Op::Write, kind), "{kind:?}");
        }
        for kind in [FileKind::Key, FileKind::Config, FileKind::Snapshot] {
            assert!(!allowed(&p, Op::Write, kind), "{kind:?}");
        }
        for kind in [FileKind::Key, FileKind::Config] {
            assert!(!allowed(&p, Op::Delete, kind), "{kind:?}");
        }
        // Allowed here, limited per object by the vault protocol.
        assert!(allowed(&p, Op::Delete, FileKind::Snapshot));
        assert!(allowed(&p, Op::Delete, FileKind::Pack));
        assert!(allowed(&p, Op::Announce, FileKind::Pack));
    }

    #[test]
    fn a_replication_token_reads_and_writes_everything_but_lock_markers() {
        let p = [Replicate];
        for kind in FileKind::ALL {
            assert!(allowed(&p, Op::Read, kind), "{kind:?}");
            assert!(allowed(&p, Op::List, kind), "{kind:?}");
            let data = kind != FileKind::Lock;
            assert_eq!(allowed(&p, Op::Write, kind), data, "{kind:?}");
            // What it writes it may remove (the config too: the erasure of a pushed copy).
            assert_eq!(allowed(&p, Op::Delete, kind), data, "{kind:?}");
            // Removing what it wrote is not announcing what a maintainer may remove.
            assert!(!allowed(&p, Op::Announce, kind), "{kind:?}");
        }
    }

    #[test]
    fn a_restore_token_reads_but_does_not_write_data() {
        let p = [Restore];
        assert!(allowed(&p, Op::Read, FileKind::Pack));
        assert!(allowed(&p, Op::List, FileKind::Snapshot));
        assert!(!allowed(&p, Op::Write, FileKind::Pack));
        assert!(!allowed(&p, Op::Delete, FileKind::Snapshot));
        assert!(allowed(&p, Op::Write, FileKind::Lock));
    }
}
