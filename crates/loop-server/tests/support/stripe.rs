//! The payment processor's stand-in (`loop_testkit::stripe`) as the server's tests use it:
//! the server's configuration for it, and its events signed and delivered to the server.

use serde_json::{Value, json};

pub use loop_testkit::stripe::{API_VERSION, Card, FakeStripe, SECRET_KEY, WEBHOOK_SECRET};

use super::{Reply, Server};

/// The server's `[billing.stripe]` for `fake`.
pub fn config(fake: &FakeStripe) -> loop_server::config::StripeConfig {
    loop_server::config::StripeConfig::new(&fake.base, SECRET_KEY, WEBHOOK_SECRET)
}

/// A signed event as the processor sends it: (body, `Stripe-Signature`).
pub fn event(fake: &FakeStripe, kind: &str, object: Value) -> (String, String) {
    let body = json!({
        "id": fake.new_id("evt"), "object": "event", "api_version": API_VERSION, "type": kind,
        "data": { "object": object },
    })
    .to_string();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig =
        loop_server::notify::webhook::signature(WEBHOOK_SECRET.as_bytes(), now, body.as_bytes());
    (body, sig)
}

/// The event that follows a card entered on the page `session_url`, to deliver by hand.
pub fn setup_event(fake: &FakeStripe, session_url: &str, card: Card) -> (String, String) {
    let seti = fake.enter_card(session_url, card);
    event(fake, "setup_intent.succeeded", seti)
}

/// The customer enters `card` on the page `session_url`, and the processor tells the server.
pub fn complete_setup(fake: &FakeStripe, server: &Server, session_url: &str, card: Card) -> Reply {
    let (body, sig) = setup_event(fake, session_url, card);
    post_webhook(server, &body, &sig)
}

/// Posts a webhook body with a `Stripe-Signature` header.
pub fn post_webhook(server: &Server, body: &str, signature: &str) -> Reply {
    server.send(
        server
            .request(reqwest::Method::POST, "/api/v1/billing/stripe/webhook")
            .header("Stripe-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body.to_string()),
    )
}

/// Sends a form to the processor as the server would, to check the stand-in's strictness.
pub fn post_as_server(fake: &FakeStripe, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = reqwest::blocking::Client::new()
        .post(format!("{}{path}", fake.base))
        .bearer_auth(SECRET_KEY)
        .header("Stripe-Version", API_VERSION)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .expect("the stand-in answers");
    (r.status().as_u16(), r.json().unwrap())
}
