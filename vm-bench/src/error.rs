//! What can stop the bench before a scenario runs.

/// Why the bench could not set up or drive a guest.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A program the bench needs is missing.
    #[error("{what} not found at {path}: {hint}")]
    Missing {
        /// What it is.
        what: &'static str,
        /// Where it was looked for.
        path: String,
        /// How to get it.
        hint: &'static str,
    },
    /// A command the bench ran failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// The command.
        command: String,
        /// Its status and stderr.
        detail: String,
    },
    /// File or process I/O.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The guest did not answer in time.
    #[error("guest {guest}: {what} within {seconds} s; last console lines:\n{tail}")]
    Timeout {
        /// The guest.
        guest: String,
        /// What did not happen.
        what: String,
        /// The time allowed.
        seconds: f64,
        /// What the console said last.
        tail: String,
    },
}

impl BenchError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}
