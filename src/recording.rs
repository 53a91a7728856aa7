//! Recording: appending interactions to a cassette and saving it after each one.
//!
//! A request handler calls [`Recorder::append`], which returns once the disk holds that
//! interaction. One saver thread does the writing, off the async runtime; appends that arrive
//! while a save runs are written together by the next save, so concurrent clients share the disk
//! work.
//!
//! A save costs what it adds, not the size of the cassette: the first save of a run writes the
//! whole cassette atomically (see [`crate::cassette::save_with`]); later ones append the new
//! interactions to the cassette's recording log (see [`crate::cassette::recording_log_path`]),
//! which loading applies. When the log outgrows the file (so each byte is rewritten a bounded
//! number of times) and at shutdown, the whole cassette is written again and the log removed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cassette::{
    append_recording_log, format, remove_recording_log, save_with, Cassette, Durability,
    Interaction, RecordingLogHeader,
};

/// The recording log is folded into the cassette once it is larger than the file and than this.
const LOG_FOLD_MIN: u64 = 1024 * 1024;

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
    /// What is on disk, as far as this run knows.
    disk: Disk,
}

/// What this run has written: the whole file (once it has saved), then the log after it.
#[derive(Clone, Copy, Debug, Default)]
struct Disk {
    /// The cassette file this run last wrote whole (`None` before its first save).
    file: Option<RecordingLogHeader>,
    /// Interactions and bytes in the recording log after that file.
    log_interactions: usize,
    log_bytes: u64,
}

impl Disk {
    /// Interactions on disk (the file and its log).
    fn interactions(&self) -> usize {
        self.file
            .map_or(0, |file| file.extends_interactions + self.log_interactions)
    }
}

/// Appends interactions to one cassette file.
pub struct Recorder {
    path: PathBuf,
    state: Mutex<State>,
    /// Something was appended, or the recorder closed (to the saver).
    wake: Condvar,
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
                disk: Disk::default(),
            }),
            wake: Condvar::new(),
            saved: watch::Sender::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the saver thread; [`Recorder::close`] ends it after the last save, and the
    /// returned task completes then. Call inside the runtime.
    ///
    /// # Errors
    /// When no thread can be started.
    pub fn spawn_saver(self: &Arc<Self>) -> std::io::Result<JoinHandle<()>> {
        let recorder = Arc::clone(self);
        let saving = crate::worker::spawn("cassette-saver", move || recorder.save_loop())?;
        Ok(tokio::spawn(async move {
            if !saving.await.unwrap_or(false) {
                tracing::error!(
                    "the cassette saver failed; the cassette may miss the last interactions"
                );
            }
        }))
    }

    /// Adds an interaction and waits until the cassette on disk holds it.
    pub async fn append(&self, interaction: &Interaction) {
        let text = render(interaction);
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

    /// Saves whenever something was appended (several appends share a save): the whole file
    /// first, then the log (see the module documentation). The saves between answers survive a
    /// crash of the process but do not wait for the disk; the last one, at close, is synced.
    fn save_loop(&self) {
        let mut unsynced = false;
        loop {
            let (job, generation, closed) = {
                let mut state = self.state.lock().expect("recorder lock poisoned");
                // Until something new is appended (a failed save is retried then, or at
                // close) or the recorder closes.
                while !state.closed && state.appended <= *self.saved.borrow() {
                    state = self.wake.wait(state).expect("recorder lock poisoned");
                }
                let disk = state.disk;
                let pending = state.appended > *self.saved.borrow() || state.last_error.is_some();
                let final_sync = state.closed && unsynced;
                let job = ((pending || final_sync) && state.appended > 0).then(|| {
                    let fold = match disk.file {
                        None => true,
                        Some(file) => {
                            state.closed
                                || state.last_error.is_some()
                                || disk.log_bytes > file.extends_bytes.max(LOG_FOLD_MIN)
                        }
                    };
                    if fold {
                        Save::Whole(Snapshot {
                            version: state.cassette.version,
                            recorded_with: state.cassette.recorded_with.clone(),
                            upstream: state.cassette.upstream.clone(),
                            texts: state.texts.clone(),
                        })
                    } else {
                        Save::Log {
                            header: (disk.log_interactions == 0).then_some(disk.file).flatten(),
                            texts: state.texts[disk.interactions()..].to_vec(),
                        }
                    }
                });
                (job, state.appended, state.closed)
            };
            let Some(job) = job else {
                if closed {
                    return;
                }
                continue;
            };
            let durability = if closed {
                Durability::Synced
            } else {
                Durability::ProcessCrash
            };
            let whole = matches!(job, Save::Whole(_));
            let (error, wrote) = match job.write(&self.path, durability) {
                Ok(wrote) => (None, Some(wrote)),
                Err(err) => (Some(crate::error::chain(&err)), None),
            };
            match &error {
                None => {
                    tracing::debug!(cassette.path = %self.path.display(), whole, "saved cassette")
                }
                Some(cause) => {
                    tracing::error!(cassette.path = %self.path.display(), cause = %cause, "cannot save cassette; will retry on the next interaction")
                }
            }
            let failed = error.is_some();
            unsynced = !failed && durability == Durability::ProcessCrash;
            {
                let mut state = self.state.lock().expect("recorder lock poisoned");
                state.last_error = error;
                match wrote {
                    Some(Wrote::Whole(file)) => {
                        state.disk = Disk {
                            file: Some(file),
                            log_interactions: 0,
                            log_bytes: 0,
                        };
                    }
                    Some(Wrote::Log {
                        interactions,
                        bytes,
                    }) => {
                        state.disk.log_interactions += interactions;
                        state.disk.log_bytes += bytes;
                    }
                    None => {}
                }
            }
            self.saved.send_replace(generation);
            if closed && (failed || !unsynced) {
                return;
            }
        }
    }
}

/// What one save writes.
enum Save {
    /// The whole cassette (then the log is removed).
    Whole(Snapshot),
    /// New interactions, appended to the log (which starts with `header` when given).
    Log {
        header: Option<RecordingLogHeader>,
        texts: Vec<Arc<str>>,
    },
}

/// What a save wrote.
enum Wrote {
    Whole(RecordingLogHeader),
    Log { interactions: usize, bytes: u64 },
}

impl Save {
    /// Blocking.
    fn write(
        self,
        path: &Path,
        durability: Durability,
    ) -> Result<Wrote, crate::cassette::CassetteError> {
        match self {
            Save::Whole(snapshot) => {
                let text = snapshot.to_text();
                save_with(path, text.as_bytes(), durability)?;
                // Only now: until the file holds them, the log's interactions live there.
                remove_recording_log(path)?;
                Ok(Wrote::Whole(RecordingLogHeader {
                    ghes_vcr_recording_log: 1,
                    extends_bytes: text.len() as u64,
                    extends_interactions: snapshot.texts.len(),
                }))
            }
            Save::Log { header, texts } => {
                let mut lines = String::with_capacity(texts.iter().map(|t| t.len()).sum());
                for text in &texts {
                    push_on_one_line(&mut lines, text);
                    lines.push('\n');
                }
                append_recording_log(path, header, &lines)?;
                Ok(Wrote::Log {
                    interactions: texts.len(),
                    bytes: lines.len() as u64,
                })
            }
        }
    }
}

/// Appends a printed interaction on one line: outside strings (which never hold a raw line
/// break) a line break is followed only by indentation, and both go.
fn push_on_one_line(out: &mut String, text: &str) {
    let mut rest = text.trim_start_matches(' ');
    while let Some(at) = memchr::memchr(b'\n', rest.as_bytes()) {
        out.push_str(&rest[..at]);
        rest = rest[at + 1..].trim_start_matches(' ');
    }
    out.push_str(rest);
}

/// One interaction as it stands in the file (inside `"interactions"`, two levels deep).
fn render(interaction: &Interaction) -> Arc<str> {
    Arc::from(format::interaction_at(interaction, 2))
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
        let saver = recorder.spawn_saver().unwrap();
        assert!(
            !path.exists(),
            "nothing is written before the first interaction"
        );
        for n in 0..3 {
            recorder.append(&interaction(n)).await;
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
        let saver = recorder.spawn_saver().unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move { recorder.append(&interaction(n)).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        recorder.close();
        saver.await.unwrap();
        assert_eq!(Cassette::load(&path).unwrap().interactions.len(), 20);
    }
    #[tokio::test]
    async fn saves_append_to_the_log_which_loading_applies_and_close_folds_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let log = crate::cassette::recording_log_path(&path);
        let recorder = Recorder::new(&path, Cassette::new());
        let saver = recorder.spawn_saver().unwrap();
        for n in 0..5 {
            recorder.append(&interaction(n)).await;
        }
        // The first save wrote the file; the others only appended what they added.
        let file = Cassette::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file.interactions.len(), 1);
        assert!(log.exists());
        let loaded = Cassette::load(&path).unwrap();
        let paths: Vec<&str> = loaded
            .interactions
            .iter()
            .map(|i| i.request.path.as_str())
            .collect();
        assert_eq!(
            paths,
            (0..5)
                .map(|n| format!("/api/v3/authorizations/{n}"))
                .collect::<Vec<_>>()
        );
        recorder.close();
        saver.await.unwrap();
        assert!(!log.exists(), "closing folds the log into the file");
        let mut expected = Cassette::new();
        expected.interactions = (0..5).map(interaction).collect();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            expected.to_pretty_json()
        );
    }

    #[tokio::test]
    async fn a_log_larger_than_the_file_is_folded_in_while_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let recorder = Recorder::new(&path, Cassette::new());
        let saver = recorder.spawn_saver().unwrap();
        let big = |n: u16| {
            let mut i = interaction(n);
            i.response.body = Body::Text("x".repeat(64 * 1024));
            i
        };
        for n in 0..40 {
            recorder.append(&big(n)).await;
        }
        let file_len = std::fs::metadata(&path).unwrap().len();
        let log_len =
            std::fs::metadata(crate::cassette::recording_log_path(&path)).map_or(0, |m| m.len());
        assert!(
            file_len > LOG_FOLD_MIN,
            "the file was rewritten with the log folded in"
        );
        assert!(log_len <= file_len.max(LOG_FOLD_MIN) + 70 * 1024);
        assert_eq!(Cassette::load(&path).unwrap().interactions.len(), 40);
        recorder.close();
        saver.await.unwrap();
    }

    #[test]
    fn a_log_line_is_the_printed_interaction_without_its_line_breaks_and_indentation() {
        let mut i = interaction(7);
        i.response.body = Body::Json(serde_json::json!({"a": [1, {"b": "x\ny"}], "c": {}}));
        let text = render(&i);
        let mut line = String::new();
        push_on_one_line(&mut line, &text);
        let expected: String = text.lines().map(str::trim_start).collect();
        assert_eq!(line, expected);
        assert!(!line.contains('\n'));
        let parsed: Interaction = serde_json::from_str(&line).unwrap();
        assert_eq!(parsed.response.body, i.response.body);
    }

    #[tokio::test]
    async fn a_failed_save_is_retried_with_the_next_interaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        // A directory where the cassette goes: the answer still goes out, and the failure is
        // kept.
        std::fs::create_dir(&path).unwrap();
        let recorder = Recorder::new(&path, Cassette::new());
        let saver = recorder.spawn_saver().unwrap();
        recorder.append(&interaction(1)).await;
        assert!(recorder.summary().unsaved.is_some());
        std::fs::remove_dir(&path).unwrap();
        recorder.append(&interaction(2)).await;
        let summary = recorder.summary();
        assert_eq!(summary.unsaved, None, "{summary:?}");
        assert_eq!(Cassette::load(&path).unwrap().interactions.len(), 2);
        recorder.close();
        saver.await.unwrap();
    }
}
