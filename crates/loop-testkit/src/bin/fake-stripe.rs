//! `fake-stripe [ADDRESS]`: the payment processor's stand-in as a program, for a `loop
//! server` run outside the Rust tests (the API fuzzing in CI). Prints its base URL, then
//! serves until killed. Its secrets are `loop_testkit::stripe::{SECRET_KEY, WEBHOOK_SECRET}`.

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let fake = loop_testkit::stripe::FakeStripe::start_on(&addr);
    println!("{}", fake.base);
    fake.serve_forever();
}
