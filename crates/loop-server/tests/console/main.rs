//! The console in a real headless Chromium (and, where a browser adds nothing, as plain
//! HTTP): what a person signing in, reading a dashboard or posting a form sees.
//!
//! One file per story: `account.rs` (profile, password, consent, "download my data",
//! sessions signed out from another browser), `signin.rs` (password, authenticator code, remember me, sign-out, the
//! keyboard alone), `security.rs` (headers on every page, form tokens, where a sign-in may
//! lead), `dashboard.rs` (health, devices, storage, charts; another tenant's is a 404),
//! `vaults.rs` (the snapshot browser and its downloads, compared byte for byte), `reset.rs`
//! (a forgotten password, from the mail's link), `authenticator.rs` (set up from the QR code), `access.rs` (roles and tokens),
//! `items.rs` (protected items and their schedules), `billing.rs` (subscription and invoices), `notify.rs` (notification targets, a test sent, the delivery log), `policies.rs`
//! (retention policies), `branding.rs` (a partner's look).

#[path = "../support/mod.rs"]
mod support;

use loop_testkit::browser::Browser;
use support::Server;

mod access;
mod accessibility;
mod account;
mod audit;
mod authenticator;
mod billing;
mod branding;
mod dashboard;
mod devices;
mod isolation;
mod items;
mod jobs;
mod notify;
mod people;
mod policies;
mod reset;
mod security;
mod signin;
mod vaults;

/// A browser reading the server's pages in English, or `None` when the machine has none
/// (outside CI).
fn browser(server: &Server) -> Option<Browser> {
    Browser::start(&server.base, "en-GB")
}

/// Signs `b` in with the sign-in form, and waits for the dashboard.
fn sign_in(b: &Browser, email: &str, password: &str) {
    b.goto("/signin");
    b.fill("#email", email);
    b.fill("#password", password);
    b.click("button[type=submit]");
    b.wait_for_path("/t/");
}
