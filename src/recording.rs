//! Recording: appending interactions to a cassette, each on disk before its answer goes out.
//!
//! A request hands its exchange to [`Recorder::append`] as it captured it: the request
//! redacted, the answer's headers as redacted lines and its body only copied (see
//! [`crate::capture::Capture::answer`]). One saver thread, off the async runtime, does the
//! rest: it redacts the body ([`Capture::answer_body`]), prints the interaction as one JSON line
//! and appends it to the cassette's recording log ([`crate::cassette::RecordingLog`]), which
//! loading applies. `append` returns once the log holds the line, so a kill loses at most the
//! exchanges in flight. Appends that arrive while a save runs are written together by the
//! next one, so concurrent clients share the disk work. Once its line is written, the saver
//! keeps nothing of an interaction: a recording's memory does not grow with its length.
//!
//! The file itself is written twice: at the first save, as the recording started (no
//! interactions for a fresh recording, the loaded ones for `new-episodes`), so the log has a
//! file to continue; and when the recorder closes (shutdown), whole and review-friendly, with
//! every interaction pretty-printed and JSON bodies as JSON
//! ([`crate::cassette::Body::settled`]), after which the log is removed. This run's
//! interactions are read back from the log for that, a part at a time. Printing that form for
//! every exchange, on the request's path, was what cost record most of its throughput; a log
//! line costs a fraction of it.

use std::io::{self, BufRead, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::capture::{AnswerBodies, Capture, CapturedAnswer};
use crate::cassette::recording_log::malformed_line;
use crate::cassette::{
    format, recording_log_path, remove_recording_log, save_with, write_new, Body, Cassette,
    CassetteError, Durability, Interaction, RecordedRequest, RecordingLog, RecordingLogHeader,
};

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

/// An exchange on its way to the cassette, as the request captured it.
#[derive(Debug)]
pub struct Captured {
    /// Already redacted.
    pub request: RecordedRequest,
    /// Headers redacted; the body still to be redacted by the saver.
    pub answer: CapturedAnswer,
    pub latency_ms: Option<u64>,
}

struct State {
    /// Appended, not yet taken by the saver.
    pending: Vec<Captured>,
    /// How many interactions this run appended.
    appended: u64,
    closed: bool,
    /// The saver sleeps until woken ([`Recorder::wake`]); cleared by whoever wakes it. Waking
    /// costs a system call, which appends made while the saver is busy skip.
    saver_asleep: bool,
    last_error: Option<String>,
}

/// Appends interactions to one cassette file.
pub struct Recorder {
    path: PathBuf,
    /// The cassette as the recording started, each interaction printed as it stands in the file.
    start: Snapshot,
    state: Mutex<State>,
    /// Something was appended, or the recorder closed (to the saver).
    wake: Condvar,
    /// The number of this run's appends that are on disk.
    saved: watch::Sender<u64>,
}

impl Recorder {
    /// A recorder that writes to `path`, starting from `cassette` (empty for a fresh recording,
    /// the loaded file for `new-episodes`). Nothing is written until the first append.
    pub fn new(path: &Path, cassette: Cassette) -> Arc<Self> {
        let texts = cassette.interactions.iter().map(render).collect();
        Self::continuing(path, cassette, texts)
    }

    /// A recorder that writes to `path`, starting from the cassette whose top level is `top`
    /// (its interactions are not looked at) and whose interactions print as `texts` (each made
    /// with [`render`]): how `new-episodes` starts, from interactions printed as they were
    /// loaded, on every core, instead of from a loaded cassette. Nothing is written until the
    /// first append.
    pub fn continuing(path: &Path, top: Cassette, texts: Vec<Arc<str>>) -> Arc<Self> {
        let start = Snapshot {
            texts,
            version: top.version,
            recorded_with: top.recorded_with,
            upstream: top.upstream,
        };
        Arc::new(Self {
            path: path.to_owned(),
            start,
            state: Mutex::new(State {
                pending: Vec::new(),
                appended: 0,
                closed: false,
                saver_asleep: false,
                last_error: None,
            }),
            wake: Condvar::new(),
            saved: watch::Sender::new(0),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the saver thread, which redacts answers' bodies with `capture`;
    /// [`Recorder::close`] ends it after the last save, and the returned task completes then.
    /// Call inside the runtime.
    ///
    /// # Errors
    /// When no thread can be started.
    pub fn spawn_saver(self: &Arc<Self>, capture: Capture) -> std::io::Result<JoinHandle<()>> {
        let recorder = Arc::clone(self);
        let saving = crate::worker::spawn("cassette-saver", move || recorder.save_loop(&capture))?;
        Ok(tokio::spawn(async move {
            if !saving.await.unwrap_or(false) {
                tracing::error!(
                    "the cassette saver failed; the cassette may miss the last interactions"
                );
            }
        }))
    }

    /// Adds an interaction and waits until the cassette on disk (its recording log) holds it.
    pub async fn append(&self, captured: Captured) {
        let (generation, asleep) = {
            let mut state = self.state.lock().expect("recorder lock poisoned");
            state.pending.push(captured);
            state.appended += 1;
            (state.appended, std::mem::take(&mut state.saver_asleep))
        };
        if asleep {
            self.wake.notify_one();
        }
        let mut saved = self.saved.subscribe();
        // An error means the saver is gone (shutdown); the interaction is still in memory.
        let _ = saved.wait_for(|done| *done >= generation).await;
    }

    /// Asks the saver to write what is pending, write the cassette whole, and stop.
    pub fn close(&self) {
        self.state.lock().expect("recorder lock poisoned").closed = true;
        self.wake.notify_one();
    }

    pub fn summary(&self) -> RecordingSummary {
        let state = self.state.lock().expect("recorder lock poisoned");
        RecordingSummary {
            interactions: self.start.texts.len()
                + usize::try_from(state.appended).unwrap_or(usize::MAX),
            recorded: state.appended,
            unsaved: state.last_error.clone(),
        }
    }

    /// Saves whenever something was appended (several appends share a save), to the log; at
    /// close, writes the cassette whole (see the module documentation). The saves between
    /// answers survive a crash of the process but do not wait for the disk; the last one is
    /// synced.
    fn save_loop(&self, capture: &Capture) {
        let mut log = Log::default();
        loop {
            let (batch, generation, closed) = {
                let mut state = self.state.lock().expect("recorder lock poisoned");
                while !state.closed && state.pending.is_empty() {
                    state.saver_asleep = true;
                    state = self.wake.wait(state).expect("recorder lock poisoned");
                }
                (
                    std::mem::take(&mut state.pending),
                    state.appended,
                    state.closed,
                )
            };
            let mut bodies = AnswerBodies::new(capture, batch.len());
            // `log.unwritten` only grows while the batch is printed.
            let mut before: Option<Printed> = None;
            for captured in batch {
                let logged = Logged::new(&mut bodies, captured);
                let escaped = logged.write_line(&mut log.unwritten, before.as_ref());
                log.unwritten.push(b'\n');
                before = escaped.map(|text_body| Printed { logged, text_body });
            }
            // A failed save is retried with the next interaction, and at close.
            let error = if log.open.is_none() && log.unwritten.is_empty() {
                None
            } else if closed {
                match self.write_whole(&mut log) {
                    // Only now: until the file holds them, the log's interactions live there.
                    Ok(()) => {
                        if let Err(err) = remove_recording_log(&self.path) {
                            // The file is whole; a log left beside it no longer applies.
                            tracing::warn!(cassette.path = %self.path.display(), cause = %crate::error::chain(&err), "the cassette is written whole, but its recording log could not be removed; it no longer applies to the cassette and can be deleted");
                        }
                        None
                    }
                    Err(err) => {
                        // Then at least the log holds every interaction.
                        let _ = self.write_log(&mut log);
                        Some(err)
                    }
                }
            } else {
                self.write_log(&mut log).err()
            };
            match &error {
                None => {
                    tracing::debug!(cassette.path = %self.path.display(), whole = closed, "saved cassette");
                }
                Some(err) if closed => {
                    tracing::error!(cassette.path = %self.path.display(), cause = %crate::error::chain(err), "cannot write the cassette whole; what was saved before stays, with its recording log");
                }
                Some(err) => {
                    tracing::error!(cassette.path = %self.path.display(), cause = %crate::error::chain(err), "cannot save cassette; will retry on the next interaction");
                }
            }
            self.state
                .lock()
                .expect("recorder lock poisoned")
                .last_error = error.map(|err| crate::error::chain(&err));
            self.saved.send_replace(generation);
            if closed {
                return;
            }
        }
    }

    /// Appends the unwritten lines to the log; at the first save, writes the file as the
    /// recording started first, and starts the log after it.
    fn write_log(&self, log: &mut Log) -> Result<(), CassetteError> {
        let open = match &mut log.open {
            Some(open) => open,
            None => {
                let header = match log.file {
                    Some(header) => header,
                    None => {
                        let text = self.start.to_text();
                        save_with(&self.path, text.as_bytes(), Durability::ProcessCrash)?;
                        *log.file.insert(RecordingLogHeader {
                            ghes_vcr_recording_log: 1,
                            extends_bytes: text.len() as u64,
                            extends_interactions: self.start.texts.len(),
                        })
                    }
                };
                log.open.insert(RecordingLog::create(&self.path, header)?)
            }
        };
        open.append(&log.unwritten)?;
        log.unwritten.clear();
        if log.unwritten.capacity() > UNWRITTEN_KEPT {
            // One large answer's line is not held for the rest of the recording.
            log.unwritten = Vec::new();
        }
        Ok(())
    }

    /// Writes the cassette whole (synced), with every interaction settled for review (this
    /// run's read back from the log), and closes the log, which it replaces.
    fn write_whole(&self, log: &mut Log) -> Result<(), CassetteError> {
        let write_err = |source| CassetteError::Write {
            path: self.path.clone(),
            source,
        };
        // Streamed to the new file: a long recording's file is never in memory at once.
        write_new(&self.path, Durability::Synced, false, |file| {
            let mut text = FileText::new(&self.start, io::BufWriter::with_capacity(1 << 20, file))
                .map_err(write_err)?;
            for interaction in &self.start.texts {
                text.push(interaction).map_err(write_err)?;
            }
            let mut read = 0;
            if let Some(open) = &log.open {
                read = push_logged(open.lines()?, open.path(), 0, &mut text, &write_err)?;
            }
            let log_path = recording_log_path(&self.path);
            push_logged(&log.unwritten[..], &log_path, read, &mut text, &write_err)?;
            text.finish()
                .and_then(|mut out| out.flush())
                .map_err(write_err)
        })?;
        // Closed before the log is removed.
        log.open = None;
        Ok(())
    }
}

/// The saver's line buffer is dropped after a save when it grew past this.
const UNWRITTEN_KEPT: usize = 1 << 20;

/// How many logged interactions are read back and printed at a time when the file is written
/// whole: few enough that a long recording's log is never in memory at once.
const PRINTED_AT_A_TIME: usize = 4096;

/// What the saver has written to disk this run.
#[derive(Default)]
struct Log {
    /// The file as the recording started, once this run has written it: the log continues it.
    file: Option<RecordingLogHeader>,
    /// The log, from the save that started it: every interaction this run recorded but the
    /// unwritten ones.
    open: Option<RecordingLog>,
    /// Lines not in the log yet: the batch being saved, and those of a save that failed.
    unwritten: Vec<u8>,
}

/// Pushes the interactions logged in `lines` (whole lines, as [`Logged::write_line`] prints
/// them; `after` lines of the log at `path` came before) onto `file`, as they stand in the
/// cassette, settled for review: [`PRINTED_AT_A_TIME`] at a time, each part printed on every
/// core ([`crate::worker::map_on_cores`]), since shutdown waits for them. Returns how many
/// lines it read. Errors writing `file` are made with `write_err`.
fn push_logged(
    mut lines: impl BufRead,
    path: &Path,
    after: usize,
    file: &mut FileText<impl Write>,
    write_err: &impl Fn(io::Error) -> CassetteError,
) -> Result<usize, CassetteError> {
    let mut read = after;
    loop {
        let mut part = Vec::with_capacity(PRINTED_AT_A_TIME);
        while part.len() < PRINTED_AT_A_TIME {
            let mut line = Vec::new();
            match lines.read_until(b'\n', &mut line) {
                Ok(0) => break,
                Ok(_) => part.push(line),
                Err(source) => {
                    return Err(CassetteError::Read {
                        path: path.to_owned(),
                        source,
                    })
                }
            }
        }
        if part.is_empty() {
            return Ok(read - after);
        }
        let first = read;
        read += part.len();
        let printed = crate::worker::map_on_cores(part, |line| {
            serde_json::from_slice::<Interaction>(&line).map(|mut interaction| {
                interaction.response.body =
                    std::mem::take(&mut interaction.response.body).settled_to_print();
                format::interaction_at(&interaction, 2)
            })
        });
        for (index, text) in printed.into_iter().flatten().enumerate() {
            // After the header line.
            let text = text.map_err(|err| malformed_line(path, first + index + 2, &err))?;
            file.push(&text).map_err(write_err)?;
        }
    }
}

/// An interaction as the log holds it: the answer's body redacted (text, or JSON if redaction
/// changed it), its headers still the captured lines. It prints as an [`Interaction`] line.
#[derive(Debug)]
struct Logged {
    request: RecordedRequest,
    /// `unredacted` is gone: `body` holds the redacted body.
    answer: CapturedAnswer,
    latency_ms: Option<u64>,
}

impl Logged {
    /// Redacts an appended exchange's body with `bodies`, which the exchanges of one save share.
    fn new(bodies: &mut AnswerBodies<'_>, captured: Captured) -> Self {
        let Captured {
            request,
            mut answer,
            latency_ms,
        } = captured;
        if let Some(raw) = answer.unredacted.take() {
            answer.body = bodies.redacted(raw);
        }
        Self {
            request,
            answer,
            latency_ms,
        }
    }

    /// Appends the log line (without its line break): what `serde_json` prints for this as an
    /// [`Interaction`] (the form the log is read back in), byte for byte, without building one
    /// (the headers stay the captured lines), and with the answer's header lines and text body
    /// escaped by `json-escape-simd` ([`push_json_string`]). `serde_json` escapes a byte at a time, and escaping a
    /// GHES answer's 28 header pairs and 1.9 KB body was most of each line (53,900 instructions
    /// for the line then, 21,900 now).
    ///
    /// A text body equal to the one of `before`, a line already in `out`, is copied from there
    /// rather than escaped again: legacy clients repeat the same calls and get the same answers,
    /// and escaping a GHES body, mostly quotes, was about 10,000 instructions. Returns where
    /// this line's text body lies escaped in `out`, if it has one.
    fn write_line(&self, out: &mut Vec<u8>, before: Option<&Printed>) -> Option<Range<usize>> {
        let answer = &self.answer;
        out.extend_from_slice(br#"{"request":"#);
        // Printing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &self.request);
        out.extend_from_slice(br#","response":{"status":"#);
        out.extend_from_slice(itoa::Buffer::new().format(answer.status).as_bytes());
        out.extend_from_slice(br#","headers":["#);
        for (i, (name, value)) in crate::capture::header_lines(&answer.headers).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'[');
            push_json_string(name, out);
            out.push(b',');
            push_json_string(value, out);
            out.push(b']');
        }
        out.push(b']');
        let mut escaped = None;
        match &answer.body {
            Body::Empty => {}
            Body::Text(text) => {
                out.extend_from_slice(br#","body":{"text":"#);
                let start = out.len();
                match before {
                    Some(before) if before.logged.answer.body == answer.body => {
                        out.extend_from_within(before.text_body.clone());
                    }
                    _ => push_json_string(text, out),
                }
                escaped = Some(start..out.len());
                out.push(b'}');
            }
            body => {
                out.extend_from_slice(br#","body":"#);
                let _ = serde_json::to_writer(&mut *out, body);
            }
        }
        out.push(b'}');
        if let Some(latency) = self.latency_ms {
            out.extend_from_slice(br#","latency_ms":"#);
            out.extend_from_slice(itoa::Buffer::new().format(latency).as_bytes());
        }
        out.push(b'}');
        escaped
    }
}

/// A line printed into the unwritten part of the log, and where its text body lies escaped in
/// it ([`Logged::write_line`]).
struct Printed {
    logged: Logged,
    text_body: Range<usize>,
}

/// Text up to this long is escaped with `json-escape-simd`, which first reserves six times the
/// text's length (room for its widest escapes); a longer body (an answer may be up to 100 MiB)
/// is escaped by `serde_json`, which reserves nothing ahead.
const SIMD_ESCAPE_LIMIT: usize = 1 << 20;

/// Appends `text` as a JSON string, quotes included, as `serde_json` prints it.
fn push_json_string(text: &str, out: &mut Vec<u8>) {
    if text.len() <= SIMD_ESCAPE_LIMIT {
        json_escape_simd::escape_into(text, out);
    } else {
        // Printing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

/// One interaction as it stands in the file (inside `"interactions"`, two levels deep).
pub fn render(interaction: &Interaction) -> Arc<str> {
    Arc::from(format::interaction_at(interaction, 2))
}

/// A cassette to write: the top level and the interactions' texts.
#[derive(Clone)]
struct Snapshot {
    version: u32,
    recorded_with: String,
    upstream: String,
    texts: Vec<Arc<str>>,
}

impl Snapshot {
    /// The file, exactly as [`Cassette::to_pretty_json`] prints it.
    fn to_text(&self) -> String {
        let size = self.texts.iter().map(|t| t.len() + 6).sum::<usize>() + 256;
        let mut file = FileText::new(self, Vec::with_capacity(size)).expect("writes to memory");
        for text in &self.texts {
            file.push(text).expect("writes to memory");
        }
        let text = file.finish().expect("writes to memory");
        String::from_utf8(text).expect("printed from strings")
    }
}

/// Writes a cassette file's text to `out`, exactly as [`Cassette::to_pretty_json`] prints it,
/// an interaction at a time from their printed texts ([`render`]).
struct FileText<W> {
    out: W,
    /// What closes the file: after the interactions, or the file without them.
    end: String,
    interactions: usize,
}

impl<W: Write> FileText<W> {
    /// Starts the file with `top`'s top level (its interactions are not looked at).
    fn new(top: &Snapshot, mut out: W) -> io::Result<Self> {
        let empty = Cassette {
            version: top.version,
            recorded_with: top.recorded_with.clone(),
            upstream: top.upstream.clone(),
            interactions: Vec::new(),
        }
        .to_pretty_json();
        let head = empty
            .trim_end()
            .trim_end_matches('}')
            .trim_end()
            .trim_end_matches("[]");
        out.write_all(head.as_bytes())?;
        let end = empty[head.len()..].to_owned();
        Ok(Self {
            out,
            end,
            interactions: 0,
        })
    }

    fn push(&mut self, interaction: &str) -> io::Result<()> {
        self.out.write_all(if self.interactions == 0 {
            b"[\n    "
        } else {
            b",\n    "
        })?;
        self.out.write_all(interaction.as_bytes())?;
        self.interactions += 1;
        Ok(())
    }

    /// Ends the file, and hands back what it was written to.
    fn finish(mut self) -> io::Result<W> {
        if self.interactions == 0 {
            self.out.write_all(self.end.as_bytes())?;
        } else {
            self.out.write_all(b"\n  ]\n}\n")?;
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Body, RecordedRequest, RecordedResponse};
    use crate::redaction::Secret;

    fn request(n: u16) -> RecordedRequest {
        RecordedRequest {
            method: "GET".into(),
            path: format!("/api/v3/authorizations/{n}"),
            ..RecordedRequest::default()
        }
    }

    fn interaction(n: u16) -> Interaction {
        Interaction {
            request: request(n),
            response: RecordedResponse {
                status: 200,
                headers: vec![],
                body: Body::Empty,
            },
            latency_ms: None,
        }
    }

    /// An exchange as the proxy hands it over, answering `body`.
    fn captured(n: u16, body: &[u8]) -> Captured {
        Captured {
            request: request(n),
            answer: CapturedAnswer {
                status: 200,
                headers: "content-type: application/json; charset=utf-8\n".into(),
                body: Body::Empty,
                unredacted: (!body.is_empty())
                    .then(|| Secret::new(bytes::Bytes::copy_from_slice(body))),
            },
            latency_ms: None,
        }
    }

    fn start(path: &Path, cassette: Cassette) -> (Arc<Recorder>, JoinHandle<()>) {
        let recorder = Recorder::new(path, cassette);
        let saver = recorder.spawn_saver(Capture::default()).unwrap();
        (recorder, saver)
    }

    /// How many interactions loading the cassette finds while the recorder runs, then after
    /// it closes.
    async fn loaded_while_recording_then_closed(
        path: &Path,
        recorder: &Recorder,
        saver: JoinHandle<()>,
    ) -> [usize; 2] {
        let count = || Cassette::load(path).unwrap().interactions.len();
        let recording = count();
        recorder.close();
        saver.await.unwrap();
        [recording, count()]
    }

    #[tokio::test]
    async fn append_returns_once_the_cassette_on_disk_holds_the_interaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let (recorder, saver) = start(&path, Cassette::new());
        assert!(
            !path.exists(),
            "nothing is written before the first interaction"
        );
        for n in 0..3 {
            recorder.append(captured(n, b"")).await;
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
        let (recorder, saver) = start(&path, Cassette::new());
        let tasks: Vec<_> = (0..20)
            .map(|n| {
                let recorder = Arc::clone(&recorder);
                tokio::spawn(async move { recorder.append(captured(n, b"{}")).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            loaded_while_recording_then_closed(&path, &recorder, saver).await,
            [20, 20]
        );
    }

    #[tokio::test]
    async fn saves_append_to_the_log_which_loading_applies_and_close_writes_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let log = crate::cassette::recording_log_path(&path);
        let mut start_from = Cassette::new();
        start_from.interactions.push(interaction(100));
        let (recorder, saver) = start(&path, start_from.clone());
        for n in 0..5 {
            recorder.append(captured(n, b"")).await;
        }
        // The file is the cassette as the recording started; the log holds what it added.
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            start_from.to_pretty_json()
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 6);
        let loaded = Cassette::load(&path).unwrap();
        let paths: Vec<&str> = loaded
            .interactions
            .iter()
            .map(|i| i.request.path.as_str())
            .collect();
        let expected: Vec<String> = [100]
            .into_iter()
            .chain(0..5)
            .map(|n| format!("/api/v3/authorizations/{n}"))
            .collect();
        assert_eq!(paths, expected);
        recorder.close();
        saver.await.unwrap();
        assert!(!log.exists(), "closing writes the file whole");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            loaded.to_pretty_json()
        );
    }

    #[tokio::test]
    async fn answers_are_logged_redacted_as_text_and_written_as_json_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let log = crate::cassette::recording_log_path(&path);
        let (recorder, saver) = start(&path, Cassette::new());
        let token = format!("gho_{}", "q".repeat(36));
        let secret = format!(r#"{{"id":1,"token":"{token}","note":"ci"}}"#);
        let bodies: [&[u8]; 4] = [
            br#"[{"id":1,"token":""}]"#,
            secret.as_bytes(),
            b"{ \"spaced\": true }",
            b"not json",
        ];
        for (n, body) in (0..).zip(bodies) {
            recorder.append(captured(n, body)).await;
        }
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(!logged.contains(&token), "the log never holds the token");
        let bodies_of = |cassette: Cassette| -> Vec<Body> {
            cassette
                .interactions
                .into_iter()
                .map(|i| i.response.body)
                .collect()
        };
        let while_recording = bodies_of(Cassette::load(&path).unwrap());
        recorder.close();
        saver.await.unwrap();
        let file = std::fs::read_to_string(&path).unwrap();
        assert!(!file.contains(&token));
        let written = bodies_of(Cassette::load(&path).unwrap());
        assert_eq!(
            written, while_recording,
            "loading settles the log as closing does"
        );
        assert_eq!(
            written[0],
            Body::Json(serde_json::json!([{"id": 1, "token": ""}]).into())
        );
        assert_eq!(written[1].as_json().unwrap()["token"], "");
        assert_eq!(written[1].as_json().unwrap()["note"], "ci");
        assert_eq!(
            written[2],
            Body::Text("{ \"spaced\": true }".into()),
            "JSON that compact printing would change stays exact"
        );
        assert_eq!(written[3], Body::Text("not json".into()));
        // Each settled answer is what capturing it whole stores.
        let capture = Capture::default();
        for (body, written) in bodies.iter().zip(&written) {
            let stored = capture.response(http::StatusCode::OK, &http::HeaderMap::new(), body);
            assert_eq!(&stored.body, written);
        }
    }

    /// The log lines of `count` small interactions, and the file those make whole.
    fn logged_lines(count: u16) -> (Vec<u8>, String) {
        let mut lines = Vec::new();
        let mut cassette = Cassette::new();
        for n in 0..count {
            let logged = Logged {
                request: request(n),
                answer: CapturedAnswer {
                    status: 200,
                    headers: String::new(),
                    body: Body::Text(format!("{{\"id\":{n}}}")),
                    unredacted: None,
                },
                latency_ms: None,
            };
            logged.write_line(&mut lines, None);
            lines.push(b'\n');
            let mut expected = interaction(n);
            expected.response.body = Body::Json(serde_json::json!({ "id": n }).into());
            cassette.interactions.push(expected);
        }
        (lines, cassette.to_pretty_json())
    }

    fn empty_snapshot() -> Snapshot {
        let cassette = Cassette::new();
        Snapshot {
            version: cassette.version,
            recorded_with: cassette.recorded_with,
            upstream: cassette.upstream,
            texts: vec![],
        }
    }

    /// What `logged` stands for as an interaction, with `body` as its answer's body.
    fn as_interaction(logged: &Logged, body: Body) -> Interaction {
        Interaction {
            request: logged.request.clone(),
            response: RecordedResponse {
                status: logged.answer.status,
                headers: logged.answer.header_pairs(),
                body,
            },
            latency_ms: logged.latency_ms,
        }
    }

    /// For writing to memory, which does not fail.
    fn unused(source: std::io::Error) -> CassetteError {
        panic!("{source}")
    }

    #[test]
    fn a_long_log_is_read_back_in_parts_in_order() {
        let count = u16::try_from(2 * PRINTED_AT_A_TIME + 5).unwrap();
        let (lines, expected) = logged_lines(count);
        let mut file = FileText::new(&empty_snapshot(), Vec::new()).unwrap();
        let read = push_logged(
            &lines[..],
            Path::new("c.json.recording"),
            0,
            &mut file,
            &unused,
        )
        .unwrap();
        assert_eq!(read, usize::from(count));
        assert_eq!(String::from_utf8(file.finish().unwrap()).unwrap(), expected);
    }

    #[test]
    fn a_malformed_logged_line_names_the_log_and_the_line() {
        let (mut lines, _) = logged_lines(3);
        lines.extend_from_slice(b"{\"request\":1}\n");
        let mut file = FileText::new(&empty_snapshot(), Vec::new()).unwrap();
        let err = push_logged(
            &lines[..],
            Path::new("c.json.recording"),
            10,
            &mut file,
            &unused,
        )
        .unwrap_err()
        .to_string();
        // 10 lines before these, the header line, then the fourth.
        assert!(err.starts_with("cassette c.json.recording:15:"), "{err}");
    }

    #[test]
    fn a_log_line_reads_back_as_the_interaction() {
        let capture = Capture::default();
        for (latency_ms, body) in [(None, &b""[..]), (Some(12), br#"{"id":1,"token":""}"#)] {
            let mut captured = captured(7, body);
            captured
                .answer
                .headers
                .push_str("x-empty: \nlink: <{{origin}}/x>; rel=\"next\"\n");
            captured.latency_ms = latency_ms;
            let logged = Logged::new(&mut AnswerBodies::new(&capture, 1), captured);
            let mut line = Vec::new();
            logged.write_line(&mut line, None);
            let mut read: Interaction = serde_json::from_slice(&line).unwrap();
            read.response.body = read.response.body.settled();
            assert_eq!(
                read,
                as_interaction(&logged, logged.answer.body.clone().settled())
            );
            assert_eq!(read.response.headers.len(), 3);
            assert_eq!(read.response.headers[1], ("x-empty".into(), String::new()));
        }
    }

    #[test]
    fn a_log_line_is_what_serde_json_prints() {
        // Text made of what JSON escapes (quotes, backslashes, every control character, DEL),
        // non-ASCII, and plain runs long enough for the SIMD path, in pseudo-random mixes.
        let alphabet: Vec<String> = (0u8..0x20)
            .map(|b| char::from(b).to_string())
            .chain(["\"", "\\", "/", "\u{7f}", "é", "\u{2028}", "😀", "\u{9b}"].map(String::from))
            .chain(["a", "{\"id\":1}", &"x".repeat(40)].map(String::from))
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut text = |parts: usize| -> String {
            (0..parts)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    alphabet[usize::try_from(seed % alphabet.len() as u64).unwrap()].as_str()
                })
                .collect()
        };
        let mut lines = Vec::new();
        let mut before = None;
        for case in 0..300 {
            let headers = (0..case % 5)
                .map(|_| format!("x-{}: {}\n", case, text(case % 9).replace('\n', " ")))
                .collect::<String>();
            let body = match case % 4 {
                0 => Body::Empty,
                1 => Body::Binary(bytes::Bytes::from_static(&[0, 159, 255])),
                2 => Body::Json(serde_json::json!({ "note": text(3) }).into()),
                // Past the SIMD escaper's limit once, at its edge once.
                _ if case == 3 => Body::Text(text(1) + &"\"x".repeat(SIMD_ESCAPE_LIMIT / 2)),
                _ if case == 7 => Body::Text("y".repeat(SIMD_ESCAPE_LIMIT)),
                _ => Body::Text(text(case % 50)),
            };
            let logged = Logged {
                request: request(u16::try_from(case).unwrap()),
                answer: CapturedAnswer {
                    status: 200 + u16::try_from(case % 300).unwrap(),
                    headers,
                    body,
                    unredacted: None,
                },
                latency_ms: (case % 3 == 0).then_some(case as u64),
            };
            let expected =
                serde_json::to_string(&as_interaction(&logged, logged.answer.body.clone()))
                    .unwrap();
            // After the last line with a text body (another text), then once more after itself
            // (its escaped body copied).
            let start = lines.len();
            let escaped = logged.write_line(&mut lines, before.as_ref());
            assert_eq!(
                std::str::from_utf8(&lines[start..]).unwrap(),
                expected,
                "case {case}"
            );
            if let Some(text_body) = escaped {
                let line = Printed { logged, text_body };
                let start = lines.len();
                line.logged.write_line(&mut lines, Some(&line));
                assert_eq!(
                    std::str::from_utf8(&lines[start..]).unwrap(),
                    expected,
                    "case {case}, repeated"
                );
                before = Some(line);
            }
        }
    }

    #[tokio::test]
    async fn a_failed_save_is_retried_with_the_next_interaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        // A directory where the cassette goes: the answer still goes out, and the failure is
        // kept.
        std::fs::create_dir(&path).unwrap();
        let (recorder, saver) = start(&path, Cassette::new());
        recorder.append(captured(1, b"")).await;
        assert!(recorder.summary().unsaved.is_some());
        std::fs::remove_dir(&path).unwrap();
        recorder.append(captured(2, b"")).await;
        let summary = recorder.summary();
        assert_eq!(summary.unsaved, None, "{summary:?}");
        assert_eq!(
            loaded_while_recording_then_closed(&path, &recorder, saver).await,
            [2, 2]
        );
    }

    #[tokio::test]
    async fn the_file_written_at_close_holds_what_a_log_deleted_before_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let (recorder, saver) = start(&path, Cassette::new());
        for n in 0..3 {
            recorder.append(captured(n, br#"{"id":1}"#)).await;
        }
        // The saver keeps nothing in memory once logged; it reads the log back through the
        // file it holds open.
        std::fs::remove_file(crate::cassette::recording_log_path(&path)).unwrap();
        assert_eq!(
            loaded_while_recording_then_closed(&path, &recorder, saver).await,
            [0, 3]
        );
    }

    #[tokio::test]
    async fn a_log_that_cannot_be_read_back_at_close_is_left_with_the_file_as_it_was() {
        use std::io::{Seek as _, Write as _};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let log = crate::cassette::recording_log_path(&path);
        let (recorder, saver) = start(&path, Cassette::new());
        for n in 0..2 {
            recorder.append(captured(n, b"")).await;
        }
        let file_before = std::fs::read(&path).unwrap();
        // Something overwrites the second line's start in place.
        let first_line = std::fs::read_to_string(&log).unwrap().find('\n').unwrap();
        let second_line = std::fs::read_to_string(&log).unwrap()[first_line + 1..]
            .find('\n')
            .unwrap()
            + first_line
            + 2;
        let mut tamper = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
        tamper
            .seek(std::io::SeekFrom::Start(second_line as u64))
            .unwrap();
        tamper.write_all(b"#").unwrap();
        recorder.close();
        saver.await.unwrap();
        let unsaved = recorder.summary().unsaved.unwrap();
        assert!(unsaved.contains("c.json.recording:3:"), "{unsaved}");
        assert_eq!(std::fs::read(&path).unwrap(), file_before);
        assert!(log.exists());
    }

    #[tokio::test]
    async fn a_log_deleted_while_recording_is_started_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let log = crate::cassette::recording_log_path(&path);
        let (recorder, saver) = start(&path, Cassette::new());
        recorder.append(captured(1, b"")).await;
        // The saver keeps the log open between saves: appending to the deleted file would
        // lose what the log is for.
        std::fs::remove_file(&log).unwrap();
        recorder.append(captured(2, b"")).await;
        assert_eq!(recorder.summary().unsaved, None);
        assert!(log.exists(), "the log is written again, whole");
        assert_eq!(
            loaded_while_recording_then_closed(&path, &recorder, saver).await,
            [2, 2]
        );
    }
}
