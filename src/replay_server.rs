//! [`ReplayServer`]: a replay on an ephemeral loopback port, inside a Rust test.

use std::path::Path;

use clap::Parser as _;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::{App, Finished};
use crate::cli::Cli;
use crate::config::Config;
use crate::error::Error;

/// `ghes-vcr replay` running in this process on `127.0.0.1:0`, without a journal.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::io::{Read, Write};
///
/// let server = ghes_vcr::ReplayServer::start("cassettes/grants.json").await?;
/// let api = server.api_url(); // e.g. http://127.0.0.1:41235/api/v3: hand it to the client under test
///
/// // Any HTTP client works; a raw request keeps this example short.
/// let addr = server.base_url().trim_start_matches("http://").to_owned();
/// let answer = tokio::task::spawn_blocking(move || {
///     let mut stream = std::net::TcpStream::connect(addr).unwrap();
///     let request = "GET /api/v3/applications/grants HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
///     stream.write_all(request.as_bytes()).unwrap();
///     let mut answer = String::new();
///     stream.read_to_string(&mut answer).unwrap();
///     answer
/// })
/// .await?;
/// assert!(answer.starts_with("HTTP/1.1 200"));
/// assert!(api.ends_with("/api/v3"));
///
/// let finished = server.stop().await?;
/// assert_eq!(finished.report.unwrap().used.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct ReplayServer {
    base_url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<Finished, Error>>,
}

impl ReplayServer {
    /// Replays `cassette` (a file or a directory). Must run inside a tokio runtime.
    ///
    /// # Errors
    /// As the `replay` command: an unreadable or malformed cassette.
    pub async fn start(cassette: impl AsRef<Path>) -> Result<Self, Error> {
        let cassette = cassette.as_ref().to_string_lossy().into_owned();
        Self::with_args(&["--cassette", &cassette]).await
    }

    /// Replays with any `ghes-vcr replay` flags (e.g. `--cassette DIR --synthesize-tokens`).
    ///
    /// # Errors
    /// As the `replay` command.
    ///
    /// # Panics
    /// When `args` are not valid `replay` flags.
    pub async fn with_args(args: &[&str]) -> Result<Self, Error> {
        let argv = ["ghes-vcr", "replay"]
            .into_iter()
            .chain(args.iter().copied())
            .chain(["--listen", "127.0.0.1:0", "--no-journal"]);
        let cli =
            Cli::try_parse_from(argv).unwrap_or_else(|err| panic!("invalid replay flags: {err}"));
        let config = Config::from_cli(&cli)?;
        let (app, listener) = App::bind(&config).await?;
        let local = listener.local_addr().map_err(Error::Runtime)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(crate::server::run(listener, app, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            base_url: format!("http://{local}"),
            stop: Some(stop),
            task,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `http://127.0.0.1:PORT/api/v3`, the base URL GHES clients expect.
    pub fn api_url(&self) -> String {
        format!("{}/api/v3", self.base_url)
    }

    /// Stops the server and returns its replay report.
    ///
    /// # Errors
    /// As the `replay` command's shutdown.
    pub async fn stop(mut self) -> Result<Finished, Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
}
