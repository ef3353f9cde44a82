//! Keyset pagination: a listing sorted by columns that end in a unique one continues after
//! the sort key of the last row it gave, which the client holds as an opaque cursor
//! (base64url of the key as a JSON array). A page is one query that starts after that key
//! (no OFFSET that reads and drops the rows before it), and rows added or removed between
//! pages neither repeat nor skip the others.

use base64::Engine as _;
use sqlx::any::AnyRow;
use sqlx::{Row as _, ValueRef as _};

use super::{DbError, DbResult};

/// Rows per page when the client does not say, and the most it may ask for.
pub const DEFAULT_LIMIT: u32 = 100;
pub const MAX_LIMIT: u32 = 1000;

/// One column of a listing's order.
#[derive(Clone, Copy, Debug)]
pub struct Sort {
    /// A column or expression of the listing's query (a constant of the caller's, never
    /// NULL).
    pub expr: &'static str,
    pub desc: bool,
}

pub const fn asc(expr: &'static str) -> Sort {
    Sort { expr, desc: false }
}

pub const fn desc(expr: &'static str) -> Sort {
    Sort { expr, desc: true }
}

/// A value of a sort key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Text(String),
}

/// Which page: after the row whose sort key is `after` (the first page without), at most
/// `limit` rows.
#[derive(Clone, Debug, Default)]
pub struct Page {
    pub after: Option<Vec<Key>>,
    pub limit: u32,
}

/// A cursor the server did not make, or made for another listing.
#[derive(Debug, thiserror::Error)]
#[error("the cursor is not one this listing gave")]
pub struct BadCursor;

impl Page {
    /// The page a client asked for with `limit` (clamped to 1..=[`MAX_LIMIT`]) and `cursor`.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Page, BadCursor> {
        let after = match cursor {
            None => None,
            Some(c) => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(c)
                    .map_err(|_| BadCursor)?;
                let key: Vec<Key> = serde_json::from_slice(&bytes).map_err(|_| BadCursor)?;
                if key.is_empty() || key.len() > 8 {
                    return Err(BadCursor);
                }
                Some(key)
            }
        };
        Ok(Page {
            after,
            limit: limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT),
        })
    }

    /// The first page of up to `limit` rows.
    pub fn first(limit: u32) -> Page {
        Page {
            after: None,
            limit: limit.clamp(1, MAX_LIMIT),
        }
    }
}

/// The cursor of the page after the one ending in `key`.
pub fn cursor(key: &[Key]) -> String {
    let json = serde_json::to_vec(key).expect("keys serialize");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// A page of a listing: its rows, and the cursor of the next page when there is one.
#[derive(Debug)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Paged<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> DbResult<U>) -> DbResult<Paged<U>> {
        Ok(Paged {
            items: self.items.into_iter().map(f).collect::<DbResult<_>>()?,
            next: self.next,
        })
    }
}

/// A page of a listing held in memory (one not kept in the database), each row with its
/// sort key (ascending, unique).
pub fn in_memory<T>(mut rows: Vec<(Vec<Key>, T)>, page: &Page) -> Paged<T> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let start = match &page.after {
        Some(after) => rows.partition_point(|(k, _)| k <= after),
        None => 0,
    };
    let mut rest: Vec<(Vec<Key>, T)> = rows.into_iter().skip(start).collect();
    let more = rest.len() > page.limit as usize;
    rest.truncate(page.limit as usize);
    let next = match (more, rest.last()) {
        (true, Some((key, _))) => Some(cursor(key)),
        _ => None,
    };
    Paged {
        items: rest.into_iter().map(|(_, t)| t).collect(),
        next,
    }
}

/// The rows of `select` (`SELECT ... FROM ...`, no `WHERE`) that match `filter` (whose
/// placeholders `$1`... are `binds`), in `order` (which ends in a unique column): one page of
/// them when `page` is given, all otherwise.
pub(crate) async fn query_page(
    pool: &sqlx::AnyPool,
    select: &'static str,
    filter: &str,
    mut binds: Vec<Key>,
    order: &[Sort],
    page: Option<&Page>,
) -> DbResult<Paged<AnyRow>> {
    // The sort key rides along with each row, for the next page's cursor.
    let (head, tail) = select
        .split_once(" FROM ")
        .expect("a SELECT ... FROM query");
    let mut sql = format!("{head}{} FROM {tail} WHERE {filter}", key_columns(order));
    if let Some(after) = page.and_then(|p| p.after.as_deref()) {
        sql.push_str(&after_clause(order, after, &mut binds)?);
    }
    sql.push_str(&format!(" ORDER BY {}", order_by(order)));
    if let Some(p) = page {
        sql.push_str(&format!(" LIMIT {}", p.limit as u64 + 1));
    }
    // Safe to assemble: the parts are the caller's constants, numbered placeholders and a
    // number; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        q = match b {
            Key::Int(n) => q.bind(n),
            Key::Text(s) => q.bind(s),
        };
    }
    let rows = q.fetch_all(pool).await?;
    match page {
        Some(p) => split(rows, p, order.len()),
        None => Ok(Paged {
            items: rows,
            next: None,
        }),
    }
}

/// ` AND (the row comes after `after` in `order`)`, with its values appended to `binds`
/// (placeholders numbered after those already there). A key of the wrong length is a
/// cursor of another listing.
fn after_clause(order: &[Sort], after: &[Key], binds: &mut Vec<Key>) -> DbResult<String> {
    if after.len() != order.len() {
        return Err(DbError::Cursor);
    }
    // (a > x) OR (a = x AND b > y) OR ... : row comparison spelled out, so that each column
    // may sort its own way. It starts with `a >= x`, which says the same but lets the
    // database start an index scan of `a` at x instead of reading from the first row.
    binds.push(after[0].clone());
    let bound = format!(
        "{} {} ${}",
        order[0].expr,
        if order[0].desc { "<=" } else { ">=" },
        binds.len()
    );
    let mut alternatives = Vec::new();
    for i in 0..order.len() {
        let mut terms = Vec::new();
        for (j, s) in order.iter().enumerate().take(i + 1) {
            binds.push(after[j].clone());
            let op = match (j == i, s.desc) {
                (false, _) => "=",
                (true, false) => ">",
                (true, true) => "<",
            };
            terms.push(format!("{} {op} ${}", s.expr, binds.len()));
        }
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    Ok(format!(" AND {bound} AND ({})", alternatives.join(" OR ")))
}

/// `ORDER BY` of `order`.
fn order_by(order: &[Sort]) -> String {
    order
        .iter()
        .map(|s| format!("{}{}", s.expr, if s.desc { " DESC" } else { "" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `, expr AS sort_0, ...`: the sort key selected beside each row.
fn key_columns(order: &[Sort]) -> String {
    order
        .iter()
        .enumerate()
        .map(|(i, s)| format!(", {} AS sort_{i}", s.expr))
        .collect()
}

/// The sort key of `row` (selected by [`key_columns`]).
fn key_of(row: &AnyRow, columns: usize) -> DbResult<Vec<Key>> {
    (0..columns)
        .map(|i| {
            let name = format!("sort_{i}");
            let raw = row.try_get_raw(name.as_str())?;
            if raw.is_null() {
                return Err(DbError::Cursor);
            }
            Ok(match row.try_get::<i64, _>(name.as_str()) {
                Ok(n) => Key::Int(n),
                Err(_) => Key::Text(row.try_get::<String, _>(name.as_str())?),
            })
        })
        .collect()
}

/// Splits `rows` (fetched with one row more than the page holds) into the page and the
/// cursor of the next one.
fn split(mut rows: Vec<AnyRow>, page: &Page, columns: usize) -> DbResult<Paged<AnyRow>> {
    let more = rows.len() > page.limit as usize;
    rows.truncate(page.limit as usize);
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(cursor(&key_of(last, columns)?)),
        _ => None,
    };
    Ok(Paged { items: rows, next })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_is_the_key_in_base64url_json() {
        let key = vec![Key::Int(1_764_000_000_000), Key::Text("job_1".into())];
        // Known answer: base64url (no padding) of `[1764000000000,"job_1"]`.
        assert_eq!(cursor(&key), "WzE3NjQwMDAwMDAwMDAsImpvYl8xIl0");
        let page = Page::parse(Some(5000), Some(&cursor(&key))).unwrap();
        assert_eq!(page.after, Some(key));
        assert_eq!(page.limit, MAX_LIMIT);
        assert_eq!(Page::parse(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(Page::parse(Some(0), None).unwrap().limit, 1);
    }

    #[test]
    fn a_page_in_memory_continues_after_its_cursor() {
        let rows = |n: i64| {
            (0..n)
                .rev()
                .map(|i| (vec![Key::Int(i)], i))
                .collect::<Vec<_>>()
        };
        let first = in_memory(rows(5), &Page::first(2));
        assert_eq!(first.items, [0, 1]);
        let page = Page::parse(Some(2), first.next.as_deref()).unwrap();
        let second = in_memory(rows(5), &page);
        assert_eq!(second.items, [2, 3]);
        let page = Page::parse(Some(2), second.next.as_deref()).unwrap();
        let last = in_memory(rows(5), &page);
        assert_eq!((last.items, last.next), (vec![4], None));
    }

    #[test]
    fn a_cursor_the_server_did_not_make_is_refused() {
        for bad in ["not base64!", "e30", "W10", "bnVsbA", "W3t9XQ"] {
            // garbage, `{}`, `[]`, `null`, `[{}]`
            assert!(Page::parse(None, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_after_clause_continues_each_column_its_own_way() {
        let mut binds = vec![Key::Text("tenant".into())];
        let sql = after_clause(
            &[desc("j.created_at"), asc("j.id")],
            &[Key::Int(7), Key::Text("job_1".into())],
            &mut binds,
        )
        .unwrap();
        assert_eq!(
            sql,
            " AND j.created_at <= $2 AND ((j.created_at < $3) OR (j.created_at = $4 AND j.id > $5))"
        );
        assert_eq!(binds.len(), 5);
        assert!(after_clause(&[asc("t.path")], &[], &mut binds).is_err());
    }
}
