//! An erased tenant's places (`erasure_locations`): every place its vaults' objects were
//! held, recorded when its keys were destroyed, with what the erasure job deleted there and
//! what a listing found afterwards; and the deletion certificate made from them
//! (`deletion_certificates`).

use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::{DbResult, Tx, col};

/// One place of one vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationRow {
    pub id: String,
    pub tenant_id: String,
    pub vault_id: String,
    /// `destination`: a destination of this server (the primary or a replica); `remote`: a
    /// vault on another server a push sync job copied to.
    pub kind: String,
    /// The destination's name, or the remote's ID.
    pub place: String,
    /// The destination's jurisdiction, or what the other server reported for its vault.
    pub jurisdiction: Option<String>,
    /// The other server's vault (for `remote`).
    pub remote_vault_id: Option<String>,
    /// The other server's address (for `remote`), kept for the certificate.
    pub remote_url: Option<String>,
    pub objects_deleted: u64,
    pub bytes_deleted: u64,
    /// What the listing after the deletion found (None: not verified yet).
    pub objects_left: Option<u64>,
    pub verified_at: Option<i64>,
    /// Why something is left, or could not be reached.
    pub note: Option<String>,
}

fn location(row: &AnyRow) -> DbResult<LocationRow> {
    let u = |name: &str| -> DbResult<u64> { Ok(col::<i64>(row, name)?.max(0) as u64) };
    Ok(LocationRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        vault_id: col(row, "vault_id")?,
        kind: col(row, "kind")?,
        place: col(row, "place")?,
        jurisdiction: col(row, "jurisdiction")?,
        remote_vault_id: col(row, "remote_vault_id")?,
        remote_url: col(row, "remote_url")?,
        objects_deleted: u("objects_deleted")?,
        bytes_deleted: u("bytes_deleted")?,
        objects_left: col::<Option<i64>>(row, "objects_left")?.map(|v| v.max(0) as u64),
        verified_at: col(row, "verified_at")?,
        note: col(row, "note")?,
    })
}

/// Records that the copy `l` (a vault on another server a push sync job copied to) lost its
/// sync job, or its remote, at `now`: a later erasure of the tenant still reaches it through
/// the remote while that exists, and names it once it is gone ([`departed_of`]).
pub async fn insert_departed(tx: &mut Tx, l: &LocationRow, now: i64) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO departed_copies (id, tenant_id, vault_id, remote_id, remote_url,
             remote_vault_id, removed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(crate::domain::new_id("dc"))
    .bind(&l.tenant_id)
    .bind(&l.vault_id)
    .bind(&l.place)
    .bind(l.remote_url.as_deref().unwrap_or_default())
    .bind(&l.remote_vault_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The copies of `tenant_id`'s vaults whose sync job or remote was removed, as places of its
/// erasure: erased through the remote while it exists; else out of reach, so the certificate
/// names it and is not complete.
pub async fn departed_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<LocationRow>> {
    let rows = sqlx::query("SELECT * FROM departed_copies WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant_id)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok(LocationRow {
                id: crate::domain::new_id("el"),
                tenant_id: col(r, "tenant_id")?,
                vault_id: col(r, "vault_id")?,
                kind: "remote".into(),
                place: col(r, "remote_id")?,
                jurisdiction: None,
                remote_vault_id: col(r, "remote_vault_id")?,
                remote_url: Some(col(r, "remote_url")?),
                objects_deleted: 0,
                bytes_deleted: 0,
                objects_left: None,
                verified_at: None,
                note: None,
            })
        })
        .collect()
}

/// Records a place, unless that vault's place is recorded already (erasing again). A
/// remote's place is one of its vaults: two copies on one remote are two places.
pub async fn insert_location(tx: &mut Tx, l: &LocationRow) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO erasure_locations (id, tenant_id, vault_id, kind, place, jurisdiction,
             remote_vault_id, remote_url, note, objects_deleted, bytes_deleted)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0)
         ON CONFLICT (vault_id, kind, place, COALESCE(remote_vault_id, '')) DO NOTHING",
    )
    .bind(&l.id)
    .bind(&l.tenant_id)
    .bind(&l.vault_id)
    .bind(&l.kind)
    .bind(&l.place)
    .bind(&l.jurisdiction)
    .bind(&l.remote_vault_id)
    .bind(&l.remote_url)
    .bind(&l.note)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A replica of one of the tenant's vaults that was removed.
pub struct RemovedReplica {
    pub vault_id: String,
    pub destination: String,
    /// A replica erasure job of it succeeded: the place was found empty then.
    pub erased: bool,
}

/// The replicas of the tenant's vaults that were removed (each erased by a replica erasure
/// job, which may not have finished, or failed for good). Job records kept longer than
/// their age limit are forgotten, and their erasures long done.
pub async fn removed_replicas_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<RemovedReplica>> {
    let rows = sqlx::query(
        "SELECT target_id,
                CAST(MAX(CASE WHEN state = 'succeeded' THEN 1 ELSE 0 END) AS BIGINT) AS erased
         FROM jobs WHERE tenant_id = $1 AND kind = 'replica-erasure'
         GROUP BY target_id ORDER BY target_id",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let target: String = col(r, "target_id")?;
        // The target is `VAULT/DESTINATION`; a vault ID has no slash.
        if let Some((v, d)) = target.split_once('/') {
            out.push(RemovedReplica {
                vault_id: v.to_string(),
                destination: d.to_string(),
                erased: col::<i64>(r, "erased")? == 1,
            });
        }
    }
    Ok(out)
}

/// The tenant's places, by vault and place.
pub async fn locations_of(pool: &AnyPool, tenant_id: &str) -> DbResult<Vec<LocationRow>> {
    sqlx::query(
        "SELECT * FROM erasure_locations WHERE tenant_id = $1 ORDER BY vault_id, kind, place",
    )
    .bind(tenant_id)
    .fetch_all(pool)
    .await?
    .iter()
    .map(location)
    .collect()
}

/// Adds what one pass deleted at a place.
pub async fn add_deleted(pool: &AnyPool, id: &str, objects: u64, bytes: u64) -> DbResult<()> {
    sqlx::query(
        "UPDATE erasure_locations SET objects_deleted = objects_deleted + $1,
             bytes_deleted = bytes_deleted + $2 WHERE id = $3",
    )
    .bind(objects as i64)
    .bind(bytes as i64)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records the jurisdiction another server reports for its copy.
pub async fn set_jurisdiction(pool: &AnyPool, id: &str, jurisdiction: &str) -> DbResult<()> {
    sqlx::query("UPDATE erasure_locations SET jurisdiction = $1 WHERE id = $2")
        .bind(jurisdiction)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Records the listing after the deletion.
pub async fn verified(
    pool: &AnyPool,
    id: &str,
    objects_left: Option<u64>,
    note: Option<&str>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "UPDATE erasure_locations SET objects_left = $1, note = $2, verified_at = $3
         WHERE id = $4",
    )
    .bind(objects_left.map(|n| n as i64))
    .bind(note)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// A deletion certificate as stored.
#[derive(Clone, Debug)]
pub struct CertificateRow {
    pub id: String,
    pub tenant_id: String,
    pub issued_at: i64,
    /// The certificate, JSON, exactly as hashed.
    pub body: String,
    /// SHA-256 of `body` (hex), recorded in the audit chain.
    pub sha256: String,
}

fn certificate(row: &AnyRow) -> DbResult<CertificateRow> {
    Ok(CertificateRow {
        id: col(row, "id")?,
        tenant_id: col(row, "tenant_id")?,
        issued_at: col(row, "issued_at")?,
        body: col(row, "body")?,
        sha256: col(row, "sha256")?,
    })
}

/// Records a tenant's certificate; false when it has one (another node was first).
pub async fn insert_certificate(tx: &mut Tx, c: &CertificateRow) -> DbResult<bool> {
    let done = sqlx::query(
        "INSERT INTO deletion_certificates (id, tenant_id, issued_at, body, sha256)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO NOTHING",
    )
    .bind(&c.id)
    .bind(&c.tenant_id)
    .bind(c.issued_at)
    .bind(&c.body)
    .bind(&c.sha256)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn certificate_of<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    tenant_id: &str,
) -> DbResult<Option<CertificateRow>> {
    let row = sqlx::query("SELECT * FROM deletion_certificates WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(certificate).transpose()
}

/// The people of erased tenants who are still themselves though the tenant's deletion
/// certificate was issued and no mail to them waits any more (the certificate's went out).
/// Without a mail relay (`mail_goes_out` false) no mail ever leaves, so none is waited for.
pub async fn people_to_forget(pool: &AnyPool, mail_goes_out: bool) -> DbResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT u.id FROM users u JOIN tenants t ON t.id = u.tenant_id
         WHERE t.status = 'erased'
           AND EXISTS (SELECT 1 FROM deletion_certificates c WHERE c.tenant_id = t.id)
           AND u.email NOT LIKE 'erased-%@erased.invalid'
           AND ($1 = 0 OR NOT EXISTS (SELECT 1 FROM mail_outbox m
                                      WHERE m.user_id = u.id AND m.state = 'queued'))
         ORDER BY u.id",
    )
    .bind(i64::from(mail_goes_out))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| col(r, "id"))
        .collect::<Result<_, _>>()?)
}

/// The IDs of the tenant's live vaults and of its push sync jobs (each sorted), read in `tx`.
pub async fn places_made(tx: &mut Tx, tenant_id: &str) -> DbResult<(Vec<String>, Vec<String>)> {
    let mut vaults = sqlx::query_scalar::<_, String>(
        "SELECT id FROM vaults WHERE tenant_id = $1 AND deleted_at IS NULL",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    let mut pushes = sqlx::query_scalar::<_, String>(
        "SELECT id FROM sync_jobs WHERE tenant_id = $1 AND direction = 'push'",
    )
    .bind(tenant_id)
    .fetch_all(&mut **tx)
    .await?;
    // Sorted here, not by the database's collation.
    vaults.sort();
    pushes.sort();
    Ok((vaults, pushes))
}
