//! Checked, typed configuration, built from the command line by [`Config::from_cli`] before
//! anything is bound or loaded. Nothing below this module knows about clap.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{StatusCode, Uri};

use crate::cli::{Cli, Command, ForwardArgs, JournalArgs, RecordModeArg, RedactArgs, ServeArgs};
use crate::deprecation::{DeprecationError, DeprecationHeaders};
use crate::journal::JournalConfig;
use crate::matching::MatchRules;
use crate::origin::Origin;
use crate::redaction::RedactionRules;
use crate::replay::{DateMode, ReplayOptions, TokenMode};
use crate::scope::Scope;
use crate::tls::UpstreamTls;

/// A command line that cannot work; each message says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--upstream {value:?} is not an http(s) origin: {reason} (e.g. --upstream https://ghes.example.com)")]
    Upstream { value: String, reason: &'static str },
    #[error("--match-on: {0}")]
    MatchOn(#[from] crate::matching::UnknownMatchField),
    #[error("--miss-status {0} is not an HTTP status from 400 to 599 (e.g. --miss-status 501)")]
    MissStatus(u16),
    #[error("{flag} {value:?} is not a size (e.g. {flag} 10MiB)")]
    Size { flag: &'static str, value: String },
    #[error("{flag} {value:?} is not a duration (e.g. {flag} 30s)")]
    Duration { flag: &'static str, value: String },
    #[error("--include {0:?} must start with / (e.g. --include /user)")]
    Include(String),
    #[error("--redact-regex {pattern:?} is not a valid regular expression")]
    Regex {
        pattern: String,
        #[source]
        source: regex::Error,
    },
    #[error("--redact-header {0:?} is not a header name (e.g. --redact-header x-api-key)")]
    RedactHeader(String),
    #[error(transparent)]
    Deprecation(#[from] DeprecationError),
    #[error(
        "--latency {0:?} is not none, recorded or a number of milliseconds (e.g. --latency 250)"
    )]
    Latency(String),
    #[error("{flag} {value:?} is not a time: write RFC 3339 (2026-11-24T10:00:00Z), a date (2026-11-24) or a duration ago (2h, 7days)")]
    Time { flag: &'static str, value: String },
    #[error("--admin {0:?} is not an http origin (e.g. --admin http://127.0.0.1:8080)")]
    Admin(String),
    #[error("--upstream-insecure turns off certificate checks; passthrough may run for weeks in front of production, so it also needs --i-know (better: trust the GHES CA with --upstream-ca FILE)")]
    InsecurePassthrough,
    #[error("--journal-max-entries must be at least 1 (or use --no-journal)")]
    MaxEntries,
    /// A command that does not serve was handed to [`Config::from_cli`].
    #[error("this command does not serve HTTP")]
    NotServing,
}

/// How `record` treats the cassette.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordMode {
    /// Record when the cassette does not exist; otherwise only replay it.
    Once,
    /// Replay what matches; forward and append the rest.
    NewEpisodes,
    /// Forward everything and write the cassette from scratch.
    All,
}

/// The upstream GHES.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `scheme://authority`, with no path.
    pub base: Uri,
    pub origin: Origin,
}

impl Upstream {
    /// Parses an origin such as `https://ghes.example.com` (a trailing `/` is allowed).
    ///
    /// # Errors
    /// [`ConfigError::Upstream`] saying what is wrong.
    pub fn parse(value: &str) -> Result<Self, ConfigError> {
        let err = |reason| ConfigError::Upstream {
            value: value.to_owned(),
            reason,
        };
        let uri: Uri = value.trim().parse().map_err(|_| err("not a URL"))?;
        let scheme = uri.scheme().ok_or_else(|| err("it has no scheme"))?;
        if scheme != &http::uri::Scheme::HTTP && scheme != &http::uri::Scheme::HTTPS {
            return Err(err("the scheme must be http or https"));
        }
        let authority = uri.authority().ok_or_else(|| err("it has no host"))?;
        if authority.as_str().contains('@') {
            return Err(err(
                "credentials do not belong in the URL; clients send their own",
            ));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(err("give the origin only, without a path such as /api/v3"));
        }
        if uri.query().is_some() {
            return Err(err("give the origin only, without a query"));
        }
        let origin = Origin::new(scheme, authority);
        let base = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|_| err("not a URL"))?;
        Ok(Self { base, origin })
    }
}

/// Settings of the commands that forward (record, passthrough).
#[derive(Clone, Debug)]
pub struct ForwardConfig {
    pub upstream: Upstream,
    pub scope: Scope,
    pub rewrite_urls: bool,
    /// Deprecation headers added to live answers (`--inject-deprecation`).
    pub inject_deprecation: Option<DeprecationHeaders>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// Whether X-Forwarded-For/-Proto/-Host are added upstream-bound.
    pub forwarded_headers: bool,
    pub tls: UpstreamTls,
}

/// Settings of `record`.
#[derive(Clone, Debug)]
pub struct RecordConfig {
    pub forward: ForwardConfig,
    pub cassette: PathBuf,
    pub mode: RecordMode,
}

/// What the server does.
#[derive(Clone, Debug)]
pub enum ModeConfig {
    Record(Box<RecordConfig>),
    Replay { cassette: PathBuf },
    Passthrough(Box<ForwardConfig>),
}

/// Everything a serving command needs, checked.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub mode: ModeConfig,
    pub match_rules: MatchRules,
    pub miss_status: StatusCode,
    pub max_body_size: usize,
    pub shutdown_grace: Duration,
    /// User redaction rules, added to the defaults.
    pub redaction: RedactionRules,
    /// How recorded answers become replayed ones.
    pub replay: ReplayOptions,
    pub latency: Latency,
    /// `None` with `--no-journal`.
    pub journal: Option<JournalConfig>,
    pub limits: Limits,
    /// Where to write the replay report at shutdown.
    pub report_file: Option<std::path::PathBuf>,
    /// Exit 1 when a request found no recording / an interaction was never used.
    pub fail_on_miss: bool,
    pub fail_on_unused: bool,
    /// `--tls-cert` and `--tls-key`: serve https.
    pub listener_tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Limits on what clients may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_header_size: usize,
    pub client_header_timeout: Duration,
}

/// The delay before a replayed answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Latency {
    #[default]
    None,
    /// What the upstream took when the interaction was recorded.
    Recorded,
    Fixed(Duration),
}

impl Config {
    /// Checks and types the command line.
    ///
    /// # Errors
    /// The first [`ConfigError`] found.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        match &cli.command {
            Command::Record(args) => Self::from_serve(
                &args.serve,
                ModeConfig::Record(Box::new(RecordConfig {
                    forward: forward_config(&args.forward, &args.serve)?,
                    cassette: args.cassette.clone(),
                    mode: match args.mode {
                        RecordModeArg::Once => RecordMode::Once,
                        RecordModeArg::NewEpisodes => RecordMode::NewEpisodes,
                        RecordModeArg::All => RecordMode::All,
                    },
                })),
            ),
            Command::Passthrough(args) => {
                if args.forward.upstream_insecure && !args.forward.i_know {
                    return Err(ConfigError::InsecurePassthrough);
                }
                Self::from_serve(
                    &args.serve,
                    ModeConfig::Passthrough(Box::new(forward_config(&args.forward, &args.serve)?)),
                )
            }
            Command::Replay(args) => Self::from_serve(
                &args.serve,
                ModeConfig::Replay {
                    cassette: args.cassette.clone(),
                },
            ),
            Command::Cassette(_)
            | Command::Journal(_)
            | Command::Completions { .. }
            | Command::Man => Err(ConfigError::NotServing),
        }
    }

    fn from_serve(serve: &ServeArgs, mode: ModeConfig) -> Result<Self, ConfigError> {
        let miss_status = StatusCode::from_u16(serve.miss_status)
            .ok()
            .filter(|status| status.is_client_error() || status.is_server_error())
            .ok_or(ConfigError::MissStatus(serve.miss_status))?;
        Ok(Self {
            listen: serve.listen,
            mode,
            match_rules: serve.match_on.parse()?,
            miss_status,
            max_body_size: parse_size("--max-body-size", &serve.max_body_size)?,
            shutdown_grace: parse_duration("--shutdown-grace", &serve.shutdown_grace)?,
            redaction: redaction_rules(&serve.redact)?,
            replay: ReplayOptions {
                tokens: if serve.synthesize_tokens {
                    TokenMode::Synthesized
                } else {
                    TokenMode::Stored
                },
                deprecation: if serve.no_deprecation_headers {
                    None
                } else {
                    Some(deprecation_headers(serve)?)
                },
                dates: if serve.keep_recorded_date {
                    DateMode::Recorded
                } else {
                    DateMode::Now
                },
                keep_recorded: !serve.journal.no_journal,
            },
            latency: parse_latency(&serve.latency)?,
            journal: journal_config(&serve.journal)?,
            listener_tls: serve.tls_cert.clone().zip(serve.tls_key.clone()),
            report_file: serve.report.clone(),
            fail_on_miss: serve.fail_on_miss,
            fail_on_unused: serve.fail_on_unused,
            limits: Limits {
                max_connections: serve.max_connections.max(1),
                max_header_size: parse_size("--max-header-size", &serve.max_header_size)?,
                client_header_timeout: parse_duration(
                    "--client-header-timeout",
                    &serve.client_header_timeout,
                )?,
            },
        })
    }
}

fn deprecation_headers(serve: &ServeArgs) -> Result<DeprecationHeaders, ConfigError> {
    Ok(DeprecationHeaders::from_flags(
        serve.deprecation_date.as_deref(),
        serve.sunset_date.as_deref(),
        serve.deprecation_link.as_deref(),
    )?)
}

fn parse_latency(value: &str) -> Result<Latency, ConfigError> {
    let value = value.trim();
    match value.to_ascii_lowercase().as_str() {
        "none" | "0" => Ok(Latency::None),
        "recorded" => Ok(Latency::Recorded),
        text => {
            let millis = text.strip_suffix("ms").unwrap_or(text);
            millis
                .parse::<u64>()
                .map(|ms| Latency::Fixed(Duration::from_millis(ms)))
                .map_err(|_| ConfigError::Latency(value.to_owned()))
        }
    }
}

/// Checks `--redact-*` flags.
///
/// # Errors
/// A header name or regular expression that is not valid.
pub fn redaction_rules(args: &RedactArgs) -> Result<RedactionRules, ConfigError> {
    if let Some(bad) = args
        .headers
        .iter()
        .find(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).is_err())
    {
        return Err(ConfigError::RedactHeader(bad.clone()));
    }
    let patterns = args
        .patterns
        .iter()
        .map(|pattern| {
            regex::Regex::new(pattern).map_err(|source| ConfigError::Regex {
                pattern: pattern.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(RedactionRules {
        headers: args
            .headers
            .iter()
            .map(|name| name.trim().to_owned())
            .collect(),
        json_keys: args.json_keys.clone(),
        patterns,
    })
}

fn forward_config(args: &ForwardArgs, serve: &ServeArgs) -> Result<ForwardConfig, ConfigError> {
    if let Some(bad) = args.includes.iter().find(|prefix| !prefix.starts_with('/')) {
        return Err(ConfigError::Include(bad.clone()));
    }
    Ok(ForwardConfig {
        upstream: Upstream::parse(&args.upstream)?,
        scope: Scope::new(&args.includes),
        rewrite_urls: !args.no_rewrite_urls,
        inject_deprecation: if args.inject_deprecation {
            Some(deprecation_headers(serve)?)
        } else {
            None
        },
        connect_timeout: parse_duration(
            "--upstream-connect-timeout",
            &args.upstream_connect_timeout,
        )?,
        response_timeout: parse_duration("--upstream-timeout", &args.upstream_timeout)?,
        forwarded_headers: !args.no_forwarded_headers,
        tls: UpstreamTls {
            ca: args.upstream_ca.clone(),
            client_cert: args
                .upstream_client_cert
                .clone()
                .zip(args.upstream_client_key.clone()),
            insecure: args.upstream_insecure,
        },
    })
}

fn journal_config(args: &JournalArgs) -> Result<Option<JournalConfig>, ConfigError> {
    if args.no_journal {
        return Ok(None);
    }
    if args.journal_max_entries == Some(0) {
        return Err(ConfigError::MaxEntries);
    }
    Ok(Some(JournalConfig {
        dir: args
            .journal
            .clone()
            .unwrap_or_else(crate::journal::default_dir),
        explicit: args.journal.is_some(),
        max_entries: args.journal_max_entries,
        max_age: args
            .journal_max_age
            .as_deref()
            .map(|age| parse_duration("--journal-max-age", age))
            .transpose()?,
        body_limit: parse_size("--journal-body-limit", &args.journal_body_limit)?,
    }))
}

fn parse_size(flag: &'static str, value: &str) -> Result<usize, ConfigError> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .ok()
        .and_then(|size| usize::try_from(size.as_u64()).ok())
        .ok_or_else(|| ConfigError::Size {
            flag,
            value: value.to_owned(),
        })
}

fn parse_duration(flag: &'static str, value: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(value.trim()).map_err(|_| ConfigError::Duration {
        flag,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("ghes-vcr").chain(args.iter().copied())).unwrap();
        Config::from_cli(&cli)
    }

    #[test]
    fn replay_defaults() {
        let config = config(&["replay"]).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.miss_status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(config.max_body_size, 10 * 1024 * 1024);
        assert!(
            matches!(config.mode, ModeConfig::Replay { ref cassette } if cassette == &PathBuf::from("cassettes"))
        );
    }

    #[test]
    fn upstream_must_be_an_origin() {
        let ok = config(&[
            "record",
            "--upstream",
            "https://GHES.example.com/",
            "--cassette",
            "c.json",
        ])
        .unwrap();
        let ModeConfig::Record(record) = ok.mode else {
            panic!()
        };
        assert_eq!(
            record.forward.upstream.origin.as_str(),
            "https://ghes.example.com"
        );
        for (bad, reason) in [
            ("ghes.example.com", "no scheme"),
            ("ftp://ghes.example.com", "http or https"),
            ("https://ghes.example.com/api/v3", "without a path"),
        ] {
            let err = config(&["record", "--upstream", bad, "--cassette", "c.json"]).unwrap_err();
            assert!(err.to_string().contains(reason), "{bad}: {err}");
        }
    }

    #[test]
    fn bad_values_say_what_to_write() {
        let err = config(&["replay", "--max-body-size", "lots"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--max-body-size \"lots\" is not a size (e.g. --max-body-size 10MiB)"
        );
        let err = config(&["replay", "--miss-status", "200"]).unwrap_err();
        assert!(err.to_string().contains("from 400 to 599"));
        let err = config(&["replay", "--latency", "slow"]).unwrap_err();
        assert!(err.to_string().contains("(e.g. --latency 250)"), "{err}");
        let err = config(&[
            "replay",
            "--deprecation-date",
            "2021-01-01",
            "--sunset-date",
            "2020-01-01",
        ])
        .unwrap_err();
        assert!(err.to_string().contains("earlier than"), "{err}");
        assert_eq!(
            config(&["replay", "--latency", "250"]).unwrap().latency,
            Latency::Fixed(Duration::from_millis(250))
        );
        let err = config(&["replay", "--redact-regex", "(unclosed"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--redact-regex \"(unclosed\" is not a valid regular expression"
        );
        let err = config(&["replay", "--match-on", "method,verb"]).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("--match-on: unknown match field \"verb\""));
    }
}

/// Which journal a `journal` command reads, and which slice of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalQuery {
    pub dir: std::path::PathBuf,
    /// A running proxy's admin origin.
    pub admin: Option<String>,
    /// Microseconds since the Unix epoch.
    pub since: Option<u64>,
    pub until: Option<u64>,
}

impl JournalQuery {
    /// Checks a `journal` command's source flags.
    ///
    /// # Errors
    /// [`ConfigError::Time`] or [`ConfigError::Admin`].
    pub fn from_cli(args: &crate::cli::JournalSourceArgs) -> Result<Self, ConfigError> {
        if let Some(admin) = &args.admin {
            let ok = admin
                .parse::<Uri>()
                .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.authority().is_some());
            if !ok {
                return Err(ConfigError::Admin(admin.clone()));
            }
        }
        Ok(Self {
            dir: args
                .journal
                .clone()
                .unwrap_or_else(crate::journal::default_dir),
            admin: args.admin.clone(),
            since: args
                .since
                .as_deref()
                .map(|v| parse_time("--since", v))
                .transpose()?,
            until: args
                .until
                .as_deref()
                .map(|v| parse_time("--until", v))
                .transpose()?,
        })
    }
}

/// RFC 3339, a bare date (midnight UTC), or a duration before now; in microseconds.
fn parse_time(flag: &'static str, value: &str) -> Result<u64, ConfigError> {
    let text = value.trim();
    let err = || ConfigError::Time {
        flag,
        value: value.to_owned(),
    };
    let now = std::time::SystemTime::now();
    let time = if let Ok(ago) = humantime::parse_duration(text) {
        now.checked_sub(ago).ok_or_else(err)?
    } else {
        let full = if text.len() == 10 {
            format!("{text}T00:00:00Z")
        } else {
            text.to_owned()
        };
        humantime::parse_rfc3339_weak(&full)
            .or_else(|_| humantime::parse_rfc3339(&full))
            .map_err(|_| err())?
    };
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .map_err(|_| err())
}
