//! A configuration sealed with the right key but holding settings out of range (made by a
//! hostile key holder, or by a bug) is refused as damage before anything uses it.

use super::*;
use crate::testutil::local_repo;

/// The repository at `dir` with its config's JSON changed by `change`, sealed again with the
/// repository's own key; what opening it then answers.
fn opened_with(change: impl Fn(&mut serde_json::Value)) -> Result<Repository> {
    let dir = tempfile::tempdir().unwrap();
    let repo = local_repo(dir.path());
    let sealed = repo
        .storage()
        .get(FileKind::Config, "config", 1 << 20)
        .unwrap();
    let (_, json) =
        format::open(repo.master(), Magic::Config, "config", &sealed, MAX_CONFIG).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&json).unwrap();
    change(&mut config);
    let json = serde_json::to_vec(&config).unwrap();
    std::fs::write(
        dir.path().join("config"),
        format::seal(repo.master(), Magic::Config, &json, 3),
    )
    .unwrap();
    let storage = repo.storage().clone();
    drop(repo);
    Repository::open(storage, Secret::Passphrase(b"pw"))
}

#[test]
fn settings_out_of_range_are_refused_as_damage() {
    // As written, the config opens.
    opened_with(|_| {}).unwrap();
    let cases: [(&str, serde_json::Value); 9] = [
        ("compression_level", 0.into()),
        ("compression_level", 23.into()),
        ("pack_size", ((1 << 20) - 1).into()),
        ("pack_size", ((1u64 << 30) + 1).into()),
        (
            "chunker",
            serde_json::json!({ "min": 0, "avg": 1, "max": 2, "seed": 0 }),
        ),
        (
            "chunker",
            serde_json::json!({ "min": 65536, "avg": 32768, "max": 1048576, "seed": 0 }),
        ),
        (
            "chunker",
            serde_json::json!({ "min": 65537, "avg": 262144, "max": 1048576, "seed": 0 }),
        ),
        (
            "chunker",
            serde_json::json!({ "min": 65536, "avg": 262144, "max": u32::MAX, "seed": 0 }),
        ),
        ("id_key", "not hex".into()),
    ];
    for (field, value) in cases {
        let got = opened_with(|c| c[field] = value.clone());
        assert!(
            matches!(got, Err(Error::Corrupt { ref object, .. }) if object == "config"),
            "{field} = {value}: {:?}",
            got.err()
        );
    }
}

/// An init cut off after its key slot was stored (the config never arrived) leaves a slot
/// and no config: init again says what happened and what to do, instead of claiming a
/// repository exists that nothing can open.
#[test]
fn an_init_cut_off_before_its_config_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let repo = local_repo(dir.path());
    let storage = repo.storage().clone();
    drop(repo);
    storage.delete(FileKind::Config, "config").unwrap();
    let opts = InitOptions::default();
    let err = match Repository::init(storage, Secret::Passphrase(b"pw"), &opts) {
        Ok(_) => panic!("init over a leftover key slot"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("no config") && err.contains("remove keys/"),
        "{err}"
    );
}
