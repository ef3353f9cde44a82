//! Passwords: Argon2id hashes, computed a few at a time on blocking threads.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

use crate::error::{ApiError, ApiResult};

/// Argon2 runs at most this many at once (one per core): each takes 19 MiB and a core for
/// tens of milliseconds, and a flood of sign-ins must queue, not exhaust memory.
fn argon2_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

async fn argon2_permit() -> ApiResult<tokio::sync::SemaphorePermit<'static>> {
    argon2_permits()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("argon2 permits: {e}")))
}

/// Hashes a password with Argon2id (PHC string). Runs on a blocking thread.
pub async fn hash_password(password: String) -> ApiResult<String> {
    let _permit = argon2_permit().await?;
    let r = tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await?;
    r.map_err(|e| ApiError::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a stored hash; a missing hash is checked against a dummy so
/// that unknown accounts take as long as known ones.
pub async fn verify_password(password: String, hash: Option<String>) -> ApiResult<bool> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let _permit = argon2_permit().await?;
    let ok = tokio::task::spawn_blocking(move || {
        let dummy = DUMMY.get_or_init(|| {
            Argon2::default()
                .hash_password(b"loop dummy password")
                .map(|h| h.to_string())
                .unwrap_or_default()
        });
        let known = hash.is_some();
        let h = hash.unwrap_or_else(|| dummy.clone());
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), h.as_str())
            .is_ok();
        ok && known
    })
    .await?;
    Ok(ok)
}
