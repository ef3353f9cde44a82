//! A small stand-in for Stripe's HTTP API (no real processor is reachable from a test),
//! strict where the real one is: it wants the secret key, the pinned `Stripe-Version`, a
//! form body whose every parameter exists in Stripe's API reference for that operation
//! (`400 parameter_unknown` otherwise), the parameters Stripe requires, and it honours
//! idempotency keys (the same key answers the same, a key reused with other parameters is
//! refused). It plays the customer's side too: [`FakeStripe::enter_card`] is the card
//! entered on the processor's page; the caller delivers the event that follows, signed with
//! [`WEBHOOK_SECRET`]. `fake-stripe` runs it as a program (for the API fuzzing in CI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use params::{CUSTOMER_PARAMS, INTENT_PARAMS, NESTED, SESSION_PARAMS};

mod params;

pub const SECRET_KEY: &str = "sk_test_fake_processor";
pub const WEBHOOK_SECRET: &str = "whsec_fake_processor";
/// The version the server pins (docs/OPERATIONS.md); anything else is refused.
pub const API_VERSION: &str = "2024-06-20";

/// How a card entered on the processor's page behaves when charged.
#[derive(Clone, Debug)]
pub enum Card {
    Pays,
    /// Accepted, and still `processing` (a bank debit that settles days later).
    Processes,
    /// Declined with this decline code (`insufficient_funds`).
    Declines(&'static str),
}

#[derive(Default)]
struct Books {
    next: u64,
    customers: HashMap<String, Value>,
    sessions: HashMap<String, Value>,
    cards: HashMap<String, (String, Card)>,
    intents: Vec<Value>,
    /// Idempotency key → (operation and parameters, status, answer).
    answered: HashMap<String, (String, u16, Value)>,
    /// Answer the next charge with HTTP 500 after making it (a lost answer).
    lose_next_answer: bool,
    /// Answer the next charge with HTTP 500 without making it.
    drop_next_charge: bool,
    /// Answer the next charge with Stripe's `409 idempotency_error` after making it, as
    /// Stripe answers a request while another with the same key is still in progress.
    conflict_next: bool,
    refused: Vec<String>,
    /// The service's API key was rolled at the processor: every request is `401`.
    key_rolled: bool,
    /// Charge requests received, answered from the idempotency keys' answers or not.
    charge_requests: usize,
}

impl Books {
    fn id(&mut self, prefix: &str) -> String {
        self.next += 1;
        format!("{prefix}_fake{:06}", self.next)
    }
}

pub struct FakeStripe {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    books: Arc<Mutex<Books>>,
    thread: std::thread::JoinHandle<()>,
}

fn error(status: StatusCode, kind: &str, code: &str, message: String) -> (u16, Value) {
    (
        status.as_u16(),
        json!({ "error": { "type": kind, "code": code, "message": message } }),
    )
}

fn invalid(code: &str, message: String) -> (u16, Value) {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        code,
        message,
    )
}

/// Refuses a parameter the operation does not have.
fn check_params(form: &[(String, String)], allowed: &[&str]) -> Result<(), (u16, Value)> {
    for (key, _) in form {
        let mut parts = key.split('[');
        let top = parts.next().unwrap_or_default();
        let second = parts.next().map(|p| p.trim_end_matches(']'));
        let known = allowed.contains(&top)
            && match (NESTED.iter().find(|(n, _)| *n == top), second) {
                (Some((_, subs)), Some(s)) => subs.contains(&s),
                _ => true,
            };
        if !known {
            return Err(invalid(
                "parameter_unknown",
                format!("Received unknown parameter: {key}"),
            ));
        }
    }
    Ok(())
}

fn get<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn metadata(form: &[(String, String)], prefix: &str) -> Value {
    let mut m = serde_json::Map::new();
    for (k, v) in form {
        if let Some(rest) = k.strip_prefix(prefix) {
            m.insert(rest.trim_end_matches(']').to_string(), json!(v));
        }
    }
    Value::Object(m)
}

fn require(form: &[(String, String)], key: &str) -> Result<String, (u16, Value)> {
    get(form, key).map(str::to_string).ok_or_else(|| {
        invalid(
            "parameter_missing",
            format!("Missing required param: {key}."),
        )
    })
}

fn create(books: &mut Books, path: &str, form: &[(String, String)]) -> Result<Value, (u16, Value)> {
    match path {
        "/v1/customers" => {
            check_params(form, CUSTOMER_PARAMS)?;
            let id = books.id("cus");
            let c = json!({
                "id": id, "object": "customer", "name": get(form, "name"),
                "email": get(form, "email"), "metadata": metadata(form, "metadata["),
            });
            books.customers.insert(id, c.clone());
            Ok(c)
        }
        "/v1/checkout/sessions" => {
            check_params(form, SESSION_PARAMS)?;
            let mode = require(form, "mode")?;
            require(form, "success_url")?;
            if mode == "setup" && get(form, "currency").is_none() {
                return Err(invalid(
                    "parameter_missing",
                    "currency is required in setup mode without payment_method_types".into(),
                ));
            }
            let customer = require(form, "customer")?;
            if !books.customers.contains_key(&customer) {
                return Err(invalid(
                    "resource_missing",
                    format!("No such customer: '{customer}'"),
                ));
            }
            let id = books.id("cs");
            let s = json!({
                "id": id, "object": "checkout.session", "mode": mode, "customer": customer,
                "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                "client_reference_id": get(form, "client_reference_id"),
                "setup_intent_metadata": metadata(form, "setup_intent_data[metadata]["),
            });
            books.sessions.insert(id, s.clone());
            Ok(s)
        }
        "/v1/payment_intents" => {
            check_params(form, INTENT_PARAMS)?;
            let amount: u64 = require(form, "amount")?
                .parse()
                .map_err(|_| invalid("parameter_invalid_integer", "Invalid integer".into()))?;
            let currency = require(form, "currency")?;
            // The smallest charge in EUR and USD (others differ; the tests charge EUR).
            if amount < 50 {
                return Err(invalid(
                    "amount_too_small",
                    format!("Amount must be at least 0.50 {currency}"),
                ));
            }
            if currency != currency.to_ascii_lowercase() {
                return Err(invalid(
                    "invalid_currency",
                    "currency must be lower case".into(),
                ));
            }
            if get(form, "confirm") == Some("true")
                && get(form, "automatic_payment_methods[allow_redirects]") != Some("never")
                && get(form, "return_url").is_none()
            {
                return Err(invalid(
                    "parameter_missing",
                    "return_url is required to confirm with redirect-based payment methods".into(),
                ));
            }
            let pm = require(form, "payment_method")?;
            let customer = require(form, "customer")?;
            let card = match books.cards.get(&pm) {
                Some((owner, card)) if *owner == customer => card.clone(),
                _ => {
                    return Err(invalid(
                        "resource_missing",
                        format!("No such PaymentMethod: '{pm}' for this customer"),
                    ));
                }
            };
            let id = books.id("pi");
            let mut pi = json!({
                "id": id, "object": "payment_intent", "amount": amount, "currency": currency,
                "customer": customer, "payment_method": pm,
                "description": get(form, "description"),
                "metadata": metadata(form, "metadata["),
                "off_session": get(form, "off_session"),
            });
            match card {
                Card::Pays => {
                    pi["status"] = json!("succeeded");
                    books.intents.push(pi.clone());
                    Ok(pi)
                }
                Card::Processes => {
                    pi["status"] = json!("processing");
                    books.intents.push(pi.clone());
                    Ok(pi)
                }
                Card::Declines(code) => {
                    let message = "Your card was declined.";
                    pi["status"] = json!("requires_payment_method");
                    pi["last_payment_error"] = json!({ "code": "card_declined", "decline_code": code, "message": message });
                    books.intents.push(pi.clone());
                    Err((
                        402,
                        json!({ "error": {
                            "type": "card_error", "code": "card_declined", "decline_code": code,
                            "message": message, "payment_intent": pi,
                        }}),
                    ))
                }
            }
        }
        _ => Err(error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("Unrecognized request URL (POST: {path})"),
        )),
    }
}

/// A read: a payment intent by its ID, or those whose metadata matches a search query of
/// the one form `metadata['KEY']:'VALUE'`.
fn read(books: &Books, path: &str, query: Option<&str>) -> (u16, Value) {
    let Some(id) = path.strip_prefix("/v1/payment_intents/") else {
        return error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("Unrecognized request URL (GET: {path})"),
        );
    };
    if id == "search" {
        let q: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let Some((key, value)) = get(&q, "query")
            .and_then(|q| q.strip_prefix("metadata['"))
            .and_then(|q| q.strip_suffix('\''))
            .and_then(|q| q.split_once("']:'"))
        else {
            return invalid(
                "parameter_invalid",
                "a search query this stand-in reads".into(),
            );
        };
        let mut data: Vec<&Value> = books
            .intents
            .iter()
            .filter(|pi| pi["metadata"][key] == value)
            .collect();
        data.reverse();
        return (
            200,
            json!({ "object": "search_result", "data": data, "has_more": false }),
        );
    }
    match books.intents.iter().find(|pi| pi["id"] == id) {
        Some(pi) => (200, pi.clone()),
        None => invalid(
            "resource_missing",
            format!("No such payment_intent: '{id}'"),
        ),
    }
}

async fn handle(
    State(books): State<Arc<Mutex<Books>>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let path = uri.path().to_string();
    let form: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut b = books.lock().unwrap();
    let (status, answer) = if b.key_rolled
        || header("authorization") != format!("Bearer {SECRET_KEY}")
    {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided".into(),
        )
    } else if header("stripe-version") != API_VERSION {
        invalid(
            "invalid_version",
            format!("Invalid Stripe API version: {}", header("stripe-version")),
        )
    } else if method == axum::http::Method::GET {
        read(&b, &path, uri.query())
    } else if !header("content-type").starts_with("application/x-www-form-urlencoded") {
        invalid(
            "invalid_content_type",
            "the body must be form-encoded".into(),
        )
    } else {
        let key = header("idempotency-key").to_string();
        let request = format!("{path}?{body}");
        if path == "/v1/payment_intents" {
            b.charge_requests += 1;
        }
        let dropped = path == "/v1/payment_intents" && std::mem::take(&mut b.drop_next_charge);
        match b.answered.get(&key) {
            _ if dropped => (
                500,
                json!({ "error": { "type": "api_error", "message": "dropped" } }),
            ),
            Some((asked, status, answer)) if !key.is_empty() => {
                if *asked == request {
                    (*status, answer.clone())
                } else {
                    invalid(
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters"
                            .into(),
                    )
                }
            }
            _ => {
                let (status, answer) = match create(&mut b, &path, &form) {
                    Ok(v) => (200, v),
                    Err(e) => e,
                };
                if !key.is_empty() && status != 400 && status != 401 {
                    b.answered.insert(key, (request, status, answer.clone()));
                }
                if path == "/v1/payment_intents" && std::mem::take(&mut b.lose_next_answer) {
                    (
                        500,
                        json!({ "error": { "type": "api_error", "message": "lost" } }),
                    )
                } else if path == "/v1/payment_intents" && std::mem::take(&mut b.conflict_next) {
                    error(
                        StatusCode::CONFLICT,
                        "idempotency_error",
                        "idempotency_key_in_use",
                        "There is currently another in-progress request using this \
                         Idempotent Key (that probably means you submitted twice, and the \
                         other request is still going through)"
                            .into(),
                    )
                } else {
                    (status, answer)
                }
            }
        }
    };
    if status >= 400 {
        b.refused.push(format!("{path}: {answer}"));
    }
    (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        answer.to_string(),
    )
}

impl FakeStripe {
    /// Serves on a free port of 127.0.0.1 from a thread of its own.
    pub fn start() -> FakeStripe {
        FakeStripe::start_on("127.0.0.1:0")
    }

    pub fn start_on(addr: &str) -> FakeStripe {
        let books = Arc::new(Mutex::new(Books::default()));
        let listener = std::net::TcpListener::bind(addr).expect("a port");
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(books.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(l, app).await.unwrap();
            });
        });
        FakeStripe {
            base,
            books,
            thread,
        }
    }

    /// Serves until the process ends.
    pub fn serve_forever(self) {
        let _ = self.thread.join();
    }

    /// The customer finishes the processor's page `session_url` with `card`: the processor
    /// holds a new payment method. Answers the setup intent that the
    /// `setup_intent.succeeded` event carries.
    pub fn enter_card(&self, session_url: &str, card: Card) -> Value {
        let mut b = self.books.lock().unwrap();
        let id = session_url.rsplit('/').next().unwrap().to_string();
        let s = b
            .sessions
            .get(&id)
            .cloned()
            .expect("a session the processor made");
        let pm = b.id("pm");
        let customer = s["customer"].as_str().unwrap().to_string();
        b.cards.insert(pm.clone(), (customer.clone(), card));
        // Stripe's `created` is in seconds; a later setup here is always a later second.
        let created = 1_700_000_000 + b.next;
        json!({
            "id": format!("seti_for_{pm}"), "object": "setup_intent", "status": "succeeded",
            "created": created,
            "customer": customer, "payment_method": pm,
            "metadata": s["setup_intent_metadata"], "usage": "off_session",
        })
    }

    /// A new ID of the processor's (`evt_…`).
    pub fn new_id(&self, prefix: &str) -> String {
        self.books.lock().unwrap().id(prefix)
    }

    /// The payment intents made, oldest first.
    pub fn intents(&self) -> Vec<Value> {
        self.books.lock().unwrap().intents.clone()
    }

    /// The customers made.
    pub fn customers(&self) -> Vec<Value> {
        self.books
            .lock()
            .unwrap()
            .customers
            .values()
            .cloned()
            .collect()
    }

    /// Requests the processor refused (with the reason), for assertions.
    pub fn refused(&self) -> Vec<String> {
        self.books.lock().unwrap().refused.clone()
    }

    /// How many charges were asked for (each request, a repeated key's too).
    pub fn charge_requests(&self) -> usize {
        self.books.lock().unwrap().charge_requests
    }

    /// The next charge is made but its answer is lost (HTTP 500).
    pub fn lose_next_answer(&self) {
        self.books.lock().unwrap().lose_next_answer = true;
    }

    /// Rolls the service's API key at the processor (`true`: every request is refused
    /// `401`), or puts it back.
    pub fn roll_key(&self, rolled: bool) {
        self.books.lock().unwrap().key_rolled = rolled;
    }

    /// Detaches every payment method at the processor (a customer's bank revoked the
    /// mandate): charging one is `400 resource_missing`.
    pub fn detach_payment_methods(&self) {
        self.books.lock().unwrap().cards.clear();
    }

    /// The next charge is not made, and its answer is lost (HTTP 500).
    pub fn drop_next_charge(&self) {
        self.books.lock().unwrap().drop_next_charge = true;
    }

    /// A payment intent still `processing` settles at the processor (without an event):
    /// `succeeded`, declined with `decline_code`, or (given as the code) `canceled` or
    /// `requires_action`.
    pub fn settle_intent(&self, id: &str, declined: Option<&str>) {
        let mut b = self.books.lock().unwrap();
        let pi = b
            .intents
            .iter_mut()
            .find(|pi| pi["id"] == id)
            .expect("the intent");
        match declined {
            None => pi["status"] = json!("succeeded"),
            Some(status @ ("canceled" | "requires_action")) => pi["status"] = json!(status),
            Some(code) => {
                pi["status"] = json!("requires_payment_method");
                pi["last_payment_error"] = json!({ "code": "payment_failed", "decline_code": code,
                    "message": "The debit was returned." });
            }
        }
    }

    /// The next charge is made by a request still in progress, and the one asking is
    /// answered `409 idempotency_error` (two nodes charging the same invoice at once).
    pub fn conflict_next(&self) {
        self.books.lock().unwrap().conflict_next = true;
    }
}
