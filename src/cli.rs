//! Command-line arguments (clap derive types only; [`crate::config`] checks and types them).
//! Every flag can also be set through the environment variable named in its help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Record and replay the GitHub Enterprise Server OAuth Authorizations API.
#[derive(Debug, Parser)]
#[command(name = "ghes-vcr", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log level for ghes-vcr's own logs (error, warn, info, debug, trace); RUST_LOG, when set,
    /// takes precedence.
    #[arg(
        long,
        global = true,
        env = "GHES_VCR_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    pub log_level: String,

    /// Log line format on stderr.
    #[arg(long, global = true, env = "GHES_VCR_LOG_FORMAT", value_enum, default_value_t = LogFormatArg::Text)]
    pub log_format: LogFormatArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Forward to the upstream GHES and save every in-scope interaction to a cassette.
    Record(RecordArgs),
    /// Answer from cassettes only; never contact any upstream.
    Replay(ReplayArgs),
    /// Forward everything to the upstream GHES without recording; journal who calls the
    /// deprecated API.
    Passthrough(PassthroughArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
    /// Read the traffic journal (also while a proxy is running).
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Work with cassette files.
    #[command(subcommand)]
    Cassette(CassetteCommand),
}

#[derive(Debug, Subcommand)]
pub enum CassetteCommand {
    /// Scan files for secrets that survived redaction; exit 1 when any is found.
    Audit(AuditArgs),
    /// One line per cassette: interactions, operations, recorded GHES version.
    List {
        /// A cassette, or a directory of them.
        #[arg(default_value = "cassettes", value_name = "PATH")]
        path: PathBuf,
    },
    /// A readable summary of each interaction of a cassette.
    Show {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Compare two cassettes by meaning (key order and volatile headers ignored); exit 1 when
    /// they differ.
    Diff {
        #[arg(value_name = "A")]
        a: PathBuf,
        #[arg(value_name = "B")]
        b: PathBuf,
    },
    /// Replay the recorded GET requests against the live upstream and report where the answers
    /// drifted from the recording; exit 1 on drift.
    Verify(VerifyArgs),
    /// Write a cassette as HAR 1.2 (for browser devtools, mitmproxy, Charles).
    Export {
        #[arg(value_name = "CASSETTE")]
        cassette: PathBuf,
        /// The HAR file to write.
        #[arg(long, value_name = "OUT.har")]
        har: PathBuf,
        /// The origin URLs get in place of the cassette's placeholder.
        #[arg(long, default_value = "https://ghes.example.com", value_name = "URL")]
        origin: String,
    },
    /// Turn a HAR file into a cassette, redacting it as a recording would.
    Import {
        #[arg(value_name = "IN.har")]
        har: PathBuf,
        /// The cassette to write (one file; a directory is refused).
        #[arg(long, value_name = "CASSETTE")]
        output: PathBuf,
        /// Also import paths under this prefix (repeatable; "/" imports everything).
        #[arg(long = "include", value_name = "PATH_PREFIX")]
        includes: Vec<String>,
        #[command(flatten)]
        redact: RedactArgs,
    },
    /// Remove the interactions a replay run never used (from its --report file).
    Prune {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The replay report written by `replay --report FILE`.
        #[arg(long, value_name = "REPORT")]
        report: PathBuf,
        /// Print what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `cassette verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Origin of the live GHES, e.g. https://ghes-staging.example.com.
    #[arg(long, env = "GHES_VCR_UPSTREAM", value_name = "URL")]
    pub upstream: String,
    /// Credentials as USER:PASSWORD for Basic auth.
    #[arg(
        long,
        env = "GHES_VCR_VERIFY_BASIC",
        value_name = "USER:PASSWORD",
        conflicts_with = "token"
    )]
    pub basic: Option<String>,
    /// A token, sent as `Authorization: token …`.
    #[arg(long, env = "GHES_VCR_VERIFY_TOKEN", value_name = "TOKEN")]
    pub token: Option<String>,
    /// Also replay requests that change state (POST, PUT, PATCH, DELETE). Careful.
    #[arg(long)]
    pub all_methods: bool,
    /// PEM bundle of CAs to trust for the upstream.
    #[arg(long, env = "GHES_VCR_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// One row per legacy client: User-Agent, credential, OAuth app, operations, counts, first
    /// and last seen.
    Report(ReportArgs),
    /// Print entries as JSON lines.
    Tail(TailArgs),
    /// Write a time slice to a file, as JSON lines or as a cassette that replays.
    Export(ExportArgs),
}

/// Where a journal is read from, and which slice of it.
#[derive(Debug, Args)]
pub struct JournalSourceArgs {
    /// The journal directory [default: $XDG_STATE_HOME/ghes-vcr/journal].
    #[arg(long, env = "GHES_VCR_JOURNAL", value_name = "DIR")]
    pub journal: Option<PathBuf>,

    /// Read through this running proxy's admin endpoint (e.g. http://127.0.0.1:8080) instead of
    /// the directory; found automatically when the proxy holds the journal.
    #[arg(long, env = "GHES_VCR_ADMIN", value_name = "URL")]
    pub admin: Option<String>,

    /// Only entries from this time on: RFC 3339 (2026-11-24T10:00:00Z), a date, or a duration
    /// ago (2h, 7days).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only entries before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub source: JournalSourceArgs,

    #[arg(long, value_enum, default_value_t = ReportFormatArg::Table)]
    pub format: ReportFormatArg,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub source: JournalSourceArgs,

    /// Keep printing new entries as they are written.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub source: JournalSourceArgs,

    #[arg(long, value_enum)]
    pub format: ExportFormatArg,

    /// The file to write (replaced atomically).
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReportFormatArg {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Jsonl,
    Cassette,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Files or directories (searched recursively) to scan.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Flags shared by the serving commands.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(
        long,
        env = "GHES_VCR_LISTEN",
        default_value = "127.0.0.1:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,

    /// Request fields a replayed interaction must match: method, path, query, body, headers:NAME.
    #[arg(
        long,
        env = "GHES_VCR_MATCH_ON",
        default_value = "method,path,query,body",
        value_name = "FIELDS"
    )]
    pub match_on: String,

    /// HTTP status of the answer to a request no cassette holds.
    #[arg(
        long,
        env = "GHES_VCR_MISS_STATUS",
        default_value_t = 501,
        value_name = "STATUS"
    )]
    pub miss_status: u16,

    /// Largest request body accepted (e.g. 10MiB, 512KiB); larger ones get 413.
    #[arg(
        long,
        env = "GHES_VCR_MAX_BODY_SIZE",
        default_value = "10MiB",
        value_name = "SIZE"
    )]
    pub max_body_size: String,

    /// How long to let in-flight exchanges finish after SIGINT/SIGTERM (e.g. 10s).
    #[arg(
        long,
        env = "GHES_VCR_SHUTDOWN_GRACE",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub shutdown_grace: String,

    /// Deprecation date in the Deprecation header (RFC 3339) [default: 2020-02-14T00:00:00Z].
    #[arg(long, env = "GHES_VCR_DEPRECATION_DATE", value_name = "DATE")]
    pub deprecation_date: Option<String>,

    /// Removal date in the Sunset header (RFC 3339) [default: 2020-11-13T16:00:00Z].
    #[arg(long, env = "GHES_VCR_SUNSET_DATE", value_name = "DATE")]
    pub sunset_date: Option<String>,

    /// Documentation URL in the Link rel="deprecation" header
    /// [default: GitHub's 2020-02-14 announcement].
    #[arg(long, env = "GHES_VCR_DEPRECATION_LINK", value_name = "URL")]
    pub deprecation_link: Option<String>,

    /// Do not add Deprecation, Sunset and Link rel="deprecation" to replayed answers.
    #[arg(long, env = "GHES_VCR_NO_DEPRECATION_HEADERS")]
    pub no_deprecation_headers: bool,

    /// Replay the recorded Date (and X-RateLimit-Reset) instead of the time of the replay.
    #[arg(long, env = "GHES_VCR_KEEP_RECORDED_DATE")]
    pub keep_recorded_date: bool,

    /// Delay before each replayed answer: none, recorded (the upstream's recorded latency), or
    /// a number of milliseconds.
    #[arg(
        long,
        env = "GHES_VCR_LATENCY",
        default_value = "none",
        value_name = "none|recorded|MS"
    )]
    pub latency: String,

    /// Replay creation answers (201) with a fake token in GitHub's format ending in the recorded
    /// token_last_eight, instead of the stored "".
    #[arg(long, env = "GHES_VCR_SYNTHESIZE_TOKENS")]
    pub synthesize_tokens: bool,

    #[command(flatten)]
    pub redact: RedactArgs,

    #[command(flatten)]
    pub journal: JournalArgs,

    /// Serve https with this PEM certificate chain (with --tls-key); HTTP/2 and HTTP/1.1 by ALPN.
    #[arg(
        long,
        env = "GHES_VCR_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "GHES_VCR_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// Write the replay report (interactions used, unused, and misses) to FILE at shutdown, as JSON.
    #[arg(long, env = "GHES_VCR_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Exit with status 1 at shutdown if any request found no recording.
    #[arg(long, env = "GHES_VCR_FAIL_ON_MISS")]
    pub fail_on_miss: bool,

    /// Exit with status 1 at shutdown if any recorded interaction was never used.
    #[arg(long, env = "GHES_VCR_FAIL_ON_UNUSED")]
    pub fail_on_unused: bool,

    /// Most client connections served at once; more get 503.
    #[arg(
        long,
        env = "GHES_VCR_MAX_CONNECTIONS",
        default_value_t = 1024,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Largest request header section accepted (e.g. 64KiB); larger gets 431.
    #[arg(
        long,
        env = "GHES_VCR_MAX_HEADER_SIZE",
        default_value = "64KiB",
        value_name = "SIZE"
    )]
    pub max_header_size: String,

    /// How long a client may take to send a request's headers (slow-loris protection); then the
    /// connection is closed.
    #[arg(
        long,
        env = "GHES_VCR_CLIENT_HEADER_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION"
    )]
    pub client_header_timeout: String,
}

/// The traffic journal of a serving command.
#[derive(Debug, Args)]
pub struct JournalArgs {
    /// Journal directory (sled), created on demand [default: $XDG_STATE_HOME/ghes-vcr/journal,
    /// i.e. ~/.local/state/ghes-vcr/journal].
    #[arg(
        long,
        env = "GHES_VCR_JOURNAL",
        value_name = "DIR",
        conflicts_with = "no_journal"
    )]
    pub journal: Option<PathBuf>,

    /// Do not journal.
    #[arg(long, env = "GHES_VCR_NO_JOURNAL")]
    pub no_journal: bool,

    /// Keep at most this many entries (the oldest go first).
    #[arg(long, env = "GHES_VCR_JOURNAL_MAX_ENTRIES", value_name = "N")]
    pub journal_max_entries: Option<u64>,

    /// Remove entries older than this (e.g. 30days).
    #[arg(long, env = "GHES_VCR_JOURNAL_MAX_AGE", value_name = "DURATION")]
    pub journal_max_age: Option<String>,

    /// Bodies larger than this are not kept in the journal (e.g. 64KiB).
    #[arg(
        long,
        env = "GHES_VCR_JOURNAL_BODY_LIMIT",
        default_value = "64KiB",
        value_name = "SIZE"
    )]
    pub journal_body_limit: String,
}

/// Redaction rules added to the defaults. Give replay the same rules as the recording, so that
/// requests are compared in the same redacted form.
#[derive(Debug, Args)]
pub struct RedactArgs {
    /// Also redact the values of this header, in requests and responses (repeatable).
    #[arg(
        long = "redact-header",
        env = "GHES_VCR_REDACT_HEADER",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub headers: Vec<String>,

    /// Also redact this JSON key at any depth, in request and response bodies (repeatable).
    #[arg(
        long = "redact-json-key",
        env = "GHES_VCR_REDACT_JSON_KEY",
        value_delimiter = ',',
        value_name = "KEY"
    )]
    pub json_keys: Vec<String>,

    /// Also redact every match of this regular expression in header values, query values, paths
    /// and body text (repeatable).
    #[arg(
        long = "redact-regex",
        env = "GHES_VCR_REDACT_REGEX",
        value_name = "PATTERN"
    )]
    pub patterns: Vec<String>,
}

/// Flags of the commands that forward to an upstream (record, passthrough).
#[derive(Debug, Args)]
pub struct ForwardArgs {
    /// Origin of the upstream GHES, e.g. https://ghes.example.com (clients keep their /api/v3 paths).
    #[arg(long, env = "GHES_VCR_UPSTREAM", value_name = "URL")]
    pub upstream: String,

    /// Also record (and journal) paths under this prefix (repeatable; "/" means everything),
    /// e.g. /user.
    #[arg(
        long = "include",
        env = "GHES_VCR_INCLUDE",
        value_delimiter = ',',
        value_name = "PATH_PREFIX"
    )]
    pub includes: Vec<String>,

    /// Add the deprecation headers to live answers of the deprecated families too, so legacy
    /// clients in staging start warning their users.
    #[arg(long, env = "GHES_VCR_INJECT_DEPRECATION")]
    pub inject_deprecation: bool,

    /// PEM bundle of CAs to trust for the upstream, in addition to the system's (GHES often
    /// uses an internal CA).
    #[arg(long, env = "GHES_VCR_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,

    /// PEM certificate chain to present to the upstream (with --upstream-client-key).
    #[arg(
        long,
        env = "GHES_VCR_UPSTREAM_CLIENT_CERT",
        value_name = "FILE",
        requires = "upstream_client_key"
    )]
    pub upstream_client_cert: Option<PathBuf>,

    /// PEM private key of --upstream-client-cert.
    #[arg(
        long,
        env = "GHES_VCR_UPSTREAM_CLIENT_KEY",
        value_name = "FILE",
        requires = "upstream_client_cert"
    )]
    pub upstream_client_key: Option<PathBuf>,

    /// Do not verify the upstream's certificate (dangerous; refused with passthrough unless
    /// --i-know is also given).
    #[arg(long, env = "GHES_VCR_UPSTREAM_INSECURE")]
    pub upstream_insecure: bool,

    /// Confirms --upstream-insecure for passthrough.
    #[arg(long, env = "GHES_VCR_I_KNOW")]
    pub i_know: bool,

    /// Do not add X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host to forwarded requests.
    #[arg(long, env = "GHES_VCR_NO_FORWARDED_HEADERS")]
    pub no_forwarded_headers: bool,

    /// Leave upstream URLs in Location, Link and bodies as they are (clients may then leave the proxy).
    #[arg(long, env = "GHES_VCR_NO_REWRITE_URLS")]
    pub no_rewrite_urls: bool,

    /// How long to wait for a connection to the upstream (e.g. 10s).
    #[arg(
        long,
        env = "GHES_VCR_UPSTREAM_CONNECT_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION"
    )]
    pub upstream_connect_timeout: String,

    /// How long to wait for the upstream's whole answer (e.g. 60s); then 504.
    #[arg(
        long,
        env = "GHES_VCR_UPSTREAM_TIMEOUT",
        default_value = "60s",
        value_name = "DURATION"
    )]
    pub upstream_timeout: String,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    #[command(flatten)]
    pub forward: ForwardArgs,

    /// Cassette file to record to.
    #[arg(long, env = "GHES_VCR_CASSETTE", value_name = "FILE")]
    pub cassette: PathBuf,

    /// once: record if the cassette does not exist, else only replay it; new-episodes: replay
    /// what matches and record the rest; all: forward everything and rewrite the cassette.
    #[arg(long, env = "GHES_VCR_MODE", value_enum, default_value_t = RecordModeArg::Once)]
    pub mode: RecordModeArg,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct PassthroughArgs {
    #[command(flatten)]
    pub forward: ForwardArgs,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Cassette file, or a directory whose *.json files are loaded as one set.
    #[arg(
        long,
        env = "GHES_VCR_CASSETTE",
        default_value = "cassettes",
        value_name = "FILE_OR_DIR"
    )]
    pub cassette: PathBuf,

    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RecordModeArg {
    Once,
    NewEpisodes,
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
