//! People join by e-mail: a customer admin invites a colleague with `loop user create
//! --invite`, the invitation arrives at a real SMTP server, and the colleague accepts it with
//! `loop user accept-invite` and signs in; an address change waits for `loop user
//! confirm-email`.

mod support;

use support::server::*;
use support::smtp::SmtpSink;
use support::story::*;

/// `loop login` as `email` with `password`, keeping the session in `dir`.
fn login(s: &Story, dir: &std::path::Path, email: &str, password: &str) -> std::process::Command {
    let mut c = s
        .server
        .as_user(dir, &["login", "--server", &s.server.url, "--email", email]);
    c.env("LOOP_LOGIN_PASSWORD", password);
    c
}

/// A server configuration that mails to `sink`.
fn mail_to(sink: &SmtpSink) -> impl Fn(&std::path::Path) -> std::path::PathBuf + use<> {
    let port = sink.port;
    move |dir: &std::path::Path| {
        let path = dir.join("server.toml");
        std::fs::write(
            &path,
            format!(
                "[mail]\nhost = \"127.0.0.1\"\nport = {port}\nsecurity = \"none\"\n\
                 poll_seconds = 1\n"
            ),
        )
        .unwrap();
        path
    }
}

/// The code (`prefix`...) in the newest message to `to`.
fn mailed_code(sink: &SmtpSink, to: &str, prefix: &str) -> String {
    let m = sink.wait_for(to);
    let text = m["text"].as_str().expect("a plain-text body");
    let at = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no code in {m:#?}"));
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}

#[test]
fn a_colleague_joins_and_moves_address_by_mail() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let config = mail_to(&sink);
    let s = set_up(Some(&config), "local");
    let invited = ok(&mut s.admin(
        "ana",
        &[
            "user",
            "create",
            "--tenant",
            &s.customer,
            "--email",
            "bo@acme.example",
            "--first-name",
            "Bo",
            "--last-name",
            "Berg",
            "--role",
            "operator",
            "--invite",
        ],
    ));
    assert!(
        invited.contains("the invitation goes to bo@acme.example by e-mail"),
        "{invited}"
    );
    assert!(!invited.contains("lpi_"), "the admin never sees the code");

    let bo = s.dir.path().join("bo");
    let code = mailed_code(&sink, "bo@acme.example", "lpi_");
    let accepted = ok(s
        .server
        .as_user(&bo, &["user", "accept-invite", "--server", &s.server.url])
        .env("LOOP_INVITE_TOKEN", &code)
        .env("LOOP_NEW_USER_PASSWORD", "bo-password-1234"));
    assert!(accepted.contains("invitation accepted"), "{accepted}");
    // The code works once.
    let again = fails(
        s.server
            .as_user(&bo, &["user", "accept-invite", "--server", &s.server.url])
            .env("LOOP_INVITE_TOKEN", &code)
            .env("LOOP_NEW_USER_PASSWORD", "bo-password-5678"),
    );
    assert!(again.contains("no such resource"), "{again}");
    ok(&mut login(&s, &bo, "bo@acme.example", "bo-password-1234"));
    let me = json(&mut s.server.as_user(&bo, &["whoami"]));
    let bo_id = me["user"]["id"].as_str().unwrap().to_string();

    // Ana moves Bo to a new address: it changes once Bo confirms it.
    let pending = ok(&mut s.admin(
        "ana",
        &["user", "update", &bo_id, "--email", "bo.berg@acme.example"],
    ));
    assert!(
        pending.contains("changing to <bo.berg@acme.example> once confirmed"),
        "{pending}"
    );
    let code = mailed_code(&sink, "bo.berg@acme.example", "lpe_");
    let confirmed = json(
        s.server
            .as_user(&bo, &["user", "confirm-email", "--server", &s.server.url])
            .env("LOOP_EMAIL_TOKEN", &code),
    );
    assert_eq!(confirmed["confirmed"], true);
    ok(&mut login(
        &s,
        &bo,
        "bo.berg@acme.example",
        "bo-password-1234",
    ));

    // Bo leaves and asks to be erased: Ana erases him, and he cannot sign in any more.
    let erased = ok(&mut s.admin(
        "ana",
        &["user", "erase", &bo_id, "--confirm", "bo.berg@acme.example"],
    ));
    assert!(
        erased.contains("the account stays as a pseudonym"),
        "{erased}"
    );
    fails(&mut login(
        &s,
        &bo,
        "bo.berg@acme.example",
        "bo-password-1234",
    ));
}

/// An organisation starts its own trial: the provider offers a plan with `loop plan create
/// --signup`, the organisation asks with `loop signup request`, confirms the mailed code with
/// `loop signup confirm`, signs in, and sees its subscription with `loop subscription show`.
#[test]
fn an_organisation_signs_up_with_the_cli() {
    let Some(sink) = SmtpSink::start() else {
        return;
    };
    let config = mail_to(&sink);
    let s = set_up(Some(&config), "local");
    let tenants = json(&mut s.admin("provider-admin", &["tenant", "list"]));
    let provider = id(&tenants[0]);
    let plan = json(&mut s.admin(
        "provider-admin",
        &[
            "plan",
            "create",
            "--issuer",
            &provider,
            "--name",
            "Starter",
            "--price-cents",
            "1250",
            "--currency",
            "EUR",
            "--signup",
        ],
    ));
    let url = &s.server.url;
    let zoe = s.dir.path().join("zoe");
    let offered = ok(&mut s
        .server
        .as_user(&zoe, &["signup", "plans", "--server", url]));
    assert!(offered.contains("Starter  12.50 EUR/month"), "{offered}");
    let asked = ok(s
        .server
        .as_user(
            &zoe,
            &[
                "signup",
                "request",
                "--server",
                url,
                "--organisation",
                "Zeta Works",
                "--email",
                "zoe@zeta.example",
                "--first-name",
                "Zoë",
                "--last-name",
                "Zeta",
            ],
        )
        .env("LOOP_NEW_USER_PASSWORD", "zoe-password-1234"));
    assert!(
        asked.contains("a confirmation code is on its way to zoe@zeta.example"),
        "{asked}"
    );
    let code = mailed_code(&sink, "zoe@zeta.example", "lps_");
    let made = json(
        s.server
            .as_user(&zoe, &["signup", "confirm", "--server", url])
            .env("LOOP_SIGNUP_TOKEN", &code),
    );
    let tenant = made["tenant_id"].as_str().unwrap().to_string();
    ok(s.server
        .as_user(
            &zoe,
            &["login", "--server", url, "--email", "zoe@zeta.example"],
        )
        .env("LOOP_LOGIN_PASSWORD", "zoe-password-1234"));
    let sub = json(&mut s.server.as_user(&zoe, &["subscription", "show", &tenant]));
    assert_eq!(
        (&sub["state"], &sub["plan"]["id"]),
        (&serde_json::json!("trial"), &plan["id"])
    );
    let shown = ok(&mut s.server.as_user(&zoe, &["subscription", "show", &tenant]));
    assert!(shown.contains("trial ends"), "{shown}");
    assert!(
        ok(&mut s
            .server
            .as_user(&zoe, &["invoice", "list", "--tenant", &tenant]))
        .is_empty(),
        "no invoice during the trial"
    );
}
