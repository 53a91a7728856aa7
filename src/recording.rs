//! Recording: appending interactions to a cassette and saving it after each one.
//!
//! A request handler calls [`Recorder::append`], which returns once the cassette file on disk
//! holds that interaction. One saver task writes the whole cassette atomically (see
//! [`crate::cassette::save_atomically`]) off the async runtime; appends that arrive while a save
//! runs are written together by the next save, so concurrent clients share the disk work.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cassette::{format, save_atomically, Cassette, Interaction};

/// How a recording session went, for the shutdown log and the exit status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingSummary {
    /// Interactions in the cassette at the end.
    pub interactions: usize,
    /// Interactions recorded by this run.
    pub recorded: u64,
    /// The last save error, if the file on disk is not up to date.
    pub unsaved: Option<String>,
}

struct State {
    cassette: Cassette,
    /// Interactions held behind `Arc`, so a save snapshot is cheap to take.
    interactions: Vec<Arc<Interaction>>,
    /// How many interactions this run appended.
    appended: u64,
    closed: bool,
    last_error: Option<String>,
}

/// Appends interactions to one cassette file.
pub struct Recorder {
    path: PathBuf,
    state: Mutex<State>,
    wake: Notify,
    /// The number of this run's appends that are on disk.
    saved: watch::Sender<u64>,
}

impl Recorder {
    /// A recorder that writes to `path`, starting from `cassette` (empty for a fresh recording,
    /// the loaded file for `new-episodes`). Nothing is written until the first append.
    pub fn new(path: &Path, mut cassette: Cassette) -> Arc<Self> {
        let interactions = cassette.interactions.drain(..).map(Arc::new).collect();
        Arc::new(Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                cassette,
                interactions,
                appended: 0,
                closed: false,
                last_error: None,
            }),
            wake: Notify::new(),
            saved: watch::Sender::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the saver task; [`Recorder::close`] ends it after the last save.
    pub fn spawn_saver(self: &Arc<Self>) -> JoinHandle<()> {
        let recorder = Arc::clone(self);
        tokio::spawn(async move { recorder.save_loop().await })
    }

    /// Adds an interaction and waits until the cassette on disk holds it.
    pub async fn append(&self, interaction: Interaction) {
        let generation = {
            let mut state = self.state.lock().expect("recorder lock poisoned");
            state.interactions.push(Arc::new(interaction));
            state.appended += 1;
            state.appended
        };
        self.wake.notify_one();
        let mut saved = self.saved.subscribe();
        // An error means the saver is gone (shutdown); the interaction is still in memory.
        let _ = saved.wait_for(|done| *done >= generation).await;
    }

    /// Asks the saver to write what is pending and stop.
    pub fn close(&self) {
        self.state.lock().expect("recorder lock poisoned").closed = true;
        self.wake.notify_one();
    }

    pub fn summary(&self) -> RecordingSummary {
        let state = self.state.lock().expect("recorder lock poisoned");
        RecordingSummary {
            interactions: state.interactions.len(),
            recorded: state.appended,
            unsaved: state.last_error.clone(),
        }
    }

    async fn save_loop(self: Arc<Self>) {
        loop {
            let (snapshot, generation, closed) = {
                let state = self.state.lock().expect("recorder lock poisoned");
                let pending = state.appended > *self.saved.borrow() || state.last_error.is_some();
                let snapshot = (pending && state.appended > 0).then(|| Snapshot {
                    version: state.cassette.version,
                    recorded_with: state.cassette.recorded_with.clone(),
                    upstream: state.cassette.upstream.clone(),
                    interactions: state.interactions.clone(),
                });
                (snapshot, state.appended, state.closed)
            };
            match snapshot {
                Some(snapshot) => {
                    let path = self.path.clone();
                    let count = snapshot.interactions.len();
                    let result = tokio::task::spawn_blocking(move || {
                        let text = snapshot.to_pretty_json();
                        save_atomically(&path, text.as_bytes())
                    })
                    .await;
                    let error = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(err)) => Some(crate::error::chain(&err)),
                        Err(join) => Some(format!("saving task failed: {join}")),
                    };
                    match &error {
                        None => {
                            tracing::debug!(cassette.path = %self.path.display(), interactions = count, "saved cassette")
                        }
                        Some(cause) => {
                            tracing::error!(cassette.path = %self.path.display(), cause = %cause, "cannot save cassette; will retry on the next interaction")
                        }
                    }
                    let failed = error.is_some();
                    self.state
                        .lock()
                        .expect("recorder lock poisoned")
                        .last_error = error;
                    self.saved.send_replace(generation);
                    if failed && closed {
                        return;
                    }
                }
                None if closed => return,
                None => self.wake.notified().await,
            }
        }
    }
}

/// The serializable view of a cassette whose interactions are shared.
#[derive(Serialize)]
struct Snapshot {
    version: u32,
    recorded_with: String,
    upstream: String,
    interactions: Vec<Arc<Interaction>>,
}

impl Snapshot {
    fn to_pretty_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a cassette always serializes");
        format::to_pretty_json(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Body, RecordedRequest, RecordedResponse};

    fn interaction(n: u16) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "GET".into(),
                path: format!("/api/v3/authorizations/{n}"),
                query: vec![],
                headers: vec![],
                body: Body::Empty,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![],
                body: Body::Empty,
            },
            latency_ms: None,
        }
    }

    #[tokio::test]
    async fn append_returns_once_the_file_holds_the_interaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let recorder = Recorder::new(&path, Cassette::new());
        let saver = recorder.spawn_saver();
        assert!(
            !path.exists(),
            "nothing is written before the first interaction"
        );
        for n in 0..3 {
            recorder.append(interaction(n)).await;
            assert_eq!(
                Cassette::load(&path).unwrap().interactions.len(),
                usize::from(n) + 1
            );
        }
        recorder.close();
        saver.await.unwrap();
        assert_eq!(
            recorder.summary(),
            RecordingSummary {
                interactions: 3,
                recorded: 3,
                unsaved: None
            }
        );
    }

    #[tokio::test]
    async fn concurrent_appends_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let recorder = Recorder::new(&path, Cassette::new());
        let saver = recorder.spawn_saver();
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move { recorder.append(interaction(n)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        recorder.close();
        saver.await.unwrap();
        assert_eq!(Cassette::load(&path).unwrap().interactions.len(), 20);
    }
}
