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
