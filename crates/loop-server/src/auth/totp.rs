//! Authenticator codes (TOTP, RFC 6238): 6 digits, 30-second steps, one step of skew. A code
//! is accepted once: the step it matched is stored, and a code for that step or an earlier
//! one is refused, so a code seen over a shoulder or in a log cannot be replayed.

use loop_api::User;

use crate::db::users;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// The wrapping context of a user's TOTP secret.
pub(crate) fn context(user_id: &str) -> String {
    crate::keys::totp_context(user_id)
}

/// The TOTP generator of a user, from the secret stored wrapped under the master key.
pub(crate) fn generator(state: &AppState, user: &User, stored: &str) -> ApiResult<totp_rs::Totp> {
    let key = state.master.unwrap(&context(&user.id), stored)?;
    with_secret(key.expose().to_vec(), &user.email)
}

/// The generator for a raw secret, as shown to the user at enrolment.
pub(crate) fn with_secret(secret: Vec<u8>, account: &str) -> ApiResult<totp_rs::Totp> {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some("Loop Backup"))
        .build()
        .map_err(|e| ApiError::Internal(format!("TOTP setup: {e:?}")))
}

/// What a new authenticator is shown: its secret in base32 and as an `otpauth://` address
/// (which a QR code carries).
pub(crate) fn enrolment(secret: &[u8], account: &str) -> ApiResult<loop_api::TotpEnrollment> {
    let url = with_secret(secret.to_vec(), account)?
        .to_url()
        .map_err(|e| ApiError::Internal(format!("TOTP URL: {e:?}")))?;
    Ok(loop_api::TotpEnrollment {
        secret: totp_rs::Secret::from(secret.to_vec()).to_base32().into(),
        otpauth_url: url.into(),
    })
}

/// What a code turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Accepted,
    /// Right for its time, but that step was already used.
    Reused,
    Wrong,
}

/// Checks `code` against the user's secret (`stored`, wrapped) at `now` (ms), and when it
/// matches, takes its step so that it is never accepted again.
pub(crate) async fn check(
    state: &AppState,
    user: &User,
    stored: &str,
    code: &str,
    now: i64,
) -> ApiResult<Code> {
    let Some(step) = generator(state, user, stored)?.check(code.trim(), (now / 1000) as u64) else {
        return Ok(Code::Wrong);
    };
    Ok(
        if users::accept_totp_step(&state.db.pool, &user.id, step).await? {
            Code::Accepted
        } else {
            Code::Reused
        },
    )
}
