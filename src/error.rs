//! The errors a serving command reports, and their exit codes.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::cassette::CassetteError;
use crate::config::ConfigError;

/// Why a command stopped with an error; `main` prints it and exits with [`Error::exit_code`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The command line cannot work (found before anything is bound).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A cassette could not be loaded or saved.
    #[error(transparent)]
    Cassette(#[from] CassetteError),
    /// The listening address could not be bound.
    #[error("cannot listen on {addr} (is another process using it? pick another with --listen, or port 0 for any)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The final save of a recording failed, so the cassette on disk misses interactions.
    #[error("cassette {} is missing recorded interactions: {cause}", path.display())]
    Unsaved { path: PathBuf, cause: String },
    /// The journal named with `--journal` could not be opened.
    #[error(transparent)]
    Journal(#[from] crate::journal::store::JournalError),
    /// A TLS certificate or key file cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The async runtime could not start.
    #[error("cannot start the runtime")]
    Runtime(#[source] std::io::Error),
}

/// Exit status for errors: 2, as for usage errors (1 is kept for "ran, but the result is
/// negative", e.g. a future `--fail-on-miss`).
pub const EXIT_ERROR: u8 = 2;

/// An error and its causes on one line, `outer: inner: innermost`.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
