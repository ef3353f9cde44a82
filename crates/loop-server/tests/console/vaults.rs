//! Vaults and the snapshot browser: a customer's admin opens the vault, walks into a folder
//! of a real snapshot, searches it by name, and downloads a file and a folder (.zip in
//! Chromium, .tar.zst as plain HTTP), each compared byte for byte with what was backed up;
//! every download is audited. An auditor sees the snapshots but not what they hold; a
//! customer-key vault says why it cannot be opened; paths that name nothing are 404.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::json;

use loop_testkit::browser::{ENTER, SELECT_ALL, TAB};

use super::support::agent::enrol;
use super::support::console::session_cookie;
use super::support::vault::{back_up_into, blake3_hex};
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

/// What a folder holds, by path below it: a file's length and BLAKE3 hash, a link's target
/// (`-> target`), or nothing for a folder.
type Tree = BTreeMap<String, Option<String>>;

fn digest(data: &[u8]) -> Option<String> {
    Some(format!("{} bytes, {}", data.len(), blake3_hex(data)))
}

/// A folder `docs` with nested folders, a file of several chunks, an empty file, a name that
/// is not ASCII and a symbolic link.
fn make_docs(root: &Path) -> std::path::PathBuf {
    let docs = root.join("docs");
    std::fs::create_dir_all(docs.join("reports/2026")).unwrap();
    std::fs::create_dir_all(docs.join("reports/deep/a/b")).unwrap();
    std::fs::write(docs.join("readme.txt"), b"Hello from the snapshot\n").unwrap();
    std::fs::write(docs.join("reports/2026/q1.csv"), b"quarter,total\nq1,42\n").unwrap();
    std::fs::write(docs.join("reports/deep/a/b/c.txt"), b"deep down\n").unwrap();
    std::fs::write(docs.join("empty"), b"").unwrap();
    std::fs::write(
        docs.join("page.html"),
        b"<html><script>fetch('/api/v1/tokens')</script></html>\n",
    )
    .unwrap();
    std::fs::write(docs.join("Überblick 2026.txt"), "Grüße\n".as_bytes()).unwrap();
    std::fs::write(docs.join("big.bin"), loop_testkit::data::noise(3 << 20, 7)).unwrap();
    std::os::unix::fs::symlink("readme.txt", docs.join("link")).unwrap();
    docs
}

/// `dir` as a [`Tree`], paths under `prefix`.
fn tree_of(dir: &Path, prefix: &str) -> Tree {
    let mut out = Tree::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let path = format!("{prefix}/{}", e.file_name().to_string_lossy());
        let t = e.file_type().unwrap();
        if t.is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            out.insert(path, Some(format!("-> {}", target.display())));
        } else if t.is_dir() {
            out.extend(tree_of(&e.path(), &path));
            out.insert(path, None);
        } else {
            out.insert(path, digest(&std::fs::read(e.path()).unwrap()));
        }
    }
    out
}

fn zip_tree(bytes: &[u8]) -> Tree {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a readable zip");
    let mut out = Tree::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        let name = f.name().unwrap().trim_end_matches('/').to_string();
        if f.is_dir() {
            out.insert(name, None);
        } else if f.is_symlink() {
            let mut target = String::new();
            f.read_to_string(&mut target).unwrap();
            out.insert(name, Some(format!("-> {target}")));
        } else {
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            out.insert(name, digest(&data));
        }
    }
    out
}

fn tar_zst_tree(bytes: &[u8]) -> Tree {
    let tar = zstd::decode_all(bytes).expect("a whole zstd stream");
    let mut a = tar::Archive::new(&tar[..]);
    let mut out = Tree::new();
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        match e.header().entry_type() {
            tar::EntryType::Directory => {
                out.insert(name, None);
            }
            tar::EntryType::Symlink => {
                let target = e.link_name().unwrap().unwrap().display().to_string();
                out.insert(name, Some(format!("-> {target}")));
            }
            _ => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                out.insert(name, digest(&data));
            }
        }
    }
    out
}

/// A folder of more entries than one page: the pages follow each other, and a `start` past
/// the end (as large as a number can be) shows the folder's last page's end, not an error.
#[test]
fn a_large_folder_is_shown_a_page_at_a_time_whatever_start_is_asked() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let src = tempfile::tempdir().unwrap();
    let many = src.path().join("many");
    std::fs::create_dir_all(&many).unwrap();
    for i in 0..1001 {
        std::fs::write(many.join(format!("f{i:04}")), b"").unwrap();
    }
    let snapshot = back_up_into(&server, &acme.vault_id, &many);
    let cookie = session_cookie(&acme.member("admin").secret);
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    let page = |start: &str| {
        let (status, _, body) =
            server.download(&format!("{here}?path=%2Fmany&start={start}"), &cookie);
        (status, String::from_utf8(body).unwrap())
    };
    let (status, first) = page("0");
    assert_eq!(status, 200);
    assert!(first.contains("f0999") && !first.contains("f1000"));
    assert!(first.contains("start=1000"), "a link to the next page");
    let (status, last) = page("1000");
    assert_eq!(status, 200);
    assert!(last.contains("f1000") && !last.contains("f0999"));
    for start in ["5000", &usize::MAX.to_string()] {
        let (status, past) = page(start);
        assert_eq!(status, 200, "start={start}");
        assert!(!past.contains("f1000"), "start={start}");
    }
}

#[test]
fn a_snapshot_is_browsed_searched_and_downloaded_byte_for_byte() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let src = tempfile::tempdir().unwrap();
    let docs = make_docs(src.path());
    let snapshot = back_up_into(&server, &acme.vault_id, &docs);
    let mut expected = tree_of(&docs, "docs");
    expected.insert("docs".into(), None);

    // As plain HTTP first: the whole folder as .tar.zst, and what refuses.
    let cookie = session_cookie(&acme.member("admin").secret);
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    let (status, headers, body) =
        server.download(&format!("{here}/download?as=tar.zst&path=/docs"), &cookie);
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/zstd");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"docs.tar.zst\"; filename*=UTF-8''docs.tar.zst"
    );
    assert_eq!(tar_zst_tree(&body), expected);
    // What a snapshot holds is never run on the console's origin, a page least of all.
    let (status, file_headers, body) = server.download(
        &format!("{here}/download?as=file&path=/docs/page.html"),
        &cookie,
    );
    assert_eq!(status, 200);
    assert_eq!(body, std::fs::read(docs.join("page.html")).unwrap());
    for h in [&headers, &file_headers] {
        assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(
            h["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment;")
        );
    }
    assert_eq!(file_headers["content-type"], "application/octet-stream");
    for (path, status) in [
        (format!("{here}/download?as=file&path=/docs"), 404),
        (format!("{here}/download?as=zip&path=/docs/readme.txt"), 404),
        (format!("{here}/download?as=exe&path=/docs"), 400),
        (
            format!("{here}/download?as=file&path=/docs/../docs/readme.txt"),
            404,
        ),
        (format!("{here}/download?as=file&path=/docs/missing"), 404),
        (format!("{here}?path=/docs/readme.txt"), 404),
        (
            format!("/vaults/{}/snapshots/{}", acme.vault_id, "0".repeat(64)),
            404,
        ),
        (format!("/vaults/{}/snapshots/nonsense", acme.vault_id), 404),
    ] {
        assert_eq!(server.download(&path, &cookie).0, status, "{path}");
    }

    // In Chromium: from the tenant's vaults to a folder, a search, two downloads.
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("admin").email, USER_PASSWORD);
    b.goto(&format!("/t/{}/vaults", acme.tenant_id));
    b.click(&format!("a[href='/vaults/{}']", acme.vault_id));
    b.wait_for_path(&format!("/vaults/{}", acme.vault_id));
    assert!(b.text("main").contains("Held by the service"));
    b.click(&format!("tr[data-snapshot='{snapshot}'] a"));
    b.wait_for_path(&here);
    b.click("main table a[href$='path=%2Fdocs']");
    b.wait_for_path(&format!("{here}?path=%2Fdocs"));
    let listing = b.text("main table");
    for name in [
        "reports",
        "readme.txt",
        "big.bin",
        "Überblick 2026.txt",
        "link",
    ] {
        assert!(listing.contains(name), "{name} in {listing}");
    }
    // Folders first: `reports` comes before every file.
    assert!(
        listing.find("reports") < listing.find("big.bin"),
        "{listing}"
    );
    assert!(listing.contains("3.0 MiB"), "{listing}");

    b.click_here("main table a[download][href$='big.bin']");
    let (name, bytes) = b.downloaded("big.bin");
    assert_eq!(name, "big.bin");
    assert!(
        bytes == std::fs::read(docs.join("big.bin")).unwrap(),
        "big.bin differs"
    );

    b.click_here("p.downloads a[href*='as=zip']");
    let (name, bytes) = b.downloaded("docs.zip");
    assert_eq!(name, "docs.zip");
    assert_eq!(zip_tree(&bytes), expected);

    b.fill("#q", "C.TXT");
    b.click("form.search button");
    b.wait_for_path(&format!("{here}?path=%2Fdocs&q=C.TXT"));
    assert!(b.text("[role=status]").contains("1 found."));
    assert!(
        b.text("main table")
            .contains("/docs/reports/deep/a/b/c.txt")
    );

    // Each download is in the tenant's audit log, with what was downloaded.
    let events = admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=snapshot.download",
            acme.tenant_id
        ))
        .expect(200);
    let got: Vec<(String, String)> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["details"]["snapshot"], json!(snapshot));
            (
                e["details"]["format"].as_str().unwrap().to_string(),
                e["details"]["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("tar.zst", "/docs"),
        ("file", "/docs/big.bin"),
        ("zip", "/docs"),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1.to_string())),
            "{want:?} in {got:?}"
        );
    }
}

/// Headers go out before the archive is written, so a blob that fails its check halfway
/// cannot turn into an error page: the body breaks off with an error instead, and no client
/// takes a short archive for a whole one.
#[test]
fn a_damaged_pack_breaks_a_download_off_instead_of_ending_it_short() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let src = tempfile::tempdir().unwrap();
    let docs = make_docs(src.path());
    let snapshot = back_up_into(&server, &acme.vault_id, &docs);
    // The largest pack holds big.bin's data; a byte in its middle is damaged.
    let packs = super::support::files_under(
        &server
            .data_dir
            .join("vaults")
            .join(&acme.vault_id)
            .join("data"),
    );
    let largest = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(largest, bytes).unwrap();

    let cookie = session_cookie(&acme.member("admin").secret);
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    for format in ["zip", "tar.zst"] {
        let (status, body) =
            server.try_download(&format!("{here}/download?as={format}&path=/docs"), &cookie);
        assert_eq!(status, 200, "{format}");
        assert!(body.is_err(), "{format}: a whole body despite the damage");
    }
    let (status, body) = server.try_download(
        &format!("{here}/download?as=file&path=/docs/big.bin"),
        &cookie,
    );
    assert_eq!(status, 200);
    assert!(body.is_err(), "big.bin: a whole body despite the damage");
    // A file the damage did not touch still downloads whole.
    let (status, body) = server.try_download(
        &format!("{here}/download?as=file&path=/docs/readme.txt"),
        &cookie,
    );
    assert_eq!(
        (status, body.unwrap()),
        (200, b"Hello from the snapshot\n".to_vec())
    );
}

/// An index file that cannot be read costs only what it alone lists, as in a restore: a
/// snapshot whose blobs other index files name is still browsed and downloaded.
#[test]
fn a_damaged_index_file_costs_only_what_it_alone_lists() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let src = tempfile::tempdir().unwrap();
    let docs = make_docs(src.path());
    back_up_into(&server, &acme.vault_id, &docs);
    let index_dir = server
        .data_dir
        .join("vaults")
        .join(&acme.vault_id)
        .join("index");
    let damaged = super::support::files_under(&index_dir);
    assert_eq!(damaged.len(), 1);
    let other = src.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"written after the first backup\n").unwrap();
    let snapshot = back_up_into(&server, &acme.vault_id, &other);
    let mut bytes = std::fs::read(&damaged[0]).unwrap();
    let end = bytes.len() - 1;
    bytes[end] ^= 0x01;
    std::fs::write(&damaged[0], bytes).unwrap();

    let cookie = session_cookie(&acme.member("admin").secret);
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    let (status, _, body) = server.download(&format!("{here}?path=%2Fother"), &cookie);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8(body).unwrap().contains("notes.txt"));
    let (status, _, body) = server.download(
        &format!("{here}/download?as=file&path=/other/notes.txt"),
        &cookie,
    );
    assert_eq!(
        (status, body),
        (200, b"written after the first backup\n".to_vec())
    );
}

#[test]
fn an_auditor_sees_snapshots_but_not_their_files_and_a_customer_key_vault_says_why() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let src = tempfile::tempdir().unwrap();
    let snapshot = back_up_into(&server, &acme.vault_id, &make_docs(src.path()));
    let auditor = session_cookie(&acme.member("auditor").secret);
    let page = server.page(&format!("/vaults/{}", acme.vault_id), &auditor, "en");
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!("data-snapshot=\"{snapshot}\"")));
    assert!(
        !page.body.contains(&format!("/snapshots/{snapshot}")),
        "an auditor gets no link into the snapshot"
    );
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    for path in [
        here.clone(),
        format!("{here}/download?as=zip&path=/docs"),
        format!("{here}/download?as=file&path=/docs/readme.txt"),
    ] {
        assert_eq!(server.download(&path, &auditor).0, 403, "{path}");
    }

    let operator = acme.member("operator");
    let vault = server
        .call(
            "post",
            "/api/v1/vaults",
            Some(&operator.secret),
            Some(
                &json!({ "tenant_id": acme.tenant_id, "name": "own-key", "destination": "local",
                          "key_custody": "customer" }),
            ),
        )
        .expect(201);
    let id = vault["id"].as_str().unwrap();
    let page = server.page(
        &format!("/vaults/{id}"),
        &session_cookie(&operator.secret),
        "en",
    );
    assert_eq!(page.status, 200);
    assert!(
        page.body
            .contains("encrypted with a key only the customer holds"),
        "{}",
        page.body
    );
}

#[test]
fn a_folder_is_restored_to_a_device_with_the_keyboard_alone() {
    let server = Server::start();
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let (device, _) = enrol(&server, &admin, &acme.tenant_id, "laptop-9");
    let src = tempfile::tempdir().unwrap();
    let docs = make_docs(src.path());
    // A folder whose name would read as a pattern: it is asked for as itself.
    std::fs::create_dir_all(docs.join("reports [old]")).unwrap();
    std::fs::write(docs.join("reports [old]/r.txt"), b"old\n").unwrap();
    let snapshot = back_up_into(&server, &acme.vault_id, &docs);
    let Some(b) = browser(&server) else {
        return;
    };
    sign_in(&b, &acme.member("operator").email, USER_PASSWORD);
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    b.goto(&format!("{here}?path=%2Fdocs%2Freports%20%5Bold%5D"));
    // From the top of the page, Tab reaches the device, then the folder, then the button.
    let mut presses = 0;
    while b.focused() != "device" {
        b.keys(TAB);
        presses += 1;
        assert!(presses < 200, "Tab never reached the device");
    }
    b.keys("laptop-9");
    b.keys(TAB);
    assert_eq!(b.focused(), "target");
    b.keys(SELECT_ALL);
    b.keys("/home/ana/restored");
    b.keys(TAB);
    assert_eq!(b.text(":focus"), "Restore /docs/reports [old]");
    b.keys(ENTER);
    let page = b.wait_for_path("/jobs/");
    assert_eq!(b.text("#job-state"), "Queued");
    let job = admin
        .get(&page.replace("/jobs/", "/api/v1/jobs/"))
        .expect(200);
    assert_eq!(job["kind"], "restore");
    assert_eq!(job["target_id"], json!(device));
    let asked = admin
        .get(&format!(
            "/api/v1/audit?tenant_id={}&action=device.restore",
            acme.tenant_id
        ))
        .expect(200);
    let details = &asked.as_array().unwrap()[0]["details"];
    assert_eq!(details["target"], "/home/ana/restored");
    assert_eq!(details["paths"], json!(["/docs/reports \\[old\\]"]));
    assert_eq!(details["snapshot"], json!(snapshot));
    assert_eq!(details["vault_id"], json!(acme.vault_id));
}
