//! Starting ghes-vcr in tests: in-process on 127.0.0.1:0 with an injected shutdown, or as the
//! real binary, reading its `listening on` line for the port.

use std::path::Path;
use std::process::{ExitStatus, Stdio};

use clap::Parser as _;
use ghes_vcr::cli::Cli;
use ghes_vcr::recording::RecordingSummary;
use ghes_vcr::{server, App, Config, Error};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// ghes-vcr running inside the test process.
pub struct InProcess {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<ghes_vcr::app::Finished, Error>>,
}

impl InProcess {
    /// Starts `ghes-vcr ARGS... --listen 127.0.0.1:0`; panics on a start-up error.
    pub async fn start(args: &[&str]) -> Self {
        match Self::try_start(args).await {
            Ok(proxy) => proxy,
            Err(err) => panic!("ghes-vcr did not start: {err}"),
        }
    }

    pub async fn try_start(args: &[&str]) -> Result<Self, Error> {
        // In-process proxies journal only when a test names a directory: the default one is
        // shared, and sled allows one process (here: one database handle) per directory.
        let journal: &[&str] = if args.contains(&"--journal") {
            &[]
        } else {
            &["--no-journal"]
        };
        let argv = std::iter::once("ghes-vcr")
            .chain(args.iter().copied())
            .chain(["--listen", "127.0.0.1:0"])
            .chain(journal.iter().copied());
        let cli =
            Cli::try_parse_from(argv).unwrap_or_else(|err| panic!("bad test arguments: {err}"));
        let config = Config::from_cli(&cli)?;
        let (app, listener) = App::bind(&config).await?;
        let local = listener.local_addr().expect("local addr");
        let url = format!("http://{local}");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server::run(listener, app, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            url,
            stop: Some(stop),
            task,
        })
    }

    /// `url` + `path`.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// Shuts down gracefully and returns the recording summary.
    pub async fn stop(self) -> Result<Option<RecordingSummary>, Error> {
        self.finish().await.map(|finished| finished.recording)
    }

    /// Shuts down gracefully and returns everything the run left (recording, replay report).
    pub async fn finish(mut self) -> Result<ghes_vcr::app::Finished, Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("server task panicked")
    }
}

/// The real `ghes-vcr` binary, started with a cleared environment.
pub struct Binary {
    pub url: String,
    child: tokio::process::Child,
    stderr: JoinHandle<String>,
    /// Each line of stderr as it comes.
    stderr_lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

/// What a finished binary run printed.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn command(args: &[&str], envs: &[(&str, &str)], home: &Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghes-vcr"));
    command
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("RUST_LOG", "ghes_vcr=debug")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

impl Binary {
    /// Starts the binary and waits for its `listening on` line; panics with its stderr if it
    /// exits first.
    pub async fn start(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Self {
        let mut child = command(args, envs, home).spawn().expect("spawn ghes-vcr");
        let mut stderr_pipe = BufReader::new(child.stderr.take().expect("stderr piped"));
        let (line_tx, stderr_lines) = tokio::sync::mpsc::unbounded_channel();
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let mut line = String::new();
            while matches!(stderr_pipe.read_line(&mut line).await, Ok(read) if read > 0) {
                text.push_str(&line);
                let _ = line_tx.send(std::mem::take(&mut line));
            }
            text
        });
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout piped"));
        let mut line = String::new();
        let read = stdout.read_line(&mut line).await.expect("read stdout");
        if read == 0 {
            let status = child.wait().await.expect("wait");
            let stderr = stderr.await.unwrap_or_default();
            panic!("ghes-vcr exited ({status}) before listening:\n{stderr}");
        }
        let url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        // Anything more on stdout is a bug: stdout holds only the listening line.
        tokio::spawn(async move {
            let mut rest = String::new();
            let _ = stdout.read_to_string(&mut rest).await;
            assert!(rest.is_empty(), "ghes-vcr printed more to stdout: {rest:?}");
        });
        Self {
            url,
            child,
            stderr,
            stderr_lines,
        }
    }

    /// Runs the binary to completion (for commands that fail before listening).
    pub async fn run(args: &[&str], envs: &[(&str, &str)], home: &Path) -> Finished {
        let output = command(args, envs, home)
            .output()
            .await
            .expect("run ghes-vcr");
        Finished {
            status: output.status,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("still running")
    }

    /// Sends a signal by name (`TERM`, `INT`, `KILL`) with kill(1).
    pub async fn signal(&self, name: &str) {
        let status = tokio::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .await
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the next line on stderr that contains `needle` while the binary runs;
    /// panics when stderr ends first, or after 60 s (a guard, not a pace: lines come within
    /// milliseconds).
    pub async fn stderr_line_with(&mut self, needle: &str) -> String {
        let wait = async {
            while let Some(line) = self.stderr_lines.recv().await {
                if line.contains(needle) {
                    return line;
                }
            }
            panic!("stderr ended without a line containing {needle:?}");
        };
        tokio::time::timeout(std::time::Duration::from_secs(60), wait)
            .await
            .unwrap_or_else(|_| panic!("no line containing {needle:?} on stderr in 60 s"))
    }

    /// Waits for the process to exit and collects stderr.
    pub async fn wait(mut self) -> Finished {
        let status = self.child.wait().await.expect("wait for ghes-vcr");
        let stderr = self.stderr.await.unwrap_or_default();
        Finished {
            status,
            stdout: String::new(),
            stderr,
        }
    }
}

/// Starts `ghes-vcr record --upstream UPSTREAM --cassette CASSETTE EXTRA...` in-process.
pub async fn record(upstream: &str, cassette: &Path, extra: &[&str]) -> InProcess {
    let cassette = cassette.to_str().expect("UTF-8 temp path");
    let args: Vec<&str> = ["record", "--upstream", upstream, "--cassette", cassette]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    InProcess::start(&args).await
}

/// Starts `ghes-vcr replay --cassette CASSETTE` in-process.
pub async fn replay(cassette: &Path) -> InProcess {
    InProcess::start(&[
        "replay",
        "--cassette",
        cassette.to_str().expect("UTF-8 temp path"),
    ])
    .await
}
