//! The journal's sled store: opening it, the writer task that batches entries into it, size
//! bounds, and queries.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{now_micros, Exchange, JournalConfig, JournalEntry, Mode};

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
    #[error("journal entry {id} is not readable")]
    Entry {
        id: u64,
        #[source]
        source: serde_json::Error,
    },
}

/// An exchange waiting for the writer.
struct Pending {
    exchange: Exchange,
    mode: Mode,
    client: String,
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

/// The running journal: a queue in front of one writer task. The writer takes what is queued
/// (up to a batch) and writes it in one sled batch; what it wrote is flushed at most
/// [`FLUSH_INTERVAL`] later, busy or quiet (and at shutdown).
pub struct Journal {
    dir: PathBuf,
    body_limit: usize,
    db: sled::Db,
    sender: std::sync::Mutex<Option<mpsc::Sender<Pending>>>,
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
        .mode(sled::Mode::LowSpace)
        .open()
        .map_err(|source| JournalError::Open {
            dir: dir.to_owned(),
            source,
        })
}

impl Journal {
    /// Opens the journal and starts its writer. Blocking (sled recovery); call at start-up.
    ///
    /// # Errors
    /// [`JournalError::Open`].
    pub fn start(config: &JournalConfig) -> Result<(Arc<Self>, JoinHandle<()>), JournalError> {
        let db = open_db(&config.dir)?;
        let entries = Arc::new(AtomicU64::new(db.len() as u64));
        let written = Arc::new(AtomicU64::new(0));
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
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
            last_key: 0,
            entries,
            written,
            unflushed: 0,
            last_flush: std::time::Instant::now(),
        };
        let task = tokio::spawn(writer.run(receiver, Arc::clone(&journal)));
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
    pub fn record(&self, exchange: Exchange, mode: Mode, client: String, total: Duration) {
        let sender = self.sender.lock().expect("journal lock poisoned").clone();
        let Some(sender) = sender else { return };
        match sender.try_send(Pending {
            exchange,
            mode,
            client,
            total,
        }) {
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
    for item in db.range(start.to_be_bytes()..end.to_be_bytes()) {
        let (key, value) = item.map_err(|source| JournalError::Read {
            dir: dir.to_owned(),
            source,
        })?;
        let id = key_id(&key);
        let mut entry: JournalEntry =
            serde_json::from_slice(&value).map_err(|source| JournalError::Entry { id, source })?;
        show_json_as_json(&mut entry);
        out.push(entry);
        if filter.limit.is_some_and(|limit| out.len() >= limit) {
            break;
        }
    }
    Ok(out)
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
    /// The last key written, to keep keys unique and increasing.
    last_key: u64,
    entries: Arc<AtomicU64>,
    written: Arc<AtomicU64>,
    /// Entries applied to sled but not yet flushed.
    unflushed: u64,
    last_flush: std::time::Instant,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::Receiver<Pending>, journal: Arc<Journal>) {
        if let Ok(Some((key, _))) = self.db.last() {
            self.last_key = key_id(&key);
        }
        drop(journal);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Wait for the first entry (flushing what was written once the flush interval is
            // up); then take what else is queued, up to a batch.
            let first = if self.unflushed == 0 {
                receiver.recv().await
            } else {
                let deadline = tokio::time::Instant::from_std(self.last_flush + FLUSH_INTERVAL);
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(first) => first,
                    Err(_) => {
                        let Some(writer) = self.blocking(Writer::flush).await else {
                            return;
                        };
                        self = writer;
                        continue;
                    }
                }
            };
            let Some(first) = first else {
                break;
            };
            // Let a batch gather rather than waking for every exchange: under load each wake
            // (and each trip to the blocking pool) costs the traffic CPU.
            if receiver.len() < BATCH {
                tokio::time::sleep(GATHER).await;
            }
            batch.push(first);
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(pending) => batch.push(pending),
                    Err(_) => break,
                }
            }
            let pending = std::mem::take(&mut batch);
            let Some(writer) = self.blocking(|writer| writer.write(pending)).await else {
                return;
            };
            self = writer;
        }
        let _ = tokio::task::spawn_blocking(move || self.flush()).await;
        tracing::info!("journal flushed");
    }

    /// Runs `work` on the blocking pool (sled blocks); `None` when it panicked, which stops
    /// journaling (and says so).
    async fn blocking(mut self, work: impl FnOnce(&mut Self) + Send + 'static) -> Option<Self> {
        match tokio::task::spawn_blocking(move || {
            work(&mut self);
            self
        })
        .await
        {
            Ok(writer) => Some(writer),
            Err(err) => {
                tracing::error!(cause = %err, "the journal writer failed; journaling stops");
                None
            }
        }
    }

    /// Writes one batch and applies the bounds; flushes when the last flush is
    /// [`FLUSH_INTERVAL`] old (the run loop flushes a quiet journal when the interval is up).
    /// Blocking.
    fn write(&mut self, pending: Vec<Pending>) {
        let mut batch = sled::Batch::default();
        let count = pending.len() as u64;
        for Pending {
            exchange,
            mode,
            client,
            total,
        } in pending
        {
            let mut entry =
                JournalEntry::new(exchange, mode, &client, total, self.config.body_limit);
            let key = entry.id.max(self.last_key + 1);
            self.last_key = key;
            entry.id = key;
            match serde_json::to_vec(&entry) {
                Ok(value) => batch.insert(&key.to_be_bytes(), value),
                Err(err) => tracing::error!(cause = %err, "cannot encode a journal entry"),
            }
        }
        if let Err(err) = self.db.apply_batch(batch) {
            tracing::error!(cause = %err, "cannot write to the journal");
            return;
        }
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

    /// Removes the oldest entries beyond `max_entries` and those older than `max_age`.
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
        for item in self.db.iter().keys() {
            let Ok(key) = item else { break };
            let too_old = cutoff.is_some_and(|cutoff| key_id(&key) < cutoff);
            if excess == 0 && !too_old {
                break;
            }
            batch.remove(key);
            excess = excess.saturating_sub(1);
            removed += 1;
        }
        if removed > 0 && self.db.apply_batch(batch).is_ok() {
            self.entries.fetch_sub(removed, Ordering::Relaxed);
        }
    }
}
