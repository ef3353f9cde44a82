//! Sign-ups waiting for their confirmation code (`signups`).

use loop_api::Language;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col, col_value};

/// A sign-up as stored.
#[derive(Clone)]
pub struct SignupRow {
    pub id: String,
    pub email: String,
    pub organisation: String,
    pub first_name: String,
    pub last_name: String,
    pub business_address: String,
    pub language: Language,
    pub plan_id: String,
    pub password_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
}

fn signup(row: &AnyRow) -> DbResult<SignupRow> {
    Ok(SignupRow {
        id: col(row, "id")?,
        email: col(row, "email")?,
        organisation: col(row, "organisation")?,
        first_name: col(row, "first_name")?,
        last_name: col(row, "last_name")?,
        business_address: col(row, "business_address")?,
        language: col_value(row, "language")?,
        plan_id: col(row, "plan_id")?,
        password_hash: col(row, "password_hash")?,
        created_at: col(row, "created_at")?,
        expires_at: col(row, "expires_at")?,
    })
}

pub async fn insert_signup(tx: &mut Tx, s: &SignupRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO signups (id, email, organisation, first_name, last_name, business_address,
                              language, plan_id, password_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&s.id)
    .bind(&s.email)
    .bind(&s.organisation)
    .bind(&s.first_name)
    .bind(&s.last_name)
    .bind(&s.business_address)
    .bind(s.language.as_str())
    .bind(&s.plan_id)
    .bind(&s.password_hash)
    .bind(s.created_at)
    .bind(s.expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn signup_by_id(pool: &AnyPool, id: &str) -> DbResult<Option<SignupRow>> {
    let row = sqlx::query("SELECT * FROM signups WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(signup).transpose()
}

/// Records the hash of the code being mailed (a later mail's code replaces it).
pub async fn set_code(pool: &AnyPool, id: &str, code_hash: &str) -> DbResult<bool> {
    let done = sqlx::query("UPDATE signups SET code_hash = $1 WHERE id = $2")
        .bind(code_hash)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Takes the unexpired sign-up whose code hashes to `code_hash`: it is deleted in `tx` (one
/// statement, so the transaction's first act is a write), and a code confirms once.
pub async fn take_by_code(tx: &mut Tx, code_hash: &str, now: i64) -> DbResult<Option<SignupRow>> {
    let row =
        sqlx::query("DELETE FROM signups WHERE code_hash = $1 AND expires_at > $2 RETURNING *")
            .bind(code_hash)
            .bind(now)
            .fetch_optional(&mut **tx)
            .await?;
    row.as_ref().map(signup).transpose()
}

/// Deletes expired sign-ups (their personal data with them); answers how many.
pub async fn sweep_expired(pool: &AnyPool, now: i64) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM signups WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// The sign-ups still waiting for an address.
pub async fn ids_of_email(tx: &mut Tx, email: &str) -> DbResult<Vec<String>> {
    let rows = sqlx::query("SELECT id FROM signups WHERE email = $1")
        .bind(email)
        .fetch_all(&mut **tx)
        .await?;
    Ok(rows
        .iter()
        .map(|r| super::col(r, "id"))
        .collect::<Result<_, _>>()?)
}

/// Deletes the sign-ups still waiting for an address (an erased person's: their name,
/// organisation and password hash go, and their codes confirm nothing); answers how many.
pub async fn delete_of_email(tx: &mut Tx, email: &str) -> DbResult<u64> {
    let done = sqlx::query("DELETE FROM signups WHERE email = $1")
        .bind(email)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}
