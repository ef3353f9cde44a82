//! What the readiness probe answers (`routes::health` makes it; the application state
//! keeps the last answer).

/// The `/readyz` answer.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    pub checks: Vec<Check>,
}

/// One part and whether it answered.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Check {
    /// `database`, or `destination:<name>`.
    pub component: String,
    pub ok: bool,
}
