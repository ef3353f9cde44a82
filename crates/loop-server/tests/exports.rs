//! "Download my data": the archive holds exactly one person's data (profile, roles,
//! sessions with their addresses and browsers, devices, consents, notifications, audited
//! actions and the audited events about them, requests about them) and nothing of anyone
//! else (not even where an admin who acted on them connected from); an admin of their tenant can
//! produce it for them; it is gone after its download period.

mod support;

use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use serde_json::{Value, json};
use support::{Server, USER_PASSWORD};

/// A person of the test: who they are and where they connect from.
struct Person {
    email: &'static str,
    first: &'static str,
    ip: Ipv4Addr,
    browser: &'static str,
    device: &'static str,
}

const ANNA: Person = Person {
    email: "anna.jansen@export.example",
    first: "Annabel",
    ip: Ipv4Addr::new(127, 0, 0, 61),
    browser: "AnnasBrowser/6.1",
    device: "annas-laptop",
};
const BRAM: Person = Person {
    email: "bram.peeters@export.example",
    first: "Bramwell",
    ip: Ipv4Addr::new(127, 0, 0, 62),
    browser: "BramsBrowser/6.2",
    device: "brams-desktop",
};

/// Where the provider's admin connects from when they change her account.
const ADMIN_ELSEWHERE: Person = Person {
    email: "",
    first: "",
    ip: Ipv4Addr::new(127, 0, 0, 63),
    browser: "AdminsBrowser/6.3",
    device: "",
};

/// A client that connects from `p`'s address with their browser.
fn client_of(server: &Server, p: &Person) -> reqwest::blocking::Client {
    let pem = std::fs::read(server.data_dir.join("tls-cert.pem")).expect("the certificate");
    reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .local_address(IpAddr::V4(p.ip))
        .user_agent(p.browser)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Signs `p` in from their own address with their browser; returns the client and secret.
fn sign_in(server: &Server, p: &Person) -> (reqwest::blocking::Client, String) {
    let client = client_of(server, p);
    let r: Value = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": p.email, "password": USER_PASSWORD }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = r["session_token"].as_str().expect("signed in").to_string();
    (client, secret)
}

/// Waits until the archive is ready; returns its record.
fn ready(caller: &support::Caller<'_>, id: &str) -> Value {
    for _ in 0..1200 {
        let e = caller
            .get(&format!("/api/v1/data-exports/{id}"))
            .expect(200);
        if e["state"] != "preparing" {
            return e;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the archive {id} was never made");
}

/// The files of archive `id`, downloaded by `caller`.
fn archive_files(caller: &support::Caller<'_>, id: &str) -> Vec<(String, String)> {
    let bytes = caller
        .request(
            reqwest::Method::GET,
            &format!("/api/v1/data-exports/{id}/archive"),
        )
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    unzip(&bytes)
}

/// The archive's `notifications.json`.
fn notifications_in(files: &[(String, String)]) -> Value {
    let text = &files
        .iter()
        .find(|(n, _)| n == "notifications.json")
        .expect("notifications.json in the archive")
        .1;
    serde_json::from_str(text).unwrap()
}

/// The files of a zip archive, by name.
fn unzip(bytes: &[u8]) -> Vec<(String, String)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip file");
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut text = String::new();
            f.read_to_string(&mut text).unwrap();
            (f.name().expect("a file name").to_string(), text)
        })
        .collect()
}

#[test]
fn the_archive_holds_exactly_the_persons_data_and_nothing_of_anyone_else() {
    let server = Server::start();
    let root = server.admin();
    let tenant = root.customer_tenant("Export Bakery");
    let mut ids = Vec::new();
    for (p, role) in [(&ANNA, "admin"), (&BRAM, "operator")] {
        let u = root
            .post(
                "/api/v1/users",
                json!({ "tenant_id": tenant, "email": p.email, "first_name": p.first,
                        "last_name": "Tester", "password": USER_PASSWORD, "role": role }),
            )
            .expect(201);
        ids.push(u["user"]["id"].as_str().unwrap().to_string());
    }
    let (anna_id, bram_id) = (ids[0].clone(), ids[1].clone());
    // Both are on one notification target; both make a device; Anna consents to product
    // news; the organisation records a request about her.
    let target = root
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": tenant, "name": "alerts", "min_severity": "info",
                    "email": { "recipients": [ANNA.email, BRAM.email] } }),
        )
        .expect(201);
    root.post(
        &format!(
            "/api/v1/notify/targets/{}/test",
            target["target"]["id"].as_str().unwrap()
        ),
        json!({}),
    )
    .expect(202);
    for p in [&ANNA, &BRAM] {
        let (client, secret) = sign_in(&server, p);
        let made = client
            .post(server.url("/api/v1/devices"))
            .bearer_auth(&secret)
            .json(&json!({ "tenant_id": tenant, "name": p.device }))
            .send()
            .unwrap();
        assert_eq!(made.status(), 201, "{}", made.text().unwrap());
    }
    // Bram signs in from a device he names: an event about him, which tells the target
    // (so Anna's mail) his browser and device.
    let named = client_of(&server, &BRAM)
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": BRAM.email, "password": USER_PASSWORD,
                       "device_label": BRAM.device }))
        .send()
        .unwrap();
    assert_eq!(named.status(), 200);
    // So does Anna: an event about her, which her archive holds whether or not a target
    // heard of it.
    let hers = client_of(&server, &ANNA)
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": ANNA.email, "password": USER_PASSWORD,
                       "device_label": ANNA.device }))
        .send()
        .unwrap();
    assert_eq!(hers.status(), 200);
    let (client, anna_secret) = sign_in(&server, &ANNA);
    let consented = client
        .put(server.url("/api/v1/me/marketing-consent"))
        .bearer_auth(&anna_secret)
        .json(&json!({ "given": true }))
        .send()
        .unwrap();
    assert_eq!(consented.status(), 200);
    // She mistypes her password once; the provider's admin, from an address and browser of
    // their own, corrects her name: both are about her.
    let mistyped = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": ANNA.email, "password": "not her password" }))
        .send()
        .unwrap();
    assert_eq!(mistyped.status(), 401);
    let admins = client_of(&server, &ADMIN_ELSEWHERE);
    let renamed = admins
        .patch(server.url(&format!("/api/v1/users/{anna_id}")))
        .bearer_auth(&root.secret)
        .json(&json!({ "first_name": "Annabelle" }))
        .send()
        .unwrap();
    assert_eq!(renamed.status(), 200, "{}", renamed.text().unwrap());
    root.post(
        "/api/v1/subject-requests",
        json!({ "user_id": anna_id, "kind": "access", "details": "All of it, please." }),
    )
    .expect(201);

    // Anna asks for her data; a job makes it.
    let anna = server.with_token(&anna_secret);
    let asked = client
        .post(server.url("/api/v1/me/data-export"))
        .bearer_auth(&anna_secret)
        .send()
        .unwrap();
    assert_eq!(asked.status(), 202);
    let asked: Value = asked.json().unwrap();
    assert_eq!(asked["state"], "preparing");
    assert_eq!(asked["user_id"], anna_id.as_str());
    let id = asked["id"].as_str().unwrap().to_string();
    let job = anna
        .get(&format!(
            "/api/v1/jobs/{}",
            asked["job_id"].as_str().unwrap()
        ))
        .expect(200);
    assert_eq!(job["kind"], "data-export");
    let e = ready(&anna, &id);
    assert_eq!(e["state"], "ready", "{e}");
    let r = server.send(
        server
            .request(
                reqwest::Method::GET,
                &format!("/api/v1/data-exports/{id}/archive"),
            )
            .bearer_auth(&anna_secret),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "application/zip");
    let bytes = client
        .get(server.url(&format!("/api/v1/data-exports/{id}/archive")))
        .bearer_auth(&anna_secret)
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    assert_eq!(
        e["sha256"],
        hex::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            &bytes
        )),
        "the archive is the one the record names"
    );
    let files = unzip(&bytes);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "README.txt",
            "profile.json",
            "roles.json",
            "sessions.json",
            "devices.json",
            "consents.json",
            "notifications.json",
            "audit_events.json",
            "subject_requests.json"
        ]
    );
    let file = |name: &str| -> Value {
        let text = &files.iter().find(|(n, _)| n == name).unwrap().1;
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
    };
    // Hers, all of it.
    assert_eq!(file("profile.json")["user"]["email"], ANNA.email);
    assert_eq!(file("profile.json")["marketing_consent"]["given"], true);
    assert_eq!(file("roles.json")[0]["role"], "admin");
    let sessions = file("sessions.json");
    assert!(sessions.as_array().unwrap().len() >= 2);
    assert!(
        sessions
            .as_array()
            .unwrap()
            .iter()
            .all(|s| { s["ip"] == ANNA.ip.to_string() && s["user_agent"] == ANNA.browser })
    );
    let devices = file("devices.json");
    assert_eq!(devices.as_array().unwrap().len(), 1);
    assert_eq!(devices[0]["name"], ANNA.device);
    assert_eq!(file("consents.json")["changes"][0]["given"], true);
    let notified = file("notifications.json");
    assert_eq!(notified["notification_targets"][0]["target"], "alerts");
    assert_eq!(notified["notification_targets"][0]["event"], "test");
    let his_sign_in = notified["notification_targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["event"] == "sign-in-new-device")
        .unwrap_or_else(|| panic!("Bram's sign-in was delivered: {notified}"));
    assert!(his_sign_in["message"].is_null(), "{his_sign_in}");
    let about_her = notified["events_about_you"].as_array().unwrap();
    assert_eq!(about_her.len(), 1, "{about_her:?}");
    assert_eq!(about_her[0]["kind"], "sign-in-new-device");
    assert!(
        about_her[0].to_string().contains(ANNA.device),
        "{about_her:?}"
    );
    assert!(
        !notified["events_about_you"]
            .to_string()
            .contains(BRAM.device),
        "{notified}"
    );
    let audited = file("audit_events.json");
    for e in audited.as_array().unwrap() {
        assert!(e["ip"] == ANNA.ip.to_string() || e["ip"].is_null(), "{e}");
    }
    assert!(audited.to_string().contains("device.create"));
    let found = |action: &str, outcome: &str| {
        audited
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action} ({outcome}) in {audited}"))
            .clone()
    };
    let failed = found("auth.signin", "failure");
    assert_eq!(failed["object_id"], anna_id.as_str());
    assert_eq!(failed["user_agent"], ANNA.browser);
    let renamed = found("user.update", "success");
    assert_eq!(renamed["object_id"], anna_id.as_str());
    assert_eq!(
        renamed["actor"], "user",
        "another actor is named by kind only"
    );
    assert!(renamed["ip"].is_null() && renamed["user_agent"].is_null());
    // And what was done about something of hers, which names her: the role she was given,
    // the request recorded about her.
    let granted = found("role.grant", "success");
    assert_eq!(granted["details"]["user_id"], anna_id.as_str(), "{granted}");
    assert_eq!(granted["actor"], "user", "{granted}");
    let recorded = found("subject_request.create", "success");
    assert_eq!(
        recorded["details"]["user_id"],
        anna_id.as_str(),
        "{recorded}"
    );
    assert_eq!(
        file("subject_requests.json")[0]["details"],
        "All of it, please."
    );
    // Nothing of Bram's (his address, name, IP, browser, ID or device), nor where the admin
    // who renamed her connected from.
    let all = files.iter().map(|(_, t)| t.as_str()).collect::<String>();
    for theirs in [
        BRAM.email,
        BRAM.first,
        &BRAM.ip.to_string(),
        BRAM.browser,
        &bram_id,
        BRAM.device,
        &ADMIN_ELSEWHERE.ip.to_string(),
        ADMIN_ELSEWHERE.browser,
        &root.user_id,
    ] {
        assert!(
            !all.contains(theirs),
            "Bram's {theirs} is in Anna's archive"
        );
    }

    // Her admin can produce it for her; Bram (no user rights) and another customer's admin
    // cannot, nor can they read hers.
    let made_for = root
        .post(&format!("/api/v1/users/{anna_id}/data-export"), json!({}))
        .expect(202);
    assert_eq!(made_for["user_id"], anna_id.as_str());
    let (_, bram_secret) = sign_in(&server, &BRAM);
    let bram = server.with_token(&bram_secret);
    assert_eq!(
        bram.post(&format!("/api/v1/users/{anna_id}/data-export"), json!({}))
            .status,
        403
    );
    assert_eq!(bram.get(&format!("/api/v1/data-exports/{id}")).status, 403);
    let other = server.customer(&root, "other");
    let stranger = server.as_member(other.member("admin"));
    assert_eq!(
        stranger.get(&format!("/api/v1/data-exports/{id}")).status,
        404
    );
    assert_eq!(
        stranger
            .get(&format!("/api/v1/data-exports/{id}/archive"))
            .status,
        404
    );

    // Seven days later it is gone: at once, before the scheduler's pass deletes it.
    server.advance(Duration::from_secs(7 * 86_400 + 60));
    server
        .admin()
        .get(&format!("/api/v1/data-exports/{id}/archive"))
        .expect_problem(410, "export_expired");
    let tick = server
        .block_on(loop_server::jobs::scheduler::tick(&server.state))
        .unwrap();
    assert!(tick.exports_expired >= 1);
    let root = server.admin();
    let gone = root.get(&format!("/api/v1/data-exports/{id}")).expect(200);
    assert_eq!(gone["state"], "expired");
    assert!(gone.get("download").is_none());
    root.get(&format!("/api/v1/data-exports/{id}/archive"))
        .expect_problem(410, "export_expired");
}

#[test]
fn a_namesake_in_another_customer_gets_none_of_that_customers_notifications() {
    let server = Server::start();
    let root = server.admin();
    let (alpha, bravo) = (
        root.customer_tenant("Alpha Export"),
        root.customer_tenant("Bravo Export"),
    );
    // Bravo's alerts go to an address; Alpha invites someone under the same address.
    let target = root
        .post(
            "/api/v1/notify/targets",
            json!({ "tenant_id": bravo, "name": "bravo-alerts",
                    "email": { "recipients": [ANNA.email] } }),
        )
        .expect(201)["target"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    root.post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);
    let namesake = root
        .post(
            "/api/v1/users",
            json!({ "tenant_id": alpha, "email": ANNA.email, "first_name": "Namesake",
                    "last_name": "Tester", "role": "admin" }),
        )
        .expect(201)["user"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let asked = root
        .post(&format!("/api/v1/users/{namesake}/data-export"), json!({}))
        .expect(202);
    let id = asked["id"].as_str().unwrap();
    assert_eq!(ready(&root, id)["state"], "ready");
    let files = archive_files(&root, id);
    let notified = notifications_in(&files);
    assert_eq!(notified["notification_targets"], json!([]), "{notified}");
    assert!(!files.iter().any(|(_, t)| t.contains("bravo-alerts")));
}

/// A partner's admin on a customer's alerts: what those alerts sent them is in their
/// archive, as it is theirs to erase.
#[test]
fn a_partners_admin_gets_what_its_customers_targets_sent_them() {
    let server = Server::start();
    let root = server.admin();
    let (partner, customer) = root.partner_with_customer("Lowlands Export IT", "Bakkerij Export");
    let pia = "pia.partner@export.example";
    let pia_id = root.user_in(&partner, pia, "Pia", "admin");
    let target = root.email_target(&customer, "bakery alerts", &[pia]);
    root.post(&format!("/api/v1/notify/targets/{target}/test"), json!({}))
        .expect(202);

    let id = server.data_export(&root, &pia_id);
    let files = archive_files(&root, &id);
    let notified = notifications_in(&files);
    assert_eq!(
        notified["notification_targets"][0]["target"], "bakery alerts",
        "{notified}"
    );
}
