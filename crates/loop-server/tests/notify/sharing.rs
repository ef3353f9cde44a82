//! The senders are shared: a receiver that never answers holds up neither another target
//! nor another tenant.

use super::*;

/// A webhook URL whose receiver takes connections and never answers.
fn silent_receiver() -> String {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", silent.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming() {
            held.push(c);
        }
    });
    url
}

/// Runs one notifier pass on a thread of its own, so the test can watch it.
fn pass_in_background(server: &Server) -> std::thread::JoinHandle<()> {
    let state = server.state.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(loop_server::notify::pass(&state, false))
            .expect("a notifier pass")
    })
}

/// Waits (within a minute) until `done`, while a pass runs elsewhere.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (within a minute) until `receiver` has a delivery.
fn until_received(receiver: &Receiver) {
    eventually("the answering receiver got something", || {
        !receiver.got().is_empty()
    });
}

#[test]
fn a_receiver_that_never_answers_holds_up_only_its_own_deliveries() {
    let server = start(|c| c.notify.webhook_timeout_seconds = 5);
    let admin = server.admin();
    let (tenant, _) = customer_with_vault(&admin, "Alpha", None);
    let silent_url = silent_receiver();
    let receiver = Receiver::start(&[]);
    // Both hear one event; the silent target's delivery is queued first, so a sender
    // taking deliveries one by one would wait for it to time out before trying the other.
    let hears = json!({ "min_severity": "info", "kinds": ["token-created"] });
    let (stuck, _) = webhook_target(&admin, &tenant, &silent_url, hears.clone());
    let (fine, _) = webhook_target(&admin, &tenant, &receiver.url(), hears);
    support::vault::token(&admin, &tenant, &["restore"], None);
    let passing = pass_in_background(&server);
    until_received(&receiver);
    let stuck_now = deliveries(&admin, &stuck);
    assert_eq!(stuck_now[0]["state"], "queued");
    assert_eq!(
        stuck_now[0]["last_error"],
        Value::Null,
        "the silent receiver's try has not even timed out: {stuck_now:#?}"
    );
    passing.join().unwrap();
    let stuck_after = deliveries(&admin, &stuck);
    assert!(
        stuck_after[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{stuck_after:#?}"
    );
    assert_eq!(deliveries(&admin, &fine)[0]["state"], "succeeded");
}

/// Five tenants' deliveries to receivers that never answer (five each, twenty-five in all),
/// queued before another tenant's one: the other tenant's goes out at once, not after the
/// first twenty time out.
#[test]
fn a_tenants_silent_receiver_holds_up_no_other_tenant() {
    let server = start(|c| c.notify.webhook_timeout_seconds = 5);
    let admin = server.admin();
    let (quick, _) = customer_with_vault(&admin, "Quick", None);
    let hears = json!({ "min_severity": "info", "kinds": ["token-created"] });
    let silent = silent_receiver();
    let mut stuck = Vec::new();
    for n in 0..5 {
        let (slow, _) = customer_with_vault(&admin, &format!("Slow {n}"), None);
        stuck.push(webhook_target(&admin, &slow, &silent, hears.clone()).0);
        for _ in 0..5 {
            support::vault::token(&admin, &slow, &["restore"], None);
        }
    }
    server.advance(Duration::from_secs(1));
    let admin = server.admin();
    let receiver = Receiver::start(&[]);
    let (fine, _) = webhook_target(&admin, &quick, &receiver.url(), hears);
    support::vault::token(&admin, &quick, &["restore"], None);
    let passing = pass_in_background(&server);
    until_received(&receiver);
    for target in &stuck {
        let stuck_now = deliveries(&admin, target);
        assert_eq!(stuck_now.len(), 5);
        assert!(
            stuck_now.iter().all(|d| d["last_error"].is_null()),
            "no try of a silent receiver has timed out yet: {stuck_now:#?}"
        );
    }
    eventually("the answered delivery is recorded", || {
        deliveries(&admin, &fine)[0]["state"] == "succeeded"
    });
    // The tries that time out are put back for later than this pass runs.
    server.step_back(Duration::from_secs(86_400));
    passing.join().unwrap();
}
