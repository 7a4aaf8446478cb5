//! The core's error type. The `http` crate maps each variant to a status code; nothing here
//! knows HTTP. Messages are what the client sees, so they never carry secrets.

use signet_storage::StorageError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The path exists but the entry does not (404 with an empty `errors` list).
    #[error("not found")]
    NotFound,
    /// No mount or path pattern serves this path (404 with Vault's message).
    #[error("no handler for route {0:?}. route entry not found.")]
    NoRoute(String),
    /// Missing or invalid token (403).
    #[error("permission denied")]
    PermissionDenied,
    /// A valid token whose policies do not grant the operation (403, Vault's multi-error text).
    #[error("1 error occurred:\n\t* permission denied\n\n")]
    AclDenied,
    /// The client's request is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// The path exists but not for this operation (405).
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// The server is sealed (503).
    #[error("Vault is sealed")]
    Sealed,
    /// A specific status with messages (413, 415, 429...).
    #[error("{1:?}")]
    Status(u16, Vec<String>),
    /// A server fault (500). The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// A 400 with a message.
    pub fn bad(msg: impl Into<String>) -> Self {
        CoreError::BadRequest(msg.into())
    }
}

impl From<StorageError> for CoreError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Sealed => CoreError::Sealed,
            StorageError::InvalidKey(m) => CoreError::BadRequest(m),
            StorageError::Unavailable(m) => {
                tracing::warn!(error = %m, "storage unavailable");
                CoreError::Status(
                    503,
                    vec![
                        "storage is unavailable (the database cannot be reached); retry shortly"
                            .into(),
                    ],
                )
            }
            other => CoreError::Internal(other.to_string()),
        }
    }
}

/// The core's result type.
pub type CoreResult<T> = Result<T, CoreError>;
