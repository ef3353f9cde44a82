//! Every value the database holds wrapped under the master key, in one list: what a master
//! key rotation must rewrap (`loop server rewrap-keys`).

use sqlx::AnyPool;

use super::{DbResult, col};
use crate::keys::{remote_token_context, totp_context, webhook_secret_context};

/// A column of values wrapped under the master key, each bound to its row by a context.
/// The names are constants of this file, never input, so the SQL built from them is safe.
pub struct WrappedColumn {
    pub table: &'static str,
    pub id: &'static str,
    pub column: &'static str,
    /// The wrapping context of the row with this ID.
    pub context: fn(&str) -> String,
}

impl WrappedColumn {
    pub fn name(&self) -> String {
        format!("{}.{}", self.table, self.column)
    }
}

fn tenant_context(id: &str) -> String {
    id.to_string()
}

pub const COLUMNS: &[WrappedColumn] = &[
    WrappedColumn {
        table: "tenant_keys",
        id: "tenant_id",
        column: "wrapped",
        context: tenant_context,
    },
    WrappedColumn {
        table: "tenant_keys",
        id: "tenant_id",
        column: "next_wrapped",
        context: tenant_context,
    },
    WrappedColumn {
        table: "tenant_keys",
        id: "tenant_id",
        column: "previous_wrapped",
        context: tenant_context,
    },
    WrappedColumn {
        table: "users",
        id: "id",
        column: "totp_secret",
        context: totp_context,
    },
    WrappedColumn {
        table: "notify_targets",
        id: "id",
        column: "secret_wrapped",
        context: webhook_secret_context,
    },
    WrappedColumn {
        table: "remotes",
        id: "id",
        column: "token_wrapped",
        context: remote_token_context,
    },
];

/// Up to `limit` (ID, wrapped value) pairs of `c` with IDs after `after`, in ID order.
pub async fn page(
    pool: &AnyPool,
    c: &WrappedColumn,
    after: &str,
    limit: i64,
) -> DbResult<Vec<(String, String)>> {
    let sql = format!(
        "SELECT {id} AS id, {column} AS value FROM {table}
         WHERE {column} IS NOT NULL AND {id} > $1 ORDER BY {id} LIMIT $2",
        id = c.id,
        column = c.column,
        table = c.table
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|r| Ok((col(r, "id")?, col(r, "value")?)))
        .collect()
}

/// Replaces `old` with `new` in the row `id`; false when the value changed meanwhile.
pub async fn replace(
    pool: &AnyPool,
    c: &WrappedColumn,
    id: &str,
    old: &str,
    new: &str,
) -> DbResult<bool> {
    let sql = format!(
        "UPDATE {table} SET {column} = $1 WHERE {id} = $2 AND {column} = $3",
        id = c.id,
        column = c.column,
        table = c.table
    );
    let r = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(pool)
        .await?;
    Ok(r.rows_affected() > 0)
}
