//! Every page, read by axe-core (the npm package, vendored in `vendor/`) in Chromium: no
//! serious or critical violation of WCAG 2 A/AA or best practice; and on a phone's screen
//! (375×667) no page scrolls sideways.

use loop_testkit::browser::{Browser, Window};

use super::support::vault::back_up_into;
use super::support::{ADMIN_EMAIL, ADMIN_PASSWORD, Server, USER_PASSWORD, with_spare};
use super::{browser, sign_in};

const AXE: &str = include_str!("vendor/axe-4.14.1.min.js");

/// The serious and critical violations axe finds on the page shown.
fn violations(b: &Browser) -> Vec<String> {
    b.run(AXE);
    let found = b.run_async(
        "const done = arguments[arguments.length - 1];
         axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                       'best-practice'] })
            .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => v.id + ': ' + v.help + ' at ' +
                     v.nodes.map(n => n.target.join(' ')).join(', '))))
            .catch(e => done(['axe failed: ' + e]));",
    );
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The elements that stick out of the window on the right (the page would scroll sideways),
/// outside the regions that scroll on their own.
fn sticking_out(b: &Browser) -> Vec<String> {
    let found = b.run(
        "if (document.documentElement.scrollWidth <= window.innerWidth) return [];
         const out = [...document.querySelectorAll('body *')]
            .filter(e => !(e.closest('.scroll') && e.closest('.scroll') !== e) && e.getBoundingClientRect().right > window.innerWidth)
            .map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + (e.textContent || '').slice(0, 40));
         return out.length ? out : ['the page: ' + document.documentElement.scrollWidth + ' px'];",
    );
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_page_passes_axe_and_fits_a_phone() {
    let server = Server::start_with(with_spare);
    let admin = server.admin();
    let acme = server.customer(&admin, "acme");
    server.signup_plan(&admin);
    let Some(b) = browser(&server) else {
        return;
    };
    let t = &acme.tenant_id;
    let src = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(src.path().join("docs/reports")).unwrap();
    std::fs::write(src.path().join("docs/reports/q1.csv"), b"q1,42\n").unwrap();
    let snapshot = back_up_into(&server, &acme.vault_id, src.path());
    let here = format!("/vaults/{}/snapshots/{snapshot}", acme.vault_id);
    let before_sign_in = [
        "/signin",
        "/signup",
        "/invite?token=lpi_x",
        "/reset",
        "/reset?code=lpr_x",
    ];
    let signed_in = [
        format!("/t/{t}"),
        format!("/t/{t}/sessions"),
        format!("/t/{t}/audit"),
        format!("/t/{t}/audit?verify=1"),
        format!("/t/{t}/users"),
        format!("/t/{t}/devices"),
        format!("/t/{t}/tenants"),
        format!("/t/{t}/vaults"),
        format!("/t/{t}/jobs"),
        format!("/t/{t}/tokens"),
        format!("/t/{t}/items"),
        format!("/t/{t}/notifications"),
        format!("/t/{t}/policies"),
        format!("/policies/{}", acme.policy_id),
        format!("/t/{t}/billing"),
        format!("/items/{}", acme.item_id),
        format!("/jobs/{}", acme.job_id),
        format!("/vaults/{}", acme.vault_id),
        here.clone(),
        format!(
            "{here}?path=%2F{}%2Fdocs",
            src.path().file_name().unwrap().to_string_lossy()
        ),
        format!("{here}?q=q1"),
        "/account".to_string(),
        "/account/sessions".to_string(),
        "/account/authenticator".to_string(),
        "/t/tn_00000000000000000000000000000000".to_string(),
    ];
    let mut problems = Vec::new();
    let mut check = |b: &Browser, path: &str| {
        for window in [Window::Desktop, Window::Phone] {
            b.window(window);
            b.goto(path);
            for v in violations(b) {
                problems.push(format!("{path} ({window:?}): {v}"));
            }
            if matches!(window, Window::Phone) {
                let out = sticking_out(b);
                if !out.is_empty() {
                    problems.push(format!("{path} scrolls sideways on a phone: {out:?}"));
                }
            }
        }
    };
    for path in before_sign_in {
        check(&b, path);
    }
    b.window(Window::Desktop);
    sign_in(&b, "admin@acme.example", USER_PASSWORD);
    for path in &signed_in {
        check(&b, path);
    }
    // Branded by the provider with a light colour and a logo, the pages still pass.
    use base64::Engine as _;
    let provider = admin.provider_tenant_id();
    let logo = loop_testkit::browser::png_image(120, 40, [0x12, 0x34, 0x56]);
    admin
        .put(
            &format!("/api/v1/tenants/{provider}/branding"),
            serde_json::json!({
                "product_name": "Northwind Backup", "accent": "#ffd400",
                "logo_png": base64::engine::general_purpose::STANDARD.encode(logo),
            }),
        )
        .expect(200);
    for path in [format!("/t/{t}"), format!("/t/{t}/jobs"), "/account".into()] {
        check(&b, &path);
    }
    // The branding page, as the provider's admin sees it.
    let root = browser(&server).unwrap();
    sign_in(&root, ADMIN_EMAIL, ADMIN_PASSWORD);
    check(&root, &format!("/t/{provider}/branding"));
    // The authenticator's key is on the answer to a form: checked where the form leads.
    b.window(Window::Phone);
    b.goto("/account/authenticator");
    b.fill("#current_password", USER_PASSWORD);
    b.click("form[action='/account/authenticator'] button");
    for v in violations(&b) {
        problems.push(format!("the authenticator's key: {v}"));
    }
    let out = sticking_out(&b);
    if !out.is_empty() {
        problems.push(format!(
            "the authenticator's key scrolls sideways on a phone: {out:?}"
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
