//! Recording: appending interactions to a cassette and saving it after each one.
//!
//! A request handler calls [`Recorder::append`], which returns once the cassette file on disk
//! holds that interaction. One saver task writes the whole cassette atomically (see
//! [`crate::cassette::save_with`]) off the async runtime; appends that arrive while a save
//! runs are written together by the next save, so concurrent clients share the disk work.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::cassette::{format, save_with, Cassette, Durability, Interaction};

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
    /// The cassette's top level (its interactions are in `texts`).
    cassette: Cassette,
    /// Each interaction, already printed as it stands in the file, so a save only joins text.
    texts: Vec<Arc<str>>,
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
        let texts = cassette
            .interactions
            .drain(..)
            .map(|i| render(&i))
            .collect();
        Arc::new(Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                cassette,
                texts,
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
        let text = render(&interaction);
        let generation = {
            let mut state = self.state.lock().expect("recorder lock poisoned");
            state.texts.push(text);
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
            interactions: state.texts.len(),
            recorded: state.appended,
            unsaved: state.last_error.clone(),
        }
    }

    /// Saves whenever something was appended (several appends share a save). These saves are
    /// atomic against a crash of the process but do not wait for the disk; the last save, at
    /// close, is synced.
    async fn save_loop(self: Arc<Self>) {
        let mut unsynced = false;
        loop {
            let (snapshot, generation, closed) = {
                let state = self.state.lock().expect("recorder lock poisoned");
                let pending = state.appended > *self.saved.borrow() || state.last_error.is_some();
                let final_sync = state.closed && unsynced;
                let snapshot = ((pending || final_sync) && state.appended > 0).then(|| Snapshot {
                    version: state.cassette.version,
                    recorded_with: state.cassette.recorded_with.clone(),
                    upstream: state.cassette.upstream.clone(),
                    texts: state.texts.clone(),
                });
                (snapshot, state.appended, state.closed)
            };
            let Some(snapshot) = snapshot else {
                if closed {
                    return;
                }
                self.wake.notified().await;
                continue;
            };
            let durability = if closed {
                Durability::Synced
            } else {
                Durability::ProcessCrash
            };
            let path = self.path.clone();
            let count = snapshot.texts.len();
            let result = tokio::task::spawn_blocking(move || {
                save_with(&path, snapshot.to_text().as_bytes(), durability)
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
            unsynced = !failed && durability == Durability::ProcessCrash;
            self.state
                .lock()
                .expect("recorder lock poisoned")
                .last_error = error;
            self.saved.send_replace(generation);
            if closed && (failed || !unsynced) {
                return;
            }
        }
    }
}

/// One interaction as it stands in the file (inside `"interactions"`, two levels deep).
fn render(interaction: &Interaction) -> Arc<str> {
    let value = serde_json::to_value(interaction).expect("an interaction always serializes");
    Arc::from(format::to_pretty_json_at(&value, 2))
}

/// What a save writes: the top level and the interactions' texts.
struct Snapshot {
    version: u32,
    recorded_with: String,
    upstream: String,
    texts: Vec<Arc<str>>,
}

impl Snapshot {
    /// The file, exactly as [`Cassette::to_pretty_json`] prints it.
    fn to_text(&self) -> String {
        let header = Cassette {
            version: self.version,
            recorded_with: self.recorded_with.clone(),
            upstream: self.upstream.clone(),
            interactions: Vec::new(),
        }
        .to_pretty_json();
        if self.texts.is_empty() {
            return header;
        }
        let head = header
            .trim_end()
            .trim_end_matches('}')
            .trim_end()
            .trim_end_matches("[]");
        let size = self.texts.iter().map(|t| t.len() + 6).sum::<usize>() + head.len() + 8;
        let mut out = String::with_capacity(size);
        out.push_str(head);
        out.push('[');
        for (i, text) in self.texts.iter().enumerate() {
            out.push_str(if i == 0 { "\n    " } else { ",\n    " });
            out.push_str(text);
        }
        out.push_str("\n  ]\n}\n");
        out
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

    #[test]
    fn joined_text_is_what_the_generic_printer_writes() {
        let mut cassette = Cassette::new();
        cassette.interactions = (0..3).map(interaction).collect();
        let snapshot = Snapshot {
            version: cassette.version,
            recorded_with: cassette.recorded_with.clone(),
            upstream: cassette.upstream.clone(),
            texts: cassette.interactions.iter().map(render).collect(),
        };
        assert_eq!(snapshot.to_text(), cassette.to_pretty_json());
        cassette.interactions.clear();
        let empty = Snapshot {
            texts: vec![],
            ..snapshot
        };
        assert_eq!(empty.to_text(), cassette.to_pretty_json());
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
