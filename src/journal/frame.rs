//! How entries lie in sled: one record per write batch (a *frame*), not one per entry.
//!
//! sled splits a leaf every 16 keys and rewrites whole leaves as they change, so a record per
//! exchange (a few KB each, keys always appended at the right edge) made the journal write each
//! entry to disk several times over and cost more CPU than forwarding the exchange. A frame
//! holds every entry of one batch, compressed together (entries of one client look alike), under
//! the key of its first entry: keys still sort by time, and each entry keeps its own unique id.
//!
//! A frame, numbers little-endian:
//! - the tag byte: [`FRAME_TAG_PACKED`], which says how its entries are written (below). Frames
//!   of earlier builds, still read, carry [`FRAME_TAG`], or [`FRAME_TAG_REPEATS`] when a text body
//!   repeats an earlier one; a new tag for each change makes a build that predates it call the
//!   frame an unknown format rather than a corrupt one;
//! - how many entries it was written with (`u32`), and how many of those, from the front, have
//!   since been removed by the journal's bounds (`u32`): cutting a frame rewrites this header,
//!   never the entries;
//! - every entry's id (`u64` each), so bounds and counts need no decompression;
//! - the entries, LZ4-compressed (block format, size first). Each entry is three chunks, each
//!   length first (`u32`; [`NONE`] for an absent chunk): the entry without its answer, the
//!   answer without a text body, and that text body as raw bytes. Escaping a JSON answer into a
//!   JSON string was the writer's largest cost.
//! - The entry is MessagePack, a map of its named fields as `rmp-serde` writes them (JSON in
//!   frames of earlier builds): no key or string is escaped, where printing the entry as JSON
//!   was a quarter of the writer's work (9,100 instructions per entry, against 3,200).
//! - A text body that an earlier entry of the same frame already holds is not written again:
//!   its length is [`SAME_AS`], followed by that entry's index in the frame (`u32`, counting
//!   from 0 over every entry written, removed ones included, since cutting a frame keeps them).
//!   Legacy clients repeat the same calls, so most bodies of a busy frame repeat an earlier
//!   one; copying and compressing each again cost the writer more than finding the earlier one.
//!
//! The answer chunk is in the *lines form*: the tag byte [`LINES_TAG`], the status (`u16`), the
//! headers as `name: value\n` lines (a chunk of its own, length first), then a body that is not
//! text as JSON (`{"json": ...}` or `{"base64": ...}`), or nothing. Header values hold no line
//! breaks, so the lines need no escaping: a captured answer's block is copied as it is. A stored
//! answer whose headers could not be read back from lines (only a hand-edited cassette's), and
//! every answer written before the lines form, is JSON instead
//! (`{"status":...,"headers":[[name, value], ...]}`), told apart by its first byte.
//!
//! A record that starts with `{` is a single JSON entry, as journals written before frames hold
//! them.

use std::sync::Arc;

use super::{Answer, Draft, JournalEntry};
use crate::cassette::{Body, RecordedResponse};

/// The first byte of a frame whose entries are MessagePack, the only kind written (a bare JSON
/// entry starts with `{`). Its text bodies may repeat earlier ones ([`SAME_AS`]).
const FRAME_TAG_PACKED: u8 = 0x04;
/// The first byte of a frame of JSON entries, as earlier builds wrote it.
const FRAME_TAG: u8 = 0x01;
/// The first byte of a frame of JSON entries in which a text body repeats an earlier entry's,
/// as earlier builds wrote it.
const FRAME_TAG_REPEATS: u8 = 0x03;
/// Tag, entries written, entries removed.
const HEADER_LEN: usize = 1 + 4 + 4;
/// The length of an absent chunk.
const NONE: u32 = u32::MAX;
/// The length of a text body that repeats an earlier entry's in the frame; its index follows.
const SAME_AS: u32 = u32::MAX - 1;
/// The first byte of an answer chunk in the lines form (a JSON one starts with `{`).
const LINES_TAG: u8 = 0x02;

/// Why a record could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("the record is neither a frame nor a JSON entry (an unknown format)")]
    Unknown,
    #[error("the frame is cut short, or its entries do not decompress, are not UTF-8, hold a header line without `: ` or repeat a body that no earlier entry holds")]
    Corrupt,
    #[error("an entry is not valid JSON")]
    Json(#[from] serde_json::Error),
    #[error("an entry is not valid MessagePack")]
    Packed(#[from] rmp_serde::decode::Error),
}

/// Why drafts could not be encoded (nothing the journal writes fails to; logged if it did).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("an entry does not encode as MessagePack: {0}")]
    Packed(#[from] rmp_serde::encode::Error),
    #[error("an answer does not encode as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("a journal entry over 4 GiB")]
    TooLarge,
}

/// How a frame's entry chunks are written, told by its tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryForm {
    Packed,
    /// Earlier builds' frames.
    Json,
}

/// Encodes drafts (oldest first, at least one) as a frame.
///
/// # Errors
/// When an entry cannot be encoded.
pub fn encode(drafts: &[Draft]) -> Result<Vec<u8>, EncodeError> {
    encode_as(drafts, EntryForm::Packed)
}

/// Encodes drafts as a frame of JSON entries, as builds before MessagePack wrote it: for the
/// tests that read one.
#[cfg(test)]
pub(crate) fn encode_json_entries(drafts: &[Draft]) -> Result<Vec<u8>, EncodeError> {
    encode_as(drafts, EntryForm::Json)
}

/// Encodes drafts as a frame with its entries in `form` ([`EntryForm::Json`] writes a frame as
/// earlier builds did, for the tests that read one).
fn encode_as(drafts: &[Draft], form: EntryForm) -> Result<Vec<u8>, EncodeError> {
    let mut payload = Vec::with_capacity(drafts.len() * 2048);
    let mut texts = Texts::default();
    for (index, draft) in (0..).zip(drafts) {
        put_entry(
            &mut payload,
            draft,
            form,
            Holder {
                index,
                texts: &mut texts,
            },
        )?;
    }
    let written = u32::try_from(drafts.len()).unwrap_or(u32::MAX);
    let compressed = lz4_flex::compress_prepend_size(&payload);
    let mut frame = Vec::with_capacity(HEADER_LEN + 8 * drafts.len() + compressed.len());
    frame.push(match form {
        EntryForm::Packed => FRAME_TAG_PACKED,
        EntryForm::Json if texts.repeated => FRAME_TAG_REPEATS,
        EntryForm::Json => FRAME_TAG,
    });
    frame.extend_from_slice(&written.to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    for draft in drafts {
        frame.extend_from_slice(&draft.entry.id.to_le_bytes());
    }
    frame.extend_from_slice(&compressed);
    Ok(frame)
}

/// The text bodies written so far in a frame, each with the index of the entry that holds it,
/// and whether one was repeated (written as [`SAME_AS`]).
#[derive(Default)]
struct Texts<'a> {
    first_holder: foldhash::HashMap<&'a str, u32>,
    repeated: bool,
}

/// The entry being written: its index in the frame, and the text bodies before it.
struct Holder<'t, 'a> {
    index: u32,
    texts: &'t mut Texts<'a>,
}

/// Appends one entry's three chunks.
fn put_entry<'a>(
    payload: &mut Vec<u8>,
    draft: &'a Draft,
    form: EntryForm,
    holder: Holder<'_, 'a>,
) -> Result<(), EncodeError> {
    match form {
        EntryForm::Packed => put_packed(payload, &draft.entry)?,
        EntryForm::Json => put_json(payload, &draft.entry)?,
    }
    let (status, headers, body) = match &draft.answer {
        None => {
            payload.extend_from_slice(&NONE.to_le_bytes());
            payload.extend_from_slice(&NONE.to_le_bytes());
            return Ok(());
        }
        Some(Answer::Captured(answer)) => {
            (answer.status, Lines::Block(&answer.headers), &answer.body)
        }
        Some(Answer::Stored(answer)) if crate::capture::lines_hold(&answer.headers) => {
            (answer.status, Lines::Pairs(&answer.headers), &answer.body)
        }
        Some(Answer::Stored(answer)) => {
            put_json(payload, &AnswerHead(answer))?;
            return put_text(payload, &answer.body, holder);
        }
    };
    let start = payload.len();
    payload.extend_from_slice(&[0; 4]);
    payload.push(LINES_TAG);
    payload.extend_from_slice(&status.to_le_bytes());
    let lines_at = payload.len();
    payload.extend_from_slice(&[0; 4]);
    match headers {
        Lines::Block(block) => payload.extend_from_slice(block.as_bytes()),
        Lines::Pairs(pairs) => {
            for (name, value) in pairs {
                payload.extend_from_slice(name.as_bytes());
                payload.extend_from_slice(b": ");
                payload.extend_from_slice(value.as_bytes());
                payload.push(b'\n');
            }
        }
    }
    end_chunk(payload, lines_at)?;
    if !matches!(body, Body::Text(_) | Body::Empty) {
        serde_json::to_writer(&mut *payload, body)?;
    }
    end_chunk(payload, start)?;
    put_text(payload, body, holder)
}

/// An answer's headers, as captured ([`crate::journal::CapturedAnswer`]) or as stored.
enum Lines<'a> {
    Block(&'a str),
    Pairs(&'a [(String, String)]),
}

/// The third chunk: a text body, raw or as the index of the earlier entry that holds it, or
/// absent.
fn put_text<'a>(
    payload: &mut Vec<u8>,
    body: &'a Body,
    holder: Holder<'_, 'a>,
) -> Result<(), EncodeError> {
    let Body::Text(text) = body else {
        payload.extend_from_slice(&NONE.to_le_bytes());
        return Ok(());
    };
    match holder.texts.first_holder.entry(text) {
        std::collections::hash_map::Entry::Occupied(first) => {
            payload.extend_from_slice(&SAME_AS.to_le_bytes());
            payload.extend_from_slice(&first.get().to_le_bytes());
            holder.texts.repeated = true;
        }
        std::collections::hash_map::Entry::Vacant(vacant) => {
            vacant.insert(holder.index);
            payload.extend_from_slice(&chunk_len(text.len())?.to_le_bytes());
            payload.extend_from_slice(text.as_bytes());
        }
    }
    Ok(())
}

/// Appends `value` as JSON, length first.
fn put_json(payload: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<(), EncodeError> {
    let start = payload.len();
    payload.extend_from_slice(&[0; 4]);
    serde_json::to_writer(&mut *payload, value)?;
    end_chunk(payload, start)
}

/// Appends `value` as MessagePack (a struct as a map of its named fields, so that fields left
/// out when empty read back), length first.
fn put_packed(payload: &mut Vec<u8>, value: &impl serde::Serialize) -> Result<(), EncodeError> {
    let start = payload.len();
    payload.extend_from_slice(&[0; 4]);
    rmp_serde::encode::write_named(&mut *payload, value)?;
    end_chunk(payload, start)
}

/// Writes the length of the chunk that starts at `start` (its 4 bytes of length, then what
/// was appended after them).
fn end_chunk(payload: &mut [u8], start: usize) -> Result<(), EncodeError> {
    let len = chunk_len(payload.len() - start - 4)?;
    payload[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// A chunk's length as written (a journaled body is capped far below 4 GiB by
/// `--journal-body-limit`).
fn chunk_len(len: usize) -> Result<u32, EncodeError> {
    u32::try_from(len)
        .ok()
        .filter(|len| *len < SAME_AS)
        .ok_or(EncodeError::TooLarge)
}

/// An answer as JSON without a text body (which follows it raw).
struct AnswerHead<'a>(&'a RecordedResponse);

impl serde::Serialize for AnswerHead<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let answer = self.0;
        let inline = !matches!(answer.body, Body::Text(_) | Body::Empty);
        let mut out = serializer.serialize_struct("RecordedResponse", 2 + usize::from(inline))?;
        out.serialize_field("status", &answer.status)?;
        out.serialize_field("headers", &answer.headers)?;
        if inline {
            out.serialize_field("body", &answer.body)?;
        }
        out.end()
    }
}

/// Reads an answer's chunk: JSON (as [`AnswerHead`] writes it), or the lines form.
fn read_answer(chunk: &[u8]) -> Result<RecordedResponse, FrameError> {
    let Some((&LINES_TAG, rest)) = chunk.split_first() else {
        return Ok(serde_json::from_slice(chunk)?);
    };
    let (status, rest) = rest.split_first_chunk::<2>().ok_or(FrameError::Corrupt)?;
    let mut rest = rest;
    let lines = take_chunk(&mut rest)?.ok_or(FrameError::Corrupt)?;
    let lines = std::str::from_utf8(lines).map_err(|_| FrameError::Corrupt)?;
    let headers = lines
        .split_terminator('\n')
        .map(|line| {
            let (name, value) = line.split_once(": ").ok_or(FrameError::Corrupt)?;
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect::<Result<_, FrameError>>()?;
    let body = if rest.is_empty() {
        Body::Empty
    } else {
        serde_json::from_slice(rest)?
    };
    Ok(RecordedResponse {
        status: u16::from_le_bytes(*status),
        headers,
        body,
    })
}

/// A record's header, read without decompressing anything.
#[derive(Clone, Copy, Debug)]
pub struct Summary<'a> {
    /// Entries removed from the front (0 for a bare JSON entry).
    removed: usize,
    /// The ids of every entry written, little-endian (empty for a bare JSON entry).
    ids: &'a [u8],
    /// A frame, with how its entries are written, or `None` for a bare JSON entry.
    framed: Option<EntryForm>,
}

impl Summary<'_> {
    /// How many entries the record still holds.
    pub fn count(&self) -> u64 {
        if self.framed.is_some() {
            (self.ids.len() / 8 - self.removed) as u64
        } else {
            1
        }
    }

    /// The id of each entry it still holds, oldest first (`None` for a bare JSON entry, whose
    /// id is its key).
    pub fn ids(&self) -> Option<impl DoubleEndedIterator<Item = u64> + ExactSizeIterator + '_> {
        self.framed.is_some().then(|| {
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
    let form = match record.first() {
        Some(&FRAME_TAG_PACKED) => EntryForm::Packed,
        Some(&FRAME_TAG | &FRAME_TAG_REPEATS) => EntryForm::Json,
        Some(b'{') => {
            return Ok(Summary {
                removed: 0,
                ids: &[],
                framed: None,
            })
        }
        _ => return Err(FrameError::Unknown),
    };
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
        framed: Some(form),
    })
}

/// The frame without its first `count` entries (more of its entries marked removed); the
/// entries themselves are copied, not decoded.
///
/// # Errors
/// [`FrameError::Corrupt`] when `record` is not a frame that holds more than `count` entries.
pub fn cut(record: &[u8], count: u64) -> Result<Vec<u8>, FrameError> {
    let summary = summary(record)?;
    if summary.framed.is_none() || count >= summary.count() {
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
    let Some(form) = summary.framed else {
        return Ok(vec![serde_json::from_slice(record)?]);
    };
    let payload = lz4_flex::decompress_size_prepended(&record[HEADER_LEN + summary.ids.len()..])
        .map_err(|_| FrameError::Corrupt)?;
    let mut rest = payload.as_slice();
    let mut entries = Vec::with_capacity(summary.count() as usize);
    // Every entry's text body so far, removed entries' too: a later one may repeat it.
    let mut texts: Vec<Option<&[u8]>> = Vec::with_capacity(summary.ids.len() / 8);
    while !rest.is_empty() {
        let entry = take_chunk(&mut rest)?.ok_or(FrameError::Corrupt)?;
        let answer = take_chunk(&mut rest)?;
        let text = take_text(&mut rest, &texts)?;
        texts.push(text);
        if texts.len() <= summary.removed {
            continue;
        }
        let mut entry: JournalEntry = match form {
            EntryForm::Packed => rmp_serde::from_slice(entry)?,
            EntryForm::Json => serde_json::from_slice(entry)?,
        };
        if let Some(answer) = answer {
            let mut answer = read_answer(answer)?;
            if let Some(text) = text {
                let text = std::str::from_utf8(text).map_err(|_| FrameError::Corrupt)?;
                answer.body = Body::Text(text.to_owned());
            }
            entry.response = Some(Arc::new(answer));
        }
        entries.push(entry);
    }
    Ok(entries)
}

/// Takes an entry's text body off the front of `rest`: a chunk, or [`SAME_AS`] and the index of
/// an earlier entry whose text it repeats (in `earlier`).
fn take_text<'a>(
    rest: &mut &'a [u8],
    earlier: &[Option<&'a [u8]>],
) -> Result<Option<&'a [u8]>, FrameError> {
    let (len, tail) = rest.split_first_chunk::<4>().ok_or(FrameError::Corrupt)?;
    if u32::from_le_bytes(*len) != SAME_AS {
        return take_chunk(rest);
    }
    let (index, tail) = tail.split_first_chunk::<4>().ok_or(FrameError::Corrupt)?;
    *rest = tail;
    let text = earlier.get(u32::from_le_bytes(*index) as usize).copied();
    text.flatten().map(Some).ok_or(FrameError::Corrupt)
}

/// Takes one length-prefixed chunk off the front of `rest` (`None` for [`NONE`]).
fn take_chunk<'a>(rest: &mut &'a [u8]) -> Result<Option<&'a [u8]>, FrameError> {
    let (len, tail) = rest.split_first_chunk::<4>().ok_or(FrameError::Corrupt)?;
    let len = u32::from_le_bytes(*len);
    if len == NONE {
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
    use crate::journal::{CapturedAnswer, Mode, Outcome};

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

    /// An entry with an answer.
    fn answered(id: u64, body: Body) -> JournalEntry {
        let mut entry = entry(id);
        entry.response = Some(Arc::new(RecordedResponse {
            status: 200,
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body,
        }));
        entry
    }

    /// Entries as the writer takes them (their answers beside them, as stored answers).
    fn drafts(entries: &[JournalEntry]) -> Vec<Draft> {
        entries.iter().cloned().map(Draft::from).collect()
    }

    #[test]
    fn a_frame_gives_back_its_entries_and_summarises_them_without_decoding() {
        let entries = vec![entry(10), entry(11), entry(15)];
        let frame = encode(&drafts(&entries)).unwrap();
        let summary = summary(&frame).unwrap();
        assert_eq!(summary.count(), 3);
        assert_eq!(summary.ids().unwrap().collect::<Vec<_>>(), [10, 11, 15]);
        assert_eq!(decode(&frame).unwrap(), entries);
    }

    #[test]
    fn a_cut_frame_no_longer_holds_its_first_entries() {
        let entries = vec![entry(10), entry(11), entry(15)];
        let frame = encode(&drafts(&entries)).unwrap();
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
    fn answers_come_back_whole_whether_their_body_went_raw_or_inside_the_json() {
        let json = r#"{"token":"","note":"a \"quoted\" note","url":"https://x/é"}"#;
        let own = answered(1, Body::Text(json.to_owned()));
        // A replayed answer is shared with the replay set (here: with `shared`).
        let shared = answered(2, Body::Text(json.to_owned()));
        let parsed = answered(3, Body::Json(serde_json::json!({"id": 1}).into()));
        let binary = answered(4, Body::Binary(bytes::Bytes::from_static(b"\xff\x00")));
        let empty = answered(5, Body::Empty);
        // Headers that lines cannot hold (a hand-edited cassette): the answer goes as JSON.
        let mut odd = answered(6, Body::Text(json.to_owned()));
        odd.response = Some(Arc::new(RecordedResponse {
            headers: vec![("x-odd".to_owned(), "two\nlines".to_owned())],
            ..RecordedResponse::clone(odd.response.as_ref().unwrap())
        }));
        let entries = vec![own, shared.clone(), parsed, binary, empty, odd];
        let frame = encode(&drafts(&entries)).unwrap();
        let payload = payload_of(&frame);
        let count = |needle: &[u8]| {
            payload
                .windows(needle.len())
                .filter(|window| *window == needle)
                .count()
        };
        assert_eq!(
            count(json.as_bytes()),
            1,
            "text answers go raw, shared or not, and once per frame"
        );
        assert_eq!(
            count(b"content-type: application/json\n"),
            5,
            "headers go as lines"
        );
        assert_eq!(count(br#"[["x-odd","two\nlines"]]"#), 1);
        assert_eq!(decode(&frame).unwrap(), entries);
    }

    /// A frame's entries, decompressed.
    fn payload_of(frame: &[u8]) -> Vec<u8> {
        let ids = summary(frame).unwrap().ids.len();
        lz4_flex::decompress_size_prepended(&frame[HEADER_LEN + ids..]).unwrap()
    }

    /// The frame with its entries changed by `change`.
    fn with_payload(frame: &[u8], change: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let ids = summary(frame).unwrap().ids.len();
        let mut payload = payload_of(frame);
        change(&mut payload);
        let mut changed = frame[..HEADER_LEN + ids].to_vec();
        changed.extend_from_slice(&lz4_flex::compress_prepend_size(&payload));
        changed
    }

    fn captured(text: &str) -> Answer {
        Answer::Captured(CapturedAnswer {
            status: 200,
            headers: "content-type: application/json\n".to_owned(),
            body: Body::Text(text.to_owned()),
            unredacted: None,
        })
    }

    #[test]
    fn a_repeated_text_body_is_written_once_and_read_back_in_every_entry() {
        let (list, other) = (r#"[{"id":1,"token":""}]"#, r#"{"id":2}"#);
        let answers = [
            Some(captured(list)),
            Some(captured(other)),
            None,
            Some(captured(list)),
            Some(Answer::Stored(Arc::new(RecordedResponse {
                status: 200,
                headers: Vec::new(),
                body: Body::Text(other.to_owned()),
            }))),
            Some(captured(list)),
        ];
        let drafts: Vec<Draft> = answers
            .into_iter()
            .zip(1..)
            .map(|(answer, id)| Draft {
                entry: entry(id),
                answer,
            })
            .collect();
        let frame = encode(&drafts).unwrap();
        let payload = payload_of(&frame);
        let count = |needle: &str| memchr::memmem::find_iter(&payload, needle).count();
        assert_eq!((count(list), count(other)), (1, 1));

        let bodies = |frame: &[u8]| -> Vec<Option<Body>> {
            decode(frame)
                .unwrap()
                .iter()
                .map(|entry| entry.response.as_ref().map(|answer| answer.body.clone()))
                .collect()
        };
        let text = |text: &str| Some(Body::Text(text.to_owned()));
        assert_eq!(
            bodies(&frame),
            [
                text(list),
                text(other),
                None,
                text(list),
                text(other),
                text(list)
            ]
        );
        // The entries that first held each body are cut; the later ones still read theirs.
        assert_eq!(
            bodies(&cut(&frame, 3).unwrap()),
            [text(list), text(other), text(list)]
        );
    }

    #[test]
    fn a_repeated_body_that_points_nowhere_is_corrupt_not_a_panic() {
        let drafts = [
            entry(1).into(),
            Draft {
                entry: entry(2),
                answer: Some(captured("{}")),
            },
            Draft {
                entry: entry(3),
                answer: Some(captured("{}")),
            },
        ];
        let frame = encode(&drafts).unwrap();
        let payload = payload_of(&frame);
        let index_at = payload.len() - 4;
        assert_eq!(payload[index_at - 4..index_at], SAME_AS.to_le_bytes());
        assert_eq!(payload[index_at..], 1u32.to_le_bytes());
        // At an entry without a text body, at itself, past the frame.
        for index in [0u32, 2, 7, u32::MAX] {
            let damaged = with_payload(&frame, |payload| {
                payload[index_at..].copy_from_slice(&index.to_le_bytes());
            });
            assert!(
                matches!(decode(&damaged), Err(FrameError::Corrupt)),
                "{index}"
            );
        }
        let cut_short = with_payload(&frame, |payload| payload.truncate(index_at + 2));
        assert!(matches!(decode(&cut_short), Err(FrameError::Corrupt)));
    }

    #[test]
    fn a_captured_answer_is_read_back_as_a_stored_one() {
        let captured = CapturedAnswer {
            status: 201,
            headers: "content-type: application/json; charset=utf-8\nx-empty: \nlink: <{{origin}}/a?page=2>; rel=\"next\"\n"
                .to_owned(),
            body: Body::Text(r#"{"id":1}"#.to_owned()),
            unredacted: None,
        };
        let mut expected = entry(1);
        expected.response = Some(Arc::new(RecordedResponse {
            status: 201,
            headers: vec![
                (
                    "content-type".to_owned(),
                    "application/json; charset=utf-8".to_owned(),
                ),
                ("x-empty".to_owned(), String::new()),
                (
                    "link".to_owned(),
                    r#"<{{origin}}/a?page=2>; rel="next""#.to_owned(),
                ),
            ],
            body: Body::Text(r#"{"id":1}"#.to_owned()),
        }));
        let mut headless = captured.clone();
        headless.headers.clear();
        headless.body = Body::Binary(bytes::Bytes::from_static(b"\x00"));
        let frame = encode(&[
            Draft {
                entry: entry(1),
                answer: Some(Answer::Captured(captured)),
            },
            Draft {
                entry: entry(2),
                answer: Some(Answer::Captured(headless)),
            },
        ])
        .unwrap();
        let decoded = decode(&frame).unwrap();
        assert_eq!(decoded[0], expected);
        let second = decoded[1].response.as_ref().unwrap();
        assert!(second.headers.is_empty());
        assert_eq!(
            second.body,
            Body::Binary(bytes::Bytes::from_static(b"\x00"))
        );
    }

    #[test]
    fn entries_are_message_pack_and_frames_of_json_entries_from_earlier_builds_are_still_read() {
        let mut entries = vec![
            answered(1, Body::Text(r#"[{"id":1}]"#.to_owned())),
            answered(
                2,
                Body::Json(serde_json::json!({"id": 2, "note": "é"}).into()),
            ),
            answered(3, Body::Text(r#"[{"id":1}]"#.to_owned())),
            entry(4),
        ];
        entries[3].request.body = Body::Json(serde_json::json!({"scopes": ["repo"]}).into());
        entries[3].request.query = vec![("page".to_owned(), "2".to_owned())];
        entries[3].client_id = Some("abc123".to_owned());
        entries[3].interaction = Some(7);
        entries[3].truncated = true;
        let frame = encode(&drafts(&entries)).unwrap();
        assert_eq!(frame[0], FRAME_TAG_PACKED);
        let payload = payload_of(&frame);
        let entry_chunk =
            &payload[4..4 + u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize];
        assert!(
            matches!(entry_chunk[0], 0x80..=0x8f | 0xde | 0xdf),
            "a MessagePack map"
        );
        assert_eq!(decode(&frame).unwrap(), entries);
        assert_eq!(decode(&cut(&frame, 2).unwrap()).unwrap(), entries[2..]);

        // As builds before MessagePack wrote them: JSON entries, tagged by whether a text body
        // repeats.
        let repeats = encode_as(&drafts(&entries), EntryForm::Json).unwrap();
        assert_eq!(repeats[0], FRAME_TAG_REPEATS);
        assert_eq!(payload_of(&repeats)[4], b'{');
        assert_eq!(decode(&repeats).unwrap(), entries);
        assert_eq!(decode(&cut(&repeats, 3).unwrap()).unwrap(), entries[3..]);
        let unrepeated = encode_as(&drafts(&entries[..2]), EntryForm::Json).unwrap();
        assert_eq!(unrepeated[0], FRAME_TAG);
        assert_eq!(decode(&unrepeated).unwrap(), entries[..2]);

        // An entry that is not MessagePack is an error that says so.
        let damaged = with_payload(&frame, |payload| payload[4] = 0xc1);
        assert!(matches!(decode(&damaged), Err(FrameError::Packed(_))));
    }

    #[test]
    fn an_answer_written_as_json_by_an_earlier_build_is_still_read() {
        let answer = answered(1, Body::Json(serde_json::json!({"id": 1}).into()))
            .response
            .unwrap();
        let chunk = serde_json::to_vec(&AnswerHead(&answer)).unwrap();
        assert_eq!(read_answer(&chunk).unwrap(), *answer);
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
        let frame = encode(&drafts(&[
            entry(1),
            answered(2, Body::Text("{}".to_owned())),
        ]))
        .unwrap();
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
