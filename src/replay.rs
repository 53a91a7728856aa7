//! Replay: answering requests from loaded cassettes, never from the network.
//!
//! All cassettes are loaded once into a [`ReplaySet`]: each interaction's response is prepared
//! as shared bytes (with the origin placeholder split out), and interactions are indexed by
//! their request fingerprint. Several interactions with the same fingerprint form a track that
//! is served in recorded order, after which the last one repeats, so `list → create → list`
//! replays faithfully even when unrelated requests interleave.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use serde_json::Value;

use crate::cassette::{
    Body, Cassette, CassetteError, Interaction, LoadedCassette, RecordedRequest, RecordedResponse,
    ORIGIN_PLACEHOLDER,
};
use crate::deprecation::DeprecationHeaders;
use crate::matching::{MatchField, MatchRules};
use crate::proxy::headers::is_hop_by_hop;
use crate::redaction::{last_eight, sha256_hex};
use crate::scope::is_deprecated_family;

/// How recorded answers are turned into replayed ones.
#[derive(Clone, Debug, Default)]
pub struct ReplayOptions {
    pub tokens: TokenMode,
    /// Added to answers of the deprecated families; `None` with `--no-deprecation-headers`.
    pub deprecation: Option<DeprecationHeaders>,
    pub dates: DateMode,
    /// Keep each stored response for the journal.
    pub keep_recorded: bool,
}

/// Which `Date` a replayed answer carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DateMode {
    /// The time of the replay; `X-RateLimit-Reset` moves by as much.
    #[default]
    Now,
    /// The recorded one (`--keep-recorded-date`).
    Recorded,
}

/// What a replayed creation response carries in `token`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenMode {
    /// `""`, as stored.
    #[default]
    Stored,
    /// A fake token in GitHub's format whose last eight characters are the recorded
    /// `token_last_eight`, with `hashed_token` rewritten to match (`--synthesize-tokens`).
    Synthesized,
}

/// Bytes with the origin placeholder split out, so rendering is a cheap join.
#[derive(Clone, Debug)]
pub enum Template {
    /// No placeholder: served as is.
    Plain(Bytes),
    /// Pieces to join with the serving origin, and the join for the first origin served
    /// (nearly always the only one: clients reach a replay by one address).
    WithOrigin {
        parts: Vec<Bytes>,
        first: std::sync::OnceLock<(Box<str>, Bytes)>,
    },
}

impl Template {
    pub fn new(bytes: Bytes) -> Self {
        let placeholder = ORIGIN_PLACEHOLDER.as_bytes();
        let mut parts = Vec::new();
        let mut start = 0;
        for at in memchr::memmem::find_iter(&bytes, placeholder) {
            parts.push(bytes.slice(start..at));
            start = at + placeholder.len();
        }
        if parts.is_empty() {
            return Template::Plain(bytes);
        }
        parts.push(bytes.slice(start..));
        Template::WithOrigin {
            parts,
            first: std::sync::OnceLock::new(),
        }
    }

    /// The bytes with `origin` in place of each placeholder.
    pub fn render(&self, origin: &str) -> Bytes {
        match self {
            Template::Plain(bytes) => bytes.clone(),
            Template::WithOrigin { parts, first } => {
                let (first_origin, rendered) =
                    first.get_or_init(|| (origin.into(), join(parts, origin)));
                if **first_origin == *origin {
                    rendered.clone()
                } else {
                    join(parts, origin)
                }
            }
        }
    }

    /// The bytes as stored, placeholder and all (not remembered as a serving origin's join).
    pub fn stored(&self) -> Bytes {
        match self {
            Template::Plain(bytes) => bytes.clone(),
            Template::WithOrigin { parts, .. } => join(parts, ORIGIN_PLACEHOLDER),
        }
    }
}

/// `parts` joined with `origin` between them.
fn join(parts: &[Bytes], origin: &str) -> Bytes {
    let len = parts.iter().map(Bytes::len).sum::<usize>() + origin.len() * (parts.len() - 1);
    let mut out = BytesMut::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(origin.as_bytes());
        }
        out.extend_from_slice(part);
    }
    out.freeze()
}

/// Where a served header's value comes from.
#[derive(Clone, Debug)]
pub enum HeaderSource {
    /// The recorded value, checked once at load.
    Fixed(HeaderValue),
    /// The recorded value with the origin put back (`Link`, `Location`); boxed, since few
    /// values hold the origin and every line is as large as the largest kind.
    Recorded(Box<Template>),
    /// `Date`: the time of the replay.
    Now,
    /// `X-RateLimit-Reset`: the recorded epoch seconds, moved by as much as `Date` moved.
    RateLimitReset(u64),
}

impl HeaderSource {
    /// The value to serve, given this answer's origin, `Date`, and how far `Date` moved from the
    /// recorded one (seconds).
    fn value(&self, origin: &str, date: &HeaderValue, shift: i64) -> Option<HeaderValue> {
        match self {
            HeaderSource::Fixed(value) => Some(value.clone()),
            HeaderSource::Recorded(template) => {
                HeaderValue::from_maybe_shared(template.render(origin)).ok()
            }
            HeaderSource::Now => Some(date.clone()),
            HeaderSource::RateLimitReset(reset) => Some(HeaderValue::from(
                i64::try_from(*reset).unwrap_or(i64::MAX) + shift,
            )),
        }
    }
}

/// A response's headers, ready to serve. Each answer clones a map in recorded order (no hashing
/// per request). The values that are computed (`Date`, `X-RateLimit-Reset`, URLs with the
/// origin) are filled in at the positions they were recorded in, and only when what they are
/// computed from changed since the last answer: once a second, or with the client's origin. The
/// map is built when the interaction first answers, so loading a large cassette stays fast and
/// interactions never served cost nothing.
#[derive(Clone, Debug, Default)]
pub struct PreparedHeaders {
    /// Every header line in recorded order, with where its value comes from.
    list: Vec<(HeaderName, HeaderSource)>,
    /// Boxed: most interactions of a large cassette never answer, and the map is large.
    ready: std::sync::OnceLock<Box<ReadyHeaders>>,
}

#[derive(Debug)]
struct ReadyHeaders {
    /// For each computed value, in the order the map's iterator yields it: its position in
    /// that order and its line in `list`.
    computed: Vec<(usize, usize)>,
    /// Every header, with the computed values of the last answer that had them all (empty
    /// before the first). Filling in costs about as much again as the clone, so answers within
    /// the same second to the same origin are a clone of this alone.
    last: ArcSwap<Filled>,
}

impl Clone for ReadyHeaders {
    fn clone(&self) -> Self {
        Self {
            computed: self.computed.clone(),
            last: ArcSwap::new(self.last.load_full()),
        }
    }
}

/// A header map and what its computed values were filled in from.
#[derive(Debug)]
struct Filled {
    /// The origin, `Date` and `X-RateLimit-Reset` shift; `None` until first filled in.
    inputs: Option<(Box<str>, HeaderValue, i64)>,
    headers: HeaderMap,
}

impl Filled {
    fn is_for(&self, origin: &str, date: &HeaderValue, shift: i64) -> bool {
        self.inputs
            .as_ref()
            .is_some_and(|(o, d, s)| *s == shift && d == date && **o == *origin)
    }
}

impl ReadyHeaders {
    fn new(list: &[(HeaderName, HeaderSource)]) -> Self {
        let mut map = HeaderMap::with_capacity(list.len());
        for (name, source) in list {
            let value = match source {
                HeaderSource::Fixed(value) => value.clone(),
                _ => HeaderValue::from_static(""),
            };
            map.append(name.clone(), value);
        }
        // The map yields all the values of a name together, at its first line, in the order
        // they were appended: the nth value of a name is its nth line.
        let mut seen: Vec<(&HeaderName, usize)> = Vec::new();
        let mut computed = Vec::new();
        for (position, name) in map.iter().map(|(name, _)| name).enumerate() {
            let nth = match seen.iter_mut().find(|(known, _)| *known == name) {
                Some((_, count)) => {
                    *count += 1;
                    *count
                }
                None => {
                    seen.push((name, 0));
                    0
                }
            };
            let line = list
                .iter()
                .enumerate()
                .filter(|(_, (listed, _))| listed == name)
                .nth(nth)
                .map(|(line, _)| line)
                .expect("every value in the map came from a line");
            if !matches!(list[line].1, HeaderSource::Fixed(_)) {
                computed.push((position, line));
            }
        }
        Self {
            computed,
            last: ArcSwap::from_pointee(Filled {
                inputs: None,
                headers: map,
            }),
        }
    }
}

impl PreparedHeaders {
    pub fn new(list: Vec<(HeaderName, HeaderSource)>) -> Self {
        Self {
            list,
            ready: std::sync::OnceLock::new(),
        }
    }

    /// The headers of one answer, in recorded order; with `only`, just the names it keeps (a
    /// `304`).
    pub fn render(
        &self,
        origin: &str,
        date: &HeaderValue,
        shift: i64,
        only: Option<fn(&HeaderName) -> bool>,
    ) -> HeaderMap {
        let ready = self
            .ready
            .get_or_init(|| Box::new(ReadyHeaders::new(&self.list)));
        let last = ready.last.load();
        if ready.computed.is_empty() || last.is_for(origin, date, shift) {
            return keep_only(last.headers.clone(), only);
        }
        let mut headers = last.headers.clone();
        drop(last);
        if self.fill(&ready.computed, &mut headers, origin, date, shift) {
            ready.last.store(Arc::new(Filled {
                inputs: Some((origin.into(), date.clone(), shift)),
                headers: headers.clone(),
            }));
        }
        keep_only(headers, only)
    }

    /// Fills the computed values into `headers` (every header, at its recorded position).
    /// Returns whether all of them could be; those that could not are taken out, so the map no
    /// longer has every header at its position.
    fn fill(
        &self,
        computed: &[(usize, usize)],
        headers: &mut HeaderMap,
        origin: &str,
        date: &HeaderValue,
        shift: i64,
    ) -> bool {
        let mut unfilled: Option<Vec<HeaderName>> = None;
        let mut computed = computed.iter().peekable();
        for (position, (name, slot)) in headers.iter_mut().enumerate() {
            let Some(&&(at, line)) = computed.peek() else {
                break;
            };
            if at != position {
                continue;
            }
            computed.next();
            match self.list[line].1.value(origin, date, shift) {
                Some(value) => *slot = value,
                None => unfilled.get_or_insert_with(Vec::new).push(name.clone()),
            }
        }
        // Never serve a value with the placeholder still in it.
        let complete = unfilled.is_none();
        for name in unfilled.into_iter().flatten() {
            headers.remove(&name);
        }
        complete
    }

    /// Each header line with where its value comes from, in recorded order.
    pub fn sources(&self) -> impl Iterator<Item = (&HeaderName, &HeaderSource)> {
        self.list.iter().map(|(name, source)| (name, source))
    }
}

/// `headers`, or with `only` just the names it keeps (a `304`).
fn keep_only(headers: HeaderMap, only: Option<fn(&HeaderName) -> bool>) -> HeaderMap {
    match only {
        None => headers,
        Some(keep) => {
            let mut kept = HeaderMap::new();
            for (name, value) in headers.iter().filter(|(name, _)| keep(name)) {
                kept.append(name.clone(), value.clone());
            }
            kept
        }
    }
}

/// A response ready to serve.
#[derive(Clone, Debug)]
pub struct PreparedResponse {
    pub status: StatusCode,
    pub headers: PreparedHeaders,
    pub body: Template,
    /// The recorded `Date`, in Unix seconds.
    pub recorded_date: Option<u64>,
    /// The recorded `ETag`, for `If-None-Match`.
    pub etag: Option<String>,
    /// The recorded `Last-Modified`, for `If-Modified-Since`.
    pub last_modified: Option<u64>,
    /// How long the upstream took when this was recorded.
    pub latency: Option<Duration>,
}

impl PreparedResponse {
    /// Whether a conditional GET with these validators gets `304 Not Modified` (RFC 9110
    /// §13.1: `If-None-Match` with weak comparison; `If-Modified-Since` only without it).
    pub fn is_not_modified(
        &self,
        if_none_match: Option<&str>,
        if_modified_since: Option<&str>,
    ) -> bool {
        if !self.status.is_success() {
            return false;
        }
        if let Some(tags) = if_none_match {
            let Some(etag) = &self.etag else { return false };
            let ours = weak_opaque(etag);
            return tags
                .split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || weak_opaque(tag) == ours);
        }
        match (
            if_modified_since.and_then(|since| httpdate::parse_http_date(since).ok()),
            self.last_modified,
        ) {
            (Some(since), Some(modified)) => since
                .duration_since(UNIX_EPOCH)
                .is_ok_and(|since| since.as_secs() >= modified),
            _ => false,
        }
    }
}

impl PreparedResponse {
    /// The stored form again (origin placeholder, recorded `Date`), for the journal.
    pub fn to_recorded(&self) -> RecordedResponse {
        let headers = self
            .headers
            .sources()
            .filter_map(|(name, source)| {
                let value = match source {
                    HeaderSource::Fixed(value) => {
                        String::from_utf8_lossy(value.as_bytes()).into_owned()
                    }
                    HeaderSource::Recorded(template) => {
                        String::from_utf8_lossy(&template.render(ORIGIN_PLACEHOLDER)).into_owned()
                    }
                    HeaderSource::Now | HeaderSource::RateLimitReset(_) => return None,
                };
                Some((name.as_str().to_owned(), value))
            })
            .collect();
        RecordedResponse {
            status: self.status.as_u16(),
            headers,
            body: Body::from_bytes(
                &self.body.render(ORIGIN_PLACEHOLDER),
                crate::cassette::body::Fidelity::Exact,
            ),
        }
    }
}

/// The opaque part of an entity tag, for weak comparison (`W/"x"` equals `"x"`).
fn weak_opaque(tag: &str) -> &str {
    tag.trim().strip_prefix("W/").unwrap_or(tag.trim())
}

/// Headers a `304 Not Modified` keeps (RFC 9110 §15.4.5, and what GHES sends on one).
pub fn is_kept_on_304(name: &HeaderName) -> bool {
    let name = name.as_str();
    matches!(
        name,
        "etag"
            | "last-modified"
            | "cache-control"
            | "vary"
            | "expires"
            | "content-location"
            | "date"
            | "server"
            | "deprecation"
            | "sunset"
            | "link"
    ) || name.starts_with("x-ratelimit-")
        || name.starts_with("x-github-")
        || name.starts_with("access-control-")
}

/// One interaction of the set, with where it came from.
#[derive(Debug)]
pub struct Entry {
    /// Index into [`ReplaySet::cassettes`].
    pub cassette: usize,
    /// Position in that cassette's `interactions` array (0-based).
    pub index: usize,
    pub request: RecordedRequest,
    pub response: PreparedResponse,
    /// The stored response as the journal keeps it, only when exchanges are journaled.
    pub journal: Option<JournalCopy>,
    /// How many requests this interaction answered, for the replay report.
    pub hits: AtomicUsize,
}

/// The stored response as the journal keeps it: a JSON body as its (compact) text, which the
/// journal's writer copies as one string instead of walking a tree for every replayed request.
/// The journal's readers show it as JSON again.
fn journal_form(response: &RecordedResponse) -> RecordedResponse {
    let body = match &response.body {
        // Printed from the tree, not a copy of it (a copy would only be dropped again).
        Body::Json(_) => {
            Body::Text(String::from_utf8_lossy(&response.body.to_bytes()).into_owned())
        }
        other => other.clone(),
    };
    RecordedResponse {
        status: response.status,
        headers: response.headers.clone(),
        body,
    }
}

impl Entry {
    /// The stored response as the journal keeps it ([`journal_form`]), when exchanges are
    /// journaled.
    pub fn journal_copy(&self) -> Option<Arc<RecordedResponse>> {
        self.journal.as_ref().map(|copy| copy.get(&self.response))
    }
}

/// An interaction's stored response as the journal keeps it, built at the first hit that is
/// journaled: most of a large cassette's interactions may never be hit, and a copy of every
/// answer made at load took a cassette past three times its file in memory. Until then only the
/// stored headers are held (as `name: value` lines), since replay may add to them; the body is
/// the served one with the placeholder back.
#[derive(Debug)]
pub struct JournalCopy {
    built: std::sync::OnceLock<Arc<RecordedResponse>>,
    /// What it is built from; `None` when it was built at load: headers the lines would not
    /// give back, or tokens synthesized into the served body.
    source: Option<(String, BodyForm)>,
}

/// The form of a stored body, which its served bytes do not tell.
#[derive(Clone, Copy, Debug)]
enum BodyForm {
    Empty,
    /// JSON (journaled as its compact text) or text.
    Text,
    Binary,
}

impl JournalCopy {
    /// The copy of `stored`, an answer as the cassette holds it, whose body is served as it is
    /// stored unless `served_as_stored` is false.
    fn new(stored: &RecordedResponse, served_as_stored: bool) -> Self {
        if !served_as_stored || !crate::capture::lines_hold(&stored.headers) {
            return Self {
                built: Arc::new(journal_form(stored)).into(),
                source: None,
            };
        }
        let mut lines = String::with_capacity(
            stored
                .headers
                .iter()
                .map(|(name, value)| name.len() + value.len() + 3)
                .sum(),
        );
        for (name, value) in &stored.headers {
            lines.push_str(name);
            lines.push_str(": ");
            lines.push_str(value);
            lines.push('\n');
        }
        let form = match stored.body {
            Body::Empty => BodyForm::Empty,
            Body::Json(_) | Body::Text(_) => BodyForm::Text,
            Body::Binary(_) => BodyForm::Binary,
        };
        Self {
            built: std::sync::OnceLock::new(),
            source: Some((lines, form)),
        }
    }

    /// The copy, built from `response` (the interaction's prepared answer) at the first call.
    fn get(&self, response: &PreparedResponse) -> Arc<RecordedResponse> {
        let built = self.built.get_or_init(|| {
            let Some((lines, form)) = &self.source else {
                unreachable!("a copy without its source was built at load");
            };
            let headers = crate::capture::header_pairs(lines);
            let bytes = response.body.stored();
            let body = match form {
                BodyForm::Empty => Body::Empty,
                BodyForm::Text => Body::Text(String::from_utf8_lossy(&bytes).into_owned()),
                BodyForm::Binary => Body::Binary(bytes),
            };
            Arc::new(RecordedResponse {
                status: response.status.as_u16(),
                headers,
                body,
            })
        });
        Arc::clone(built)
    }
}

/// Match keys → their tracks, hashed with foldhash rather than SipHash: every request hashes
/// its key, and only a cassette's keys are ever inserted, so no request can fill the table with
/// collisions.
type Index = foldhash::HashMap<String, Track>;

/// A set being built: prepared interactions indexed by fingerprint in the order added, and the
/// first that could not be prepared.
#[derive(Default)]
struct Indexer {
    entries: Vec<Entry>,
    index: Index,
    synthetic: HashMap<String, String>,
    failed: Option<CassetteError>,
}

impl Indexer {
    fn reserve(&mut self, more: usize) {
        self.entries.reserve(more);
        self.index.reserve(more);
    }

    fn add(&mut self, prepared: Result<Prepared, CassetteError>) {
        let item = match prepared {
            Ok(item) => item,
            Err(err) => {
                self.failed.get_or_insert(err);
                return;
            }
        };
        self.synthetic.extend(item.synthetic);
        let track = self.index.entry(item.key).or_insert_with(|| Track {
            entries: Vec::new(),
            otp: Vec::new(),
            next: AtomicUsize::new(0),
        });
        track.entries.push(self.entries.len());
        track.otp.push(item.otp);
        self.entries.push(item.entry);
    }

    fn finish(
        self,
        named: &[PathBuf],
        cassettes: Vec<PathBuf>,
        rules: MatchRules,
    ) -> Result<ReplaySet, CassetteError> {
        if let Some(err) = self.failed {
            return Err(err);
        }
        let read_headers = ALWAYS_READ_HEADERS
            .iter()
            .map(|name| (*name).to_owned())
            .chain(rules.fields().iter().filter_map(|field| match field {
                MatchField::Header(name) => Some(name.clone()),
                MatchField::Auth => Some("authorization".to_owned()),
                _ => None,
            }))
            .collect();
        Ok(ReplaySet {
            cassettes,
            origin_paths: named.to_vec(),
            entries: self.entries,
            index: self.index,
            rules,
            synthetic: self.synthetic,
            read_headers,
        })
    }
}

/// Interactions that share a fingerprint, served in order.
#[derive(Debug)]
struct Track {
    entries: Vec<usize>,
    /// Whether each entry's recorded request carried an `X-GitHub-OTP` code.
    otp: Vec<bool>,
    next: AtomicUsize,
}

impl Track {
    /// The position to serve and the cursor after it. Normally the cursor's entry, then the next
    /// one (the last repeats). Two-factor flows are matched on whether a code is present: a
    /// request with a code skips ahead to the recorded retry with one, and a request without a
    /// code gets the nearest recorded challenge, so a client that sends its code at once, or
    /// retries without one, sees what GHES would answer.
    fn choose(&self, cursor: usize, otp: bool) -> (usize, usize) {
        let last = self.entries.len() - 1;
        let current = cursor.min(last);
        let chosen = if self.otp[current] == otp {
            current
        } else if let Some(ahead) = (current + 1..=last).find(|&i| self.otp[i] == otp) {
            ahead
        } else if let Some(behind) = (0..current).rev().find(|&i| self.otp[i] == otp) {
            return (behind, cursor);
        } else {
            current
        };
        (chosen, (chosen + 1).min(last))
    }
}

/// The largest lookup buffer a thread keeps between requests (a fingerprint without a large
/// body is well under it).
const LOOKUP_KEY_KEPT: usize = 4096;

thread_local! {
    /// This thread's buffer for the fingerprint of the request it looks up.
    static LOOKUP_KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// The result of looking a request up.
#[derive(Debug)]
pub enum Lookup<'a> {
    Hit(&'a Entry),
    Miss(MissReport),
}

/// Why a request found no recording, for the miss answer and the log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MissReport {
    /// `METHOD /path?query` of the request (redacted).
    pub request: String,
    /// The cassettes that were searched.
    pub cassettes: Vec<PathBuf>,
    /// The closest recorded request, if any was recorded.
    pub closest: Option<Closest>,
}

/// The recorded request that came nearest to a missed one.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Closest {
    pub request: String,
    pub cassette: PathBuf,
    pub index: usize,
    /// One line per differing field.
    pub differences: Vec<String>,
}

impl MissReport {
    /// One paragraph for a person: what was asked, what is closest and how it differs, and
    /// the command that would record it.
    pub fn message(&self) -> String {
        let cassettes: Vec<String> = self
            .cassettes
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut text = format!(
            "ghes-vcr replay has no recording for {} in {}.",
            self.request,
            cassettes.join(", ")
        );
        match &self.closest {
            Some(closest) => text.push_str(&format!(
                " Closest recorded request: {} ({} interactions[{}]), which differs in {}.",
                closest.request,
                closest.cassette.display(),
                closest.index,
                closest.differences.join("; ")
            )),
            None => text.push_str(" The cassettes hold no interactions."),
        }
        let target = self
            .closest
            .as_ref()
            .map(|c| c.cassette.clone())
            .or_else(|| self.cassettes.first().cloned())
            .unwrap_or_else(|| PathBuf::from("cassettes/new.json"));
        let target = if target.is_dir() {
            target.join("new.json")
        } else {
            target
        };
        text.push_str(&format!(
            " To record it, run: ghes-vcr record --mode new-episodes --upstream https://YOUR-GHES-HOST --cassette {} and repeat the request.",
            target.display()
        ));
        text
    }
}

/// Every loaded interaction, indexed by fingerprint.
#[derive(Debug)]
pub struct ReplaySet {
    /// Where the cassettes came from, in load order.
    cassettes: Vec<PathBuf>,
    /// What the user named (`--cassette`), for messages.
    origin_paths: Vec<PathBuf>,
    entries: Vec<Entry>,
    index: Index,
    rules: MatchRules,
    /// SHA-256 of each synthesized token → the recorded `hashed_token` it stands for.
    synthetic: HashMap<String, String>,
    /// The request headers answering reads (lower case): see [`ReplaySet::reads_header`].
    read_headers: Vec<String>,
}

/// The request headers a replay reads whatever the match rules: the two-factor code, which picks
/// a challenge or its retry ([`Track::choose`]), and the validators of a conditional request.
const ALWAYS_READ_HEADERS: [&str; 3] = ["x-github-otp", "if-none-match", "if-modified-since"];

/// What [`ReplaySet::load_keeping`] kept: for each file, its top level (no interactions) and
/// what was kept of each of its interactions, in order.
pub type KeptPerFile<T> = Vec<(Cassette, Vec<T>)>;

impl ReplaySet {
    /// Loads the cassette file or directory `path` (as [`crate::cassette::load_set`] reads it)
    /// and prepares every interaction for serving, each as soon as it is parsed.
    ///
    /// # Errors
    /// A [`CassetteError`] from loading, or [`CassetteError::Invalid`] for a status, header
    /// name or header value HTTP cannot carry.
    pub fn load(
        path: &Path,
        rules: MatchRules,
        options: &ReplayOptions,
    ) -> Result<Self, CassetteError> {
        Ok(Self::load_keeping(path, rules, options, |_| ())?.0)
    }

    /// As [`ReplaySet::load`], also handing back, for each file in the set's order, its top
    /// level (no interactions) and `keep` of each of its interactions in order, made on every
    /// core as the interactions are prepared: what `record --mode new-episodes` continues from,
    /// without holding the file's interactions as parsed.
    ///
    /// # Errors
    /// As [`ReplaySet::load`].
    pub fn load_keeping<T: Send>(
        path: &Path,
        rules: MatchRules,
        options: &ReplayOptions,
        keep: impl Fn(&Interaction) -> T + Sync,
    ) -> Result<(Self, KeptPerFile<T>), CassetteError> {
        let cassettes = crate::cassette::cassette_files(path)?;
        let mut set = Indexer::default();
        let mut kept = Vec::with_capacity(cassettes.len());
        for cassette in 0..cassettes.len() {
            let prepared =
                crate::cassette::load_prepared(&cassettes[cassette], |index, interaction| {
                    let kept = keep(&interaction);
                    let prepared =
                        Prepared::new(&cassettes, cassette, index, interaction, &rules, options);
                    (prepared, kept)
                })?;
            set.reserve(prepared.len());
            let top = prepared.top().clone();
            let mut file = Vec::with_capacity(prepared.len());
            for (prepared, kept) in prepared {
                set.add(prepared);
                file.push(kept);
            }
            kept.push((top, file));
        }
        Ok((set.finish(&[path.to_owned()], cassettes, rules)?, kept))
    }

    /// Prepares every interaction of `set` for serving.
    ///
    /// # Errors
    /// [`CassetteError::Invalid`] for a status, header name or header value HTTP cannot carry.
    pub fn new(
        named: &[PathBuf],
        set: Vec<LoadedCassette>,
        rules: MatchRules,
        options: &ReplayOptions,
    ) -> Result<Self, CassetteError> {
        let mut cassettes = Vec::with_capacity(set.len());
        let mut pending = Vec::new();
        for (cassette_no, loaded) in set.into_iter().enumerate() {
            for (i, interaction) in loaded.cassette.interactions.into_iter().enumerate() {
                pending.push((cassette_no, i, interaction));
            }
            cassettes.push(loaded.path);
        }
        let mut set = Indexer::default();
        set.reserve(pending.len());
        crate::worker::map_on_cores(pending, |(cassette, i, interaction)| {
            Prepared::new(&cassettes, cassette, i, interaction, &rules, options)
        })
        .into_iter()
        .flatten()
        .for_each(|prepared| set.add(prepared));
        set.finish(named, cassettes, rules)
    }

    /// With synthesized tokens, a request that presents one (`Authorization: token …`) is
    /// matched as the recorded token it stands for.
    pub fn resolve_synthetic_tokens(&self, request: &mut RecordedRequest) {
        if self.synthetic.is_empty() {
            return;
        }
        for (name, value) in &mut request.headers {
            if name != "authorization" && name != "proxy-authorization" {
                continue;
            }
            let presented = value
                .split_whitespace()
                .find_map(|word| word.strip_prefix("sha256="))
                .and_then(|hash| {
                    self.synthetic
                        .get(hash)
                        .map(|recorded| (hash.to_owned(), recorded))
                });
            if let Some((fake, recorded)) = presented {
                *value = value.replace(&format!("sha256={fake}"), &format!("sha256={recorded}"));
            }
        }
    }

    /// Whether answering a request reads its header `name` (lower case): to match it (the
    /// headers the rules name, and the credential with `auth`), to choose within a track, or to
    /// answer a conditional request. Its lookups, answers and miss reports are the same for a
    /// request captured with these headers alone ([`crate::capture::Capture::request_reading`]).
    pub fn reads_header(&self, name: &str) -> bool {
        self.read_headers.iter().any(|read| read == name)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn cassettes(&self) -> &[PathBuf] {
        &self.cassettes
    }

    pub fn cassette_path(&self, entry: &Entry) -> &Path {
        &self.cassettes[entry.cassette]
    }

    /// Finds the interaction that answers `request` (redacted), advancing its track.
    pub fn lookup(&self, request: &RecordedRequest) -> Lookup<'_> {
        let track = LOOKUP_KEY.with_borrow_mut(|key| {
            key.clear();
            self.rules.write_key(request, key);
            let track = self.index.get(key.as_str());
            // A key holds the request's body: one large body must not stay held by the thread.
            if key.capacity() > LOOKUP_KEY_KEPT {
                *key = String::new();
            }
            track
        });
        match track {
            Some(track) => {
                let otp = has_otp(request);
                let mut chosen = 0;
                // A cursor that stays (a track at its last interaction, as for a request
                // repeated all along) is not written: the workers then share its cache line
                // instead of taking it from each other on every request.
                let _ = track
                    .next
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cursor| {
                        let (position, next) = track.choose(cursor, otp);
                        chosen = position;
                        (next != cursor).then_some(next)
                    });
                Lookup::Hit(&self.entries[track.entries[chosen]])
            }
            None => Lookup::Miss(self.miss_report(request)),
        }
    }

    /// Finds what a `HEAD` request gets when only the `GET` was recorded: the interaction the
    /// `GET` would get next, without advancing its track (a `HEAD` changes nothing).
    pub fn lookup_head_as_get(&self, request: &RecordedRequest) -> Option<&Entry> {
        let mut get = request.clone();
        get.method = "GET".to_owned();
        let track = self.index.get(&self.rules.key(&get))?;
        let position = track
            .next
            .load(Ordering::Acquire)
            .min(track.entries.len() - 1);
        Some(&self.entries[track.entries[position]])
    }

    /// Every interaction, in load order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Rewinds every track to its first interaction.
    pub fn rewind(&self) {
        for track in self.index.values() {
            track.next.store(0, Ordering::Release);
        }
    }

    /// Scans every interaction for the closest one; only runs on a miss.
    fn miss_report(&self, request: &RecordedRequest) -> MissReport {
        let closest = self
            .entries
            .iter()
            .enumerate()
            .max_by_key(|(position, entry)| {
                (
                    self.rules.score(request, &entry.request),
                    std::cmp::Reverse(*position),
                )
            })
            .map(|(_, entry)| Closest {
                request: entry.request.summary(),
                cassette: self.cassettes[entry.cassette].clone(),
                index: entry.index,
                differences: self.rules.differences(request, &entry.request),
            });
        MissReport {
            request: request.summary(),
            cassettes: self.origin_paths.clone(),
            closest,
        }
    }
}

/// One interaction made ready to serve, before it joins the index.
struct Prepared {
    entry: Entry,
    key: String,
    otp: bool,
    /// Synthesized token hashes → recorded hashes.
    synthetic: HashMap<String, String>,
}

impl Prepared {
    fn new(
        cassettes: &[PathBuf],
        cassette: usize,
        index: usize,
        mut interaction: crate::cassette::Interaction,
        rules: &MatchRules,
        options: &ReplayOptions,
    ) -> Result<Self, CassetteError> {
        // As stored, before replay adds anything.
        let journal = options.keep_recorded.then(|| {
            JournalCopy::new(
                &interaction.response,
                options.tokens != TokenMode::Synthesized,
            )
        });
        let mut synthetic = HashMap::new();
        if options.tokens == TokenMode::Synthesized {
            synthesize_tokens(&mut interaction.response, &mut synthetic);
        }
        if let Some(deprecation) = &options.deprecation {
            if is_deprecated_family(&interaction.request.path) {
                deprecation.apply_to_list(&mut interaction.response.headers);
            }
        }
        let latency = interaction.latency_ms.map(Duration::from_millis);
        let response = prepare(
            &cassettes[cassette],
            index,
            &interaction.response,
            options.dates,
            latency,
            options.deprecation.as_ref(),
        )?;
        Ok(Self {
            key: rules.key(&interaction.request),
            otp: has_otp(&interaction.request),
            entry: Entry {
                cassette,
                index,
                request: interaction.request,
                response,
                journal,
                hits: AtomicUsize::new(0),
            },
            synthetic,
        })
    }
}

/// Fills each blank `token` of a creation (201) response with a deterministic fake whose last
/// eight characters are the recorded `token_last_eight`, and rewrites `hashed_token` to match.
fn synthesize_tokens(response: &mut RecordedResponse, synthetic: &mut HashMap<String, String>) {
    if response.status != 201 {
        return;
    }
    if let Body::Json(json) = &mut response.body {
        synthesize_in(json.value_mut(), synthetic);
    }
}

fn synthesize_in(value: &mut Value, synthetic: &mut HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            let blank = matches!(map.get("token"), Some(Value::String(t)) if t.is_empty());
            let last8 = map
                .get("token_last_eight")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let recorded = map
                .get("hashed_token")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let (true, Some(last8), Some(recorded)) = (blank, last8, recorded) {
                let personal = map
                    .get("app")
                    .and_then(|app| app.get("client_id"))
                    .and_then(Value::as_str)
                    .is_none_or(|id| id.bytes().all(|b| b == b'0'));
                let token = fake_token(&last8, &recorded, personal);
                let hash = sha256_hex(token.as_bytes());
                synthetic.insert(hash.clone(), recorded);
                map.insert("token".into(), Value::String(token));
                map.insert("hashed_token".into(), Value::String(hash));
            }
            map.values_mut()
                .for_each(|item| synthesize_in(item, synthetic));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| synthesize_in(item, synthetic)),
        _ => {}
    }
}

/// A 40-character token in GitHub's format ending in `last8`: legacy lower-case hex when
/// `last8` is hex, else `ghp_` (personal) or `gho_` (OAuth app) with alphanumerics. Derived
/// from the recorded hash, so every replay of an interaction gives the same token. (The
/// prefixed formats' CRC32 checksum cannot in general end in a given `last8`, so checksum-aware
/// scanners see these tokens for the fakes they are.)
pub fn fake_token(last8: &str, recorded_hash: &str, personal: bool) -> String {
    const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let seed = sha256_hex(format!("ghes-vcr synthetic token {recorded_hash}").as_bytes());
    let is_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    let legacy = last8.len() == 8 && last8.bytes().all(is_hex);
    let token = if legacy {
        format!("{}{last8}", &seed[..32])
    } else {
        let prefix = if personal { "ghp_" } else { "gho_" };
        let wanted = 36usize.saturating_sub(last8.chars().count());
        let body: String = seed
            .as_bytes()
            .chunks(2)
            .cycle()
            .take(wanted)
            .map(|pair| {
                let index = usize::from(pair[0]) * 7 + usize::from(pair[1]);
                char::from(ALPHANUMERIC[index % ALPHANUMERIC.len()])
            })
            .collect();
        format!("{prefix}{body}{last8}")
    };
    debug_assert_eq!(last_eight(&token), last8);
    token
}

fn prepare(
    path: &Path,
    index: usize,
    response: &RecordedResponse,
    dates: DateMode,
    latency: Option<Duration>,
    deprecation: Option<&DeprecationHeaders>,
) -> Result<PreparedResponse, CassetteError> {
    let invalid = |message: String| CassetteError::Invalid {
        path: path.to_owned(),
        index,
        message,
    };
    let status = StatusCode::from_u16(response.status).map_err(|_| {
        invalid(format!(
            "response status {} is not an HTTP status code",
            response.status
        ))
    })?;
    let recorded =
        |name: &'static str| crate::cassette::header_values(&response.headers, name).next();
    let recorded_date = recorded("date")
        .and_then(|date| httpdate::parse_http_date(date).ok())
        .and_then(|date| date.duration_since(UNIX_EPOCH).ok())
        .map(|date| date.as_secs());
    let mut headers = Vec::with_capacity(response.headers.len());
    for (name, value) in &response.headers {
        if is_hop_by_hop(name) || name.eq_ignore_ascii_case("content-length") {
            continue;
        }
        let (header, checked) = match deprecation.and_then(|added| added.shared(name, value)) {
            Some(shared) => shared,
            None => (
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    invalid(format!(
                        "response header name {name:?} is not a valid header name"
                    ))
                })?,
                HeaderValue::from_str(value).map_err(|_| {
                    invalid(format!(
                        "response header {name} has a value HTTP cannot carry: {value:?}"
                    ))
                })?,
            ),
        };
        let source = match (dates, recorded_date, header.as_str()) {
            (DateMode::Now, Some(_), "date") => HeaderSource::Now,
            (DateMode::Now, Some(_), "x-ratelimit-reset") => match value.trim().parse() {
                Ok(reset) => HeaderSource::RateLimitReset(reset),
                Err(_) => HeaderSource::Fixed(checked),
            },
            _ if !value.contains(ORIGIN_PLACEHOLDER) => HeaderSource::Fixed(checked),
            _ => HeaderSource::Recorded(Box::new(Template::new(Bytes::from(value.clone())))),
        };
        headers.push((header, source));
    }
    Ok(PreparedResponse {
        status,
        headers: PreparedHeaders::new(headers),
        body: Template::new(response.body.to_bytes()),
        recorded_date,
        etag: recorded("etag").map(str::to_owned),
        last_modified: recorded("last-modified")
            .and_then(|date| httpdate::parse_http_date(date).ok())
            .and_then(|date| date.duration_since(UNIX_EPOCH).ok())
            .map(|date| date.as_secs()),
        latency,
    })
}

/// Whether a request carries a two-factor code.
fn has_otp(request: &RecordedRequest) -> bool {
    request.header_values("x-github-otp").next().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Body, Cassette, Interaction, RecordedResponse};

    #[test]
    fn prepared_headers_keep_recorded_order_and_fill_in_computed_values() {
        let fixed = |v: &'static str| HeaderSource::Fixed(HeaderValue::from_static(v));
        let line =
            |name: &'static str, source: HeaderSource| (HeaderName::from_static(name), source);
        let headers = PreparedHeaders::new(vec![
            line("server", fixed("GitHub.com")),
            line("content-type", fixed("application/json")),
            line("date", HeaderSource::Now),
            line("link", fixed("<https://docs>; rel=\"help\"")),
            line("etag", fixed("\"abc\"")),
            line(
                "link",
                HeaderSource::Recorded(Box::new(Template::new(Bytes::from_static(
                    b"<{{origin}}/next>; rel=\"next\"",
                )))),
            ),
            line("x-ratelimit-reset", HeaderSource::RateLimitReset(1000)),
        ]);
        let date = HeaderValue::from_static("Tue, 24 Nov 2026 10:00:00 GMT");
        let served = headers.render("http://127.0.0.1:9", &date, 60, None);
        let lines: Vec<(&str, &str)> = served
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
            .collect();
        assert_eq!(
            lines,
            [
                ("server", "GitHub.com"),
                ("content-type", "application/json"),
                ("date", "Tue, 24 Nov 2026 10:00:00 GMT"),
                ("link", "<https://docs>; rel=\"help\""),
                ("link", "<http://127.0.0.1:9/next>; rel=\"next\""),
                ("etag", "\"abc\""),
                ("x-ratelimit-reset", "1060"),
            ]
        );
        let not_modified = headers.render("http://h", &date, 0, Some(is_kept_on_304));
        let names: Vec<&str> = not_modified.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            names,
            ["server", "date", "link", "etag", "x-ratelimit-reset"]
        );
        let sources: Vec<bool> = headers
            .sources()
            .map(|(_, source)| matches!(source, HeaderSource::Fixed(_)))
            .collect();
        assert_eq!(sources, [true, true, false, true, true, false, false]);
        // An origin that cannot go into a header: no value of that name is served half-filled.
        let served = headers.render("http://h\n", &date, 0, None);
        assert!(served.get("link").is_none());
        assert_eq!(served.len(), 5);
    }

    #[test]
    fn prepared_headers_are_filled_in_again_whenever_an_input_changes() {
        let headers = PreparedHeaders::new(vec![
            (HeaderName::from_static("date"), HeaderSource::Now),
            (
                HeaderName::from_static("location"),
                HeaderSource::Recorded(Box::new(Template::new(Bytes::from_static(
                    b"{{origin}}/authorizations/1",
                )))),
            ),
            (
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderSource::RateLimitReset(1000),
            ),
        ]);
        let served = |origin: &str, date: &'static str, shift: i64| {
            let map = headers.render(origin, &HeaderValue::from_static(date), shift, None);
            map.values()
                .map(|value| value.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        let (ten, eleven) = (
            "Tue, 24 Nov 2026 10:00:00 GMT",
            "Tue, 24 Nov 2026 10:00:01 GMT",
        );
        let first = [ten, "http://a:1/authorizations/1", "1000"];
        assert_eq!(served("http://a:1", ten, 0), first);
        assert_eq!(served("http://a:1", ten, 0), first, "the same inputs again");
        assert_eq!(
            served("http://b:2", ten, 0),
            [ten, "http://b:2/authorizations/1", "1000"]
        );
        assert_eq!(
            served("http://b:2", eleven, 0),
            [eleven, "http://b:2/authorizations/1", "1000"]
        );
        assert_eq!(
            served("http://b:2", eleven, 1),
            [eleven, "http://b:2/authorizations/1", "1001"]
        );
        assert_eq!(
            served("http://a:1", ten, 0),
            first,
            "back to the first inputs"
        );
        let not_modified = headers.render(
            "http://a:1",
            &HeaderValue::from_static(ten),
            0,
            Some(is_kept_on_304),
        );
        let kept: Vec<&str> = not_modified.keys().map(HeaderName::as_str).collect();
        assert_eq!(
            kept,
            ["date", "x-ratelimit-reset"],
            "a 304 keeps its names only"
        );
    }

    fn interaction(method: &str, path: &str, status: u16, body: &str) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: method.into(),
                path: path.into(),
                query: vec![],
                headers: vec![],
                body: Body::Empty,
            },
            response: RecordedResponse {
                status,
                headers: vec![(
                    "link".into(),
                    "<{{origin}}/api/v3/x?page=2>; rel=\"next\"".into(),
                )],
                body: Body::Text(body.into()),
            },
            latency_ms: None,
        }
    }

    fn set(interactions: Vec<Interaction>) -> ReplaySet {
        let mut cassette = Cassette::new();
        cassette.interactions = interactions;
        let loaded = LoadedCassette {
            path: "c.json".into(),
            cassette,
        };
        ReplaySet::new(
            &["c.json".into()],
            vec![loaded],
            MatchRules::default(),
            &ReplayOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn loading_prepares_the_set_that_loaded_cassettes_make() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
        let options = ReplayOptions {
            deprecation: Some(crate::deprecation::DeprecationHeaders::default()),
            keep_recorded: true,
            ..ReplayOptions::default()
        };
        let loaded = ReplaySet::load(&samples, MatchRules::default(), &options).unwrap();
        let made = ReplaySet::new(
            std::slice::from_ref(&samples),
            crate::cassette::load_set(&samples).unwrap(),
            MatchRules::default(),
            &options,
        )
        .unwrap();
        assert_eq!(loaded.cassettes(), made.cassettes());
        assert_eq!(loaded.len(), made.len());
        let date = HeaderValue::from_static("Tue, 24 Nov 2026 10:00:00 GMT");
        for (a, b) in loaded.entries().iter().zip(made.entries()) {
            assert_eq!((a.cassette, a.index), (b.cassette, b.index));
            assert_eq!(a.request, b.request);
            assert_eq!(a.response.status, b.response.status);
            assert_eq!(
                a.response.body.render("http://o"),
                b.response.body.render("http://o")
            );
            assert_eq!(
                a.response.headers.render("http://o", &date, 0, None),
                b.response.headers.render("http://o", &date, 0, None)
            );
            assert_eq!(a.journal_copy(), b.journal_copy());
            assert_eq!(
                loaded.rules.key(&a.request),
                made.rules.key(&b.request),
                "indexed alike"
            );
        }
    }

    #[test]
    fn loading_keeps_each_files_top_level_and_what_was_asked_of_each_interaction() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
        let options = ReplayOptions::default();
        let (set, kept) =
            ReplaySet::load_keeping(&samples, MatchRules::default(), &options, |interaction| {
                crate::recording::render(interaction)
            })
            .unwrap();
        let loaded = crate::cassette::load_set(&samples).unwrap();
        assert_eq!(kept.len(), loaded.len());
        assert_eq!(
            set.len(),
            loaded
                .iter()
                .map(|l| l.cassette.interactions.len())
                .sum::<usize>()
        );
        for ((top, texts), file) in kept.iter().zip(&loaded) {
            let whole = &file.cassette;
            assert_eq!(
                (top.version, &top.recorded_with, &top.upstream),
                (whole.version, &whole.recorded_with, &whole.upstream)
            );
            assert!(top.interactions.is_empty());
            let printed: Vec<_> = whole
                .interactions
                .iter()
                .map(crate::recording::render)
                .collect();
            assert_eq!(texts, &printed, "{}", file.path.display());
        }
    }

    #[test]
    fn the_journal_copy_built_at_a_first_hit_is_the_stored_answer() {
        let samples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes");
        let mut edge = interaction("GET", "/api/v3/authorizations/9", 200, "{{origin}}/x");
        edge.response.headers = vec![
            ("x-empty".into(), String::new()),
            ("link".into(), "<{{origin}}/a?page=2>; rel=\"next\"".into()),
        ];
        let mut binary = interaction("GET", "/api/v3/authorizations/10", 200, "");
        binary.response.body = Body::Binary(Bytes::from_static(b"\xff\x00"));
        let mut text = interaction("GET", "/api/v3/authorizations/11", 200, "");
        text.response.body = Body::Text(String::new());
        let mut empty = interaction("GET", "/api/v3/authorizations/12", 204, "");
        empty.response.body = Body::Empty;
        let mut set_of_files = crate::cassette::load_set(&samples).unwrap();
        set_of_files[0]
            .cassette
            .interactions
            .extend([edge, binary, text, empty]);
        let stored: Vec<RecordedResponse> = set_of_files
            .iter()
            .flat_map(|file| file.cassette.interactions.iter())
            .map(|interaction| interaction.response.clone())
            .collect();
        for tokens in [TokenMode::Stored, TokenMode::Synthesized] {
            let options = ReplayOptions {
                tokens,
                deprecation: Some(crate::deprecation::DeprecationHeaders::default()),
                keep_recorded: true,
                ..ReplayOptions::default()
            };
            let replay = ReplaySet::new(
                std::slice::from_ref(&samples),
                set_of_files.clone(),
                MatchRules::default(),
                &options,
            )
            .unwrap();
            assert_eq!(replay.entries.len(), stored.len());
            for (entry, stored) in replay.entries.iter().zip(&stored) {
                // Served first, as the proxy does, then copied for the journal.
                let _ = entry.response.body.render("http://127.0.0.1:1");
                let copy = entry.journal_copy().unwrap();
                assert_eq!(
                    *copy,
                    journal_form(stored),
                    "{tokens:?} {}",
                    entry.request.path
                );
                assert!(
                    Arc::ptr_eq(&copy, &entry.journal_copy().unwrap()),
                    "built once"
                );
            }
        }
    }

    fn body_of(lookup: Lookup<'_>) -> Bytes {
        match lookup {
            Lookup::Hit(entry) => entry.response.body.render("http://o"),
            Lookup::Miss(report) => panic!("{}", report.message()),
        }
    }

    /// A request's headers as a client sends them: a credential (built at run time), a
    /// two-factor code, a validator, and headers replay reads only when the rules name them.
    fn client_headers() -> http::HeaderMap {
        use base64::Engine as _;
        let password = ["pw", "at", "run", "time"].join("-");
        let credential =
            base64::engine::general_purpose::STANDARD.encode(format!("octocat:{password}"));
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("authorization", format!("Basic {credential}")),
            ("accept", "application/vnd.github.v3+json".to_owned()),
            ("user-agent", "legacy-client/1.0".to_owned()),
            ("x-github-otp", "123456".to_owned()),
            ("if-none-match", "\"abc\"".to_owned()),
            ("x-request-tag", "1".to_owned()),
        ] {
            headers.insert(name, HeaderValue::from_str(&value).unwrap());
        }
        headers
    }

    #[test]
    fn a_request_captured_with_the_headers_replay_reads_is_answered_as_a_whole_one() {
        let capture = crate::capture::Capture::default();
        let headers = client_headers();
        let method = http::Method::GET;
        let uri: http::Uri = "/api/v3/authorizations?per_page=5".parse().unwrap();
        let recorded = capture.request(&method, &uri, &headers, b"");
        for rules in [
            "method,path,query,body",
            "method,path,auth",
            "method,path,headers:accept,headers:user-agent",
        ] {
            let rules: MatchRules = rules.parse().unwrap();
            let recording = |body: &str, otp: bool| {
                let mut interaction = interaction("GET", "/api/v3/authorizations", 200, body);
                interaction.request = recorded.clone();
                if !otp {
                    interaction
                        .request
                        .headers
                        .retain(|(name, _)| name != "x-github-otp");
                }
                interaction
            };
            let mut cassette = Cassette::new();
            cassette.interactions = vec![recording("challenge", false), recording("retry", true)];
            let loaded = LoadedCassette {
                path: "c.json".into(),
                cassette,
            };
            let set = ReplaySet::new(
                &["c.json".into()],
                vec![loaded],
                rules.clone(),
                &ReplayOptions::default(),
            )
            .unwrap();
            let reading = |uri: &http::Uri| {
                capture.request_reading(&method, uri, &headers, b"", |name| set.reads_header(name))
            };
            let (whole, read) = (capture.request(&method, &uri, &headers, b""), reading(&uri));
            assert!(
                read.headers.len() < whole.headers.len(),
                "{rules}: headers are left out"
            );
            for name in ALWAYS_READ_HEADERS {
                assert_eq!(
                    read.header_values(name).collect::<Vec<_>>(),
                    whole.header_values(name).collect::<Vec<_>>()
                );
            }
            assert_eq!(rules.key(&read), rules.key(&whole), "{rules}");
            assert_eq!(
                body_of(set.lookup(&read)),
                "retry",
                "{rules}: the code picks the retry"
            );
            set.rewind();
            assert_eq!(body_of(set.lookup(&whole)), "retry", "{rules}");
            // A miss reports the same closest interaction and differences.
            let other: http::Uri = "/api/v3/authorizations/1".parse().unwrap();
            let message = |request: &RecordedRequest| match set.lookup(request) {
                Lookup::Miss(report) => report.message(),
                Lookup::Hit(_) => panic!("{rules}: expected a miss"),
            };
            assert_eq!(
                message(&reading(&other)),
                message(&capture.request(&method, &other, &headers, b"")),
                "{rules}"
            );
        }
    }

    #[test]
    fn a_large_request_body_is_not_kept_by_the_lookup_buffer() {
        let set = set(vec![interaction(
            "POST",
            "/api/v3/authorizations",
            201,
            "x",
        )]);
        let mut large = interaction("POST", "/api/v3/authorizations", 0, "").request;
        large.body = Body::Text("n".repeat(1 << 20));
        assert!(matches!(set.lookup(&large), Lookup::Miss(_)));
        assert!(LOOKUP_KEY.with_borrow(String::capacity) <= LOOKUP_KEY_KEPT);
        let small = interaction("POST", "/api/v3/authorizations", 0, "").request;
        assert_eq!(body_of(set.lookup(&small)), "x");
    }

    #[test]
    fn template_joins_origin() {
        let t = Template::new(Bytes::from_static(b"{{origin}}/a {{origin}}/b"));
        assert_eq!(t.render("http://x:1"), "http://x:1/a http://x:1/b");
        // The first origin's join is kept; another origin still gets its own.
        assert_eq!(t.render("http://x:1"), "http://x:1/a http://x:1/b");
        assert_eq!(t.render("https://y"), "https://y/a https://y/b");
        assert_eq!(t.render("http://x:1"), "http://x:1/a http://x:1/b");
        assert!(matches!(
            Template::new(Bytes::from_static(b"plain")),
            Template::Plain(_)
        ));
    }

    #[test]
    fn same_fingerprint_plays_in_order_then_repeats_last() {
        let set = set(vec![
            interaction("GET", "/api/v3/authorizations", 200, "first"),
            interaction("POST", "/api/v3/authorizations", 201, "created"),
            interaction("GET", "/api/v3/authorizations", 200, "second"),
        ]);
        let get = interaction("GET", "/authorizations", 0, "").request;
        assert_eq!(body_of(set.lookup(&get)), "first");
        assert_eq!(body_of(set.lookup(&get)), "second");
        assert_eq!(body_of(set.lookup(&get)), "second");
        set.rewind();
        assert_eq!(body_of(set.lookup(&get)), "first");
    }

    #[test]
    fn head_gets_what_the_get_would_without_advancing() {
        let set = set(vec![
            interaction("GET", "/api/v3/authorizations", 200, "first"),
            interaction("GET", "/api/v3/authorizations", 200, "second"),
        ]);
        let head = interaction("HEAD", "/api/v3/authorizations", 0, "").request;
        assert!(matches!(set.lookup(&head), Lookup::Miss(_)));
        let entry = set.lookup_head_as_get(&head).expect("the GET is recorded");
        assert_eq!(entry.response.body.render(""), "first");
        let get = interaction("GET", "/api/v3/authorizations", 0, "").request;
        assert_eq!(body_of(set.lookup(&get)), "first");
    }

    #[test]
    fn miss_names_closest_and_the_command() {
        let set = set(vec![interaction("GET", "/api/v3/authorizations", 200, "x")]);
        let Lookup::Miss(report) =
            set.lookup(&interaction("DELETE", "/api/v3/authorizations", 0, "").request)
        else {
            panic!("expected a miss")
        };
        let message = report.message();
        assert!(
            message.contains("no recording for DELETE /api/v3/authorizations in c.json"),
            "{message}"
        );
        assert!(
            message.contains(
                "Closest recorded request: GET /api/v3/authorizations (c.json interactions[0])"
            ),
            "{message}"
        );
        assert!(
            message.contains("method: DELETE here, GET recorded"),
            "{message}"
        );
        assert!(
            message.contains("ghes-vcr record --mode new-episodes"),
            "{message}"
        );
    }

    #[test]
    fn synthesized_tokens_keep_last_eight_and_a_consistent_hash() {
        let recorded = sha256_hex(b"the real token, long gone");
        for (last8, prefix) in [("0badcafe", ""), ("Xq3k9ZaB", "ghp_")] {
            let token = fake_token(last8, &recorded, true);
            assert_eq!(token.len(), 40, "{token}");
            assert!(
                token.starts_with(prefix) && token.ends_with(last8),
                "{token}"
            );
            assert_eq!(token, fake_token(last8, &recorded, true), "deterministic");
        }
        assert!(fake_token("Xq3k9ZaB", &recorded, false).starts_with("gho_"));

        let mut created = interaction("POST", "/api/v3/authorizations", 201, "");
        created.response.body = Body::Json(
            serde_json::json!({
                "id": 1, "app": {"client_id": "00000000000000000000"},
                "token": "", "hashed_token": recorded, "token_last_eight": "Xq3k9ZaB"
            })
            .into(),
        );
        let mut cassette = Cassette::new();
        cassette.interactions = vec![created];
        let loaded = LoadedCassette {
            path: "c.json".into(),
            cassette,
        };
        let set = ReplaySet::new(
            &[],
            vec![loaded],
            MatchRules::default(),
            &ReplayOptions {
                tokens: TokenMode::Synthesized,
                ..ReplayOptions::default()
            },
        )
        .unwrap();
        let Lookup::Hit(entry) =
            set.lookup(&interaction("POST", "/api/v3/authorizations", 0, "").request)
        else {
            panic!("hit expected")
        };
        let body: Value = serde_json::from_slice(&entry.response.body.render("")).unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        assert!(token.starts_with("ghp_") && token.ends_with("Xq3k9ZaB"));
        assert_eq!(body["hashed_token"], sha256_hex(token.as_bytes()));

        let mut later = interaction("GET", "/user", 0, "").request;
        later.headers.push((
            "authorization".into(),
            format!(
                "token REDACTED last8=Xq3k9ZaB sha256={}",
                sha256_hex(token.as_bytes())
            ),
        ));
        set.resolve_synthetic_tokens(&mut later);
        assert_eq!(
            later.headers[0].1,
            format!("token REDACTED last8=Xq3k9ZaB sha256={recorded}")
        );
    }

    #[test]
    fn bad_header_names_the_interaction() {
        let mut bad = interaction("GET", "/x", 200, "");
        bad.response.headers.push(("bad header".into(), "v".into()));
        let mut cassette = Cassette::new();
        cassette.interactions = vec![interaction("GET", "/y", 200, ""), bad];
        let loaded = LoadedCassette {
            path: "c.json".into(),
            cassette,
        };
        let err = ReplaySet::new(
            &[],
            vec![loaded],
            MatchRules::default(),
            &ReplayOptions::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("cassette c.json: interactions[1]: response header name"),
            "{err}"
        );
    }
}
