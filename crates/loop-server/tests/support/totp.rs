//! Authenticator codes as a test makes them, by the server's clock.

use serde_json::json;
use std::time::Duration;

use super::{Caller, Server};

impl Server {
    /// The current code of a TOTP secret, by the server's clock.
    pub fn totp_code(&self, secret_b32: &str) -> String {
        self.totp_code_at(secret_b32, 0)
    }

    /// The code of a TOTP secret `steps` 30-second steps from now, by the server's clock.
    pub fn totp_code_at(&self, secret_b32: &str, steps: i64) -> String {
        let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
        let totp = totp_rs::Builder::new()
            .with_algorithm(totp_rs::Algorithm::SHA1)
            .with_digits(6)
            .with_step_duration(30)
            .with_secret(secret)
            .build()
            .expect("TOTP");
        totp.generate((self.state.now() / 1000 + steps * 30) as u64)
            .to_string()
    }

    /// Turns on the authenticator of the signed-in `user` (whose password is `password`) and
    /// answers its secret. The server's clock is moved to just after a step begins, so the
    /// next code a test asks for is a new one.
    pub fn enable_totp(&self, user: &Caller<'_>, password: &str) -> String {
        let secret = user
            .post("/api/v1/me/totp", json!({ "current_password": password }))
            .expect(200)["secret"]
            .as_str()
            .unwrap()
            .to_string();
        self.next_totp_step();
        user.post(
            "/api/v1/me/totp/confirm",
            json!({ "code": self.totp_code(&secret) }),
        )
        .expect(204);
        self.next_totp_step();
        secret
    }

    /// Moves the server's clock into the next 30-second step (plus a second).
    pub fn next_totp_step(&self) {
        let into_step = self.state.now().rem_euclid(30_000) as u64;
        self.advance(Duration::from_millis(30_000 - into_step + 1_000));
    }
}
