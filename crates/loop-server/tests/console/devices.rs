//! A tenant's devices: a code made on the page (shown once, with the command that uses it)
//! enrols a machine over the agent protocol, which then shows online with its agent's
//! version; a role that only reads devices gets no code.

use serde_json::json;

use super::support::console::session_cookie;
use super::support::{Server, with_spare};

/// The enrolment code on a page.
fn code_on(body: &str) -> String {
    let at = body.find("id=\"enrolment-code\">").expect("a code") + "id=\"enrolment-code\">".len();
    body[at..at + body[at..].find('<').unwrap()].to_string()
}

#[test]
fn a_code_from_the_devices_page_enrols_a_machine_that_then_shows_online() {
    let server = Server::start_with(with_spare);
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    let path = format!("/t/{}/devices", acme.tenant_id);
    let cookie = session_cookie(&acme.member("admin").secret);
    let before = server.page(&path, &cookie, "en");
    assert_eq!(before.status, 200, "{}", before.body);
    assert!(before.body.contains(&acme.device_name));
    assert!(before.body.contains("never seen"), "{}", before.body);

    let made = server.post_page(&path, &cookie, &[("csrf", &before.form_token())]);
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(
        made.location().is_none(),
        "the code never travels in an address"
    );
    let code = code_on(&made.body);
    assert!(code.starts_with("lpc_"), "{code}");
    // The command to run on the machine asks for the code: one on a command line is seen
    // by the machine's other users.
    assert!(
        made.body
            .contains("<pre class=\"code\">loop agent enroll --server https://SERVER</pre>"),
        "{}",
        made.body
    );
    // Shown once: the page opened again has no code.
    assert!(!server.page(&path, &cookie, "en").body.contains(&code));

    let enrolled = server
        .call(
            "post",
            "/agent/v1/enroll",
            None,
            Some(&json!({ "code": code, "name": "front-desk" })),
        )
        .expect(200);
    let token = enrolled["token"].as_str().unwrap();
    server
        .call(
            "post",
            "/agent/v1/heartbeat",
            Some(token),
            Some(&json!({ "version": "9.8.7" })),
        )
        .expect(200);
    let after = server.page(&path, &cookie, "en");
    let row = &after.body[after.body.find("front-desk").expect("the new device")..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains("badge ok") && row.contains("online"), "{row}");
    assert!(row.contains("9.8.7"), "{row}");
    // The code worked once.
    let again = server.call(
        "post",
        "/agent/v1/enroll",
        None,
        Some(&json!({ "code": code, "name": "second" })),
    );
    assert_ne!(again.status, 200, "{}", again.body);

    // The auditor reads the devices but makes no code.
    let auditor = session_cookie(&acme.member("auditor").secret);
    let read = server.page(&path, &auditor, "en");
    assert_eq!(read.status, 200);
    assert!(read.body.contains("front-desk"));
    assert!(!read.body.contains("Make a code"), "{}", read.body);
    let refused = server.post_page(&path, &auditor, &[("csrf", &read.form_token())]);
    assert_eq!(refused.status, 403, "{}", refused.body);
}
