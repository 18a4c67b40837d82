//! What a failed port call means to the caller. Adapters map every backend failure into a
//! [`PortError`], split by what the caller does next: retry the unit of work later (transient:
//! a batch-item failure, the next schedule), or give up on it (permanent: a dead letter, a
//! logged error). The cause chain is kept as the `source`.

/// A boxed error with its cause chain intact.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a port call returns.
pub type PortResult<T> = Result<T, PortError>;

/// A port call that failed, split by what the caller does about it.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// Throttling, a 5xx, a timeout or a dropped connection: the same call may succeed later,
    /// so the caller reports the unit of work as failed and lets the platform retry it.
    #[error("{operation} failed transiently, retry later")]
    Transient {
        /// The operation, e.g. `DynamoDB.UpdateItem`.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
    /// A validation error, a missing resource, a denied permission: retrying cannot help.
    #[error("{operation} failed permanently")]
    Permanent {
        /// The operation.
        operation: &'static str,
        /// The backend's error.
        #[source]
        source: BoxError,
    },
}

impl PortError {
    /// True if retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, PortError::Transient { .. })
    }

    /// A transient failure of `operation`, caused by `source`.
    pub fn transient(operation: &'static str, source: impl Into<BoxError>) -> Self {
        PortError::Transient {
            operation,
            source: source.into(),
        }
    }

    /// A permanent failure of `operation`, caused by `source`.
    pub fn permanent(operation: &'static str, source: impl Into<BoxError>) -> Self {
        PortError::Permanent {
            operation,
            source: source.into(),
        }
    }
}

/// Renders an error and its whole `source()` chain on one line, for logs.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.ends_with(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}
