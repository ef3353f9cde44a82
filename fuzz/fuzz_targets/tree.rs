//! A tree's payload: decoding and the checks restore relies on never panic, and what decodes
//! survives encoding again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loop_repo::tree::Tree;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode("fuzz", data) {
        let safe = tree.validate("fuzz").is_ok();
        let again = Tree::decode("fuzz", &tree.encode()).expect("an encoded tree decodes");
        assert_eq!(again, tree);
        assert_eq!(again.validate("fuzz").is_ok(), safe);
    }
});
