//! How entries lie in sled: one record per write batch (a *frame*), not one per entry.
//!
//! sled splits a leaf every 16 keys and rewrites whole leaves as they change, so a record per
//! exchange (a few KB each, keys always appended at the right edge) made the journal write each
//! entry to disk several times over and cost more CPU than forwarding the exchange. A frame
//! holds every entry of one batch, compressed together (entries of one client look alike), under
//! the key of its first entry: keys still sort by time, and each entry keeps its own unique id.
//!
//! A frame: the tag byte [`FRAME_TAG`], the entry count (`u32`, little-endian), the last entry's
//! id (`u64`, big-endian), then the entries as JSON lines, LZ4-compressed (block format, size
//! first). A record that starts with `{` is a single JSON entry, as journals written before
//! frames hold them.

use super::JournalEntry;

/// The first byte of a frame (a bare JSON entry starts with `{`).
const FRAME_TAG: u8 = 0x01;
/// Tag, count, last id.
const HEADER_LEN: usize = 1 + 4 + 8;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the record is neither a frame nor a JSON entry")]
    Unknown,
    #[error("the frame is cut short or its entries do not decompress")]
    Corrupt,
    #[error("an entry is not valid JSON")]
    Json(#[from] serde_json::Error),
}

/// Encodes entries (oldest first, at least one) as a frame.
///
/// # Errors
/// When an entry cannot be encoded as JSON.
pub fn encode(entries: &[JournalEntry]) -> Result<Vec<u8>, serde_json::Error> {
    let mut lines = Vec::with_capacity(entries.len() * 2048);
    for entry in entries {
        serde_json::to_writer(&mut lines, entry)?;
        lines.push(b'\n');
    }
    let last = entries.last().map_or(0, |entry| entry.id);
    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let compressed = lz4_flex::compress_prepend_size(&lines);
    let mut frame = Vec::with_capacity(HEADER_LEN + compressed.len());
    frame.push(FRAME_TAG);
    frame.extend_from_slice(&count.to_le_bytes());
    frame.extend_from_slice(&last.to_be_bytes());
    frame.extend_from_slice(&compressed);
    Ok(frame)
}

/// What a record's header says, without decompressing it: how many entries it holds and the
/// id of the last (`None` for a bare JSON entry, whose id is its key).
pub fn summary(record: &[u8]) -> Result<(u64, Option<u64>), FrameError> {
    match record.first() {
        Some(&FRAME_TAG) if record.len() >= HEADER_LEN => {
            let count = u32::from_le_bytes(record[1..5].try_into().expect("4 bytes"));
            let last = u64::from_be_bytes(record[5..13].try_into().expect("8 bytes"));
            Ok((u64::from(count), Some(last)))
        }
        Some(&FRAME_TAG) => Err(FrameError::Corrupt),
        Some(b'{') => Ok((1, None)),
        _ => Err(FrameError::Unknown),
    }
}

/// The entries of a record, oldest first.
///
/// # Errors
/// [`FrameError`] when the record is damaged or unknown.
pub fn decode(record: &[u8]) -> Result<Vec<JournalEntry>, FrameError> {
    match record.first() {
        Some(&FRAME_TAG) if record.len() >= HEADER_LEN => {
            let lines = lz4_flex::decompress_size_prepended(&record[HEADER_LEN..])
                .map_err(|_| FrameError::Corrupt)?;
            serde_json::Deserializer::from_slice(&lines)
                .into_iter::<JournalEntry>()
                .map(|entry| entry.map_err(FrameError::from))
                .collect()
        }
        Some(&FRAME_TAG) => Err(FrameError::Corrupt),
        Some(b'{') => Ok(vec![serde_json::from_slice(record)?]),
        _ => Err(FrameError::Unknown),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cassette::{Body, RecordedRequest};
    use crate::journal::{Mode, Outcome};

    /// A plausible entry with this id.
    pub(crate) fn entry(id: u64) -> JournalEntry {
        JournalEntry {
            id,
            time: crate::journal::format_time(id),
            mode: Mode::Passthrough,
            client: "127.0.0.1:50000".to_owned(),
            method: "GET".to_owned(),
            path: "/api/v3/authorizations".to_owned(),
            operation: Some("oauth-authorizations/list-authorizations".to_owned()),
            status: 200,
            outcome: Outcome::Forwarded,
            upstream_latency_us: Some(120),
            total_latency_us: 150,
            user_agent: Some("legacy-cli/1.0".to_owned()),
            credential: Some("basic:octocat".to_owned()),
            client_id: None,
            note: None,
            note_url: None,
            fingerprint: None,
            cassette: None,
            interaction: None,
            request: RecordedRequest {
                method: "GET".to_owned(),
                path: "/api/v3/authorizations".to_owned(),
                query: Vec::new(),
                headers: vec![("user-agent".to_owned(), "legacy-cli/1.0".to_owned())],
                body: Body::Empty,
            },
            response: None,
            truncated: false,
        }
    }

    #[test]
    fn a_frame_gives_back_its_entries_and_summarises_them_without_decoding() {
        let entries = vec![entry(10), entry(11), entry(15)];
        let frame = encode(&entries).unwrap();
        assert_eq!(summary(&frame).unwrap(), (3, Some(15)));
        assert_eq!(decode(&frame).unwrap(), entries);
    }

    #[test]
    fn a_bare_json_entry_from_an_older_journal_is_read_as_one_entry() {
        let record = serde_json::to_vec(&entry(7)).unwrap();
        assert_eq!(summary(&record).unwrap(), (1, None));
        assert_eq!(decode(&record).unwrap(), vec![entry(7)]);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let frame = encode(&[entry(1), entry(2)]).unwrap();
        assert!(matches!(decode(&frame[..5]), Err(FrameError::Corrupt)));
        assert!(matches!(
            decode(&frame[..frame.len() - 3]),
            Err(FrameError::Corrupt)
        ));
        assert!(matches!(decode(b"\x07junk"), Err(FrameError::Unknown)));
        assert!(matches!(decode(b""), Err(FrameError::Unknown)));
    }
}
