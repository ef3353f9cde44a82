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
/// new user's first role; it can still grant the roles it holds or less.
#[test]
fn a_grant_never_gives_more_than_the_granter_holds() {
    let server = Server::start();
    let root = server.admin();
    let provider = root.provider_tenant_id();
    let sam = root
        .post(
            "/api/v1/users",
            json!({ "tenant_id": provider, "email": "sam@provider.example", "first_name": "Sam",
                    "last_name": "Support", "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
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
    let ally = sam_signed_in
        .post(
            "/api/v1/users",
            json!({ "tenant_id": provider, "email": "ally@provider.example", "first_name": "Ally",
                    "last_name": "Operator", "password": USER_PASSWORD, "role": "operator" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    grant(&ally, "admin").expect(201);
    let roles = root.get(&format!("/api/v1/users/{sam}/roles")).expect(200);
    assert!(!roles.to_string().contains("provider-admin"), "{roles}");
}
