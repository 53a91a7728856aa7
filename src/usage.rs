//! The replay report: which recorded interactions a run used, which it never used, and every
//! request no cassette held (with its closest candidate). Served at `GET /__ghes-vcr/report`,
//! logged at shutdown, written with `--report FILE`, and read by `cassette prune`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::replay::{MissReport, ReplaySet};

/// At most this many misses are kept (the count is exact).
const MISSES_KEPT: usize = 1000;

/// Requests that found no recording, collected during a run.
#[derive(Debug, Default)]
pub struct Misses {
    kept: Mutex<Vec<MissReport>>,
    count: std::sync::atomic::AtomicUsize,
}

impl Misses {
    pub fn note(&self, report: &MissReport) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.kept.lock().expect("miss list lock poisoned");
        if kept.len() < MISSES_KEPT {
            kept.push(report.clone());
        }
    }
}

/// One interaction of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Used {
    pub cassette: PathBuf,
    /// Its position in the cassette's `interactions` (0-based).
    pub index: usize,
    /// `METHOD /path?query`.
    pub request: String,
    /// How many requests it answered.
    pub times: usize,
}

/// A request no cassette held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    pub request: String,
    /// The closest recorded request and how it differs, when there was one.
    pub closest: Option<String>,
    pub message: String,
}

/// What a replay run used and missed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    pub cassettes: Vec<PathBuf>,
    pub interactions: usize,
    pub used: Vec<Used>,
    pub unused: Vec<Used>,
    /// How many requests missed (all of them, even past the ones listed).
    pub miss_count: usize,
    pub misses: Vec<Miss>,
}

impl ReplayReport {
    /// The report of a replay set and the misses of its run.
    pub fn new(replay: &ReplaySet, misses: &Misses) -> Self {
        let (mut used, mut unused) = (Vec::new(), Vec::new());
        for entry in replay.entries() {
            let item = Used {
                cassette: replay.cassette_path(entry).to_owned(),
                index: entry.index,
                request: entry.request.summary(),
                times: entry.hits.load(Ordering::Relaxed),
            };
            if item.times > 0 {
                used.push(item);
            } else {
                unused.push(item);
            }
        }
        let misses_kept = misses
            .kept
            .lock()
            .expect("miss list lock poisoned")
            .iter()
            .map(|report| Miss {
                request: report.request.clone(),
                closest: report.closest.as_ref().map(|closest| {
                    format!(
                        "{} ({} interactions[{}]): {}",
                        closest.request,
                        closest.cassette.display(),
                        closest.index,
                        closest.differences.join("; ")
                    )
                }),
                message: report.message(),
            })
            .collect();
        Self {
            cassettes: replay.cassettes().to_vec(),
            interactions: replay.len(),
            used,
            unused,
            miss_count: misses.count.load(Ordering::Relaxed),
            misses: misses_kept,
        }
    }

    /// One line for the log.
    pub fn summary(&self) -> String {
        format!(
            "replay report: {} of {} interactions used, {} unused, {} requests without a recording",
            self.used.len(),
            self.interactions,
            self.unused.len(),
            self.miss_count
        )
    }

    /// Reads a report written with `--report FILE`.
    ///
    /// # Errors
    /// A message naming the file.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| format!("cannot read report {}: {err}", path.display()))?;
        serde_json::from_str(&text).map_err(|err| {
            format!(
                "report {} is not a ghes-vcr replay report: {err}",
                path.display()
            )
        })
    }
}
