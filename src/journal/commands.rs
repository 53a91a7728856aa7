//! `ghes-vcr journal report|tail|export`: read a journal (directly, or through a running
//! proxy) and print or write it.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::reader::{ReaderError, Source};
use super::report::{self, Format};
use super::store::Filter;
use super::JournalEntry;
use crate::cassette::{save_atomically, Cassette, CassetteError, Interaction};
use crate::config::JournalQuery;

/// How often `tail --follow` looks for new entries.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(250);

/// Why a journal command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Reader(#[from] ReaderError),
    #[error(transparent)]
    Cassette(#[from] CassetteError),
    #[error("cannot write the output")]
    Output(#[source] std::io::Error),
}

/// How `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One entry per line.
    Jsonl,
    /// A cassette of the exchanges, which `replay` serves.
    Cassette,
}

fn filter(query: &JournalQuery) -> Filter {
    Filter {
        since: query.since,
        until: query.until,
        ..Filter::default()
    }
}

/// Prints one row per legacy client.
///
/// # Errors
/// [`CommandError`].
pub async fn report(query: &JournalQuery, format: Format) -> Result<(), CommandError> {
    let source = Source::open(&query.dir, query.admin.as_deref())?;
    let entries = source.entries(filter(query)).await?;
    let rows = report::rows(&entries);
    let mut stdout = std::io::stdout().lock();
    report::write(&rows, format, &mut stdout).map_err(CommandError::Output)
}

/// Prints entries as JSON lines; with `follow`, keeps printing new ones until interrupted.
///
/// # Errors
/// [`CommandError`].
pub async fn tail(query: &JournalQuery, follow: bool) -> Result<(), CommandError> {
    let source = Source::open(&query.dir, query.admin.as_deref())?;
    let mut filter = filter(query);
    loop {
        let entries = source.entries(filter).await?;
        {
            let mut stdout = std::io::stdout().lock();
            for entry in &entries {
                let line =
                    serde_json::to_string(entry).map_err(|err| CommandError::Output(err.into()))?;
                writeln!(stdout, "{line}").map_err(CommandError::Output)?;
            }
            stdout.flush().map_err(CommandError::Output)?;
        }
        if !follow {
            return Ok(());
        }
        if let Some(last) = entries.last() {
            filter.after = Some(last.id);
        }
        tokio::time::sleep(FOLLOW_INTERVAL).await;
    }
}

/// Writes a time slice to `output`, atomically; returns how many entries were written.
///
/// # Errors
/// [`CommandError`].
pub async fn export(
    query: &JournalQuery,
    format: ExportFormat,
    output: &Path,
) -> Result<usize, CommandError> {
    let source = Source::open(&query.dir, query.admin.as_deref())?;
    let entries = source.entries(filter(query)).await?;
    let (text, written) = match format {
        ExportFormat::Jsonl => {
            let mut text = String::new();
            for entry in &entries {
                text.push_str(
                    &serde_json::to_string(entry)
                        .map_err(|err| CommandError::Output(err.into()))?,
                );
                text.push('\n');
            }
            (text, entries.len())
        }
        ExportFormat::Cassette => {
            let cassette = to_cassette(entries);
            let written = cassette.interactions.len();
            (cassette.to_pretty_json(), written)
        }
    };
    save_atomically(output, text.as_bytes())?;
    Ok(written)
}

/// The entries that can be replayed (those with a whole response), as a cassette.
pub fn to_cassette(entries: Vec<JournalEntry>) -> Cassette {
    let total = entries.len();
    let mut cassette = Cassette::new();
    cassette.interactions = entries
        .into_iter()
        .filter(|entry| !entry.truncated)
        .filter_map(|entry| {
            let response = entry.response?;
            Some(Interaction {
                request: entry.request,
                response: Arc::unwrap_or_clone(response),
                latency_ms: entry.upstream_latency_us.map(|us| us / 1000),
            })
        })
        .collect();
    let skipped = total - cassette.interactions.len();
    if skipped > 0 {
        tracing::warn!(skipped, "entries without a whole answer (proxy-made errors, or bodies over the journal body limit) are not in the cassette");
    }
    cassette
}
