//! Byte ranges of objects: what a range reads, and which failures are the client's (416)
//! and which the store's (5xx, which a client tries again).

use reqwest::Method;

use super::support::Server;
use super::support::vault::*;

/// A range reader of `vault`'s object at `path` (under the vault), with a restore token.
fn reader<'a>(
    server: &'a Server,
    vault: &str,
    restore: &'a str,
    path: &str,
) -> impl Fn(&str) -> (u16, Vec<u8>) + 'a {
    let path = format!("/vaults/{vault}/v1/{path}");
    move |range: &str| {
        let r = server
            .request(Method::GET, &path)
            .bearer_auth(restore)
            .header("range", range)
            .send()
            .expect("an answer, not a reset stream");
        (r.status().as_u16(), r.bytes().unwrap().to_vec())
    }
}

/// A managed vault, a restore token of its tenant and the name of its key slot, the object
/// these tests read.
fn a_key_slot(server: &Server) -> (String, String, String) {
    let admin = server.admin();
    let (tenant, vault) = customer_with_vault(&admin, "Acme", None);
    let (_, restore) = token(&admin, &tenant, &["restore"], None);
    let key = vault_as(server, &vault, &restore).names("keys")[0].clone();
    (vault, restore, key)
}

#[test]
fn a_byte_range_up_to_the_largest_offset_reads_to_the_end() {
    let server = Server::start();
    let (vault, restore, key) = a_key_slot(&server);
    let read = reader(&server, &vault, &restore, &format!("keys/{key}"));
    let stored = std::fs::read(
        server
            .data_dir
            .join("vaults")
            .join(&vault)
            .join("keys")
            .join(&key),
    )
    .unwrap();
    let nearly = read("bytes=0-18446744073709551614");
    assert_eq!(nearly, (206, stored.clone()), "the whole object, as stored");
    assert_eq!(read("bytes=0-18446744073709551615"), nearly);
    assert_eq!(read("bytes=5-9"), (206, stored[5..10].to_vec()));
}

#[test]
fn a_range_past_the_end_is_416_and_a_failing_store_is_not() {
    let server = Server::start();
    let (vault, restore, key) = a_key_slot(&server);
    let read = reader(&server, &vault, &restore, &format!("keys/{key}"));
    let (status, _) = read("bytes=1000000-1000010");
    assert_eq!(status, 416, "a range past the object's end");

    // The store fails to read the object (a name that loops back on itself stands for a
    // disk error): not the client's range, so not 416.
    let file = server
        .data_dir
        .join("vaults")
        .join(&vault)
        .join("keys")
        .join(&key);
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink(&file, &file).unwrap();
    let (status, body) = read("bytes=5-9");
    assert!(
        status >= 500,
        "{status}: {}",
        String::from_utf8_lossy(&body)
    );
}
