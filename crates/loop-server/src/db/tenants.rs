//! Tenants: the tree of provider, partners and customers, and each tenant's key.

use loop_api::{Tenant, TenantStatus};
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use super::page::{Key, Page, Paged, Sort, asc, query_page};
use super::{DbResult, Tx, col, col_value, time};
use crate::domain::{TenantPath, TenantScope};

#[derive(Clone, Debug)]
pub struct TenantRow {
    pub tenant: Tenant,
    pub path: TenantPath,
}

fn tenant(row: &AnyRow) -> DbResult<TenantRow> {
    Ok(TenantRow {
        tenant: Tenant {
            id: col(row, "id")?,
            parent_id: col(row, "parent_id")?,
            kind: col_value(row, "kind")?,
            name: col(row, "name")?,
            status: col_value(row, "status")?,
            time_zone: col(row, "time_zone")?,
            created_at: time(col(row, "created_at")?),
        },
        path: col_value(row, "path")?,
    })
}

/// Through the pool or, inside a transaction, through it (`&mut *tx`).
pub async fn tenant_by_id<'c>(
    db: impl sqlx::AnyExecutor<'c>,
    id: &str,
) -> DbResult<Option<TenantRow>> {
    let row = sqlx::query("SELECT * FROM tenants WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(tenant).transpose()
}

pub async fn provider_tenant(pool: &AnyPool) -> DbResult<Option<TenantRow>> {
    let row = sqlx::query("SELECT * FROM tenants WHERE parent_id IS NULL")
        .fetch_optional(pool)
        .await?;
    row.as_ref().map(tenant).transpose()
}

/// Tenants in the subtrees of `paths`, ordered by path; one query.
pub async fn tenants_under(pool: &AnyPool, paths: &[TenantPath]) -> DbResult<Vec<TenantRow>> {
    let scope = TenantScope::Subtrees(paths.to_vec());
    let rows = in_scope(
        pool,
        "SELECT t.* FROM tenants t",
        &scope,
        &[asc("t.path")],
        None,
    )
    .await?;
    rows.items.iter().map(tenant).collect()
}

/// Tenant `id` and every tenant below it (a partner's customers); only `id` when it is not
/// found.
pub async fn subtree_of(pool: &AnyPool, id: &str) -> DbResult<TenantScope> {
    Ok(match tenant_by_id(pool, id).await? {
        Some(t) => TenantScope::Subtrees(vec![t.path]),
        None => TenantScope::One(id.to_string()),
    })
}

/// The condition that tenant row `t` lies in `scope`, over parameters `$1`… (`None` when
/// the scope holds no tenant), and the values to bind to them in order.
pub(crate) fn scope_filter(scope: &TenantScope) -> Option<(String, Vec<String>)> {
    match scope {
        TenantScope::One(id) => Some(("t.id = $1".into(), vec![id.clone()])),
        TenantScope::Subtrees(paths) if paths.is_empty() => None,
        TenantScope::Subtrees(paths) => Some((
            (1..=paths.len())
                .map(|n| format!("substr(t.path, 1, length(${n})) = ${n}"))
                .collect::<Vec<_>>()
                .join(" OR "),
            paths.iter().map(|p| p.as_str().to_string()).collect(),
        )),
    }
}

/// A page of the tenants in `scope`, by path (a parent before its children).
pub async fn tenants_in(
    pool: &AnyPool,
    scope: &TenantScope,
    page: &Page,
) -> DbResult<Paged<Tenant>> {
    in_scope(
        pool,
        "SELECT t.* FROM tenants t",
        scope,
        &[asc("t.path")],
        Some(page),
    )
    .await?
    .map(|r| tenant(&r).map(|t| t.tenant))
}

/// The rows of `select` (a query over `tenants t`, joined to what it lists) whose tenant lies
/// in `scope`, in `order` (which ends in a unique column), one page of them when `page` is
/// given: every listing over a caller's tenants is this one query.
pub(crate) async fn in_scope(
    pool: &AnyPool,
    select: &'static str,
    scope: &TenantScope,
    order: &[Sort],
    page: Option<&Page>,
) -> DbResult<Paged<AnyRow>> {
    in_scope_where(pool, select, scope, &[], order, page).await
}

/// [`in_scope`], narrowed by `column = value` for each of `also` (columns are constants of
/// the caller's; values are bound).
pub(crate) async fn in_scope_where(
    pool: &AnyPool,
    select: &'static str,
    scope: &TenantScope,
    also: &[(&'static str, &str)],
    order: &[Sort],
    page: Option<&Page>,
) -> DbResult<Paged<AnyRow>> {
    let Some((filter, values)) = scope_filter(scope) else {
        return Ok(Paged {
            items: Vec::new(),
            next: None,
        });
    };
    let mut binds: Vec<Key> = values.into_iter().map(Key::Text).collect();
    let mut filter = format!("({filter})");
    for (column, value) in also {
        binds.push(Key::Text(value.to_string()));
        filter.push_str(&format!(" AND {column} = ${}", binds.len()));
    }
    query_page(pool, select, &filter, binds, order, page).await
}

/// Stores a tenant's name and time zone.
pub async fn update_tenant_settings(tx: &mut Tx, t: &Tenant) -> DbResult<()> {
    sqlx::query("UPDATE tenants SET name = $1, time_zone = $2 WHERE id = $3")
        .bind(&t.name)
        .bind(&t.time_zone)
        .bind(&t.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn insert_tenant(
    tx: &mut Tx,
    t: &Tenant,
    path: &TenantPath,
    wrapped_key: &str,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO tenants (id, parent_id, path, kind, name, status, time_zone, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&t.id)
    .bind(&t.parent_id)
    .bind(path.as_str())
    .bind(t.kind.as_str())
    .bind(&t.name)
    .bind(t.status.as_str())
    .bind(&t.time_zone)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO tenant_keys (tenant_id, wrapped, created_at) VALUES ($1, $2, $3)")
        .bind(&t.id)
        .bind(wrapped_key)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn tenant_key(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<String>> {
    let row = sqlx::query("SELECT wrapped FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .fetch_optional(pool)
        .await?;
    Ok(row.map(|r| col(&r, "wrapped")).transpose()?)
}

/// A tenant's keys, wrapped under the master key: the current one and, while the key is
/// being rotated, the one rotated to (`next`) or from (`previous`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantKeys {
    pub current: String,
    pub next: Option<String>,
    pub previous: Option<String>,
}

impl TenantKeys {
    pub fn rotating(&self) -> bool {
        self.next.is_some() || self.previous.is_some()
    }
}

pub async fn tenant_keys(pool: &AnyPool, tenant_id: &str) -> DbResult<Option<TenantKeys>> {
    let row = sqlx::query(
        "SELECT wrapped, next_wrapped, previous_wrapped FROM tenant_keys WHERE tenant_id = $1",
    )
    .bind(tenant_id)
    .fetch_optional(pool)
    .await?;
    row.map(|r| {
        Ok(TenantKeys {
            current: col(&r, "wrapped")?,
            next: col(&r, "next_wrapped")?,
            previous: col(&r, "previous_wrapped")?,
        })
    })
    .transpose()
}

/// Starts a rotation to `next`; false when one is under way or the key is gone.
pub async fn begin_key_rotation(pool: &AnyPool, tenant_id: &str, next: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE tenant_keys SET next_wrapped = $1
         WHERE tenant_id = $2 AND next_wrapped IS NULL AND previous_wrapped IS NULL",
    )
    .bind(next)
    .bind(tenant_id)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Makes `next` the current key, keeping the current one as `previous`.
pub async fn switch_tenant_key(pool: &AnyPool, tenant_id: &str, next: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE tenant_keys SET previous_wrapped = wrapped, wrapped = next_wrapped,
            next_wrapped = NULL
         WHERE tenant_id = $1 AND next_wrapped = $2",
    )
    .bind(tenant_id)
    .bind(next)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Forgets the key rotated from: the rotation is over.
pub async fn end_key_rotation(pool: &AnyPool, tenant_id: &str, previous: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE tenant_keys SET previous_wrapped = NULL
         WHERE tenant_id = $1 AND previous_wrapped = $2",
    )
    .bind(tenant_id)
    .bind(previous)
    .execute(pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Holds the tenant's row until the transaction ends (a write that changes nothing), so
/// transactions that check something of the tenant's and then write run one after another,
/// and an erasure either committed before or waits. False when the tenant is erased.
pub async fn hold_live(tx: &mut Tx, tenant_id: &str) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tenants SET status = status WHERE id = $1 AND status <> 'erased'")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// In a transaction that records a new managed vault: locks the tenant's key row and
/// answers whether `current` is still the key, with no rotation under way. A rotation that
/// starts later finds the vault; one that started earlier makes this false.
pub async fn hold_current_key(tx: &mut Tx, tenant_id: &str, current: &str) -> DbResult<bool> {
    let r = sqlx::query(
        "UPDATE tenant_keys SET wrapped = wrapped
         WHERE tenant_id = $1 AND wrapped = $2 AND next_wrapped IS NULL
            AND previous_wrapped IS NULL",
    )
    .bind(tenant_id)
    .bind(current)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Crypto-shredding: after this, no managed vault of the tenant can be opened.
pub async fn delete_tenant_key(tx: &mut Tx, tenant_id: &str) -> DbResult<bool> {
    let r = sqlx::query("DELETE FROM tenant_keys WHERE tenant_id = $1")
        .bind(tenant_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Sets a tenant's status; false when it had it already.
pub async fn set_tenant_status(tx: &mut Tx, id: &str, status: TenantStatus) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tenants SET status = $1 WHERE id = $2 AND status <> $1")
        .bind(status.as_str())
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Takes the tenant's row until `tx` ends, unless the tenant was erased (then false). A
/// transaction that makes a place for the tenant's data (a vault, a replica, a remote, a
/// sync job) does this first: the erasure takes the row too, so what is made is either seen
/// by the erasure or refused after it.
pub async fn hold_unerased(tx: &mut Tx, id: &str) -> DbResult<bool> {
    let r = sqlx::query("UPDATE tenants SET status = status WHERE id = $1 AND status <> $2")
        .bind(id)
        .bind(TenantStatus::Erased.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected() > 0)
}

/// Shuts a tenant's people and machines out: revokes its tokens, ends its users' sessions,
/// disables its users, withdraws its invitations and expires its unused enrolment codes (a
/// device enrolled with one would get a live token). Returns (tokens, sessions, users
/// disabled).
/// An invitation stays an invitation: made an account, it would hold its address across
/// the service, and one naming another tenant's account could not be made one at all.
pub async fn lock_out_tenant(tx: &mut Tx, id: &str, now: i64) -> DbResult<(u64, u64, u64)> {
    sqlx::query(
        "UPDATE enrolment_codes SET expires_at = $1
         WHERE tenant_id = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    let tokens = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let sessions = sqlx::query(
        "UPDATE sessions SET ended_at = $1, end_reason = 'tenant_erased'
         WHERE tenant_id = $2 AND ended_at IS NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let users = sqlx::query(
        "UPDATE users SET status = 'disabled', reset_hash = NULL, updated_at = $1
         WHERE tenant_id = $2 AND status = 'active'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "UPDATE users SET invite_hash = NULL, updated_at = $1
         WHERE tenant_id = $2 AND status = 'invited' AND invite_hash IS NOT NULL",
    )
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok((tokens, sessions, users))
}
