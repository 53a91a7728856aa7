//! The `ghes-vcr` binary: parse, check, load, bind, print the listening line, serve.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::Parser;
use ghes_vcr::cli::{
    CassetteCommand, Cli, Command, ExportFormatArg, JournalCommand, LogFormatArg, ReportFormatArg,
};
use ghes_vcr::config::JournalQuery;
use ghes_vcr::error::EXIT_ERROR;
use ghes_vcr::journal::commands::{self, ExportFormat};
use ghes_vcr::journal::report::Format;
use ghes_vcr::{server, shutdown, App, Config, Error};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    ghes_vcr::install_crypto_provider();
    let cli = Cli::parse();
    init_tracing(&cli);
    match &cli.command {
        Command::Cassette(CassetteCommand::Audit(args)) => return audit(&args.paths),
        Command::Journal(command) => return journal(command),
        _ => {}
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
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
        let shutdown = shutdown_on_signals();
        let app = App::load(&config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local = listener.local_addr().map_err(Error::Runtime)?;
        app.announce_admin(local);
        let scheme = if app.tls.is_some() { "https" } else { "http" };
        let mut stdout = std::io::stdout().lock();
        // The one line on stdout; tests and scripts read the port from it.
        let _ = writeln!(stdout, "listening on {scheme}://{local}");
        let _ = stdout.flush();
        drop(stdout);
        server::run(listener, app, shutdown).await.map(|_| ())
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
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `journal report|tail|export`.
fn journal(command: &JournalCommand) -> ExitCode {
    let source = match command {
        JournalCommand::Report(args) => &args.source,
        JournalCommand::Tail(args) => &args.source,
        JournalCommand::Export(args) => &args.source,
    };
    let query = match JournalQuery::from_cli(source) {
        Ok(query) => query,
        Err(err) => {
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ghes-vcr: error: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        match command {
            JournalCommand::Report(args) => {
                let format = match args.format {
                    ReportFormatArg::Table => Format::Table,
                    ReportFormatArg::Json => Format::Json,
                    ReportFormatArg::Csv => Format::Csv,
                };
                commands::report(&query, format).await
            }
            JournalCommand::Tail(args) => commands::tail(&query, args.follow).await,
            JournalCommand::Export(args) => {
                let format = match args.format {
                    ExportFormatArg::Jsonl => ExportFormat::Jsonl,
                    ExportFormatArg::Cassette => ExportFormat::Cassette,
                };
                let written = commands::export(&query, format, &args.output).await?;
                eprintln!(
                    "ghes-vcr: wrote {written} entries to {}",
                    args.output.display()
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The first SIGINT/SIGTERM starts a graceful shutdown (the returned future completes); a
/// second one exits at once. Files stay whole either way: cassettes are replaced by rename,
/// and sled recovers its log.
fn shutdown_on_signals() -> impl std::future::Future<Output = ()> {
    let mut signals = shutdown::Signals::new();
    let (first, first_seen) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("shutting down (a second signal exits at once)");
        let _ = first.send(());
        signals.next().await;
        eprintln!("ghes-vcr: second signal: exiting now");
        #[allow(clippy::exit)]
        std::process::exit(130);
    });
    async move {
        let _ = first_seen.await;
    }
}

fn init_tracing(cli: &Cli) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("ghes_vcr={}", cli.log_level)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        LogFormatArg::Json => builder.json().flatten_event(true).init(),
        LogFormatArg::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}
