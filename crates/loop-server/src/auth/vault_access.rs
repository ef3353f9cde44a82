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
}

/// The permission table of the vault protocol.
///
/// - backup: read the repository's config, keys, indexes, locks and prune plans (it needs
///   them to encrypt and deduplicate); list packs (their names are in the indexes it reads;
///   a backup checks that the packs it relies on exist before it saves a snapshot); write
///   packs, indexes, snapshots and locks. It cannot list or read snapshots, read packs,
///   or overwrite or delete anything but the lock markers it wrote itself.
/// - restore: read and list everything; write locks, and rewrite or delete its own.
/// - manage: everything, including deletion (forget, prune), key slots and anyone's lock.
///
/// Which marker is whose is decided per object ([`Access::may_change`]), not here.
pub fn allowed(perms: &[TokenPermission], op: Op, kind: FileKind) -> bool {
    use FileKind::*;
    let has = |p| perms.contains(&p);
    if has(TokenPermission::Manage) {
        return true;
    }
    let backup = has(TokenPermission::Backup);
    let restore = has(TokenPermission::Restore);
    match (op, kind) {
        (Op::List | Op::Read, Config | Key | Index | Lock | Plan) => backup || restore,
        (Op::List, Pack) => backup || restore,
        (Op::List | Op::Read, Snapshot | Pack) => restore,
        (Op::Write, Pack | Index | Snapshot) => backup,
        (Op::Write | Op::Delete, Lock) => backup || restore,
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
    fn a_restore_token_reads_but_does_not_write_data() {
        let p = [Restore];
        assert!(allowed(&p, Op::Read, FileKind::Pack));
        assert!(allowed(&p, Op::List, FileKind::Snapshot));
        assert!(!allowed(&p, Op::Write, FileKind::Pack));
        assert!(!allowed(&p, Op::Delete, FileKind::Snapshot));
        assert!(allowed(&p, Op::Write, FileKind::Lock));
    }
}
