//! Authenticator codes: one 30-second step of clock skew either way, no more.

use super::*;

#[test]
fn a_code_one_step_off_is_accepted_and_two_steps_off_is_not() {
    let server = Server::start();
    let admin = server.admin();
    let secret = admin
        .post(
            "/api/v1/me/totp",
            json!({ "current_password": ADMIN_PASSWORD }),
        )
        .expect(200)["secret"]
        .as_str()
        .unwrap()
        .to_string();
    // Half-way through a step, far from its edges.
    let into_step = server.state.now().rem_euclid(30_000) as u64;
    server.advance(Duration::from_millis(30_000 - into_step + 15_000));
    admin
        .post(
            "/api/v1/me/totp/confirm",
            json!({ "code": server.totp_code(&secret) }),
        )
        .expect(204);
    // Ten steps on, so that no step near now was used yet.
    server.advance(Duration::from_secs(300));
    let sign_in = |steps: i64| {
        server.call(
            "post",
            "/api/v1/auth/login",
            None,
            Some(&json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                          "totp": server.totp_code_at(&secret, steps) })),
        )
    };
    for steps in [-2, 2] {
        sign_in(steps).expect_problem(401, "invalid_totp");
    }
    // A step behind, then a step ahead (each step is taken once, in order).
    sign_in(-1).expect(200);
    sign_in(1).expect(200);
}
