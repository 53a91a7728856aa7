//! ghes-vcr: a recording/replaying reverse proxy for the GitHub Enterprise Server OAuth
//! Authorizations API (`/authorizations`, `/applications/grants`).
//!
//! # Layout
//! - [`cli`] parses the command line; [`config`] checks it into a [`config::Config`].
//! - [`app`] loads what the config names and builds the [`proxy::Proxy`]; [`server`] runs the
//!   accept loop and graceful shutdown ([`shutdown`] supplies the signal).
//! - [`proxy`] is the request pipeline; [`proxy::forward`] talks to the upstream.
//! - [`capture`] is the one step where an exchange becomes what is stored, using
//!   [`redaction`] and [`origin`]; [`scope`] decides which paths are recorded.
//! - [`journal`] keeps a sled record of who calls the deprecated API, with [`operations`] naming
//!   what they call; [`metrics`] counts it for Prometheus.
//! - [`cassette`] is the file format; [`recording`] appends and saves; [`replay`] and
//!   [`matching`] answer from cassettes; [`audit`] scans files for secrets that survived.
//! - [`logging`] writes ghes-vcr's own log lines: stamped, fields written plainly, queued and
//!   written out in batches.
//! - [`worker`] runs the journal's writer and the cassette saver on threads of their own, and
//!   spreads the loading of a large cassette over the cores.
//!
//! # Allocator
//! Every program built on this crate (the binary, its tests, benchmarks and examples) allocates
//! with jemalloc, where it builds (not with MSVC). The saver and the journal's writer free on
//! their own threads what the request handlers allocated, and glibc's malloc takes the
//! allocating thread's arena lock for each such free: under load that lock was contended on
//! most recorded exchanges (1.7 futex calls per exchange; 0.3 with jemalloc).
//! Declared here, not in `main.rs`, so that what the benchmarks measure (`loadbench`'s bare
//! server included) allocates as the binary does.

pub mod app;
pub mod audit;
pub mod capture;
pub mod cassette;
pub mod cli;
pub mod config;
pub mod deprecation;
pub mod error;
pub mod journal;
pub mod logging;
pub mod matching;
pub mod metrics;
pub mod operations;
pub mod origin;
pub mod proxy;
pub mod recording;
pub mod redaction;
pub mod replay;
pub mod replay_server;
pub mod scope;
pub mod server;
pub mod shutdown;
pub mod tls;
pub mod usage;
pub mod verify;
pub mod worker;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub use app::App;
pub use config::Config;
pub use error::Error;
pub use replay_server::ReplayServer;

/// Installs rustls' crypto provider (ring) for the process; call once, first thing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
