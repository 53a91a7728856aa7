//! The `ghes-vcr` binary: parse, check, load, bind, print the listening line, serve.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use ghes_vcr::cli::{
    CassetteCommand, Cli, Command, ExportFormatArg, JournalCommand, LogFormatArg, ReportFormatArg,
    VerifyArgs,
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
    // Dropped when main returns, which writes out the log lines still queued.
    let log_writer = init_tracing(&cli);
    match &cli.command {
        Command::Cassette(command) => return cassette(command),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "ghes-vcr", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let page = clap_mangen::Man::new(Cli::command());
            return match page.render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("ghes-vcr: error: cannot print the man page: {err}");
                    ExitCode::from(EXIT_ERROR)
                }
            };
        }
        Command::Journal(command) => return journal(command),
        _ => {}
    }
    match run(&cli) {
        Ok(code) => code,
        Err(err) => {
            // The queued log lines first, so the error is the last thing printed.
            drop(log_writer);
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run(cli: &Cli) -> Result<ExitCode, Error> {
    let config = Config::from_cli(cli)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let shutdown = shutdown_on_signals();
        let (app, listener) = App::bind(&config).await?;
        let local = listener.local_addr().map_err(Error::Runtime)?;
        let scheme = if app.tls.is_some() { "https" } else { "http" };
        let mut stdout = std::io::stdout().lock();
        // The one line on stdout; tests and scripts read the port from it.
        let _ = writeln!(stdout, "listening on {scheme}://{local}");
        let _ = stdout.flush();
        drop(stdout);
        let finished = server::run(listener, app, shutdown).await?;
        Ok(verdict(&config, &finished))
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

/// `cassette verify`: 0 when the live upstream still answers as recorded, 1 on drift, 2 on error.
fn verify(args: &VerifyArgs) -> ExitCode {
    let VerifyArgs {
        file,
        upstream,
        basic,
        token,
        all_methods,
        upstream_ca,
    } = args;
    let fail = |message: String| {
        eprintln!("ghes-vcr: error: {message}");
        ExitCode::from(EXIT_ERROR)
    };
    let cassette = match ghes_vcr::cassette::Cassette::load(file) {
        Ok(cassette) => cassette,
        Err(err) => return fail(ghes_vcr::error::chain(&err)),
    };
    let upstream = match ghes_vcr::config::Upstream::parse(upstream) {
        Ok(upstream) => upstream,
        Err(err) => return fail(err.to_string()),
    };
    let tls = ghes_vcr::tls::UpstreamTls {
        ca: upstream_ca.clone(),
        ..Default::default()
    };
    let tls = match ghes_vcr::tls::upstream_client_config(&tls) {
        Ok(tls) => tls,
        Err(err) => return fail(ghes_vcr::error::chain(&err)),
    };
    if *all_methods {
        eprintln!("ghes-vcr: warning: --all-methods replays POST, PUT, PATCH and DELETE against {}: this changes its state", upstream.origin);
    }
    let authorization = match (basic, token) {
        (Some(basic), _) => Some(format!(
            "Basic {}",
            base64::engine::Engine::encode(&base64::engine::general_purpose::STANDARD, basic)
        )),
        (None, Some(token)) => Some(format!("token {token}")),
        (None, None) => None,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(format!("cannot start the runtime: {err}")),
    };
    let results = runtime.block_on(async {
        let forwarder = ghes_vcr::proxy::forward::Forwarder::new(
            upstream.clone(),
            tls,
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(60),
        );
        ghes_vcr::verify::verify(
            &cassette,
            &forwarder,
            &upstream,
            authorization.as_deref(),
            *all_methods,
        )
        .await
    });
    let mut drifted = 0;
    for result in &results {
        if result.drift.is_empty() {
            println!("ok    [{}] {}", result.index, result.request);
        } else {
            drifted += 1;
            println!("DRIFT [{}] {}", result.index, result.request);
            for change in &result.drift {
                println!("      {change}");
            }
        }
    }
    eprintln!(
        "ghes-vcr: verified {} interactions against {}: {drifted} drifted",
        results.len(),
        upstream.origin
    );
    if drifted > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `cassette diff A B`: 0 when the same, 1 with one line per difference, 2 on error.
fn diff(a: &std::path::Path, b: &std::path::Path) -> ExitCode {
    use ghes_vcr::cassette::Cassette;
    match (Cassette::load(a), Cassette::load(b)) {
        (Ok(a), Ok(b)) => {
            let lines = ghes_vcr::cassette::diff::diff(&a, &b);
            for line in &lines {
                println!("{line}");
            }
            if lines.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("ghes-vcr: error: {}", ghes_vcr::error::chain(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `cassette …`: every cassette subcommand.
fn cassette(command: &CassetteCommand) -> ExitCode {
    use ghes_vcr::cassette::{inspect, load_set, Cassette};
    let result: Result<String, String> = match command {
        CassetteCommand::Audit(args) => return audit(&args.paths),
        CassetteCommand::Diff { a, b } => return diff(a, b),
        CassetteCommand::Verify(args) => return verify(args),
        CassetteCommand::Export {
            cassette,
            har,
            origin,
        } => Cassette::load(cassette)
            .map_err(|err| ghes_vcr::error::chain(&err))
            .and_then(|c| {
                let har_file = ghes_vcr::cassette::har::export(&c, origin.trim_end_matches('/'));
                let text = serde_json::to_string_pretty(&har_file).unwrap_or_default() + "\n";
                ghes_vcr::cassette::save_atomically(har, text.as_bytes())
                    .map_err(|err| ghes_vcr::error::chain(&err))?;
                Ok(format!(
                    "wrote {} entries to {}\n",
                    har_file.log.entries.len(),
                    har.display()
                ))
            }),
        CassetteCommand::Import {
            har,
            output,
            includes,
            redact,
        } => (|| {
            let rules = ghes_vcr::config::redaction_rules(redact).map_err(|err| err.to_string())?;
            let text = std::fs::read_to_string(har)
                .map_err(|err| format!("cannot read {}: {err}", har.display()))?;
            let parsed: ghes_vcr::cassette::har::Har =
                serde_json::from_str(&text).map_err(|err| {
                    format!(
                        "{}:{}:{}: not a HAR file: {err}",
                        har.display(),
                        err.line(),
                        err.column()
                    )
                })?;
            let scope = ghes_vcr::scope::Scope::new(includes);
            let (cassette, report) = ghes_vcr::cassette::har::import(
                &parsed,
                &scope,
                &ghes_vcr::redaction::Redactor::new(rules),
            );
            ghes_vcr::cassette::save_cassette_file(output, cassette.to_pretty_json().as_bytes())
                .map_err(|err| ghes_vcr::error::chain(&err))?;
            let mut out = format!(
                "wrote {} interactions to {} ({} entries out of scope; add --include PREFIX to keep them)\n",
                report.interactions,
                output.display(),
                report.out_of_scope
            );
            for problem in &report.unreadable {
                out.push_str(&format!("skipped {problem}\n"));
            }
            Ok(out)
        })(),
        CassetteCommand::List { path } => load_set(path)
            .map(|set| inspect::list(&set))
            .map_err(|err| ghes_vcr::error::chain(&err)),
        CassetteCommand::Show { file } => Cassette::load(file)
            .map(|c| inspect::show(&c))
            .map_err(|err| ghes_vcr::error::chain(&err)),
        CassetteCommand::Prune {
            file,
            report,
            dry_run,
        } => ghes_vcr::usage::ReplayReport::load(report).and_then(|report| {
            let pruned = inspect::prune(file, &report, *dry_run)
                .map_err(|err| ghes_vcr::error::chain(&err))?;
            let verb = if *dry_run { "would remove" } else { "removed" };
            let mut text = String::new();
            for (index, request) in &pruned.removed {
                text.push_str(&format!("{verb} interactions[{index}]: {request}\n"));
            }
            text.push_str(&format!(
                "{}: {verb} {}, kept {}\n",
                file.display(),
                pruned.removed.len(),
                pruned.kept
            ));
            Ok(text)
        }),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("ghes-vcr: error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// 1 when `--fail-on-miss` or `--fail-on-unused` finds what it looks for, else 0.
fn verdict(config: &Config, finished: &ghes_vcr::app::Finished) -> ExitCode {
    let Some(report) = &finished.report else {
        return ExitCode::SUCCESS;
    };
    let mut failed = false;
    if config.fail_on_miss && report.miss_count > 0 {
        eprintln!(
            "ghes-vcr: {} requests had no recording (--fail-on-miss):",
            report.miss_count
        );
        for miss in &report.misses {
            eprintln!("  {}", miss.request);
        }
        failed = true;
    }
    if config.fail_on_unused && !report.unused.is_empty() {
        eprintln!(
            "ghes-vcr: {} recorded interactions were never used (--fail-on-unused):",
            report.unused.len()
        );
        for unused in &report.unused {
            eprintln!(
                "  {} interactions[{}]: {}",
                unused.cassette.display(),
                unused.index,
                unused.request
            );
        }
        failed = true;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
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

/// Log lines go to stderr through a writer thread of their own, in batches, so that a request
/// never waits on the terminal or pipe and seldom wakes a thread (passthrough logs one line per
/// exchange). Nothing is dropped: when the queue is full, logging waits, as a direct write
/// would. Without colours, the fields are written plainly ([`ghes_vcr::logging::fields`]).
fn init_tracing(cli: &Cli) -> ghes_vcr::logging::writer::LogWriterGuard {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("ghes_vcr={}", cli.log_level)));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = ghes_vcr::logging::writer::start("ghes-vcr-log", std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(ghes_vcr::logging::time::LineTime)
        .with_target(false);
    match cli.log_format {
        LogFormatArg::Json => builder.json().flatten_event(true).init(),
        LogFormatArg::Text if ansi => builder.with_ansi(true).init(),
        LogFormatArg::Text => builder
            .with_ansi(false)
            .fmt_fields(ghes_vcr::logging::fields::PlainFields)
            .init(),
    }
    guard
}
