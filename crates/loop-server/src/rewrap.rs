//! `loop server rewrap-keys`: the second half of a master key rotation.
//!
//! After a new master key is configured with the old one among the previous keys, every
//! value in [`crate::db::wrapped::COLUMNS`] still wrapped under an old key is opened and
//! wrapped again under the current key. Each value is replaced only if it is unchanged since
//! it was read, so it is safe while nodes serve. When the report shows nothing left under a
//! previous key (and no value that no key opens), the previous keys can be removed from the
//! configuration and destroyed. Vault data is never re-encrypted: the tenant keys it hangs
//! from stay the same.

use crate::config::Config;
use crate::db::wrapped::{self, COLUMNS};
use crate::db::{Db, DbError};
use crate::keys::KeyError;

const BATCH: i64 = 500;

#[derive(Debug, thiserror::Error)]
pub enum RewrapError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// What one column held.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnRewrapped {
    pub column: String,
    /// Values read.
    pub values: u64,
    /// Values that opened only with a previous key, now wrapped under the current one.
    pub rewrapped: u64,
    /// Values no configured key opens (the IDs of their rows): they stay as they are.
    pub unreadable: Vec<String>,
}

/// Rewraps, with the database and master keys of `config`.
pub async fn rewrap(config: &Config) -> Result<Vec<ColumnRewrapped>, RewrapError> {
    let master = crate::keys::MasterKey::from_config(config)?;
    let db = Db::connect_with(&config.database_url(), &config.database).await?;
    let mut report = Vec::new();
    for c in COLUMNS {
        let mut done = ColumnRewrapped {
            column: c.name(),
            ..Default::default()
        };
        let mut after = String::new();
        loop {
            let rows = wrapped::page(&db.pool, c, &after, BATCH).await?;
            let Some((last, _)) = rows.last() else { break };
            after = last.clone();
            for (id, value) in &rows {
                done.values += 1;
                match master.rewrap(&(c.context)(id), value) {
                    Ok(None) => {}
                    Ok(Some(new)) => {
                        // A value changed meanwhile was written under the current key.
                        if wrapped::replace(&db.pool, c, id, value, &new).await? {
                            done.rewrapped += 1;
                        }
                    }
                    Err(_) => done.unreadable.push(id.clone()),
                }
            }
        }
        if done.rewrapped > 0 || !done.unreadable.is_empty() {
            tracing::info!(
                column = %done.column,
                values = done.values,
                rewrapped = done.rewrapped,
                unreadable = done.unreadable.len(),
                "rewrapped under the current master key"
            );
        }
        report.push(done);
    }
    db.pool.close().await;
    Ok(report)
}
