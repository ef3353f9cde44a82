//! Listings come in pages: `limit` and `cursor` in, a JSON array and a `Link` to the next
//! page out.

use super::*;

/// Every page of `path` (which has no query yet) read `limit` rows at a time by following
/// the `Link` headers: the rows' IDs, page by page.
fn read_pages(admin: &Caller<'_>, path: &str, limit: u32, between: impl Fn()) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut next = format!("{path}?limit={limit}");
    loop {
        let r = admin.get(&next);
        let ids = ids(&r.expect(200));
        assert!(ids.len() <= limit as usize, "{next}: {} rows", ids.len());
        pages.push(ids);
        between();
        let Some(link) = r.link else {
            return pages;
        };
        let cursor = loop_api::next_cursor(&link).expect("a next cursor");
        assert!(
            link.starts_with(&format!("<{path}?limit={limit}&cursor=")),
            "{link}"
        );
        next = format!("{path}?limit={limit}&cursor={cursor}");
    }
}

fn ids(rows: &Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_listing_read_page_by_page_is_the_whole_listing_each_row_once() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let mut customers = Vec::new();
    for n in 0..7 {
        let t = admin
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": provider, "kind": "customer", "name": format!("C{n}") }),
            )
            .expect(201);
        let id = t["id"].as_str().unwrap().to_string();
        admin
            .post(
                "/api/v1/devices",
                json!({ "tenant_id": id, "name": format!("laptop-{n}") }),
            )
            .expect(201);
        customers.push(id);
    }
    for path in ["/api/v1/tenants", "/api/v1/devices"] {
        let whole = ids(&admin.get(&format!("{path}?limit=1000")).expect(200));
        assert!(whole.len() >= 7, "{path}: {whole:?}");
        let pages = read_pages(&admin, path, 3, || {});
        assert_eq!(pages.len(), whole.len().div_ceil(3), "{path}: {pages:?}");
        assert_eq!(
            pages.concat(),
            whole,
            "{path}: the same rows in the same order"
        );
    }
    // Rows added while a client pages through neither repeat nor hide the others.
    let whole = ids(&admin.get("/api/v1/tenants?limit=1000").expect(200));
    let n = std::cell::Cell::new(0);
    let pages = read_pages(&admin, "/api/v1/tenants", 2, || {
        n.set(n.get() + 1);
        admin
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": provider, "kind": "customer", "name": format!("Late {}", n.get()) }),
            )
            .expect(201);
    });
    let seen = pages.concat();
    for id in &whole {
        assert_eq!(
            seen.iter().filter(|s| *s == id).count(),
            1,
            "{id} in {seen:?}"
        );
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no row twice: {seen:?}");
}

#[test]
fn jobs_page_newest_first() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let planted: Vec<String> = (0..3)
        .map(|_| {
            let id = server.plant_job(&provider);
            server.advance(Duration::from_millis(5));
            id
        })
        .collect();
    let pages = read_pages(&admin, "/api/v1/jobs", 1, || {});
    let seen = pages.concat();
    let order: Vec<&String> = seen.iter().filter(|j| planted.contains(j)).collect();
    assert_eq!(order, planted.iter().rev().collect::<Vec<_>>());
}

#[test]
fn a_cursor_the_server_did_not_give_is_a_clear_error() {
    let server = Server::start();
    let admin = server.admin();
    server.plant_job(&admin.provider_tenant_id());
    server.plant_job(&admin.provider_tenant_id());
    let r = admin.get("/api/v1/jobs?limit=1");
    let jobs_cursor = loop_api::next_cursor(&r.link.expect("a second page")).unwrap();
    for bad in ["garbage!", "e30", "W10", jobs_cursor.as_str()] {
        // Not base64, `{}`, `[]`, and a cursor of another listing.
        let r = admin.get(&format!("/api/v1/tenants?cursor={bad}"));
        r.expect_problem(400, "invalid_request");
        assert_no_internal_text("a bad cursor", &r);
    }
    admin
        .get("/api/v1/tenants?limit=0")
        .expect(200)
        .as_array()
        .map(|a| assert_eq!(a.len(), 1, "a limit of 0 means one row"))
        .unwrap();
}

/// The listings that can grow without bound page; the others are bounded by what they
/// list (one user's role bindings, a job's log of at most 1,000 lines, the configured
/// destinations) or page their own way (the audit log, by `after_seq` and `limit`), so a
/// new listing must choose. (A vault's snapshots are read from its storage and paged in
/// memory, tested in `db::page`.)
#[test]
fn every_listing_that_can_grow_pages_and_honours_its_limit() {
    let server = Server::start();
    let doc = server.openapi();
    let admin = server.admin();
    server.plant_job(&admin.provider_tenant_id());
    server.plant_job(&admin.provider_tenant_id());
    let paged: BTreeSet<String> = documented_routes(&doc)
        .into_iter()
        .filter(|r| {
            r.params
                .iter()
                .any(|(at, n)| at == "query" && n == "cursor")
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let expected: BTreeSet<String> = [
        "get /api/v1/tenants",
        "get /api/v1/users",
        "get /api/v1/devices",
        "get /api/v1/tokens",
        "get /api/v1/vaults",
        "get /api/v1/items",
        "get /api/v1/policies",
        "get /api/v1/jobs",
        "get /api/v1/notify/targets",
        "get /api/v1/notify/deliveries",
        "get /api/v1/plans",
        "get /api/v1/remotes",
        "get /api/v1/sync-jobs",
        "get /api/v1/events",
        "get /api/v1/sessions",
        "get /api/v1/subject-requests",
        "get /api/v1/audit/heads",
        "get /api/v1/vaults/{id}/snapshots",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(paged, expected);
    for op in paged.iter().filter(|op| !op.contains('{')) {
        let path = op.trim_start_matches("get ");
        let rows = admin.get(&format!("{path}?limit=1")).expect(200);
        assert!(rows.as_array().unwrap().len() <= 1, "{path}: {rows}");
        let link = &doc["paths"][path]["get"]["responses"]["200"]["headers"]["Link"];
        assert!(link.is_object(), "{path} documents its Link header");
    }
}
