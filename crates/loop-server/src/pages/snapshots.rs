//! The snapshot browser: a folder of a managed vault's snapshot (folders first, files with
//! size and time), a search by name below it, downloads of a file, or of a folder as .zip or
//! .tar.zst streamed as they are read, and a restore of the folder to a device. Reading what a
//! snapshot holds takes [`Permission::VaultContents`] (not an auditor's), and every download is
//! audited.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use loop_repo::tree::NodeKind;
use maud::{Markup, html};

use super::catalogue::M;
use super::layout::{Input, document, scroll, token};
use super::reader::{Posted, Viewer};
use crate::domain::Permission;
use crate::error::{ApiError, ApiResult};
use crate::notify::email::size;
use crate::state::AppState;
use crate::vaults::archive::{self, Format};
use crate::vaults::reader::{self, DIR_PAGE, Entry};

/// Where in a snapshot, and what to do there.
#[derive(Debug, Default, serde::Deserialize)]
pub struct At {
    #[serde(default)]
    pub path: String,
    /// The first entry shown (a directory of more than a page).
    #[serde(default)]
    pub start: usize,
    /// A search by name below `path`.
    #[serde(default)]
    pub q: String,
    /// `file`, `zip` or `tar.zst` (downloads).
    #[serde(default, rename = "as")]
    pub format: String,
}

impl At {
    /// The path, `/`-led, with no empty, `.` or `..` part (such a path names nothing).
    fn clean(&self) -> ApiResult<String> {
        let mut out = String::new();
        for part in self.path.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." || part.contains('\0') {
                return Err(ApiError::not_found());
            }
            out.push('/');
            out.push_str(part);
        }
        Ok(if out.is_empty() { "/".into() } else { out })
    }
}

fn query(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /vaults/{vault}/snapshots/{snapshot}?path=&start=&q=`: a directory of a snapshot,
/// or what a search below it found.
pub async fn browse(
    State(state): State<AppState>,
    v: Viewer,
    Path((id, snapshot)): Path<(String, String)>,
    Query(at): Query<At>,
) -> Response {
    let shown = async {
        let x = crate::vaults::scoped_vault_text(&state, &v.caller, Permission::VaultContents, &id)
            .await?;
        let t = v
            .caller
            .tenant(&state, Permission::VaultContents, &x.tenant_id)
            .await?;
        let path = at.clean()?;
        let opened = reader::open(&state, &x).await?;
        let (sid, snap) = reader::snapshot(&opened, &snapshot).await?;
        let dir = reader::node(&opened, snap.tree, &path).await?;
        if dir.kind != NodeKind::Dir {
            return Err(ApiError::not_found());
        }
        let q = at.q.trim();
        let here = format!("/vaults/{}/snapshots/{}", x.id, sid.to_hex());
        let listing = if q.is_empty() {
            let (entries, all) = reader::directory(&opened, &dir, at.start).await?;
            directory(&v, &here, &path, &entries, at.start, all)
        } else {
            let (found, more) = reader::search(&opened, dir, &path, q).await?;
            results(&v, &here, &found, more)
        };
        let restore = if v.caller.can(Permission::DeviceWrite, &t.path)
            && v.caller.can(Permission::JobWrite, &t.path)
        {
            let devices = crate::db::dashboard::devices_of(&state.db.pool, &x.tenant_id).await?;
            restore_form(&v, &here, &path, &devices)
        } else {
            html! {}
        };
        let when = snap.time.with_timezone(&chrono::Utc);
        let title = M::SnapshotOf.fill(v.lang, &[&snap.hostname, &v.zone.text(when)]);
        let content = html! {
            (v.tenant_menu(&t))
            p { a href={"/vaults/" (x.id)} { (x.name) } }
            (crumbs(&v, &here, &path))
            form.search method="get" action=(here) role="search" {
                input type="hidden" name="path" value=(path);
                p.field {
                    label for="q" { (v.t(M::SearchByName)) }
                    input #q name="q" type="search" value=(q);
                }
                p { button type="submit" { (v.t(M::Search)) } }
            }
            p.downloads {
                a href={(here) "/download?as=zip&path=" (query(&path))} download { (v.t(M::DownloadZip)) }
                " · "
                a href={(here) "/download?as=tar.zst&path=" (query(&path))} download { (v.t(M::DownloadTarZst)) }
            }
            (listing)
            (restore)
        };
        Ok(document(StatusCode::OK, &v.frame(), &title, content))
    };
    shown
        .await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}

/// The form that restores this folder (the whole snapshot at its top) onto a device of the
/// tenant, into a folder there.
fn restore_form(
    v: &Viewer,
    here: &str,
    path: &str,
    devices: &[crate::db::dashboard::DeviceRow],
) -> Markup {
    html! {
        section aria-labelledby="restore-h" {
            h2 #restore-h { (v.t(M::RestoreToDevice)) }
            @if devices.is_empty() {
                p { (v.t(M::NoDevices)) }
            } @else {
                form method="post" action={(here) "/restore"} {
                    (token(&v.csrf))
                    input type="hidden" name="path" value=(path);
                    p.field {
                        label for="device" { (v.t(M::Device)) }
                        select #device name="device" {
                            @for d in devices {
                                option value=(d.device.id) { (d.device.name) }
                            }
                        }
                    }
                    // The agent's default restore root (`loop agent run --restore-root`).
                    (Input { value: "/var/lib/loop-agent/restores", required: true, ..Input::new("target", v.t(M::RestoreInto), "text") }.render())
                    p { button type="submit" { (M::RestoreFolder.fill(v.lang, &[path])) } }
                }
            }
        }
    }
}

/// A restore asked for from the snapshot browser.
#[derive(Debug, serde::Deserialize)]
pub struct RestoreForm {
    #[serde(default)]
    path: String,
    #[serde(default)]
    device: String,
    #[serde(default)]
    target: String,
}

/// `POST /vaults/{vault}/snapshots/{snapshot}/restore`: a restore job for the device's agent
/// (the API's rules: device-write and job-write, audited), then the job's page.
pub async fn restore(
    State(state): State<AppState>,
    v: Viewer,
    Path((id, snapshot)): Path<(String, String)>,
    Posted(f): Posted<RestoreForm>,
) -> Response {
    let queued = async {
        let x =
            crate::vaults::scoped_vault_text(&state, &v.caller, Permission::VaultRead, &id).await?;
        let path = At {
            path: f.path.clone(),
            ..At::default()
        }
        .clean()?;
        let opened = reader::open(&state, &x).await?;
        let (sid, _) = reader::snapshot(&opened, &snapshot).await?;
        let req = loop_api::RestoreToDevice {
            vault_id: loop_api::VaultId::parse(&x.id).map_err(|_| ApiError::not_found())?,
            snapshot: sid.to_hex(),
            // The folder chosen by name: its name is no pattern.
            paths: if path == "/" {
                Vec::new()
            } else {
                vec![loop_repo::literal_pattern(&path)]
            },
            target: f.target.trim().to_string(),
        };
        crate::jobs::control::restore_to_device(&state, &v.caller, &f.device, &req).await
    };
    match queued.await {
        Ok(j) => Redirect::to(&format!("/jobs/{}", j.id)).into_response(),
        Err(e) => super::failed(v.lang, e),
    }
}

/// The path as links: the snapshot's top, then each directory down to this one.
fn crumbs(v: &Viewer, here: &str, path: &str) -> Markup {
    let mut at = String::new();
    let parts: Vec<(&str, String)> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .map(|part| {
            at.push('/');
            at.push_str(part);
            (part, at.clone())
        })
        .collect();
    html! {
        nav.crumbs aria-label=(v.t(M::Where)) {
            ol {
                li { a href=(here) { (v.t(M::Top)) } }
                @for (part, to) in &parts {
                    li { a href={(here) "?path=" (query(to))} { (part) } }
                }
            }
        }
    }
}

fn kind(v: &Viewer, k: NodeKind) -> &'static str {
    match k {
        NodeKind::Dir => v.t(M::Folder),
        NodeKind::File => v.t(M::FileKind),
        NodeKind::Symlink => v.t(M::SymlinkKind),
        _ => v.t(M::OtherKind),
    }
}

/// An entry's name: a folder opens, a file downloads.
fn entry_link(here: &str, path: &str, e: &Entry) -> Markup {
    match e.kind {
        NodeKind::Dir => html! { a href={(here) "?path=" (query(path))} { (e.name) } },
        NodeKind::File => html! {
            a href={(here) "/download?as=file&path=" (query(path))} download { (e.name) }
        },
        _ => html! { (e.name) },
    }
}

fn entry_rows(v: &Viewer, here: &str, rows: &[(String, &Entry)], show_path: bool) -> Markup {
    html! {
        @for (path, e) in rows {
            tr {
                th scope="row" {
                    (entry_link(here, path, e))
                    @if show_path { br; span.path { (path) } }
                }
                td { (kind(v, e.kind)) }
                td { @if e.kind == NodeKind::File { (size(e.size)) } }
                td { (v.time(e.mtime)) }
            }
        }
    }
}

fn entry_table(v: &Viewer, label: &str, rows: Markup) -> Markup {
    scroll(
        label,
        html! { table {
            thead { tr {
                th scope="col" { (v.t(M::Name)) }
                th scope="col" { (v.t(M::Kind)) }
                th scope="col" { (v.t(M::Size)) }
                th scope="col" { (v.t(M::Modified)) }
            } }
            tbody { (rows) }
        } },
    )
}

fn directory(
    v: &Viewer,
    here: &str,
    path: &str,
    entries: &[Entry],
    start: usize,
    all: usize,
) -> Markup {
    // `start` comes from the query string: past the end it shows the end.
    let start = start.min(all);
    let base = path.trim_end_matches('/');
    let rows: Vec<(String, &Entry)> = entries
        .iter()
        .map(|e| (format!("{base}/{}", e.name), e))
        .collect();
    let end = start + entries.len();
    html! {
        @if all == 0 {
            p { (v.t(M::EmptyFolder)) }
        } @else {
            @if all > DIR_PAGE {
                p { (M::EntriesShown.fill(v.lang, &[&(start + 1).to_string(), &end.to_string(), &all.to_string()])) }
            }
            (entry_table(v, path, entry_rows(v, here, &rows, false)))
            @if end < all {
                p { a href={(here) "?path=" (query(path)) "&start=" (end)} rel="next" {
                    (M::NextEntries.fill(v.lang, &[&DIR_PAGE.min(all - end).to_string()]))
                } }
            }
        }
    }
}

fn results(v: &Viewer, here: &str, found: &[(String, Entry)], more: bool) -> Markup {
    let rows: Vec<(String, &Entry)> = found.iter().map(|(p, e)| (p.clone(), e)).collect();
    html! {
        p role="status" {
            @if more {
                (M::FoundFirst.fill(v.lang, &[&found.len().to_string()]))
            } @else {
                (M::Found.fill(v.lang, &[&found.len().to_string()]))
            }
        }
        @if !found.is_empty() {
            (entry_table(v, v.t(M::Search), entry_rows(v, here, &rows, true)))
        }
    }
}

/// `GET /vaults/{vault}/snapshots/{snapshot}/download?path=&as=file|zip|tar.zst`: a file as
/// it is, or a directory as an archive, streamed while it is read; audited before the first
/// byte leaves.
pub async fn download(
    State(state): State<AppState>,
    v: Viewer,
    Path((id, snapshot)): Path<(String, String)>,
    Query(at): Query<At>,
) -> Response {
    let sent = async {
        let x = crate::vaults::scoped_vault_text(&state, &v.caller, Permission::VaultContents, &id)
            .await?;
        let format = Format::parse(&at.format)
            .ok_or_else(|| ApiError::bad_request("as is file, zip or tar.zst"))?;
        let path = at.clean()?;
        let opened = reader::open(&state, &x).await?;
        let (sid, snap) = reader::snapshot(&opened, &snapshot).await?;
        let node = reader::node(&opened, snap.tree, &path).await?;
        let fits = match format {
            Format::File => node.kind == NodeKind::File,
            _ => node.kind == NodeKind::Dir,
        };
        if !fits {
            return Err(ApiError::not_found());
        }
        let name = match path.rsplit('/').next().filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => format!("snapshot-{}", sid.short()),
        };
        let now = state.now();
        let tx = state.db.begin().await?;
        crate::db::audit::commit_audited(
            tx,
            v.caller.event(
                &x.tenant_id,
                "snapshot.download",
                "vault",
                Some(&x.id),
                serde_json::json!({
                    "snapshot": sid.to_hex(), "path": path, "format": at.format,
                }),
            ),
            now,
        )
        .await?;
        let file_name = format.file_name(&name);
        let body = archive::stream(opened, node, name, format);
        let mut r = body.into_response();
        let h = r.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        h.insert(header::CONTENT_DISPOSITION, attachment(&file_name));
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        );
        Ok(r)
    };
    sent.await
        .unwrap_or_else(|e: ApiError| super::failed(v.lang, e))
}

/// `attachment` with the name in ASCII (others replaced) and exactly in UTF-8 (RFC 6266).
fn attachment(name: &str) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let exact: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{exact}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}
