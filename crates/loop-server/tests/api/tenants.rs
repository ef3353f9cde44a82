//! A tenant's time zone: given at creation or taken from the parent, changed later, and
//! refused when it is not an IANA zone.

use super::*;

#[test]
fn a_tenant_has_a_time_zone_of_its_own_or_its_parents() {
    let server = Server::start();
    let admin = server.admin();
    let provider = admin.provider_tenant_id();
    let p = admin
        .get(&format!("/api/v1/tenants/{provider}"))
        .expect(200);
    assert_eq!(p["time_zone"], "UTC", "the provider starts on UTC");

    let partner = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": provider, "kind": "partner", "name": "Lowlands IT",
                    "time_zone": "Europe/Amsterdam" }),
        )
        .expect(201);
    assert_eq!(partner["time_zone"], "Europe/Amsterdam");
    let customer = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": partner["id"], "kind": "customer", "name": "Bakkerij" }),
        )
        .expect(201);
    assert_eq!(customer["time_zone"], "Europe/Amsterdam", "inherited");
    let id = customer["id"].as_str().unwrap();
    let shown = admin.get(&format!("/api/v1/tenants/{id}")).expect(200);
    assert_eq!(shown["time_zone"], "Europe/Amsterdam");
    let other = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": partner["id"], "kind": "customer", "name": "Kyoto branch",
                    "time_zone": "Asia/Tokyo" }),
        )
        .expect(201);
    assert_eq!(other["time_zone"], "Asia/Tokyo");

    for bad in ["Mars/Olympus", "", "CET+1", "../etc/passwd"] {
        admin
            .post(
                "/api/v1/tenants",
                json!({ "parent_id": provider, "kind": "partner", "name": "Nowhere",
                        "time_zone": bad }),
            )
            .expect_problem(400, "invalid_request");
        admin
            .patch(
                &format!("/api/v1/tenants/{id}"),
                json!({ "time_zone": bad }),
            )
            .expect_problem(400, "invalid_request");
    }

    // Changed later; a field left out stays.
    let moved = admin
        .patch(
            &format!("/api/v1/tenants/{id}"),
            json!({ "time_zone": "America/New_York" }),
        )
        .expect(200);
    assert_eq!(moved["time_zone"], "America/New_York");
    assert_eq!(moved["name"], "Bakkerij");
    let renamed = admin
        .patch(
            &format!("/api/v1/tenants/{id}"),
            json!({ "name": "Bakkerij Jansen" }),
        )
        .expect(200);
    assert_eq!(renamed["name"], "Bakkerij Jansen");
    assert_eq!(renamed["time_zone"], "America/New_York");
    let shown = admin.get(&format!("/api/v1/tenants/{id}")).expect(200);
    assert_eq!(shown["time_zone"], "America/New_York");
    assert_eq!(shown["name"], "Bakkerij Jansen");
}

/// A role grants nothing its granter does not hold there: an admin of the provider (all but
/// erasing tenants) cannot make itself, or anyone, a provider-admin, by a grant or by a
/// new user's first role, nor take that role from anyone; it can still grant and revoke the
/// roles it holds or less.
#[test]
fn a_grant_never_gives_more_than_the_granter_holds() {
    let server = Server::start();
    let root = server.admin();
    let provider = root.provider_tenant_id();
    let sam = root.user_in(&provider, "sam@provider.example", "Sam", "admin");
    let sam_signed_in = server.sign_in("sam@provider.example", USER_PASSWORD);
    let grant = |user: &str, role: &str| {
        sam_signed_in.post(
            &format!("/api/v1/users/{user}/roles"),
            json!({ "tenant_id": provider, "role": role }),
        )
    };
    grant(&sam, "provider-admin").expect_problem(403, "permission_denied");
    sam_signed_in
        .post(
            "/api/v1/users",
            json!({ "tenant_id": provider, "email": "ally@provider.example", "first_name": "Ally",
                    "last_name": "Accomplice", "password": USER_PASSWORD,
                    "role": "provider-admin" }),
        )
        .expect_problem(403, "permission_denied");
    let customer = root.customer_tenant("Kept");
    sam_signed_in
        .post(
            &format!("/api/v1/tenants/{customer}/erase"),
            json!({ "confirm": "Kept" }),
        )
        .expect(403);
    // What it holds, it may grant.
    let ally = sam_signed_in.user_in(&provider, "ally@provider.example", "Ally", "operator");
    let given = grant(&ally, "admin").expect(201);
    let roles = root.get(&format!("/api/v1/users/{sam}/roles")).expect(200);
    assert!(!roles.to_string().contains("provider-admin"), "{roles}");
    // Nor can it take a provider-admin's role away (leaving no one who may erase a tenant);
    // what it holds, it may take away.
    let binding_of = |user: &str, role: &str| {
        root.get(&format!("/api/v1/users/{user}/roles"))
            .expect(200)
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["role"] == role)
            .map(|b| b["id"].as_str().unwrap().to_string())
    };
    let roots = binding_of(&root.user_id, "provider-admin").expect("the root's role");
    sam_signed_in
        .delete(&format!("/api/v1/users/{}/roles/{roots}", root.user_id))
        .expect_problem(403, "permission_denied");
    // Nor take over, lock out or erase the account of someone who holds more than it does.
    let roots_account = format!("/api/v1/users/{}", root.user_id);
    let before = root.get(&roots_account).expect(200);
    sam_signed_in
        .patch(
            &roots_account,
            json!({ "email": "sam.again@provider.example" }),
        )
        .expect_problem(403, "permission_denied");
    sam_signed_in
        .post(&format!("{roots_account}/disable"), json!({}))
        .expect_problem(403, "permission_denied");
    sam_signed_in
        .post(
            &format!("{roots_account}/erase"),
            json!({ "confirm": before["email"] }),
        )
        .expect_problem(403, "permission_denied");
    // Nor sign them out, nor restrict the processing of their data.
    sam_signed_in
        .delete(&format!("/api/v1/sessions/{}", root.session_id))
        .expect_problem(403, "permission_denied");
    sam_signed_in
        .put(
            &format!("{roots_account}/restriction"),
            json!({ "restricted": true }),
        )
        .expect_problem(403, "permission_denied");
    // Nor read their personal data: no archive made for it, none of theirs downloaded.
    sam_signed_in
        .post(&format!("{roots_account}/data-export"), json!({}))
        .expect_problem(403, "permission_denied");
    let roots_own = root.post("/api/v1/me/data-export", json!({})).expect(202);
    root.job_ended(roots_own["job_id"].as_str().unwrap());
    let roots_archive = format!("/api/v1/data-exports/{}", roots_own["id"].as_str().unwrap());
    for path in [roots_archive.clone(), format!("{roots_archive}/archive")] {
        sam_signed_in
            .get(&path)
            .expect_problem(403, "permission_denied");
    }
    assert_eq!(root.get(&roots_account).expect(200), before);
    assert_eq!(binding_of(&root.user_id, "provider-admin"), Some(roots));
    sam_signed_in
        .delete(&format!(
            "/api/v1/users/{ally}/roles/{}",
            given["id"].as_str().unwrap()
        ))
        .expect(204);
    assert_eq!(binding_of(&ally, "admin"), None);
}

/// An invitation is not an account: enabling or disabling one is refused the same way
/// whether or not its address has an account elsewhere, and the address stays free.
#[test]
fn an_invitation_is_neither_enabled_nor_disabled() {
    let server = Server::start();
    let root = server.admin();
    let (a, b) = (root.customer_tenant("A"), root.customer_tenant("B"));
    root.user_in(&a, "taken@a.example", "Pat", "operator");
    root.user_in(&b, "admin@b.example", "Pat", "admin");
    let admin_b = server.sign_in("admin@b.example", USER_PASSWORD);
    for address in ["taken@a.example", "free@nowhere.example"] {
        let invited = admin_b.invite(&b, address);
        let id = invited["user"]["id"].as_str().unwrap().to_string();
        for step in ["disable", "enable"] {
            admin_b
                .post(&format!("/api/v1/users/{id}/{step}"), json!({}))
                .expect_problem(409, "invited");
        }
    }
    // The free address was not taken by the invitation: it can still become an account.
    root.user_in(&a, "free@nowhere.example", "Pat", "auditor");
}
