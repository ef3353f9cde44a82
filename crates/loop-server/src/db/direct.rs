//! Direct uploads (`direct_uploads`): packs a client puts straight into the destination,
//! checked and moved into place by the server when the client completes them.

use sqlx::AnyPool;

use super::{DbResult, col};

#[derive(Clone, Debug)]
pub struct DirectUpload {
    pub id: String,
    pub vault_id: String,
    pub kind: String,
    pub name: String,
    pub token_id: String,
    pub size: u64,
    pub hash: String,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// The destination its URL writes to (`None` for uploads begun before it was recorded:
    /// the vault's destination then).
    pub destination: Option<String>,
}

pub async fn insert(pool: &AnyPool, u: &DirectUpload, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO direct_uploads (id, vault_id, kind, name, token_id, size, hash,
            created_at, expires_at, destination)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&u.id)
    .bind(&u.vault_id)
    .bind(&u.kind)
    .bind(&u.name)
    .bind(&u.token_id)
    .bind(u.size as i64)
    .bind(&u.hash)
    .bind(now)
    .bind(u.expires_at)
    .bind(&u.destination)
    .execute(pool)
    .await?;
    Ok(())
}

fn upload(r: &sqlx::any::AnyRow) -> DbResult<DirectUpload> {
    Ok(DirectUpload {
        id: col(r, "id")?,
        vault_id: col(r, "vault_id")?,
        kind: col(r, "kind")?,
        name: col(r, "name")?,
        token_id: col(r, "token_id")?,
        size: col::<i64>(r, "size")?.max(0) as u64,
        hash: col(r, "hash")?,
        expires_at: col(r, "expires_at")?,
        completed_at: col(r, "completed_at")?,
        destination: col(r, "destination")?,
    })
}

/// The upload `id` of this object by this token, if there is one.
pub async fn find(
    pool: &AnyPool,
    id: &str,
    vault_id: &str,
    kind: &str,
    name: &str,
    token_id: &str,
) -> DbResult<Option<DirectUpload>> {
    let row = sqlx::query(
        "SELECT * FROM direct_uploads WHERE id = $1 AND vault_id = $2 AND kind = $3
            AND name = $4 AND token_id = $5",
    )
    .bind(id)
    .bind(vault_id)
    .bind(kind)
    .bind(name)
    .bind(token_id)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(upload).transpose()
}

/// Marks the upload completed; false when it already was.
pub async fn complete(pool: &AnyPool, id: &str, now: i64) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE direct_uploads SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Uploads whose URL expired before `before`, oldest first, with the destination their
/// staging objects are at.
pub async fn expired(
    pool: &AnyPool,
    before: i64,
    limit: i64,
) -> DbResult<Vec<(DirectUpload, String)>> {
    let rows = sqlx::query(
        "SELECT u.*, COALESCE(u.destination, v.destination) AS swept_at
         FROM direct_uploads u JOIN vaults v ON v.id = u.vault_id
         WHERE u.expires_at < $1 ORDER BY u.expires_at LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| Ok((upload(r)?, col(r, "swept_at")?)))
        .collect()
}

pub async fn forget(pool: &AnyPool, id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM direct_uploads WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
