//! Erasing a person on request (`POST /api/v1/users/{id}/erase`): afterwards their name,
//! e-mail, address, IP address and browser are nowhere in the database's files (SQLite's
//! database and write-ahead log, searched byte by byte, or a PostgreSQL dump), the events
//! they caused stay as events of a pseudonymous actor, and every audit chain still
//! verifies.
//!
//! `person/throttle.rs`: what the sign-in throttle keeps of an erased person, and of others.
//! `person/races.rs`: writes under way as a person is erased.

#[path = "person/races.rs"]
mod races;
mod support;
#[path = "person/throttle.rs"]
mod throttle;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use loop_server::db::users;
use serde_json::{Value, json};
use support::{Server, USER_PASSWORD};

const EMAIL: &str = "zoetje.vanderveken@person.example";
const FIRST: &str = "Zoëtje";
const LAST: &str = "Vanderveken";
const ADDRESS: &str = "Kerkstraat 12, 9000 Gent";
/// Where she connects from, and her browser: no one else's.
const HER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 77);
const HER_BROWSER: &str = "ZoetjesBrowser/7.7";
/// The name she gives her laptop's sessions.
const HER_LAPTOP: &str = "Zoetjes-Laptop-77";

/// A client that connects from her address with her browser.
fn her_client(server: &Server) -> reqwest::blocking::Client {
    client_from(server, HER_IP)
}

/// A client that connects from `ip` (any 127.x.y.z) with her browser.
fn client_from(server: &Server, ip: Ipv4Addr) -> reqwest::blocking::Client {
    let pem = std::fs::read(server.data_dir.join("tls-cert.pem")).expect("the certificate");
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .local_address(IpAddr::V4(ip))
        .user_agent(HER_BROWSER)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Erases user `id`, whose address is `email`; the answer.
fn erase(admin: &support::Caller<'_>, id: &str, email: &str) -> Value {
    admin
        .post(
            &format!("/api/v1/users/{id}/erase"),
            json!({ "confirm": email }),
        )
        .expect(200)
}

/// The recipients of e-mail target `id`.
fn recipients(admin: &support::Caller<'_>, id: &str) -> Value {
    admin
        .get(&format!("/api/v1/notify/targets/{id}"))
        .expect(200)["email"]["recipients"]
        .clone()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn an_erased_person_leaves_no_trace_and_every_chain_verifies() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.customer_tenant("Gent Bakery");
    let zoe = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": EMAIL, "first_name": FIRST,
                    "last_name": LAST, "business_address": ADDRESS,
                    "password": USER_PASSWORD, "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Her address is on a notification target too.
    admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": tenant, "name": "alerts",
                    "email": { "recipients": [EMAIL, "ops@person.example"] } }),
        )
        .expect(201);

    // She signs in from her own address with her browser, mistypes once, and works.
    let client = her_client(&server);
    let login = |password: &str| {
        client
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": EMAIL, "password": password }))
            .send()
            .unwrap()
    };
    assert_eq!(login("not-her-password-1").status(), 401);
    let session: Value = login(USER_PASSWORD).json().unwrap();
    let secret = session["session_token"].as_str().unwrap().to_string();
    let made = client
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(&secret)
        .json(
            &json!({ "tenant_id": tenant, "name": "her-token", "kind": "api",
                       "permissions": ["restore"] }),
        )
        .send()
        .unwrap();
    assert_eq!(made.status(), 201);
    // Later from her laptop too, which she named: a sign-in from a new device, an event of
    // her tenant that names the device.
    let laptop = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": EMAIL, "password": USER_PASSWORD, "device_label": HER_LAPTOP }))
        .send()
        .unwrap();
    assert_eq!(laptop.status(), 200);
    let events = admin
        .get(&format!("/api/v1/events?tenant_id={tenant}"))
        .expect(200);
    assert!(events.to_string().contains(HER_LAPTOP), "{events}");
    let before = admin.audit_events();
    let hers: Vec<u64> = before
        .iter()
        .filter(|e| e.actor_id.as_deref() == Some(zoe.as_str()))
        .map(|e| e.seq)
        .collect();
    assert!(!hers.is_empty());
    assert!(
        before
            .iter()
            .any(|e| e.ip.as_deref() == Some(&HER_IP.to_string())),
        "her address is recorded while she is a user"
    );
    let files = server.database_bytes().concat();
    assert!(contains(&files, EMAIL) && contains(&files, HER_BROWSER));

    // The time zone she reads in is hers too.
    admin
        .patch(
            &format!("/api/v1/users/{zoe}"),
            json!({ "time_zone": "Europe/Lisbon" }),
        )
        .expect(200);

    // She asked for a copy of her data, in her own words, and an archive of it was made.
    let request = admin
        .post(
            "/api/v1/subject-requests",
            json!({ "user_id": zoe, "kind": "access",
                    "details": format!("{FIRST} {LAST} of Kerkstraat asks for a copy") }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let export = admin
        .post(&format!("/api/v1/users/{zoe}/data-export"), json!({}))
        .expect(202);
    let export_path = format!("/api/v1/data-exports/{}", export["id"].as_str().unwrap());
    admin.job_ended(export["job_id"].as_str().unwrap());
    assert_eq!(admin.get(&export_path).expect(200)["state"], "ready");

    // Erased, on request, by an administrator who repeats her address.
    let pool = &server.state.db.pool;
    let read_before = server
        .block_on(users::user_by_id(pool, &zoe))
        .unwrap()
        .unwrap();
    let path = format!("/api/v1/users/{zoe}/erase");
    admin
        .post(&path, json!({ "confirm": "someone@else.example" }))
        .expect_problem(400, "confirmation_mismatch");
    let erased = admin.post(&path, json!({ "confirm": EMAIL })).expect(200);
    assert!(
        erased["sessions_deleted"].as_u64().unwrap() >= 1,
        "{erased}"
    );
    assert!(
        erased["audit_personal_erased"].as_u64().unwrap() >= 1,
        "{erased}"
    );
    assert_eq!(erased["notify_recipients_removed"], 1);
    admin
        .post(&path, json!({ "confirm": EMAIL }))
        .expect_problem(409, "user_erased");

    // A pseudonym stays; she cannot sign in, and the account cannot be enabled again.
    let u = admin.get(&format!("/api/v1/users/{zoe}")).expect(200);
    assert_eq!(
        (&u["email"], &u["first_name"], &u["status"]),
        (
            &json!(format!("erased-{zoe}@erased.invalid")),
            &json!("Erased"),
            &json!("disabled")
        )
    );
    assert!(u["time_zone"].is_null(), "{u}");
    // What she asked stays recorded, without her words; her archive is gone.
    let asked = admin
        .get(&format!("/api/v1/subject-requests/{request}"))
        .expect(200);
    assert_eq!(
        (&asked["kind"], &asked["details"]),
        (&json!("access"), &json!(""))
    );
    admin.get(&export_path).expect(404);
    // (Tried from elsewhere: a try from her address would be a new record of it.)
    assert_eq!(server.login(EMAIL, USER_PASSWORD).status, 401);
    admin
        .post(&format!("/api/v1/users/{zoe}/enable"), json!({}))
        .expect_problem(409, "user_erased");
    // Nor changed: not asked now, nor by a change that read her before the erasure.
    admin
        .patch(&format!("/api/v1/users/{zoe}"), json!({ "language": "nl" }))
        .expect_problem(409, "user_erased");
    let stale = &read_before.user;
    let written = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let written = users::update_user_profile(&mut tx, stale, stale, 1).await;
        tx.commit().await.unwrap();
        written.unwrap()
    });
    assert!(!written);
    // Nor by a sign-in, a password change, an authenticator or a consent that checked her
    // before the erasure and writes after it, nor by a request recorded about her now.
    let verified = read_before.password_hash.as_deref();
    let late = server.block_on(async {
        let mut tx = server.state.db.begin().await.unwrap();
        let wrote = [
            users::signs_in_as_verified(&mut tx, &zoe, verified).await,
            users::replace_password(&mut tx, &zoe, verified, "a new hash", 1).await,
            users::start_totp(&mut tx, &zoe, "a wrapped secret", 1).await,
            loop_server::db::privacy::set_marketing_consent(
                &mut tx,
                &zoe,
                true,
                None,
                loop_server::db::privacy::Via::User,
                1,
            )
            .await,
        ];
        tx.commit().await.unwrap();
        wrote.map(Result::unwrap)
    });
    assert_eq!(late, [false; 4]);
    admin
        .post(
            "/api/v1/subject-requests",
            json!({ "user_id": zoe, "kind": "access", "details": format!("{FIRST} asks again") }),
        )
        .expect_problem(409, "user_erased");

    // Her events stay, as a pseudonymous actor's, without personal data; every chain
    // verifies.
    let after = admin.audit_events();
    support::assert_chained(&after);
    for seq in &hers {
        let e = after
            .iter()
            .find(|e| e.tenant_id == tenant && e.seq == *seq)
            .or_else(|| after.iter().find(|e| e.seq == *seq))
            .expect("her event stays");
        assert_eq!(e.ip, None);
        assert_eq!(e.user_agent, None);
    }
    assert!(after.iter().any(|e| e.action == "user.erase"));

    // And nothing of her is left in the database's files.
    let files = server.database_bytes().concat();
    for trace in [
        EMAIL,
        FIRST,
        LAST,
        "Kerkstraat",
        &HER_IP.to_string(),
        HER_BROWSER,
        HER_LAPTOP,
    ] {
        assert!(
            !contains(&files, trace),
            "{trace:?} is still in the database"
        );
    }
}

/// A session that came from `ip`: (session ID, its token).
fn sign_in_from(server: &Server, ip: Ipv4Addr, email: &str) -> (String, String) {
    let r: Value = client_from(server, ip)
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": USER_PASSWORD }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    (
        r["session"]["id"].as_str().unwrap().to_string(),
        r["session_token"].as_str().unwrap().to_string(),
    )
}

/// The address a session record holds.
fn session_ip(server: &Server, id: &str) -> Option<String> {
    let row = server
        .block_on(
            sqlx::query("SELECT ip FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_one(&server.state.db.pool),
        )
        .unwrap();
    sqlx::Row::get(&row, "ip")
}

fn scheduler_tick(server: &Server) -> u64 {
    server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap()
        .session_data_cleared
}

#[test]
fn an_ended_sessions_address_is_removed_after_90_days_and_no_sooner() {
    let server = Server::start();
    let admin = server.admin();
    let tenant = admin.provider_tenant_id();
    admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": tenant, "email": EMAIL, "first_name": FIRST,
                    "last_name": LAST, "password": USER_PASSWORD }),
        )
        .expect(201);
    let old_ip = Ipv4Addr::new(127, 0, 0, 78);
    let (old, token) = sign_in_from(&server, old_ip, EMAIL);
    let out = server.send(
        server
            .request(reqwest::Method::POST, "/api/v1/auth/logout")
            .bearer_auth(&token),
    );
    assert_eq!(out.status, 204, "{}", out.body);
    assert_eq!(session_ip(&server, &old), Some(old_ip.to_string()));

    // 89 days after it ended: kept.
    server.advance(Duration::from_secs(89 * 86_400));
    scheduler_tick(&server);
    assert_eq!(session_ip(&server, &old), Some(old_ip.to_string()));

    // Past 90 days: gone from the record (the audit log keeps the sign-in's address as
    // long as it keeps the event); a session of today keeps its own.
    server.advance(Duration::from_secs(2 * 86_400));
    let new_ip = Ipv4Addr::new(127, 0, 0, 79);
    let (new, _) = sign_in_from(&server, new_ip, EMAIL);
    assert!(scheduler_tick(&server) >= 1);
    assert_eq!(session_ip(&server, &old), None);
    assert_eq!(session_ip(&server, &new), Some(new_ip.to_string()));
}

#[test]
fn a_person_corrects_their_own_profile_and_a_new_address_waits_for_its_owner() {
    let server = Server::start();
    let admin = server.admin();
    let c = server.customer(&admin, "gent");
    let operator = c.member("operator");
    let me = server.sign_in(&operator.email, USER_PASSWORD);
    // An operator may not change users, but may correct themselves.
    me.patch(
        &format!("/api/v1/users/{}", operator.user_id),
        json!({ "first_name": "Op" }),
    )
    .expect_problem(403, "forbidden");
    let new = "new.address@person.example";
    // A new address asks for the password: a stolen session cannot move the account to a
    // mailbox of its own (and reset the password from there).
    let change = json!({ "first_name": FIRST, "business_address": ADDRESS, "email": new });
    me.patch("/api/v1/me", change.clone())
        .expect_problem(400, "password_required");
    // So does an admin's own account changed as a user's (`/api/v1/users/{own ID}`).
    let boss = c.member("admin");
    let boss_signed_in = server.sign_in(&boss.email, USER_PASSWORD);
    let own = format!("/api/v1/users/{}", boss.user_id);
    boss_signed_in
        .patch(&own, json!({ "email": "boss.elsewhere@person.example" }))
        .expect_problem(400, "password_required");
    assert!(boss_signed_in.get(&own).expect(200)["pending_email"].is_null());
    let mut wrong = change.clone();
    wrong["current_password"] = json!("not-the-password-1");
    me.patch("/api/v1/me", wrong)
        .expect_problem(400, "wrong_password");
    assert!(me.get("/api/v1/me").expect(200)["pending_email"].is_null());
    let mut right = change;
    right["current_password"] = json!(USER_PASSWORD);
    let u = me.patch("/api/v1/me", right).expect(200);
    assert_eq!(
        (
            &u["first_name"],
            &u["business_address"],
            &u["email"],
            &u["pending_email"]
        ),
        (
            &json!(FIRST),
            &json!(ADDRESS),
            &json!(operator.email),
            &json!(new)
        )
    );
    // The new address counts once its owner confirms it.
    assert_eq!(server.login(new, USER_PASSWORD).status, 401);
    let code = server.plant_email_code(&operator.user_id, new);
    server
        .call(
            "post",
            "/api/v1/auth/confirm-email",
            None,
            Some(&json!({ "token": code })),
        )
        .expect(204);
    server.sign_in(new, USER_PASSWORD);
    let changed = admin
        .audit_events()
        .into_iter()
        .filter(|e| {
            e.action == "user.update" && e.actor_id.as_deref() == Some(operator.user_id.as_str())
        })
        .count();
    assert_eq!(changed, 1, "audited as the person's own change");
}

/// An address another customer's alerts go to.
const THEIRS: &str = "alerts@bravo.example";

#[test]
fn erasing_a_namesake_in_another_customer_leaves_that_customers_targets_alone() {
    let server = Server::start();
    let admin = server.admin();
    let (alpha, bravo) = (
        admin.customer_tenant("Alpha Erasure"),
        admin.customer_tenant("Bravo Erasure"),
    );
    let target = admin
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": bravo, "name": "alerts", "email": { "recipients": [THEIRS] } }),
        )
        .expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Alpha invites someone under the same address, and erases them.
    let namesake = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": alpha, "email": THEIRS, "first_name": "Namesake",
                    "last_name": "Tester", "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let erased = erase(&admin, &namesake, THEIRS);
    assert_eq!(erased["notify_recipients_removed"], 0, "{erased}");

    // Bravo's alerts still go to the address.
    assert_eq!(recipients(&admin, &target), json!([THEIRS]));
}

#[test]
fn a_relays_answer_keeps_no_address_and_an_erased_persons_leaves_older_answers() {
    let Some(sink) = support::smtp::SmtpSink::start() else {
        return;
    };
    let server = support::lifecycle::server_mailing_to(&sink);
    let admin = server.admin();
    let tenant = admin.customer_tenant("Refused Erasure");
    let address = "refused.rosa@erasure.example";
    let user = admin.user_in(&tenant, address, "Rosa", "operator");
    let target = admin.email_target(&tenant, "alerts", &["ops@erasure.example", address]);
    admin
        .post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    let answer = || {
        admin
            .get(&format!("/api/v1/notify/deliveries?target_id={target}"))
            .expect(200)[0]["last_error"]
            .as_str()
            .map(String::from)
    };
    let refused = support::lifecycle::failed_delivery(&server, &target)["last_error"]
        .as_str()
        .map(String::from);
    let refused = refused.expect("the relay's answer");
    assert!(
        refused.contains("550") && refused.contains("recipient 2"),
        "{refused}"
    );
    assert!(!server.database_holds(&format!("<{address}>")), "{refused}");

    let kept = format!("permanent error (550): 5.1.1 <{address}>: mailbox unknown");
    server
        .block_on(
            sqlx::query("UPDATE deliveries SET last_error = $1 WHERE target_id = $2")
                .bind(&kept)
                .bind(&target)
                .execute(&server.state.db.pool),
        )
        .expect("an answer as an older version kept it");
    erase(&admin, &user, address);
    assert!(
        !server.database_holds(address),
        "the address is still in the database"
    );
    let after = answer().expect("the answer stays");
    assert!(after.contains("550"), "{after}");
}

/// A partner's admin put themselves on a customer's alerts: erasing them takes their address
/// off that customer's targets too, not only off their own tenant's.
#[test]
fn erasing_a_partners_admin_takes_them_off_its_customers_targets() {
    let server = Server::start();
    let admin = server.admin();
    let (partner, customer) =
        admin.partner_with_customer("Lowlands Erasure IT", "Bakkerij Erasure");
    let pia = "pia.partner@erasure.example";
    let user = admin.user_in(&partner, pia, "Pia", "admin");
    let target = admin.email_target(&customer, "alerts", &[pia, "baker@erasure.example"]);
    let erased = erase(&admin, &user, pia);
    assert_eq!(erased["notify_recipients_removed"], 1, "{erased}");
    assert_eq!(
        recipients(&admin, &target),
        json!(["baker@erasure.example"])
    );
    assert!(
        !server.database_holds(pia),
        "the address is still in the database"
    );

    // An invitation's address may be the customer's own person: erasing the invitation
    // leaves the customer's targets alone.
    let baker = "baker@erasure.example";
    let invited = admin
        .post(
            "/api/v1/users",
            json!({ "tenant_id": partner, "email": baker, "first_name": "In",
                    "last_name": "Vited" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    erase(&admin, &invited, baker);
    assert_eq!(recipients(&admin, &target), json!([baker]));
}
