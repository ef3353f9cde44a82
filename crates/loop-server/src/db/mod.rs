//! All SQL lives here. Queries are sqlx runtime queries with `$n` placeholders through the
//! `Any` driver, so one text serves SQLite and PostgreSQL; migrations sit in
//! `migrations/<backend>/`.
//!
//! Times are Unix milliseconds. Every function that changes state takes a transaction, and
//! the caller appends the audit event ([`audit::append`]) to the same transaction before it
//! commits, so a change and its record land together or not at all.

pub mod agents;
pub mod audit;
pub mod billing;
pub mod bindings;
pub mod brandings;
pub mod challenges;
pub mod dashboard;
pub mod deletions;
pub mod devices;
pub mod direct;
pub mod erasure;
pub mod exports;
pub mod invoices;
pub mod items;
pub mod jobs;
pub mod maintenance;
pub mod metrics;
pub mod notify;
pub mod notify_people;
pub mod notify_sending;
pub mod objects;
pub mod outbox;
pub mod page;
pub mod payments;
pub mod policies;
pub mod privacy;
pub mod remotes;
pub mod removals;
pub mod replicas;
pub mod residency;
pub mod retention_lock;
pub mod sessions;
pub mod signups;
pub mod stopping;
pub mod subject_requests;
pub mod subprocessors;
pub mod tenants;
pub mod throttle;
mod timers;
pub mod tokens;
pub mod users;
pub mod vaults;

pub use timers::{PendingTimer, Timer, advance_timer, pending_timers};
pub mod watch;
pub mod wrapped;

use chrono::{DateTime, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row as _};

pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database holds a migration this binary does not know: a newer release ran on it.
    #[error(
        "the database was upgraded by a newer release of loop (its migration {0} is unknown \
         to this one): run that release or a newer one"
    )]
    NewerSchema(i64),
    /// A page cursor that does not fit the listing it was given to.
    #[error("the cursor is not one this listing gave")]
    Cursor,
    #[error("unsupported database URL (sqlite:// and postgres:// are supported)")]
    Unsupported,
    /// A stored value outside its closed set: damage, or a row written by a newer version.
    #[error("database: column {column} holds an {source}")]
    Value {
        column: &'static str,
        source: loop_api::UnknownValue,
    },
}

pub type DbResult<T> = Result<T, DbError>;

impl DbError {
    /// True when a statement broke a unique constraint.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sql(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

#[derive(Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// Which database a [`Db`] speaks to. The SQL is the same for both; what differs is how a
/// pool is opened, the migrations, and the few places that say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> DbResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(DbError::Unsupported)
        }
    }

    fn migrations(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects with the embedded pool settings and brings the schema up to date.
    pub async fn connect(url: &str) -> DbResult<Db> {
        Db::connect_with(url, &crate::config::DatabaseConfig::default()).await
    }

    /// Connects with `pool`'s settings and brings the schema up to date. Several nodes may
    /// start at once: the migrator takes a database lock first (PostgreSQL's advisory lock).
    pub async fn connect_with(url: &str, pool: &crate::config::DatabaseConfig) -> DbResult<Db> {
        let backend = Backend::of_url(url)?;
        let pool = open_pool(url, backend, pool).await?;
        backend.migrations().run(&pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::VersionMissing(v) => DbError::NewerSchema(v),
            e => DbError::Migrate(e),
        })?;
        Ok(Db { pool, backend })
    }

    /// Opens a transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a transaction that read first and wrote later would fail (`SQLITE_BUSY_SNAPSHOT`,
    /// which no busy timeout waits out) whenever another connection wrote in between.
    /// While a transaction is open, read through it, never through the pool: on SQLite the
    /// pool's other connections may all be waiting for this one's lock.
    pub async fn begin(&self) -> DbResult<Tx> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }
}

/// How long [`scrub`] keeps trying while a reader holds an older snapshot of the database.
const SCRUB_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// How long a connection waits for a lock: 10 s.
const BUSY_TIMEOUT: &str = "PRAGMA busy_timeout = 10000";

/// Leaves no copy of deleted rows in the database's files: on SQLite (deleted content is
/// overwritten already) the write-ahead log is checkpointed into the database and truncated;
/// PostgreSQL needs nothing here (a dump holds only live rows).
///
/// A reader of an older snapshot (a long listing) keeps the log from being truncated, and
/// a truncating checkpoint holds back every writer while it waits. So the log is first
/// checkpointed without blocking anyone, and truncated only once that took every frame (no
/// reader holds an older one), waiting 200 ms at most for the locks; tried again every
/// half second for [`SCRUB_PATIENCE`], then said in the log (the next checkpoint takes it).
/// What was deleted is deleted: the request that deleted it does not fail for this.
pub async fn scrub(db: &Db) -> DbResult<()> {
    if db.backend != Backend::Sqlite {
        return Ok(());
    }
    let until = std::time::Instant::now() + SCRUB_PATIENCE;
    loop {
        let mut conn = db.pool.acquire().await?;
        let truncated = truncate_log(&mut conn).await;
        let restored = sqlx::query(BUSY_TIMEOUT).execute(&mut *conn).await;
        drop(conn);
        restored?;
        let said = match truncated {
            Ok(true) => return Ok(()),
            Ok(false) => "a reader holds an older snapshot".to_string(),
            Err(e) => e.to_string(),
        };
        if std::time::Instant::now() >= until {
            tracing::warn!(
                "the write-ahead log could not be truncated for {} s ({said}); copies of \
                 erased data stay in it until the next checkpoint",
                SCRUB_PATIENCE.as_secs()
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// One try of [`scrub`] on `conn`: whether the log is truncated. Leaves `conn`'s busy
/// timeout short.
async fn truncate_log(conn: &mut sqlx::AnyConnection) -> DbResult<bool> {
    // (busy, frames in the log, frames checkpointed).
    let passive = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    if col::<i64>(&passive, "log")? > col::<i64>(&passive, "checkpointed")? {
        return Ok(false);
    }
    sqlx::query("PRAGMA busy_timeout = 200")
        .execute(&mut *conn)
        .await?;
    let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await?;
    Ok(col::<i64>(&row, "busy")? == 0)
}

async fn open_pool(
    url: &str,
    backend: Backend,
    c: &crate::config::DatabaseConfig,
) -> DbResult<AnyPool> {
    sqlx::any::install_default_drivers();
    let options = AnyPoolOptions::new()
        .max_connections(c.max_connections.max(1))
        .acquire_timeout(std::time::Duration::from_secs(
            c.acquire_timeout_seconds.max(1),
        ));
    let pool = match backend {
        Backend::Sqlite => {
            let url = if url.contains('?') {
                url.to_string()
            } else {
                format!("{url}?mode=rwc")
            };
            options
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets readers run beside the one writer; the busy timeout makes
                        // a second writer wait instead of failing; deleted content is
                        // overwritten, so erased personal data leaves no copy in free pages.
                        for pragma in [
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA secure_delete = ON",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                            BUSY_TIMEOUT,
                        ] {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&url)
                .await?
        }
        Backend::Postgres => {
            options
                .min_connections(c.min_connections.min(c.max_connections))
                .connect(url)
                .await?
        }
    };
    Ok(pool)
}

/// A table of queued work that senders take under a claim (`state`, `next_attempt_at`,
/// `claimed_until`, `attempts`).
#[derive(Clone, Copy)]
pub(crate) enum Queue {
    Mail,
    /// Notification deliveries, at most `per_tenant` of one tenant's at a time.
    Deliveries {
        per_tenant: i64,
    },
}

/// Takes up to `limit` due rows of `queue` for `claim_ms`, counting an attempt on each; the
/// IDs taken. Any number of nodes may call it at once: a row is taken by the conditional
/// update of exactly one of them.
pub(crate) async fn take_queued(
    pool: &AnyPool,
    queue: Queue,
    now: i64,
    claim_ms: i64,
    limit: i64,
) -> DbResult<Vec<String>> {
    let rows = match queue {
        Queue::Mail => {
            sqlx::query(
                "SELECT id FROM mail_outbox WHERE state = 'queued' AND next_attempt_at <= $1
                   AND (claimed_until IS NULL OR claimed_until < $1)
                 ORDER BY next_attempt_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }
        Queue::Deliveries { per_tenant } => {
            sqlx::query(
                "SELECT id FROM (
                   SELECT d.id, d.next_attempt_at, ROW_NUMBER() OVER (
                       PARTITION BY n.tenant_id ORDER BY d.next_attempt_at, d.id) AS place
                     FROM deliveries d JOIN notify_targets n ON n.id = d.target_id
                    WHERE d.state = 'queued' AND d.next_attempt_at <= $1
                      AND (d.claimed_until IS NULL OR d.claimed_until < $1)) due
                 WHERE place <= $3 ORDER BY place, next_attempt_at LIMIT $2",
            )
            .bind(now)
            .bind(limit)
            .bind(per_tenant)
            .fetch_all(pool)
            .await?
        }
    };
    let table = match queue {
        Queue::Mail => "mail_outbox",
        Queue::Deliveries { .. } => "deliveries",
    };
    // Safe to assemble: the table name is one of two constants; every value is bound.
    let mut out = Vec::new();
    for r in &rows {
        let id: String = col(r, "id")?;
        let taken = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {table} SET claimed_until = $1, attempts = attempts + 1
             WHERE id = $2 AND state = 'queued' AND (claimed_until IS NULL OR claimed_until < $3)"
        )))
        .bind(now + claim_ms)
        .bind(&id)
        .bind(now)
        .execute(pool)
        .await?;
        if taken.rows_affected() == 1 {
            out.push(id); // else another node took it first
        }
    }
    Ok(out)
}

pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub fn opt_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(time)
}

/// Reads a column, turning a type mismatch into an error rather than a panic.
pub(crate) fn col<'r, T>(row: &'r AnyRow, name: &str) -> Result<T, sqlx::Error>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(name)
}

/// Reads a text column that holds a JSON value (a list of paths, a target's settings, ...).
pub(crate) fn col_json<T: serde::de::DeserializeOwned>(row: &AnyRow, name: &str) -> DbResult<T> {
    let text: String = col(row, name)?;
    serde_json::from_str(&text).map_err(|e| DbError::Sql(sqlx::Error::Decode(e.into())))
}

/// Reads a text column that holds one value of a closed set (a role, a status, ...).
pub(crate) fn col_value<T>(row: &AnyRow, name: &'static str) -> DbResult<T>
where
    T: std::str::FromStr<Err = loop_api::UnknownValue>,
{
    parse_value(name, &col::<String>(row, name)?)
}

/// Parses a stored value of a closed set; `column` names where it came from.
pub(crate) fn parse_value<T>(column: &'static str, s: &str) -> DbResult<T>
where
    T: std::str::FromStr<Err = loop_api::UnknownValue>,
{
    s.parse()
        .map_err(|source| DbError::Value { column, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn count(pool: &AnyPool, sql: &'static str) -> i64 {
        let row = sqlx::query(sql).fetch_one(pool).await.unwrap();
        row.try_get::<i64, _>(0).unwrap()
    }

    /// A transaction that reads, then writes after another connection wrote, still commits
    /// (SQLite's deferred transactions would fail it with SQLITE_BUSY_SNAPSHOT, which no busy
    /// timeout waits out), and both writes are kept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transaction_that_reads_then_writes_survives_a_write_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("busy.db").display());
        let db = Db::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE notes (id TEXT NOT NULL)")
            .execute(&db.pool)
            .await
            .unwrap();
        let insert = |id: &'static str| format!("INSERT INTO notes (id) VALUES ('{id}')");
        let mut first = db.begin().await.unwrap();
        sqlx::query("SELECT COUNT(*) FROM notes")
            .fetch_one(&mut *first)
            .await
            .unwrap();
        let (wrote, written) = tokio::sync::oneshot::channel();
        let other = {
            let db = db.clone();
            let sql = insert("tn_other");
            tokio::spawn(async move {
                let mut tx = db.begin().await?;
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                let _ = wrote.send(());
                Ok::<_, DbError>(())
            })
        };
        // Give the other writer its chance to commit in between (it cannot while this
        // transaction holds the lock, so waiting longer changes nothing).
        let _ = tokio::time::timeout(std::time::Duration::from_millis(500), written).await;
        sqlx::query(sqlx::AssertSqlSafe(insert("tn_first")))
            .execute(&mut *first)
            .await
            .expect("the write after the read");
        first.commit().await.unwrap();
        other.await.unwrap().expect("the other writer");
        assert_eq!(count(&db.pool, "SELECT COUNT(*) FROM notes").await, 2);
    }

    /// A value outside its closed set in the database (damage, or a newer version's row)
    /// reads as an error that names the column and the value, never as a panic.
    #[tokio::test]
    async fn an_unknown_stored_value_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("odd.db").display());
        let db = Db::connect(&url).await.unwrap();
        for sql in [
            "INSERT INTO tenants (id, parent_id, path, kind, name, status, created_at)
             VALUES ('tn_1', NULL, '/tn_1/', 'provider', 'P', 'suspended', 1)",
            "INSERT INTO users (id, tenant_id, email, first_name, last_name, status, created_at,
                updated_at)
             VALUES ('us_a', 'tn_1', 'a@example.com', 'A', 'A', 'active', 1, 1)",
            "INSERT INTO role_bindings (id, user_id, tenant_id, role, created_at)
             VALUES ('rb_1', 'us_a', 'tn_1', 'root', 1)",
        ] {
            sqlx::query(sql).execute(&db.pool).await.unwrap();
        }
        let e = tenants::tenant_by_id(&db.pool, "tn_1").await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "database: column status holds an unknown tenant status \"suspended\": expected \
             active or erased"
        );
        let e = bindings::bindings_of(&db.pool, "us_a").await.unwrap_err();
        assert!(
            matches!(&e, DbError::Value { column: "role", source } if source.value == "root"),
            "{e}"
        );
    }

    /// Migration 5 rebuilds `users`; a database made by the versions before it keeps every
    /// row and every reference, and the address stays unique among accounts only.
    #[tokio::test]
    async fn rebuilding_the_users_table_keeps_what_an_older_database_holds() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("old.db").display());
        let pool = open_pool(&url, Backend::Sqlite, &Default::default())
            .await
            .unwrap();
        SQLITE_MIGRATIONS.run_to(4, &pool).await.unwrap();
        for sql in [
            "INSERT INTO tenants (id, parent_id, path, kind, name, status, created_at)
             VALUES ('tn_1', NULL, '/tn_1/', 'provider', 'P', 'active', 1)",
            "INSERT INTO users (id, tenant_id, email, first_name, last_name, password_hash,
                status, invite_hash, created_at, updated_at)
             VALUES ('us_a', 'tn_1', 'a@example.com', 'A', 'A', 'hash', 'active', NULL, 1, 1),
                    ('us_b', 'tn_1', 'b@example.com', 'B', 'B', NULL, 'invited', 'ih', 7, 7)",
            "INSERT INTO role_bindings (id, user_id, tenant_id, role, created_at)
             VALUES ('rb_1', 'us_a', 'tn_1', 'provider-admin', 1)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        SQLITE_MIGRATIONS.run(&pool).await.unwrap();

        assert_eq!(count(&pool, "SELECT COUNT(*) FROM users").await, 2);
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM role_bindings WHERE user_id = 'us_a'"
            )
            .await,
            1
        );
        assert_eq!(
            count(
                &pool,
                "SELECT invite_issued_at FROM users WHERE id = 'us_b'"
            )
            .await,
            7,
            "an open invitation keeps its age"
        );
        let fk = sqlx::query(
            "INSERT INTO role_bindings (id, user_id, tenant_id, role, created_at)
             VALUES ('rb_2', 'us_nobody', 'tn_1', 'operator', 1)",
        )
        .execute(&pool)
        .await;
        assert!(fk.is_err(), "references to users are still enforced");
        let insert = |id: &'static str, status: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query(
                    "INSERT INTO users (id, tenant_id, email, first_name, last_name, status,
                        created_at, updated_at)
                     VALUES ($1, 'tn_1', 'a@example.com', 'X', 'X', $2, 1, 1)",
                )
                .bind(id)
                .bind(status)
                .execute(&pool)
                .await
                .map_err(DbError::from)
            }
        };
        insert("us_c", "invited")
            .await
            .expect("an invitation may share an address");
        insert("us_d", "invited")
            .await
            .expect("so may a second one");
        let e = insert("us_e", "active").await.unwrap_err();
        assert!(e.is_unique_violation(), "a second account may not: {e}");
    }
}
