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
