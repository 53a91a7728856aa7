//! What a serving command runs: the [`Proxy`] built from a [`Config`], with the cassettes it
//! needs loaded and its background tasks owned. Loading happens before anything is bound, so a
//! malformed cassette stops the command before it listens.

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::capture::Capture;
use crate::cassette::{load_set, Cassette, LoadedCassette};
use crate::config::{Config, ModeConfig, RecordMode};
use crate::error::Error;
use crate::proxy::forward::Forwarder;
use crate::proxy::{DateClock, Proxy};
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
    recorder: Option<Arc<Recorder>>,
    saver: Option<JoinHandle<()>>,
}

impl App {
    /// Loads what `config` names and builds the proxy. Must run inside a tokio runtime (the
    /// recorder's saver task starts here).
    ///
    /// # Errors
    /// [`Error::Cassette`] for a cassette that cannot be loaded.
    pub fn load(config: &Config) -> Result<Self, Error> {
        let redactor = Redactor::new(config.redaction.clone());
        let (proxy, description) = match &config.mode {
            ModeConfig::Replay { cassette } => {
                let set = load_set(cassette)?;
                let replay = ReplaySet::new(
                    std::slice::from_ref(cassette),
                    set,
                    config.match_rules.clone(),
                    &config.replay,
                )?;
                let description = format!(
                    "mode=replay cassette={} interactions={} files={}",
                    cassette.display(),
                    replay.len(),
                    replay.cassettes().len()
                );
                let proxy = Proxy {
                    replay: Some(replay),
                    recorder: None,
                    forwarder: None,
                    scope: Scope::default(),
                    capture: Capture::new(redactor, None),
                    miss_status: config.miss_status,
                    max_body_size: config.max_body_size,
                    rewrite_urls: true,
                    inject_deprecation: None,
                    latency: config.latency,
                    clock: DateClock::default(),
                };
                (proxy, description)
            }
            ModeConfig::Record(record) => {
                let exists = record.cassette.exists();
                let load = || -> Result<Vec<LoadedCassette>, Error> {
                    Ok(vec![LoadedCassette {
                        path: record.cassette.clone(),
                        cassette: Cassette::load(&record.cassette)?,
                    }])
                };
                let replay_of = |set: Vec<LoadedCassette>| {
                    ReplaySet::new(
                        std::slice::from_ref(&record.cassette),
                        set,
                        config.match_rules.clone(),
                        &config.replay,
                    )
                };
                let (replay, recorder, forwarder, effective) = match (record.mode, exists) {
                    (RecordMode::Once, true) => (
                        Some(replay_of(load()?)?),
                        None,
                        None,
                        "once (cassette exists: replay only)",
                    ),
                    (RecordMode::NewEpisodes, true) => {
                        let loaded = load()?;
                        let start = loaded[0].cassette.clone();
                        (
                            Some(replay_of(loaded)?),
                            Some(Recorder::new(&record.cassette, start)),
                            Some(()),
                            "new-episodes",
                        )
                    }
                    (RecordMode::Once | RecordMode::NewEpisodes, false) => (
                        None,
                        Some(Recorder::new(&record.cassette, Cassette::new())),
                        Some(()),
                        "recording a new cassette",
                    ),
                    (RecordMode::All, _) => (
                        None,
                        Some(Recorder::new(&record.cassette, Cassette::new())),
                        Some(()),
                        "all (rewriting the cassette)",
                    ),
                };
                let forwarder = forwarder.map(|()| {
                    Forwarder::new(
                        record.upstream.clone(),
                        record.connect_timeout,
                        record.response_timeout,
                    )
                });
                let description = format!(
                    "mode=record record_mode={effective} cassette={} upstream={}",
                    record.cassette.display(),
                    record.upstream.origin
                );
                let proxy = Proxy {
                    replay,
                    recorder,
                    forwarder,
                    scope: record.scope.clone(),
                    capture: Capture::new(redactor, Some(record.upstream.origin.clone())),
                    miss_status: config.miss_status,
                    max_body_size: config.max_body_size,
                    rewrite_urls: record.rewrite_urls,
                    inject_deprecation: record.inject_deprecation.clone(),
                    latency: config.latency,
                    clock: DateClock::default(),
                };
                (proxy, description)
            }
        };
        let recorder = proxy.recorder.clone();
        let saver = recorder.as_ref().map(Recorder::spawn_saver);
        Ok(Self {
            proxy: Arc::new(proxy),
            description,
            shutdown_grace: config.shutdown_grace,
            recorder,
            saver,
        })
    }

    /// Writes what is pending and stops the background tasks.
    ///
    /// # Errors
    /// [`Error::Unsaved`] when the cassette on disk misses recorded interactions.
    pub async fn finish(mut self) -> Result<Option<RecordingSummary>, Error> {
        let Some(recorder) = self.recorder.take() else {
            return Ok(None);
        };
        recorder.close();
        if let Some(saver) = self.saver.take() {
            let _ = saver.await;
        }
        let summary = recorder.summary();
        if let Some(cause) = &summary.unsaved {
            return Err(Error::Unsaved {
                path: recorder.path().to_owned(),
                cause: cause.clone(),
            });
        }
        if summary.recorded == 0 {
            tracing::info!(cassette.path = %recorder.path().display(), "nothing recorded; cassette left as it was");
        } else {
            tracing::info!(
                cassette.path = %recorder.path().display(),
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
