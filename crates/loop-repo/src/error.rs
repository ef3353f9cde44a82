//! Errors of the engine.
//!
//! Policy: every error that reaches a user names the object or path it concerns and says what
//! is wrong in one line. Corrupt or hostile stored bytes become [`Error::Corrupt`] naming the
//! object, never a panic. Storage failures keep the backend's text for the log, and the kind
//! (`NotFound`) for the engine's decisions. Nothing here carries key material.

use std::path::PathBuf;

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong passphrase: no key slot of this repository opens with it")]
    WrongPassword,
    /// Every key slot is gone (crypto-shredding): no secret can open the repository again.
    #[error("{0} has no key slot: its keys were destroyed, so its data cannot be decrypted")]
    NoKeySlot(String),
    #[error(
        "{object} has format version {found}, newer than this program supports ({supported}): upgrade loop"
    )]
    NewerVersion {
        object: String,
        found: u8,
        supported: u8,
    },
    #[error("no repository at {0} (run `loop init` first)")]
    NoRepository(String),
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    #[error("{object} is damaged: {reason}")]
    Corrupt { object: String, reason: String },
    #[error("{0} was not found")]
    NotFound(String),
    #[error("storage error on {object}: {message}")]
    Storage { object: String, message: String },
    /// The store refused to delete or replace the object: a retention lock keeps it.
    #[error("{object} is held by the vault's retention lock: {message}")]
    Held { object: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub(crate) fn corrupt(object: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// True when the error means the object does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound(_))
    }

    /// True when a retention lock kept the object from being deleted or replaced.
    pub fn is_held(&self) -> bool {
        matches!(self, Error::Held { .. })
    }
}

/// An error and its causes on one line, as users see every error: `error: cause: cause`.
/// A cause whose text the line already holds is left out, since many errors (this crate's
/// [`Error::Io`] among them) print their source in their own message and return it as well.
pub fn one_line(e: &(dyn std::error::Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = c.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_is_told_once_and_every_other_cause_is_kept() {
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let cause = missing.to_string();
        let e = Error::io("/srv/gone", missing);
        let line = one_line(&e);
        assert_eq!(line.matches(&cause).count(), 1, "{line}");
        assert!(line.starts_with("/srv/gone: "), "{line}");

        #[derive(Debug, thiserror::Error)]
        #[error("backing up the folders")]
        struct Outer(#[source] Error);
        let line = one_line(&Outer(e));
        assert_eq!(line, format!("backing up the folders: /srv/gone: {cause}"));
    }
}
