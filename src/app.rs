//! What a serving command runs: the [`Proxy`] built from a [`Config`], with the cassettes it
//! needs loaded, the journal opened, and its background tasks owned. Loading happens before
//! anything is bound, so a malformed cassette stops the command before it listens.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::task::JoinHandle;

use crate::capture::Capture;
use crate::cassette::{save_atomically, Cassette, CassetteError};
use crate::config::{Config, ForwardConfig, ModeConfig, RecordMode};
use crate::error::Error;
use crate::journal::store::ADMIN_FILE;
use crate::journal::{Journal, JournalConfig, Mode};
use crate::metrics::Metrics;
use crate::proxy::forward::Forwarder;
use crate::proxy::Proxy;
use crate::recording::{Recorder, RecordingSummary};
use crate::redaction::Redactor;
use crate::replay::ReplaySet;
use crate::scope::Scope;

/// A proxy ready to serve, and what must happen when it stops.
pub struct App {
    pub proxy: Arc<Proxy>,
    /// One line for the log: mode, cassette, upstream.
    pub description: String,
    pub shutdown_grace: std::time::Duration,
    pub limits: crate::config::Limits,
    /// Where the replay report is written at shutdown (`--report`).
    report_file: Option<PathBuf>,
    /// Serves https when set.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    recorder: Option<Arc<Recorder>>,
    saver: Option<JoinHandle<()>>,
    journal_writer: Option<JoinHandle<()>>,
}

/// What a serving command leaves behind.
#[derive(Debug)]
pub struct Finished {
    pub recording: Option<RecordingSummary>,
    /// For commands that replayed a cassette.
    pub report: Option<crate::usage::ReplayReport>,
}

/// The parts that differ between modes.
struct Parts {
    mode: Mode,
    replay: Option<ReplaySet>,
    recorder: Option<Arc<Recorder>>,
    forward: Option<ForwardConfig>,
    description: String,
}

impl App {
    /// Loads what `config` names and builds the proxy. Must run inside a tokio runtime (the
    /// recorder's saver and the journal writer start here).
    ///
    /// # Errors
    /// [`Error::Cassette`] for a cassette that cannot be loaded, [`Error::Journal`] for a
    /// journal directory named with `--journal` that cannot be opened.
    pub fn load(config: &Config) -> Result<Self, Error> {
        let parts = parts(config)?;
        let capture_origin = parts
            .forward
            .as_ref()
            .map(|forward| forward.upstream.origin.clone());
        let capture = Capture::new(Redactor::new(config.redaction.clone()), capture_origin);
        let forwarder = match parts
            .forward
            .as_ref()
            .filter(|_| parts.mode != Mode::Replay)
        {
            Some(forward) => {
                if forward.tls.insecure {
                    tracing::warn!(upstream = %forward.upstream.origin, "--upstream-insecure: the upstream's certificate is NOT verified; anyone on the path can read and change this traffic");
                }
                let tls = crate::tls::upstream_client_config(&forward.tls)?;
                Some(Forwarder::new(
                    forward.upstream.clone(),
                    tls,
                    forward.connect_timeout,
                    forward.response_timeout,
                ))
            }
            None => None,
        };
        let tls_acceptor = match &config.listener_tls {
            Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
                crate::tls::listener_config(cert, key)?,
            )),
            None => None,
        };
        let (journal, journal_writer) = match &config.journal {
            Some(journal) => open_journal(journal, capture.clone())?.unzip(),
            None => (None, None),
        };
        let proxy = Proxy {
            replay: parts.replay,
            recorder: parts.recorder.clone(),
            forwarder,
            scope: parts
                .forward
                .as_ref()
                .map_or_else(Scope::default, |f| f.scope.clone()),
            capture,
            miss_status: config.miss_status,
            max_body_size: config.max_body_size,
            rewrite_urls: parts.forward.as_ref().is_none_or(|f| f.rewrite_urls),
            inject_deprecation: parts
                .forward
                .as_ref()
                .and_then(|f| f.inject_deprecation.clone()),
            latency: config.latency,
            mode: parts.mode,
            journal,
            metrics: Metrics::default(),
            started: Instant::now(),
            forwarded_headers: parts.forward.as_ref().is_some_and(|f| f.forwarded_headers),
            max_header_size: config.limits.max_header_size,
            misses: crate::usage::Misses::default(),
        };
        let recorder = parts.recorder;
        let saver = recorder
            .as_ref()
            .map(|recorder| recorder.spawn_saver(proxy.capture.clone()))
            .transpose()
            .map_err(Error::Runtime)?;
        let journal_note = proxy.journal.as_ref().map_or_else(
            || "off".to_owned(),
            |journal| journal.dir().display().to_string(),
        );
        Ok(Self {
            proxy: Arc::new(proxy),
            description: format!("{} journal={journal_note}", parts.description),
            shutdown_grace: config.shutdown_grace,
            limits: config.limits,
            report_file: config.report_file.clone(),
            tls: tls_acceptor,
            recorder,
            saver,
            journal_writer,
        })
    }

    /// Loads what `config` names, binds its listening address and tells journal readers where
    /// the admin endpoint is: everything a serving command does before it announces itself.
    ///
    /// # Errors
    /// As [`App::load`], and [`Error::Bind`].
    pub async fn bind(config: &Config) -> Result<(Self, tokio::net::TcpListener), Error> {
        let app = Self::load(config)?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        app.announce_admin(listener.local_addr().map_err(Error::Runtime)?);
        Ok((app, listener))
    }

    /// Tells readers of the journal where this proxy's admin endpoint is (`DIR/admin-url`).
    /// Call once the listener is bound, before announcing the address to anyone else.
    pub fn announce_admin(&self, local: SocketAddr) {
        let Some(journal) = &self.proxy.journal else {
            return;
        };
        let host = if local.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), local.port())
        } else {
            local
        };
        let url = format!("http://{host}\n");
        if let Err(err) = save_atomically(&journal.dir().join(ADMIN_FILE), url.as_bytes()) {
            tracing::warn!(cause = %err, "cannot write the journal's admin-url file; pass --admin to journal commands");
        }
    }

    /// Writes what is pending and stops the background tasks: cassette first, then journal.
    ///
    /// # Errors
    /// [`Error::Unsaved`] when the cassette on disk misses recorded interactions.
    pub async fn finish(mut self) -> Result<Finished, Error> {
        let report = self
            .proxy
            .replay
            .as_ref()
            .map(|replay| crate::usage::ReplayReport::new(replay, &self.proxy.misses));
        if let Some(report) = &report {
            tracing::info!("{}", report.summary());
            if let Some(path) = &self.report_file {
                let text = serde_json::to_string_pretty(report).unwrap_or_default() + "\n";
                match save_atomically(path, text.as_bytes()) {
                    Ok(()) => {
                        tracing::info!(report.path = %path.display(), "replay report written")
                    }
                    Err(err) => {
                        tracing::error!(cause = %crate::error::chain(&err), "cannot write the replay report")
                    }
                }
            }
        }
        let recording = self.finish_recording().await?;
        Ok(Finished { recording, report })
    }

    async fn finish_recording(&mut self) -> Result<Option<RecordingSummary>, Error> {
        let summary = match self.recorder.take() {
            Some(recorder) => {
                recorder.close();
                if let Some(saver) = self.saver.take() {
                    let _ = saver.await;
                }
                Some(recorder.summary())
            }
            None => None,
        };
        if let Some(journal) = &self.proxy.journal {
            journal.close();
            if let Some(writer) = self.journal_writer.take() {
                let _ = writer.await;
            }
            let _ = std::fs::remove_file(journal.dir().join(ADMIN_FILE));
            let stats = journal.stats();
            tracing::info!(
                journal.written = stats.written,
                journal.dropped = stats.dropped,
                journal.entries = stats.entries,
                "journal closed"
            );
        }
        let Some(summary) = summary else {
            return Ok(None);
        };
        let path = self
            .proxy
            .recorder
            .as_ref()
            .map_or_else(PathBuf::new, |r| r.path().to_owned());
        if let Some(cause) = &summary.unsaved {
            return Err(Error::Unsaved {
                path,
                cause: cause.clone(),
            });
        }
        if summary.recorded == 0 {
            tracing::info!(cassette.path = %path.display(), "nothing recorded; cassette left as it was");
        } else {
            tracing::info!(
                cassette.path = %path.display(),
                recorded = summary.recorded,
                interactions = summary.interactions,
                "saved {} new interactions ({} in the cassette)",
                summary.recorded,
                summary.interactions
            );
        }
        Ok(Some(summary))
    }
}

fn parts(config: &Config) -> Result<Parts, Error> {
    Ok(match &config.mode {
        ModeConfig::Replay { cassette } => {
            // Prepared as parsed: a large cassette is never held whole as parsed interactions.
            let replay = ReplaySet::load(cassette, config.match_rules.clone(), &config.replay)?;
            let description = format!(
                "mode=replay cassette={} interactions={} files={}",
                cassette.display(),
                replay.len(),
                replay.cassettes().len()
            );
            Parts {
                mode: Mode::Replay,
                replay: Some(replay),
                recorder: None,
                forward: None,
                description,
            }
        }
        ModeConfig::Passthrough(forward) => Parts {
            mode: Mode::Passthrough,
            replay: None,
            recorder: None,
            description: format!("mode=passthrough upstream={}", forward.upstream.origin),
            forward: Some((**forward).clone()),
        },
        ModeConfig::Record(record) => {
            let path = &record.cassette;
            if path.is_dir() {
                // (Replay takes a directory as a set; loading one here would take it too.)
                return Err(CassetteError::Read {
                    path: path.clone(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::IsADirectory,
                        "a directory: record writes one cassette file; name a .json file \
                         (in it or elsewhere), or pass the directory to replay, which reads it \
                         as a set",
                    ),
                }
                .into());
            }
            let (rules, options) = (config.match_rules.clone(), &config.replay);
            let (mode, replay, recorder, effective) = match (record.mode, path.exists()) {
                (RecordMode::Once, true) => (
                    Mode::Replay,
                    Some(ReplaySet::load(path, rules, options)?),
                    None,
                    "once (cassette exists: replay only)",
                ),
                (RecordMode::NewEpisodes, true) => {
                    // Prepared for replay and printed for the recorder as parsed, on every
                    // core: a large cassette is never held whole as parsed interactions.
                    let (replay, mut files) =
                        ReplaySet::load_keeping(path, rules, options, crate::recording::render)?;
                    let (top, texts) = files.pop().expect("a cassette file is one file");
                    (
                        Mode::Record,
                        Some(replay),
                        Some(Recorder::continuing(path, top, texts)),
                        "new-episodes",
                    )
                }
                (RecordMode::Once | RecordMode::NewEpisodes, false) => (
                    Mode::Record,
                    None,
                    Some(Recorder::new(path, Cassette::new())),
                    "recording a new cassette",
                ),
                (RecordMode::All, _) => (
                    Mode::Record,
                    None,
                    Some(Recorder::new(path, Cassette::new())),
                    "all (rewriting the cassette)",
                ),
            };
            Parts {
                mode,
                replay,
                recorder,
                description: format!(
                    "mode=record record_mode={effective} cassette={} upstream={}",
                    path.display(),
                    record.forward.upstream.origin
                ),
                forward: Some(record.forward.clone()),
            }
        }
    })
}

/// The journal and its writer task.
type RunningJournal = (Arc<Journal>, JoinHandle<()>);

/// Opens the journal. The default directory is skipped with a warning when another process
/// holds it (e.g. two replays in one CI job); a directory named with `--journal` must open.
fn open_journal(config: &JournalConfig, capture: Capture) -> Result<Option<RunningJournal>, Error> {
    match Journal::start(config, capture) {
        Ok(started) => Ok(Some(started)),
        Err(err) if !config.explicit => {
            tracing::warn!(cause = %err, "running without a journal");
            Ok(None)
        }
        Err(err) => Err(Error::Journal(err)),
    }
}
