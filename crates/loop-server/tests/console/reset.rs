//! A forgotten password in the browser: from the sign-in page to the reset mail (through a
//! real SMTP server), its link, the new password, and signing in with it. The page says the
//! same for an address nobody has.

use super::support::lifecycle::{mail, server_mailing_to_with};
use super::support::smtp::SmtpSink;
use super::support::{Server, USER_PASSWORD};
use super::{browser, sign_in};

const PUBLIC: &str = "https://backup.provider.example";

#[test]
fn a_forgotten_password_is_reset_from_the_mails_link_once() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let server: Server = server_mailing_to_with(&sink, |c| c.public_url = Some(PUBLIC.into()));
    let root = server.admin();
    let acme = server.customer(&root, "acme");
    let ana = acme.member("operator");
    let Some(b) = browser(&server) else {
        return;
    };

    // Nobody's address gets the same words as hers.
    b.goto("/signin");
    b.click("a[href='/reset']");
    b.fill("#email", "nobody@acme.example");
    b.click("form[action='/reset'] button");
    let told_nobody = b.text("[role=status]");
    assert!(told_nobody.contains("nobody@acme.example"), "{told_nobody}");
    b.goto("/reset");
    b.fill("#email", &ana.email);
    b.click("form[action='/reset'] button");
    let told_ana = b.text("[role=status]");
    assert_eq!(
        told_ana.replace(&ana.email, "ADDRESS"),
        told_nobody.replace("nobody@acme.example", "ADDRESS")
    );

    // The mail's link opens the page that takes the new password.
    let (_, text) = mail(&sink, &ana.email, "Choose a new Loop Backup password", 1);
    let at = text.find(&format!("{PUBLIC}/reset?code=")).expect("a link");
    let link = text[at + PUBLIC.len()..].split_whitespace().next().unwrap();
    b.goto(link);
    assert_eq!(b.focused(), "password");
    b.fill("#password", "short");
    b.click("form[action='/reset/confirm'] button");
    assert!(
        b.text("[role=alert]").len() > 10,
        "a short password is refused"
    );
    b.fill("#password", "ana-chose-anew-1");
    b.click("form[action='/reset/confirm'] button");
    assert!(
        b.text("[role=status]").contains("Your new password is set"),
        "{}",
        b.text("main")
    );
    server
        .login(&ana.email, USER_PASSWORD)
        .expect_problem(401, "invalid_credentials");
    sign_in(&b, &ana.email, "ana-chose-anew-1");
    assert_eq!(b.path(), format!("/t/{}", acme.tenant_id));

    // The link works once: opened again it says so, and offers to send a new one.
    b.goto(link);
    assert!(b.text("[role=alert]").contains("unknown, used or expired"));
    assert!(b.has("form[action='/reset'] #email"));
    let again = server.page(link, "", "en");
    assert_eq!(again.status, 404);
}
