//! How entries lie in sled: one record per write batch (a *frame*), not one per entry.
//!
//! sled splits a leaf every 16 keys and rewrites whole leaves as they change, so a record per
//! exchange (a few KB each, keys always appended at the right edge) made the journal write each
//! entry to disk several times over and cost more CPU than forwarding the exchange. A frame
//! holds every entry of one batch, compressed together (entries of one client look alike), under
//! the key of its first entry: keys still sort by time, and each entry keeps its own unique id.
//!
//! A frame, numbers little-endian:
//! - the tag byte [`FRAME_TAG`];
//! - how many entries it was written with (`u32`), and how many of those, from the front, have
//!   since been removed by the journal's bounds (`u32`): cutting a frame rewrites this header,
//!   never the entries;
//! - every entry's id (`u64` each), so bounds and counts need no decompression;
//! - the entries, LZ4-compressed (block format, size first). Each entry is its JSON (length
//!   first, `u32`) and then its answer's body when that is text, as raw bytes (length first;
//!   [`NO_RAW_BODY`] when the body is in the JSON): escaping a JSON answer into a JSON string was
//!   the writer's largest cost.
//!
//! A record that starts with `{` is a single JSON entry, as journals written before frames hold
//! them.

use std::sync::Arc;

use super::JournalEntry;
use crate::cassette::Body;

/// The first byte of a frame (a bare JSON entry starts with `{`).
const FRAME_TAG: u8 = 0x01;
/// Tag, entries written, entries removed.
const HEADER_LEN: usize = 1 + 4 + 4;
/// The raw-body length of an entry whose answer's body is inside its JSON.
const NO_RAW_BODY: u32 = u32::MAX;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the record is neither a frame nor a JSON entry")]
    Unknown,
    #[error("the frame is cut short, or its entries do not decompress or are not UTF-8")]
    Corrupt,
    #[error("an entry is not valid JSON")]
    Json(#[from] serde_json::Error),
}

/// Encodes entries (oldest first, at least one) as a frame. Text bodies of answers the entries
/// alone hold are lent to the frame and given back, so `entries` are as they were.
///
/// # Errors
/// When an entry cannot be encoded as JSON.
pub fn encode(entries: &mut [JournalEntry]) -> Result<Vec<u8>, serde_json::Error> {
    let mut payload = Vec::with_capacity(entries.len() * 2048);
    for entry in entries.iter_mut() {
        let raw = take_text_body(entry);
        let start = payload.len();
        payload.extend_from_slice(&[0; 4]);
        let encoded = serde_json::to_writer(&mut payload, &*entry);
        let json_len = u32::try_from(payload.len() - start - 4).unwrap_or(u32::MAX);
        payload[start..start + 4].copy_from_slice(&json_len.to_le_bytes());
        match &raw {
            Some(text) => {
                // `take_text_body` keeps texts under `NO_RAW_BODY` bytes.
                let len = u32::try_from(text.len()).unwrap_or(NO_RAW_BODY - 1);
                payload.extend_from_slice(&len.to_le_bytes());
                payload.extend_from_slice(text.as_bytes());
            }
            None => payload.extend_from_slice(&NO_RAW_BODY.to_le_bytes()),
        }
        if let Some(text) = raw {
            if let Some(response) = entry.response.as_mut().and_then(Arc::get_mut) {
                response.body = Body::Text(text);
            }
        }
        encoded?;
    }
    let written = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let compressed = lz4_flex::compress_prepend_size(&payload);
    let mut frame = Vec::with_capacity(HEADER_LEN + 8 * entries.len() + compressed.len());
    frame.push(FRAME_TAG);
    frame.extend_from_slice(&written.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    for entry in entries.iter() {
        frame.extend_from_slice(&entry.id.to_le_bytes());
    }
    frame.extend_from_slice(&compressed);
    Ok(frame)
}

/// Takes the answer's body out of an entry when it is text the entry alone holds (a replayed
/// answer is shared with the replay set, and stays in the JSON).
fn take_text_body(entry: &mut JournalEntry) -> Option<String> {
    let response = entry.response.as_mut().and_then(Arc::get_mut)?;
    match std::mem::take(&mut response.body) {
        Body::Text(text) if text.len() < NO_RAW_BODY as usize => Some(text),
        other => {
            response.body = other;
            None
        }
    }
}

/// A record's header, read without decompressing anything.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    /// Entries removed from the front (0 for a bare JSON entry).
    removed: usize,
    /// The ids of every entry written, little-endian (empty for a bare JSON entry).
    ids: &'a [u8],
    /// A frame, or a bare JSON entry.
    framed: bool,
}

impl Summary<'_> {
    /// How many entries the record still holds.
    pub fn count(&self) -> u64 {
        if self.framed {
            (self.ids.len() / 8 - self.removed) as u64
        } else {
            1
        }
    }

    /// The id of each entry it still holds, oldest first (`None` for a bare JSON entry, whose
    /// id is its key).
    pub fn ids(&self) -> Option<impl DoubleEndedIterator<Item = u64> + ExactSizeIterator + '_> {
        self.framed.then(|| {
            self.ids[self.removed * 8..]
                .chunks_exact(8)
                .map(|id| u64::from_le_bytes(id.try_into().expect("8 bytes")))
        })
    }
}

/// What a record's header says.
///
/// # Errors
/// [`FrameError`] when the record is damaged or unknown.
pub fn summary(record: &[u8]) -> Result<Summary<'_>, FrameError> {
    match record.first() {
        Some(&FRAME_TAG) => {
            let header = record.get(..HEADER_LEN).ok_or(FrameError::Corrupt)?;
            let written = u32::from_le_bytes(header[1..5].try_into().expect("4 bytes")) as usize;
            let removed = u32::from_le_bytes(header[5..9].try_into().expect("4 bytes")) as usize;
            let ids = record
                .get(HEADER_LEN..HEADER_LEN + 8 * written)
                .ok_or(FrameError::Corrupt)?;
            if removed > written {
                return Err(FrameError::Corrupt);
            }
            Ok(Summary {
                removed,
                ids,
                framed: true,
            })
        }
        Some(b'{') => Ok(Summary {
            removed: 0,
            ids: &[],
            framed: false,
        }),
        _ => Err(FrameError::Unknown),
    }
}

/// The frame without its first `count` entries (more of its entries marked removed); the
/// entries themselves are copied, not decoded.
///
/// # Errors
/// [`FrameError::Corrupt`] when `record` is not a frame that holds more than `count` entries.
pub fn cut(record: &[u8], count: u64) -> Result<Vec<u8>, FrameError> {
    let summary = summary(record)?;
    if !summary.framed || count >= summary.count() {
        return Err(FrameError::Corrupt);
    }
    let removed = u32::try_from(summary.removed as u64 + count).map_err(|_| FrameError::Corrupt)?;
    let mut cut = record.to_vec();
    cut[5..9].copy_from_slice(&removed.to_le_bytes());
    Ok(cut)
}

/// The entries a record still holds, oldest first.
///
/// # Errors
/// [`FrameError`] when the record is damaged or unknown.
pub fn decode(record: &[u8]) -> Result<Vec<JournalEntry>, FrameError> {
    let summary = summary(record)?;
    if !summary.framed {
        return Ok(vec![serde_json::from_slice(record)?]);
    }
    let payload = lz4_flex::decompress_size_prepended(&record[HEADER_LEN + summary.ids.len()..])
        .map_err(|_| FrameError::Corrupt)?;
    let mut rest = payload.as_slice();
    let mut entries = Vec::with_capacity(summary.count() as usize);
    let mut index = 0;
    while !rest.is_empty() {
        let json = take_chunk(&mut rest)?.ok_or(FrameError::Corrupt)?;
        let raw = take_chunk(&mut rest)?;
        index += 1;
        if index <= summary.removed {
            continue;
        }
        let mut entry: JournalEntry = serde_json::from_slice(json)?;
        if let Some(raw) = raw {
            let text = std::str::from_utf8(raw).map_err(|_| FrameError::Corrupt)?;
            if let Some(response) = entry.response.as_mut().and_then(Arc::get_mut) {
                response.body = Body::Text(text.to_owned());
            }
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Takes one length-prefixed chunk off the front of `rest` (`None` for [`NO_RAW_BODY`]).
fn take_chunk<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, FrameError> {
    let (len, tail) = rest.split_first_chunk::<4>().ok_or(FrameError::Corrupt)?;
    let len = u32::from_le_bytes(*len);
    if len == NO_RAW_BODY {
        *rest = tail;
        return Ok(None);
    }
    let len = len as usize;
    if tail.len() < len {
        return Err(FrameError::Corrupt);
    }
    let (chunk, tail) = tail.split_at(len);
    *rest = tail;
    Ok(Some(chunk))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cassette::{RecordedRequest, RecordedResponse};
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

    /// An entry with an answer: `body` as text, its own or shared (as replayed answers are).
    fn answered(
        id: u64,
        body: Body,
        shared: bool,
    ) -> (JournalEntry, Option<Arc<RecordedResponse>>) {
        let response = Arc::new(RecordedResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        });
        let mut entry = entry(id);
        entry.response = Some(Arc::clone(&response));
        (entry, shared.then_some(response))
    }

    #[test]
    fn a_frame_gives_back_its_entries_and_summarises_them_without_decoding() {
        let mut entries = vec![entry(10), entry(11), entry(15)];
        let frame = encode(&mut entries).unwrap();
        let summary = summary(&frame).unwrap();
        assert_eq!(summary.count(), 3);
        assert_eq!(summary.ids().unwrap().collect::<Vec<_>>(), [10, 11, 15]);
        assert_eq!(decode(&frame).unwrap(), entries);
    }

    #[test]
    fn a_cut_frame_no_longer_holds_its_first_entries() {
        let mut entries = vec![entry(10), entry(11), entry(15)];
        let frame = encode(&mut entries).unwrap();
        let cut_once = cut(&frame, 1).unwrap();
        let cut_twice = cut(&cut_once, 1).unwrap();
        assert_eq!(summary(&cut_twice).unwrap().count(), 1);
        assert_eq!(
            summary(&cut_once)
                .unwrap()
                .ids()
                .unwrap()
                .collect::<Vec<_>>(),
            [11, 15]
        );
        assert_eq!(decode(&cut_twice).unwrap(), entries[2..]);
        assert!(
            cut(&cut_twice, 1).is_err(),
            "a frame is removed, not emptied"
        );
    }

    #[test]
    fn answers_come_back_whole_whether_their_text_went_raw_or_inside_the_json() {
        let json = r#"{"token":"","note":"a \"quoted\" note","url":"https://x/é"}"#;
        let (own, _) = answered(1, Body::Text(json.to_owned()), false);
        let (shared, keep) = answered(2, Body::Text(json.to_owned()), true);
        let (parsed, _) = answered(3, Body::Json(serde_json::json!({"id": 1})), false);
        let (binary, _) = answered(
            4,
            Body::Binary(bytes::Bytes::from_static(b"\xff\x00")),
            false,
        );
        let (empty, _) = answered(5, Body::Empty, false);
        let mut entries = vec![own, shared, parsed, binary, empty];
        // Deep copies: a clone of an entry would share (and so pin) its answer.
        let before: Vec<JournalEntry> = entries
            .iter()
            .map(|entry| JournalEntry {
                response: entry
                    .response
                    .as_ref()
                    .map(|response| Arc::new(RecordedResponse::clone(response))),
                ..entry.clone()
            })
            .collect();
        let frame = encode(&mut entries).unwrap();
        assert_eq!(entries, before, "encoding gives every body back");
        let payload =
            lz4_flex::decompress_size_prepended(&frame[HEADER_LEN + 8 * before.len()..]).unwrap();
        let raw = payload
            .windows(json.len())
            .filter(|window| *window == json.as_bytes())
            .count();
        assert_eq!(raw, 1, "only the answer the entry alone holds goes raw");
        assert_eq!(decode(&frame).unwrap(), before);
        drop(keep);
    }

    #[test]
    fn a_bare_json_entry_from_an_older_journal_is_read_as_one_entry() {
        let record = serde_json::to_vec(&entry(7)).unwrap();
        assert_eq!(summary(&record).unwrap().count(), 1);
        assert!(summary(&record).unwrap().ids().is_none());
        assert_eq!(decode(&record).unwrap(), vec![entry(7)]);
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let (answered, _) = answered(2, Body::Text("{}".to_owned()), false);
        let frame = encode(&mut [entry(1), answered]).unwrap();
        assert!(matches!(decode(&frame[..5]), Err(FrameError::Corrupt)));
        assert!(matches!(
            decode(&frame[..frame.len() - 3]),
            Err(FrameError::Corrupt)
        ));
        let mut overcut = frame.clone();
        overcut[5..9].copy_from_slice(&3u32.to_le_bytes());
        assert!(matches!(decode(&overcut), Err(FrameError::Corrupt)));
        assert!(matches!(decode(b"\x07junk"), Err(FrameError::Unknown)));
        assert!(matches!(decode(b""), Err(FrameError::Unknown)));
    }
}
