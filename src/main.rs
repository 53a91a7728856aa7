//! The `ghes-vcr` binary: parse, check, load, bind, print the listening line, serve.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::Parser;
use ghes_vcr::cli::{CassetteCommand, Cli, Command};
use ghes_vcr::error::EXIT_ERROR;
use ghes_vcr::{server, shutdown, App, Config, Error};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    ghes_vcr::install_crypto_provider();
    let cli = Cli::parse();
    init_tracing();
    if let Command::Cassette(CassetteCommand::Audit(args)) = &cli.command {
        return audit(&args.paths);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ghes-vcr: error: {}", error_chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Error> {
    let config = Config::from_cli(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let app = App::load(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(Error::Runtime)?;
        let mut stdout = std::io::stdout().lock();
        // The one line on stdout; tests and scripts read the port from it.
        let _ = writeln!(stdout, "listening on http://{local}");
        let _ = stdout.flush();
        drop(stdout);
        server::run(listener, app, shutdown::signal())
            .await
            .map(|_| ())
    })
}

/// `cassette audit`: 0 when clean, 1 with one line per finding, 2 when a path cannot be read.
fn audit(paths: &[std::path::PathBuf]) -> ExitCode {
    match ghes_vcr::audit::scan_paths(paths) {
        Ok(findings) if findings.is_empty() => ExitCode::SUCCESS,
        Ok(findings) => {
            let mut stdout = std::io::stdout().lock();
            for finding in &findings {
                let _ = writeln!(stdout, "{finding}");
            }
            eprintln!(
                "ghes-vcr: {} possible secret(s) found; remove them (re-record, or edit the file) and run the audit again",
                findings.len()
            );
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("ghes-vcr: error: {}", error_chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn init_tracing() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("ghes_vcr=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// The error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
