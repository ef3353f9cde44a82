//! The two backends' migrations make the same schema: every table, column (type,
//! nullability, default), primary key, unique constraint, foreign key, check and index of a
//! fresh SQLite database is in a fresh PostgreSQL one, and nothing else. A database a newer
//! release migrated is refused, on both.

use std::collections::{BTreeMap, BTreeSet};

use loop_server::db::Db;
use sqlx::{AnyPool, Row as _};

/// A table as both backends can describe it, in one normal form.
#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// name → (type, NOT NULL, default)
    columns: BTreeMap<String, (String, bool, Option<String>)>,
    /// Primary key, unique constraints, foreign keys and checks, normalized.
    constraints: BTreeSet<String>,
    /// `CREATE [UNIQUE] INDEX` statements, normalized.
    indexes: BTreeSet<String>,
}

type Schema = BTreeMap<String, Table>;

/// One spelling for what the two backends print differently: case, spacing, parentheses,
/// PostgreSQL's casts, schema prefix and `= ANY (ARRAY[...])` for `IN (...)`.
fn normal(sql: &str) -> String {
    let s = sql
        .to_lowercase()
        .replace("::text", "")
        .replace("::bigint", "")
        .replace("public.", "")
        .replace(" using btree", "")
        .replace("= any (array[", " in (")
        .replace("])", ")");
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '(' && *c != ')')
        .collect()
}

fn text(r: &sqlx::any::AnyRow, i: usize) -> String {
    r.try_get::<String, _>(i).unwrap()
}

fn int(r: &sqlx::any::AnyRow, i: usize) -> i64 {
    r.try_get::<i64, _>(i).unwrap()
}

/// The `CHECK (...)` expressions of a `CREATE TABLE` statement.
fn checks_in(create: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = create;
    while let Some(at) = rest.find("CHECK (") {
        let body = &rest[at + "CHECK ".len()..];
        let mut depth = 0;
        let end = body
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("balanced parentheses");
        out.push(format!("check{}", normal(&body[..=end])));
        rest = &body[end..];
    }
    out
}

async fn sqlite_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = sqlx::query(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for t in &tables {
        let (name, create) = (text(t, 0), text(t, 1));
        let mut table = Table::default();
        let mut pk = BTreeMap::new();
        for c in
            sqlx::query("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info($1)")
                .bind(&name)
                .fetch_all(pool)
                .await
                .unwrap()
        {
            let ty = match text(&c, 1).as_str() {
                "TEXT" => "text".to_string(),
                "BIGINT" => "bigint".to_string(),
                "BLOB" => "bytea".to_string(),
                other => other.to_lowercase(),
            };
            let key = int(&c, 4);
            if key > 0 {
                pk.insert(key, text(&c, 0));
            }
            let default = c
                .try_get::<Option<String>, _>(3)
                .unwrap()
                .map(|d| normal(&d));
            table
                .columns
                .insert(text(&c, 0), (ty, int(&c, 2) != 0 || key > 0, default));
        }
        if !pk.is_empty() {
            let cols: Vec<_> = pk.into_values().collect();
            table
                .constraints
                .insert(normal(&format!("PRIMARY KEY ({})", cols.join(", "))));
        }
        let mut fks: BTreeMap<i64, (String, Vec<String>, Vec<String>, String)> = BTreeMap::new();
        for f in sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list($1)
             ORDER BY id, seq",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            let e = fks
                .entry(int(&f, 0))
                .or_insert_with(|| (text(&f, 1), vec![], vec![], text(&f, 4)));
            e.1.push(text(&f, 2));
            e.2.push(text(&f, 3));
        }
        for (to_table, from, to, on_delete) in fks.into_values() {
            let mut fk = format!(
                "FOREIGN KEY ({}) REFERENCES {to_table}({})",
                from.join(", "),
                to.join(", ")
            );
            if on_delete != "NO ACTION" {
                fk += &format!(" ON DELETE {on_delete}");
            }
            table.constraints.insert(normal(&fk));
        }
        for check in checks_in(&create) {
            table.constraints.insert(check);
        }
        for i in sqlx::query("SELECT name, origin FROM pragma_index_list($1)")
            .bind(&name)
            .fetch_all(pool)
            .await
            .unwrap()
        {
            let (index, origin) = (text(&i, 0), text(&i, 1));
            match origin.as_str() {
                "u" => {
                    let cols: Vec<String> =
                        sqlx::query("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                            .bind(&index)
                            .fetch_all(pool)
                            .await
                            .unwrap()
                            .iter()
                            .map(|r| text(r, 0))
                            .collect();
                    table
                        .constraints
                        .insert(normal(&format!("UNIQUE ({})", cols.join(", "))));
                }
                "c" => {
                    let sql = sqlx::query("SELECT sql FROM sqlite_master WHERE name = $1")
                        .bind(&index)
                        .fetch_one(pool)
                        .await
                        .unwrap();
                    table.indexes.insert(normal(&text(&sql, 0)));
                }
                _ => {} // the primary key's own index
            }
        }
        schema.insert(name, table);
    }
    schema
}

async fn postgres_schema(pool: &AnyPool) -> Schema {
    let mut schema = Schema::new();
    let tables = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name <> '_sqlx_migrations'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    for t in &tables {
        let name = text(t, 0);
        let mut table = Table::default();
        for c in sqlx::query(
            "SELECT column_name::text, data_type::text, is_nullable::text, column_default::text
             FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            let default = c
                .try_get::<Option<String>, _>(3)
                .unwrap()
                .map(|d| normal(&d));
            table
                .columns
                .insert(text(&c, 0), (text(&c, 1), text(&c, 2) == "NO", default));
        }
        for c in sqlx::query(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = CAST($1 AS regclass) AND contype IN ('p', 'u', 'f', 'c')",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            table.constraints.insert(normal(&text(&c, 0)));
        }
        for i in sqlx::query(
            "SELECT indexdef::text FROM pg_indexes WHERE schemaname = 'public' AND tablename = $1
               AND indexname NOT IN (SELECT conname FROM pg_constraint
                                      WHERE contype IN ('p', 'u'))",
        )
        .bind(&name)
        .fetch_all(pool)
        .await
        .unwrap()
        {
            table.indexes.insert(normal(&text(&i, 0)));
        }
        schema.insert(name, table);
    }
    schema
}

#[test]
fn both_backends_migrate_to_the_same_schema() {
    let Some(cluster) = loop_testkit::postgres::Cluster::shared() else {
        return;
    };
    let database = cluster.database();
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("loop.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (sqlite, postgres) = rt.block_on(async {
        let sqlite = Db::connect(&sqlite_url).await.unwrap();
        let pg = Db::connect(&database.url).await.unwrap();
        (
            sqlite_schema(&sqlite.pool).await,
            postgres_schema(&pg.pool).await,
        )
    });
    assert!(
        sqlite.len() > 20,
        "every table was found: {:?}",
        sqlite.keys()
    );
    assert_eq!(
        sqlite.keys().collect::<Vec<_>>(),
        postgres.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (name, table) in &sqlite {
        assert_eq!(
            table, &postgres[name],
            "table {name}: SQLite, then PostgreSQL"
        );
    }
}

/// What a newer release leaves behind: a migration this binary does not have.
async fn mark_newer(db: &Db) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99991231000000, 'from a newer release', TRUE, $1, 0)",
    )
    .bind(vec![0u8; 48])
    .execute(&db.pool)
    .await
    .unwrap();
}

#[test]
fn a_database_a_newer_release_migrated_is_refused_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut urls = vec![format!("sqlite://{}", dir.path().join("loop.db").display())];
    let cluster = loop_testkit::postgres::Cluster::shared();
    let database = cluster.as_ref().map(|c| c.database());
    urls.extend(database.as_ref().map(|d| d.url.clone()));
    let rt = tokio::runtime::Runtime::new().unwrap();
    for url in urls {
        rt.block_on(async {
            let db = Db::connect(&url).await.unwrap();
            mark_newer(&db).await;
            db.pool.close().await;
            let err = Db::connect(&url)
                .await
                .err()
                .expect("a newer database is refused");
            let said = err.to_string();
            assert!(
                said.contains("newer release") && said.contains("99991231000000"),
                "{said}"
            );
        });
    }
}
