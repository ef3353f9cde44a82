//! The payment processor: Stripe's HTTP API, version [`API_VERSION`] (pinned on every
//! request with `Stripe-Version`), spoken directly with form-encoded requests.
//!
//! The service never sees a card. A customer enters it on Stripe's own page (Checkout in
//! setup mode, [`Stripe::setup_session`]); Stripe tells the service by a signed webhook
//! ([`verify`]) which payment method it now holds, and the service keeps only Stripe's
//! customer and payment-method IDs. An invoice is charged off-session with a payment
//! intent ([`Stripe::charge`]) whose idempotency key names the invoice and the attempt, so
//! asking again after a lost answer never charges twice.

use std::time::Duration;

use aws_lc_rs::hmac;
use serde_json::Value;

use crate::config::StripeConfig;

/// The API version every request pins (docs/OPERATIONS.md, "Payments").
pub const API_VERSION: &str = "2024-06-20";

/// How far a webhook's signed time may be from this machine's clock (Stripe's own
/// libraries' default).
pub const TOLERANCE_SECS: i64 = 300;

/// Why the processor did not do what was asked.
#[derive(Debug)]
pub enum StripeError {
    /// Not reachable, an error on its side, or an answer that does not read: asking again
    /// later may work.
    Unavailable(String),
    /// It refused the service's key (401, 403: rolled, revoked, too narrow): nothing asked
    /// works until the operator fixes the configuration.
    Unauthorized(String),
    /// It refused the request itself (a payment method detached, a parameter it does not
    /// know): asking the same again will not help.
    Refused(String),
}

impl std::fmt::Display for StripeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StripeError::Unavailable(m) => write!(f, "the payment processor is unavailable: {m}"),
            StripeError::Unauthorized(m) => {
                write!(f, "the payment processor refused the service's key: {m}")
            }
            StripeError::Refused(m) => write!(f, "the payment processor refused: {m}"),
        }
    }
}

/// Where the customer enters a payment method.
#[derive(Debug)]
pub struct SetupSession {
    pub id: String,
    pub url: String,
}

/// One charge of an invoice.
pub struct ChargeRequest<'a> {
    pub customer: &'a str,
    pub payment_method: &'a str,
    pub amount_cents: u64,
    /// ISO 4217 (any case).
    pub currency: &'a str,
    pub invoice_id: &'a str,
    pub tenant_id: &'a str,
    pub description: &'a str,
    /// Repeating a key repeats the answer, never the charge.
    pub idempotency_key: &'a str,
}

/// What came of a charge.
#[derive(Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        payment_intent: String,
    },
    /// Not settled yet: a webhook (`payment_intent.succeeded` or `.payment_failed`) says.
    Processing {
        payment_intent: String,
    },
    /// Declined, or the payment method needs the customer: a new one is needed.
    Failed(Decline),
}

/// A charge the processor declined, as it said so.
#[derive(Debug, PartialEq, Eq)]
pub struct Decline {
    pub payment_intent: Option<String>,
    pub code: String,
    pub message: String,
}

pub struct Stripe {
    client: reqwest::Client,
    base: String,
    config: StripeConfig,
}

impl Stripe {
    pub fn new(config: &StripeConfig) -> Result<Stripe, String> {
        config.check()?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("loop-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("the payment processor's client: {e}"))?;
        Ok(Stripe {
            client,
            base: config.api_base.trim_end_matches('/').to_string(),
            config: config.clone(),
        })
    }

    pub fn return_url(&self) -> Option<&str> {
        self.config.return_url.as_deref()
    }

    /// Posts a form; answers the JSON object of a 2xx answer, or of a `card_error`
    /// (`Ok(Err(error))`), which a charge reads as its outcome.
    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<Result<Value, Value>, StripeError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let answer = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(self.config.secret_key.expose())
            .header("Stripe-Version", API_VERSION)
            .header("Idempotency-Key", idempotency_key)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| StripeError::Unavailable(crate::notify::webhook::describe(&e)))?;
        let status = answer.status();
        let bytes = answer
            .bytes()
            .await
            .map_err(|e| StripeError::Unavailable(crate::notify::webhook::describe(&e)))?;
        let json: Value = serde_json::from_slice(&bytes).map_err(|_| {
            StripeError::Unavailable(format!("HTTP {status} with a body that is not JSON"))
        })?;
        if status.is_success() {
            return Ok(Ok(json));
        }
        let error = json.get("error").cloned().unwrap_or(Value::Null);
        let kind = error.get("type").and_then(Value::as_str).unwrap_or("");
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_string();
        match (status.as_u16(), kind) {
            (402, "card_error") => Ok(Err(error)),
            // 409: another request with the same idempotency key is still in progress (its
            // outcome is this request's: asked again later with the same key).
            (409 | 429 | 500..=599, _) | (_, "api_error") => Err(StripeError::Unavailable(
                format!("HTTP {status}: {message}"),
            )),
            (401 | 403, _) => Err(StripeError::Unauthorized(format!(
                "HTTP {status} ({kind}): {message}"
            ))),
            _ => Err(StripeError::Refused(format!(
                "HTTP {status} ({kind}): {message}"
            ))),
        }
    }

    /// Reads `path` (with its query); answers the JSON object of a 2xx answer.
    async fn get(&self, path: &str) -> Result<Value, StripeError> {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.config.secret_key.expose())
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| StripeError::Unavailable(crate::notify::webhook::describe(&e)))?;
        let status = answer.status();
        let json: Value = answer.json().await.map_err(|_| {
            StripeError::Unavailable(format!("HTTP {status} with a body that is not JSON"))
        })?;
        if status.is_success() {
            return Ok(json);
        }
        let message = json
            .pointer("/error/message")
            .and_then(Value::as_str)
            .unwrap_or("no message");
        Err(match status.as_u16() {
            429 | 500..=599 => StripeError::Unavailable(format!("HTTP {status}: {message}")),
            401 | 403 => StripeError::Unauthorized(format!("HTTP {status}: {message}")),
            _ => StripeError::Refused(format!("HTTP {status}: {message}")),
        })
    }

    /// A payment intent as it stands now (a charge's webhook may never come).
    pub async fn payment_intent(&self, id: &str) -> Result<Value, StripeError> {
        plain_id("payment intent", id)?;
        self.get(&format!("/v1/payment_intents/{id}")).await
    }

    /// The payment intents made for `invoice_id` (by its `metadata[invoice_id]`), newest
    /// first: for a charge whose answer was lost.
    pub async fn intents_of_invoice(&self, invoice_id: &str) -> Result<Vec<Value>, StripeError> {
        plain_id("invoice", invoice_id)?;
        let query = format!("metadata['invoice_id']:'{invoice_id}'");
        let query: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let found = self
            .get(&format!(
                "/v1/payment_intents/search?query={query}&limit=100"
            ))
            .await?;
        Ok(found
            .get("data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    fn id(json: &Value, what: &str) -> Result<String, StripeError> {
        json.get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| StripeError::Unavailable(format!("the {what} has no id")))
    }

    /// Creates the processor's customer for a tenant (once: the key names the tenant).
    pub async fn create_customer(
        &self,
        tenant_id: &str,
        name: &str,
        email: Option<&str>,
    ) -> Result<String, StripeError> {
        let mut form = vec![("name", name), ("metadata[tenant_id]", tenant_id)];
        if let Some(e) = email {
            form.push(("email", e));
        }
        let key = format!("customer-{tenant_id}");
        match self.post("/v1/customers", &form, &key).await? {
            Ok(json) => Self::id(&json, "customer"),
            Err(e) => Err(StripeError::Refused(format!("{e}"))),
        }
    }

    /// A Checkout page in setup mode where the customer enters a payment method.
    pub async fn setup_session(
        &self,
        customer: &str,
        tenant_id: &str,
        currency: &str,
        return_url: &str,
        request_id: &str,
    ) -> Result<SetupSession, StripeError> {
        let currency = currency.to_ascii_lowercase();
        let form = [
            ("mode", "setup"),
            ("customer", customer),
            ("currency", currency.as_str()),
            ("client_reference_id", tenant_id),
            ("success_url", return_url),
            ("cancel_url", return_url),
            ("setup_intent_data[metadata][tenant_id]", tenant_id),
        ];
        match self
            .post("/v1/checkout/sessions", &form, request_id)
            .await?
        {
            Ok(json) => {
                let url = json
                    .get("url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| StripeError::Unavailable("the session has no url".into()))?;
                Ok(SetupSession {
                    id: Self::id(&json, "checkout session")?,
                    url: url.to_string(),
                })
            }
            Err(e) => Err(StripeError::Refused(format!("{e}"))),
        }
    }

    /// Charges an invoice off-session with the customer's payment method.
    pub async fn charge(&self, c: &ChargeRequest<'_>) -> Result<ChargeOutcome, StripeError> {
        let amount = c.amount_cents.to_string();
        let currency = c.currency.to_ascii_lowercase();
        let form = [
            ("amount", amount.as_str()),
            ("currency", currency.as_str()),
            ("customer", c.customer),
            ("payment_method", c.payment_method),
            ("confirm", "true"),
            ("off_session", "true"),
            ("automatic_payment_methods[enabled]", "true"),
            ("automatic_payment_methods[allow_redirects]", "never"),
            ("description", c.description),
            ("metadata[invoice_id]", c.invoice_id),
            ("metadata[tenant_id]", c.tenant_id),
        ];
        Ok(
            match self
                .post("/v1/payment_intents", &form, c.idempotency_key)
                .await?
            {
                Ok(pi) => outcome_of(&pi)?,
                Err(error) => ChargeOutcome::Failed(Decline {
                    payment_intent: error
                        .pointer("/payment_intent/id")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    code: error
                        .get("decline_code")
                        .or_else(|| error.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("card_error")
                        .to_string(),
                    message: error
                        .get("message")
                        .and_then(Value::as_str)
                        .unwrap_or("the card was declined")
                        .to_string(),
                }),
            },
        )
    }

    /// Whether `header` (`Stripe-Signature`) signs `payload` with this endpoint's secret.
    pub fn verify(&self, payload: &[u8], header: &str, now_secs: i64) -> Result<(), &'static str> {
        verify(
            payload,
            header,
            self.config.webhook_secret.expose().as_bytes(),
            now_secs,
        )
    }
}

/// Refuses an ID of anything but letters, digits and `_`, which goes into a URL unescaped.
fn plain_id(what: &str, id: &str) -> Result<(), StripeError> {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(())
    } else {
        Err(StripeError::Refused(format!("{id:?} is no {what} ID")))
    }
}

/// What a payment intent's state says of the charge.
pub fn outcome_of(pi: &Value) -> Result<ChargeOutcome, StripeError> {
    let id = Stripe::id(pi, "payment intent")?;
    let status = pi.get("status").and_then(Value::as_str).unwrap_or("");
    Ok(match status {
        "succeeded" => ChargeOutcome::Succeeded { payment_intent: id },
        "processing" => ChargeOutcome::Processing { payment_intent: id },
        other => {
            let last = pi.get("last_payment_error");
            ChargeOutcome::Failed(Decline {
                payment_intent: Some(id),
                code: last
                    .and_then(|e| e.get("decline_code").or_else(|| e.get("code")))
                    .and_then(Value::as_str)
                    .unwrap_or(other)
                    .to_string(),
                message: last
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
                    .unwrap_or("the payment needs the customer")
                    .to_string(),
            })
        }
    })
}

/// Checks a `Stripe-Signature` header (`t=<unix seconds>,v1=<hex>[,v1=<hex>…]`, other
/// schemes ignored): some `v1` must be HMAC-SHA256 of `"<t>.<payload>"` under `secret`,
/// and `t` within [`TOLERANCE_SECS`] of `now_secs`, so a captured event cannot be
/// replayed later.
pub fn verify(
    payload: &[u8],
    header: &str,
    secret: &[u8],
    now_secs: i64,
) -> Result<(), &'static str> {
    let mut t: Option<i64> = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" => {
                t = Some(
                    v.parse()
                        .map_err(|_| "the signature's time does not read")?,
                )
            }
            "v1" => signatures.push(v),
            _ => {}
        }
    }
    let t = t.ok_or("the signature has no time")?;
    if signatures.is_empty() {
        return Err("the signature has no v1 value");
    }
    if now_secs.abs_diff(t) > TOLERANCE_SECS.unsigned_abs() {
        return Err("the signature is too old or from the future");
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(payload);
    let matches = signatures
        .iter()
        .any(|s| hex::decode(s).is_ok_and(|tag| hmac::verify(&key, &signed, &tag).is_ok()));
    if matches {
        Ok(())
    } else {
        Err("no signature matches")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A known answer made and checked with Stripe's own Python library (stripe 16.1.0):
    // `stripe.WebhookSignature.verify_header(PAYLOAD, HEADER, SECRET, tolerance=None)`
    // accepts it, and refuses it once a byte of the payload changes.
    const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event","type":"setup_intent.succeeded"}"#;
    const SECRET: &[u8] = b"whsec_test_secret";
    const T: i64 = 1_700_000_000;
    const V1: &str = "28354e2a90feb6a4b0ab20b5ca467fa30c4023b0873ee8f9f1b5d54f1c4c6888";

    #[test]
    fn the_processors_own_example_verifies() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(verify(PAYLOAD, &header, SECRET, T + 10), Ok(()));
        // Our own signer (the fake processor's in tests) makes the same header.
        assert_eq!(
            crate::notify::webhook::signature(SECRET, T, PAYLOAD),
            header
        );
    }

    #[test]
    fn a_changed_byte_a_wrong_secret_or_an_old_time_is_refused() {
        let header = format!("t={T},v1={V1}");
        let mut changed = PAYLOAD.to_vec();
        changed[8] = b'2';
        assert!(verify(&changed, &header, SECRET, T).is_err());
        assert!(verify(PAYLOAD, &header, b"whsec_other", T).is_err());
        assert!(verify(PAYLOAD, &header, SECRET, T + TOLERANCE_SECS + 1).is_err());
        assert!(verify(PAYLOAD, &header, SECRET, T - TOLERANCE_SECS - 1).is_err());
        // The signed time is part of what is signed.
        let moved = format!("t={},v1={V1}", T + 1);
        assert!(verify(PAYLOAD, &moved, SECRET, T).is_err());
    }

    #[test]
    fn any_v1_may_match_and_other_schemes_are_ignored() {
        let other = "0".repeat(64);
        let rolled = format!("t={T},v1={other},v1={V1},v0={other}");
        assert_eq!(verify(PAYLOAD, &rolled, SECRET, T), Ok(()));
        // A v0 (Stripe's test-mode scheme) alone never counts.
        assert!(verify(PAYLOAD, &format!("t={T},v0={V1}"), SECRET, T).is_err());
        for bad in [
            "",
            "t=x,v1=00",
            &format!("v1={V1}"),
            "t=1700000000",
            "garbage",
            // Times whose distance from now does not fit in an i64.
            "t=-9223372036854775808,v1=00",
            "t=9223372036854775807,v1=00",
        ] {
            assert!(verify(PAYLOAD, bad, SECRET, T).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_payment_intent_reads_as_its_outcome() {
        let pi = |status: &str| serde_json::json!({ "id": "pi_1", "status": status });
        assert_eq!(
            outcome_of(&pi("succeeded")).unwrap(),
            ChargeOutcome::Succeeded {
                payment_intent: "pi_1".into()
            }
        );
        assert!(matches!(
            outcome_of(&pi("processing")).unwrap(),
            ChargeOutcome::Processing { .. }
        ));
        assert!(matches!(
            outcome_of(&pi("requires_payment_method")).unwrap(),
            ChargeOutcome::Failed(_)
        ));
        assert!(outcome_of(&serde_json::json!({ "status": "succeeded" })).is_err());
    }

    #[test]
    fn the_api_must_be_https_unless_on_this_machine() {
        let c = |base: &str| StripeConfig::new(base, "sk_test_1", "whsec_1");
        assert!(c("https://api.stripe.com").check().is_ok());
        assert!(c("http://127.0.0.1:9000").check().is_ok());
        assert!(c("http://api.stripe.com").check().is_err());
        assert!(
            StripeConfig::new("https://api.stripe.com", "", "w")
                .check()
                .is_err()
        );
    }
}
