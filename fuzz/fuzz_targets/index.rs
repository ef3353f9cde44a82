//! An index file's payload: decoding never panics or allocates beyond its input, and what
//! decodes encodes back to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loop_repo::index::IndexFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = IndexFile::decode("fuzz", data) {
        assert_eq!(index.encode(), data, "an index file has one encoding");
    }
});
