//! A partner in the browser: makes a customer, steps into it, invites its administrator,
//! who accepts from the mail's link (through a real SMTP server), chooses a password and
//! signs in to the customer's dashboard.

use serde_json::json;

use super::support::lifecycle::{mail, server_mailing_to_with};
use super::support::smtp::SmtpSink;
use super::{browser, sign_in};

const PUBLIC: &str = "https://backup.provider.example";
const PARTNER_PASSWORD: &str = "northwind-password-1";

#[test]
fn a_partner_makes_a_customer_and_invites_its_admin_who_accepts_in_the_browser() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to_with(&sink, |c| c.public_url = Some(PUBLIC.into()));
    let admin = server.admin();
    let partner = admin
        .post(
            "/api/v1/tenants",
            json!({ "parent_id": admin.provider_tenant_id(), "kind": "partner", "name": "Northwind IT" }),
        )
        .expect(201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    admin
        .post(
            "/api/v1/users",
            json!({
                "tenant_id": partner, "email": "pat@northwind.example", "first_name": "Pat",
                "last_name": "North", "password": PARTNER_PASSWORD, "role": "partner-admin",
            }),
        )
        .expect(201);
    let (Some(b), Some(ana)) = (browser(&server), browser(&server)) else {
        return;
    };
    sign_in(&b, "pat@northwind.example", PARTNER_PASSWORD);

    // The partner's tenants: none yet; a new customer.
    b.click("header nav a[href$='/tenants']");
    b.wait_for_path(&format!("/t/{partner}/tenants"));
    assert!(
        b.text("main").contains("No tenants below this one yet."),
        "{}",
        b.text("main")
    );
    b.fill("#name", "Acme GmbH");
    b.click("form[action$='/tenants'] button");
    b.wait_for_path(&format!("/t/{partner}/tenants?done=created"));
    let acme = b
        .attr("tr[data-tenant]", "data-tenant")
        .expect("the new customer");
    assert!(
        b.text(&format!("tr[data-tenant='{acme}']"))
            .contains("Acme GmbH")
    );
    assert!(
        b.text(&format!("tr[data-tenant='{acme}']"))
            .contains("0 items, all well")
    );

    // Stepping into it: its dashboard, and from there its users.
    b.click(&format!("tr[data-tenant='{acme}'] a"));
    b.wait_for_path(&format!("/t/{acme}"));
    assert!(b.text("h1").contains("Acme GmbH"));
    b.click(&format!("nav.tenant a[href='/t/{acme}/users']"));
    b.wait_for_path(&format!("/t/{acme}/users"));
    b.fill("#email", "ana@acme.example");
    b.fill("#first_name", "Ana");
    b.fill("#last_name", "Acme");
    b.click("form[action$='/users'] button");
    b.wait_for_path(&format!("/t/{acme}/users?done=invited"));
    assert!(b.text("tbody").contains("ana@acme.example"));
    assert!(b.text("tbody").contains("invited"));

    // The mail links to the console's invitation page; opening it changes nothing.
    let (_, text) = mail(&sink, "ana@acme.example", "Acme GmbH invites you", 1);
    let at = text
        .find(&format!("{PUBLIC}/invite?token="))
        .expect("a link");
    let link = text[at + PUBLIC.len()..].split_whitespace().next().unwrap();
    ana.goto(link);
    assert_eq!(ana.focused(), "password");
    ana.goto(link);
    ana.fill("#password", "short");
    ana.click("form[action='/invite'] button");
    assert!(
        ana.text("[role=alert]").len() > 10,
        "a short password is refused"
    );
    ana.fill("#password", "ana-chose-this-one");
    ana.click("form[action='/invite'] button");
    assert!(
        ana.text("[role=status]").contains("Your password is set"),
        "{}",
        ana.text("main")
    );
    // She signs in to her own tenant's dashboard, as its administrator.
    sign_in(&ana, "ana@acme.example", "ana-chose-this-one");
    assert_eq!(ana.path(), format!("/t/{acme}"));
    assert!(ana.has(&format!("nav.tenant a[href='/t/{acme}/users']")));
    // The invitation works once.
    ana.goto(link);
    ana.fill("#password", "another-long-password");
    ana.click("form[action='/invite'] button");
    assert!(ana.text("h1").contains("Not found"), "{}", ana.text("main"));
}

/// An administrator of the whole service invites through the console: the invitation goes by
/// mail, as anyone else's (the API hands such a caller the code instead, which the console's
/// page would not show, and the invitation would reach no one).
#[test]
fn a_provider_admins_invitation_from_the_console_goes_by_mail() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server = server_mailing_to_with(&sink, |c| c.public_url = Some(PUBLIC.into()));
    let admin = server.admin();
    let tenant = admin.customer_tenant("Acme GmbH");
    let cookie = super::support::console::session_cookie(&admin.secret);
    let users = format!("/t/{tenant}/users");
    let token = server.page(&users, &cookie, "en").form_token();
    let sent = server.post_page(
        &users,
        &cookie,
        &[
            ("csrf", &token),
            ("email", "bea@acme.example"),
            ("first_name", "Bea"),
            ("last_name", "Acme"),
            ("role", "admin"),
        ],
    );
    assert_eq!(sent.status, 303, "{}", sent.body);
    let (_, text) = mail(&sink, "bea@acme.example", "Acme GmbH invites you", 1);
    assert!(text.contains(&format!("{PUBLIC}/invite?token=")), "{text}");
}
