//! The sign-in throttle and erasure: a person's records of it go with them; another
//! account's, or whoever guessed at theirs, stay.

use super::*;

/// Erasing an invitation leaves alone the sign-in throttle of the account that has its
/// address elsewhere: inviting and erasing again and again would otherwise lift that
/// account's limit on password guesses.
#[test]
fn erasing_an_invitation_keeps_the_throttle_of_the_account_with_its_address() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, bravo) = (
        admin.customer_tenant("Alpha Guess"),
        admin.customer_tenant("Bravo Guess"),
    );
    let victim = "victim@bravo.example";
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": bravo, "email": victim, "first_name": "Vic", "last_name": "Tim",
                    "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201);
    for _ in 0..5 {
        server
            .login(victim, "a-wrong-guess-123")
            .expect_problem(401, "invalid_credentials");
    }
    server
        .login(victim, USER_PASSWORD)
        .expect_problem(429, "signin_throttled");
    // Alpha's admin (who, not seeing the whole service, may invite any address).
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": alpha, "email": "guesser@alpha.example", "first_name": "Gus",
                    "last_name": "Ser", "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201);
    let guesser = server.sign_in("guesser@alpha.example", USER_PASSWORD);
    let invited = guesser
        .post(
            "/api/v1/users",
            json!({ "tenant_id": alpha, "email": victim, "first_name": "In", "last_name": "Vited" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    erase(&guesser, &invited, victim);
    server
        .login(victim, "another-guess-123")
        .expect_problem(429, "signin_throttled");
}

/// A relay that refused the person's address named it in its answer: the delivery keeps
/// that answer as its error (shown to the tenant's admins) with the address replaced by its
/// place on the target, so nothing is left to erase there, even from a delivery under way
/// during an erasure. An answer kept with the address (by a version before that) loses it
/// when the person is erased, and still says why the delivery failed.
/// Someone asked for a reset of her password and guessed at it from their own address until
/// it was throttled: erasing her forgets where she signed in from, not the guesser's
/// address, whose limit stays.
#[test]
fn erasing_a_person_keeps_the_throttle_of_whoever_guessed_at_their_password() {
    let server = Server::start_with(|c| c.signin.max_failures_per_ip = 3);
    let admin = server.admin();
    let tenant = admin.customer_tenant("Guessed Erasure");
    let rosa = "rosa@guessed.example";
    let user = admin.user_in(&tenant, rosa, "Rosa", "operator");
    let guesser = client_from(&server, Ipv4Addr::new(127, 0, 0, 99));
    let guess = |email: &str| {
        guesser
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": "a-wrong-guess-123" }))
            .send()
            .unwrap()
            .status()
    };
    let reset = guesser
        .post(server.url("/api/v1/auth/password-reset"))
        .json(&json!({ "email": rosa }))
        .send()
        .unwrap()
        .status();
    assert_eq!(reset, 202);
    for _ in 0..3 {
        assert_eq!(guess(rosa), 401);
    }
    assert_eq!(
        guess("someone@else.example"),
        429,
        "the guesser's address is throttled"
    );
    erase(&admin, &user, rosa);
    assert_eq!(
        guess("someone@else.example"),
        429,
        "the guesser's limit was lifted"
    );
}
