//! The journal's sled store: opening it, the writer task that batches entries into it, size
//! bounds, and queries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::sync::mpsc;

use tokio::task::JoinHandle;

use super::frame::{self, FrameError};
use super::{now_micros, Draft, Exchange, JournalConfig, JournalEntry, Mode};
use crate::capture::{AnswerBodies, Capture};

/// How many entries may wait for the writer before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 16_384;
/// The most entries written in one batch.
const BATCH: usize = 1024;
/// How long the writer lets entries gather after the first one before it writes them.
const GATHER: Duration = Duration::from_millis(10);
/// Entries are flushed at most this long after they were written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// The file in the journal directory that names the running proxy's admin origin.
pub const ADMIN_FILE: &str = "admin-url";

/// Why the journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("cannot open the journal {} (is another ghes-vcr using it? give each its own --journal DIR, or --no-journal)", dir.display())]
    Open {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot read the journal {}", dir.display())]
    Read {
        dir: PathBuf,
        #[source]
        source: sled::Error,
    },
    #[error("cannot start the journal writer for {}", dir.display())]
    Thread {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the journal record at {id} ({}) is not readable: it may be damaged or written by a newer ghes-vcr; read around it with --since/--until, or move the journal directory aside to start a new one", super::format_time(*id))]
    Entry {
        id: u64,
        #[source]
        source: FrameError,
    },
}

/// An exchange waiting for the writer. The queue holds them boxed: a bounded channel sets up
/// every slot when it is made, and 16,384 slots of even this size (the exchange itself comes
/// boxed from the proxy) would be 0.6 MB more resident from the start (8 MB with the exchange
/// unboxed, half of a replay's whole footprint).
struct Pending {
    exchange: Box<Exchange>,
    mode: Mode,
    client: Arc<str>,
    total: Duration,
}

/// Counters for `health` and `metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub queued: u64,
    pub written: u64,
    pub dropped: u64,
    pub entries: u64,
}

/// The running journal: a queue in front of one writer thread (`journal-writer`: sled blocks,
/// so it stays off the async runtime). The writer takes what is queued (up to a batch) and
/// writes it in one sled batch; what it wrote is flushed at most [`FLUSH_INTERVAL`] later, busy
/// or quiet (and at shutdown).
pub struct Journal {
    dir: PathBuf,
    body_limit: usize,
    db: sled::Db,
    sender: std::sync::Mutex<Option<mpsc::SyncSender<Box<Pending>>>>,
    queued: AtomicU64,
    written: Arc<AtomicU64>,
    dropped: AtomicU64,
    entries: Arc<AtomicU64>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Opens the sled database in `dir`, creating it.
///
/// # Errors
/// [`JournalError::Open`], e.g. when another process holds it.
pub fn open_db(dir: &Path) -> Result<sled::Db, JournalError> {
    sled::Config::new()
        .path(dir)
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|source| JournalError::Open {
            dir: dir.to_owned(),
            source,
        })
}

impl Journal {
    /// Opens the journal and starts its writer thread, which redacts captured answers' bodies
    /// with `capture` before it stores them; the returned task completes when the writer has
    /// written and flushed everything (after [`Journal::close`]). Blocking (sled recovery); call
    /// at start-up, inside the runtime.
    ///
    /// # Errors
    /// [`JournalError::Open`], or [`JournalError::Thread`] when no thread can be started.
    pub fn start(
        config: &JournalConfig,
        capture: Capture,
    ) -> Result<(Arc<Self>, JoinHandle<()>), JournalError> {
        let db = open_db(&config.dir)?;
        let entries = Arc::new(AtomicU64::new(count_entries(&db)));
        let written = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::sync_channel(QUEUE_CAPACITY);
        let journal = Arc::new(Self {
            dir: config.dir.clone(),
            body_limit: config.body_limit,
            db: db.clone(),
            sender: std::sync::Mutex::new(Some(sender)),
            queued: AtomicU64::new(0),
            written: Arc::clone(&written),
            dropped: AtomicU64::new(0),
            entries: Arc::clone(&entries),
        });
        let writer = Writer {
            db,
            config: config.clone(),
            capture,
            last_key: 0,
            entries,
            written,
            unflushed: 0,
            last_flush: std::time::Instant::now(),
        };
        let writing = crate::worker::spawn("journal-writer", move || writer.run(&receiver))
            .map_err(|source| JournalError::Thread {
                dir: config.dir.clone(),
                source,
            })?;
        let task = tokio::spawn(async move {
            if !writing.await.unwrap_or(false) {
                tracing::error!("the journal writer failed; the last entries may be missing");
            }
        });
        Ok((journal, task))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bodies larger than this are left out of entries.
    pub fn body_limit(&self) -> usize {
        self.body_limit
    }

    /// Queues an exchange; never waits. When the queue is full the entry is dropped and counted.
    pub fn record(&self, exchange: Box<Exchange>, mode: Mode, client: Arc<str>, total: Duration) {
        let sender = self.sender.lock().expect("journal lock poisoned");
        let Some(sender) = sender.as_ref() else {
            return;
        };
        match sender.try_send(Box::new(Pending {
            exchange,
            mode,
            client,
            total,
        })) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        journal.dropped = dropped,
                        "the journal writer is behind; entries are being dropped"
                    );
                }
            }
        }
    }

    /// Stops taking entries; the writer writes what is queued, flushes and ends.
    pub fn close(&self) {
        self.sender.lock().expect("journal lock poisoned").take();
    }

    pub fn stats(&self) -> JournalStats {
        let written = self.written.load(Ordering::Relaxed);
        JournalStats {
            queued: self.queued.load(Ordering::Relaxed).saturating_sub(written),
            written,
            dropped: self.dropped.load(Ordering::Relaxed),
            entries: self.entries.load(Ordering::Relaxed),
        }
    }

    /// Entries with `since <= id < until` and `id > after`, oldest first, at most `limit`.
    /// Blocking: call from `spawn_blocking`.
    ///
    /// # Errors
    /// [`JournalError::Read`] or [`JournalError::Entry`].
    pub fn query(&self, filter: &Filter) -> Result<Vec<JournalEntry>, JournalError> {
        query(&self.db, &self.dir, filter)
    }
}

/// Which entries a query wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Microseconds; inclusive.
    pub since: Option<u64>,
    /// Microseconds; exclusive.
    pub until: Option<u64>,
    /// Only entries with a larger id (for `tail --follow`).
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

/// Reads entries from an open database.
///
/// # Errors
/// [`JournalError::Read`] or [`JournalError::Entry`].
pub fn query(
    db: &sled::Db,
    dir: &Path,
    filter: &Filter,
) -> Result<Vec<JournalEntry>, JournalError> {
    let start = filter
        .since
        .unwrap_or(0)
        .max(filter.after.map_or(0, |after| after.saturating_add(1)));
    let end = filter.until.unwrap_or(u64::MAX);
    let mut out = Vec::new();
    if start >= end {
        return Ok(out);
    }
    let read_error = |source| JournalError::Read {
        dir: dir.to_owned(),
        source,
    };
    // The frame before `start` may hold entries from `start` on.
    let straddling = db
        .range(..start.to_be_bytes())
        .next_back()
        .transpose()
        .map_err(read_error)?;
    let records = straddling
        .into_iter()
        .map(Ok)
        .chain(db.range(start.to_be_bytes()..end.to_be_bytes()));
    for record in records {
        let (key, value) = record.map_err(read_error)?;
        let unreadable = |source| JournalError::Entry {
            id: key_id(&key),
            source,
        };
        // Frames with no entry in range are passed over undecoded.
        let wanted = frame::summary(&value)
            .map_err(unreadable)?
            .ids()
            .is_none_or(|mut ids| ids.any(|id| id >= start && id < end));
        if !wanted {
            continue;
        }
        let entries = frame::decode(&value).map_err(unreadable)?;
        for mut entry in entries {
            if entry.id < start || entry.id >= end {
                continue;
            }
            show_json_as_json(&mut entry);
            out.push(entry);
            if filter.limit.is_some_and(|limit| out.len() >= limit) {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// How many entries the journal holds (frames say so in their headers).
fn count_entries(db: &sled::Db) -> u64 {
    db.iter()
        .values()
        .filter_map(Result::ok)
        .filter_map(|record| frame::summary(&record).ok().map(|summary| summary.count()))
        .sum()
}

/// Answers are journaled as text when redaction had nothing to remove (it saves a parse per
/// exchange); readers get JSON as JSON, as a cassette holds it.
fn show_json_as_json(entry: &mut JournalEntry) {
    if let Some(response) = entry.response.as_mut().and_then(Arc::get_mut) {
        if let crate::cassette::Body::Text(text) = &response.body {
            response.body = crate::cassette::Body::from_bytes(
                text.as_bytes(),
                crate::cassette::body::Fidelity::Exact,
            );
        }
    }
}

/// The id of the newest entry (the last of the last frame, whose key is its first), so ids
/// stay increasing across restarts even if the clock steps back.
fn last_id(db: &sled::Db) -> u64 {
    let Ok(Some((key, record))) = db.last() else {
        return 0;
    };
    frame::summary(&record)
        .ok()
        .and_then(|summary| summary.ids().and_then(|mut ids| ids.next_back()))
        .unwrap_or_else(|| key_id(&key))
}

fn key_id(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let len = key.len().min(8);
    bytes[8 - len..].copy_from_slice(&key[..len]);
    u64::from_be_bytes(bytes)
}

/// The one task that writes.
struct Writer {
    db: sled::Db,
    config: JournalConfig,
    /// Redacts the answers' bodies that the requests only copied.
    capture: Capture,
    /// The last key written, to keep keys unique and increasing.
    last_key: u64,
    entries: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    /// Entries applied to sled but not yet flushed.
    unflushed: u64,
    last_flush: std::time::Instant,
}

impl Writer {
    /// Writes until every sender is gone, then flushes.
    fn run(mut self, receiver: &mpsc::Receiver<Box<Pending>>) {
        self.last_key = last_id(&self.db);
        loop {
            // Wait for the first entry (flushing what was written once the flush interval is
            // up); then take what else is queued, up to a batch.
            let first = if self.unflushed == 0 {
                receiver.recv().ok()
            } else {
                let due = (self.last_flush + FLUSH_INTERVAL)
                    .saturating_duration_since(std::time::Instant::now());
                match receiver.recv_timeout(due) {
                    Ok(first) => Some(first),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        self.flush();
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            };
            let Some(first) = first else {
                break;
            };
            // Let a batch gather rather than waking for every exchange: under load each wake
            // costs the traffic CPU.
            std::thread::sleep(GATHER);
            let mut batch = Vec::with_capacity(BATCH);
            batch.push(*first);
            batch.extend(receiver.try_iter().take(BATCH - 1).map(|pending| *pending));
            self.write(batch);
        }
        self.flush();
        tracing::info!("journal flushed");
    }

    /// Writes one batch as one frame and applies the bounds; flushes when the last flush is
    /// [`FLUSH_INTERVAL`] old (the run loop flushes a quiet journal when the interval is up).
    /// Blocking.
    fn write(&mut self, pending: Vec<Pending>) {
        let mut bodies = AnswerBodies::new(&self.capture, pending.len());
        let drafts: Vec<Draft> = pending
            .into_iter()
            .map(|pending| {
                let mut draft = Draft::new(
                    *pending.exchange,
                    pending.mode,
                    &pending.client,
                    pending.total,
                    self.config.body_limit,
                    &mut bodies,
                );
                draft.entry.id = draft.entry.id.max(self.last_key + 1);
                self.last_key = draft.entry.id;
                draft
            })
            .collect();
        let Some(first) = drafts.first().map(|draft| draft.entry.id) else {
            return;
        };
        let record = match frame::encode(&drafts) {
            Ok(record) => record,
            Err(err) => {
                tracing::error!(cause = %err, "cannot encode journal entries");
                return;
            }
        };
        if let Err(err) = self.db.insert(first.to_be_bytes(), record) {
            tracing::error!(cause = %err, "cannot write to the journal");
            return;
        }
        let count = drafts.len() as u64;
        self.entries.fetch_add(count, Ordering::Relaxed);
        self.unflushed += count;
        self.enforce_bounds();
        if self.last_flush.elapsed() >= FLUSH_INTERVAL {
            self.flush();
        }
    }

    /// Makes what was written durable; `written` counts flushed entries only.
    fn flush(&mut self) {
        match self.db.flush() {
            Ok(_) => {
                self.written.fetch_add(self.unflushed, Ordering::Relaxed);
                self.unflushed = 0;
            }
            Err(err) => tracing::error!(cause = %err, "cannot flush the journal"),
        }
        self.last_flush = std::time::Instant::now();
    }

    /// Removes the oldest entries beyond `max_entries` and those older than `max_age`: whole
    /// frames while they are all to go, then the first entries of the frame that is only partly
    /// (its header marks them removed; nothing is decoded).
    fn enforce_bounds(&mut self) {
        let mut excess = self.config.max_entries.map_or(0, |max| {
            self.entries.load(Ordering::Relaxed).saturating_sub(max)
        });
        let cutoff = self.config.max_age.map(|age| {
            now_micros().saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX))
        });
        if excess == 0 && cutoff.is_none() {
            return;
        }
        let mut batch = sled::Batch::default();
        let mut removed = 0;
        for record in self.db.iter() {
            let Ok((key, value)) = record else { break };
            // An unreadable record was never counted: leave it for someone to look at.
            let Ok(summary) = frame::summary(&value) else {
                continue;
            };
            let count = summary.count();
            let too_old = cutoff.map_or(0, |cutoff| match summary.ids() {
                Some(ids) => ids.take_while(|id| *id < cutoff).count() as u64,
                None => u64::from(key_id(&key) < cutoff),
            });
            let out = excess.min(count).max(too_old);
            if out == 0 {
                break;
            }
            if out == count {
                batch.remove(key);
            } else if let Ok(cut) = frame::cut(&value, out) {
                batch.insert(key, cut);
            } else {
                break;
            }
            excess = excess.saturating_sub(out);
            removed += out;
            if out < count {
                break;
            }
        }
        if removed > 0 && self.db.apply_batch(batch).is_ok() {
            self.entries.fetch_sub(removed, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::frame::tests::entry;

    /// A writer over a fresh database holding `frames` (each a run of entry ids).
    fn writer_with(frames: &[std::ops::RangeInclusive<u64>], config: JournalConfig) -> Writer {
        let db = open_db(&config.dir).unwrap();
        for ids in frames {
            let drafts: Vec<Draft> = ids.clone().map(|id| entry(id).into()).collect();
            db.insert(ids.start().to_be_bytes(), frame::encode(&drafts).unwrap())
                .unwrap();
        }
        Writer {
            capture: Capture::default(),
            entries: Arc::new(AtomicU64::new(count_entries(&db))),
            db,
            config,
            last_key: 0,
            written: Arc::new(AtomicU64::new(0)),
            unflushed: 0,
            last_flush: std::time::Instant::now(),
        }
    }

    fn config(dir: &Path) -> JournalConfig {
        JournalConfig {
            dir: dir.to_owned(),
            explicit: true,
            max_entries: None,
            max_age: None,
            body_limit: 64 * 1024,
        }
    }

    fn ids(writer: &Writer, filter: &Filter) -> Vec<u64> {
        query(&writer.db, &writer.config.dir, filter)
            .unwrap()
            .iter()
            .map(|entry| entry.id)
            .collect()
    }

    #[test]
    fn queries_find_entries_inside_frames_including_one_that_starts_before_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer_with(&[1..=4, 5..=8, 9..=10], config(dir.path()));
        assert_eq!(writer.entries.load(Ordering::Relaxed), 10);
        let range = Filter {
            since: Some(3),
            until: Some(9),
            ..Filter::default()
        };
        assert_eq!(ids(&writer, &range), vec![3, 4, 5, 6, 7, 8]);
        let after = Filter {
            after: Some(6),
            limit: Some(3),
            ..Filter::default()
        };
        assert_eq!(ids(&writer, &after), vec![7, 8, 9]);
    }

    #[test]
    fn a_journal_written_by_earlier_builds_reads_on_and_is_bounded_with_frames_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer_with(&[6..=7], config(dir.path()));
        for id in [1u64, 2] {
            let bare = serde_json::to_vec(&entry(id)).unwrap();
            writer.db.insert(id.to_be_bytes(), bare).unwrap();
        }
        // Then a frame of JSON entries, as builds before MessagePack wrote them.
        let drafts: Vec<Draft> = (3..=5).map(|id| entry(id).into()).collect();
        let json_entries = frame::encode_json_entries(&drafts).unwrap();
        writer.db.insert(3u64.to_be_bytes(), json_entries).unwrap();
        assert_eq!(ids(&writer, &Filter::default()), vec![1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(count_entries(&writer.db), 7);
        let after = Filter {
            since: Some(2),
            ..Filter::default()
        };
        assert_eq!(ids(&writer, &after), vec![2, 3, 4, 5, 6, 7]);
        // The bounds cut the older kinds as they cut frames written now.
        writer.entries.store(7, Ordering::Relaxed);
        writer.config.max_entries = Some(3);
        writer.enforce_bounds();
        assert_eq!(ids(&writer, &Filter::default()), vec![5, 6, 7]);
        assert_eq!(count_entries(&writer.db), 3);
    }

    #[test]
    fn ids_continue_after_the_last_entry_of_the_last_frame() {
        let dir = tempfile::tempdir().unwrap();
        let future = now_micros() + 3_600_000_000;
        let writer = writer_with(&[1..=4, future..=future + 5], config(dir.path()));
        assert_eq!(last_id(&writer.db), future + 5);
    }

    #[test]
    fn max_entries_removes_whole_frames_then_the_first_entries_of_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = writer_with(
            &[1..=4, 5..=8, 9..=10],
            JournalConfig {
                max_entries: Some(3),
                ..config(dir.path())
            },
        );
        writer.enforce_bounds();
        assert_eq!(ids(&writer, &Filter::default()), vec![8, 9, 10]);
        assert_eq!(writer.entries.load(Ordering::Relaxed), 3);
        assert_eq!(count_entries(&writer.db), 3);
        assert_eq!(writer.db.len(), 2, "the first frame went whole");
        // Cutting again cuts the same frame further.
        writer.config.max_entries = Some(2);
        writer.enforce_bounds();
        assert_eq!(ids(&writer, &Filter::default()), vec![9, 10]);
        assert_eq!(count_entries(&writer.db), 2);
    }

    #[test]
    fn max_age_removes_entries_older_than_the_cutoff_even_inside_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let now = now_micros();
        let hour = 3_600_000_000;
        let old = now - 3 * hour;
        let mut writer = writer_with(
            &[
                old..=old + 2,
                now - hour - 1..=now - hour + 1,
                now..=now + 1,
            ],
            JournalConfig {
                max_age: Some(Duration::from_secs(3600)),
                ..config(dir.path())
            },
        );
        writer.enforce_bounds();
        let left = ids(&writer, &Filter::default());
        assert!(left.iter().all(|id| *id >= now - hour), "{left:?}");
        assert!(left.ends_with(&[now, now + 1]));
        assert_eq!(
            writer.entries.load(Ordering::Relaxed),
            left.len() as u64,
            "{left:?}"
        );
    }
}
