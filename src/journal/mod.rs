//! The traffic journal: who still calls the deprecated API.
//!
//! Every in-scope exchange (and every replayed one) becomes a [`JournalEntry`], built from the
//! same redacted capture as cassettes. Entries go through a bounded queue to one writer thread
//! that batches them into sled off the async runtime ([`store`]); when the writer falls behind,
//! entries are dropped and counted instead of slowing the traffic. Each entry's id is its time in
//! microseconds since the epoch (made unique by the writer); each write batch is one sled record,
//! a [`frame`], keyed by its first id as a big-endian `u64`, so iteration is in time order and
//! time ranges are key ranges. [`report`] turns entries into one row per legacy client; [`reader`]
//! reads a journal directly, or through a running proxy's admin endpoint when the proxy holds
//! the database (sled allows one process per database).

pub mod commands;
pub mod frame;
pub mod reader;
pub mod report;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cassette::{Body, RecordedRequest, RecordedResponse};

pub use crate::capture::CapturedAnswer;
pub use store::{Journal, JournalStats};

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Forwarded and answered by the upstream (passthrough).
    Forwarded,
    /// Forwarded, answered and saved to a cassette (record).
    Recorded,
    /// Answered from a cassette.
    Replayed,
    /// No cassette held the request.
    ReplayMiss,
    /// The upstream could not be reached, timed out or sent something unusable.
    UpstreamError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Forwarded => "forwarded",
            Outcome::Recorded => "recorded",
            Outcome::Replayed => "replayed",
            Outcome::ReplayMiss => "replay-miss",
            Outcome::UpstreamError => "upstream-error",
        }
    }
}

/// Which command served an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Record,
    Replay,
    Passthrough,
}

/// One journaled exchange. Everything in it is redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// The key: microseconds since the Unix epoch, made unique.
    pub id: u64,
    /// RFC 3339, for people.
    pub time: String,
    pub mode: Mode,
    /// The client's address.
    pub client: String,
    pub method: String,
    pub path: String,
    /// e.g. `oauth-authorizations/update-authorization`.
    pub operation: Option<String>,
    pub status: u16,
    pub outcome: Outcome,
    pub upstream_latency_us: Option<u64>,
    pub total_latency_us: u64,
    pub user_agent: Option<String>,
    /// `basic:<user>` or `token:<sha256>` (see [`crate::matching::identity`]).
    pub credential: Option<String>,
    /// The OAuth app, from the path or the body.
    pub client_id: Option<String>,
    pub note: Option<String>,
    pub note_url: Option<String>,
    pub fingerprint: Option<String>,
    /// For replays: the cassette and `interactions[N]` that answered.
    pub cassette: Option<String>,
    pub interaction: Option<usize>,
    pub request: RecordedRequest,
    pub response: Option<Arc<RecordedResponse>>,
    /// Whether a body was cut to the journal's body limit.
    #[serde(default)]
    pub truncated: bool,
}

/// An exchange's answer, as the journal takes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A stored answer: a cassette's (shared with the replay set, so journaling copies
    /// nothing) or one just recorded.
    Stored(Arc<RecordedResponse>),
    /// A forwarded answer in the journal's own form.
    Captured(CapturedAnswer),
}

/// An entry on its way to the journal: its answer travels beside it, in the form it was
/// captured in ([`JournalEntry::response`] is `None`); reading the frame puts it back.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub entry: JournalEntry,
    pub answer: Option<Answer>,
}

#[cfg(test)]
impl From<JournalEntry> for Draft {
    fn from(mut entry: JournalEntry) -> Self {
        let answer = entry.response.take().map(Answer::Stored);
        Self { entry, answer }
    }
}

/// What the proxy knows of an exchange when it is done, before it becomes an entry.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: Option<Answer>,
    /// The bodies' sizes on the wire, to apply the body limit without printing them.
    pub request_size: usize,
    pub response_size: usize,
    pub status: u16,
    pub outcome: Outcome,
    pub upstream_latency: Option<Duration>,
    pub cassette: Option<PathBuf>,
    pub interaction: Option<usize>,
}

/// Journal settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    pub dir: PathBuf,
    /// Whether the directory was named by the user (then failing to open it is an error; the
    /// default directory is skipped with a warning when another process holds it).
    pub explicit: bool,
    pub max_entries: Option<u64>,
    pub max_age: Option<Duration>,
    /// Bodies larger than this are cut (and the entry marked `truncated`).
    pub body_limit: usize,
}

/// The default journal directory: `$XDG_STATE_HOME/ghes-vcr/journal`, else
/// `~/.local/state/ghes-vcr/journal`, else `.ghes-vcr/journal`.
pub fn default_dir() -> PathBuf {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|home| home.join(".local/state")))
        .map_or_else(
            || PathBuf::from(".ghes-vcr/journal"),
            |dir| dir.join("ghes-vcr/journal"),
        )
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// RFC 3339 with milliseconds.
pub fn format_time(micros: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_micros(micros)).to_string()
}

impl Draft {
    /// Builds an entry from a finished exchange; a captured answer's body is redacted by
    /// `bodies`, which the entries of one batch share.
    pub fn new(
        exchange: Exchange,
        mode: Mode,
        client: &str,
        total: Duration,
        body_limit: usize,
        bodies: &mut crate::capture::AnswerBodies<'_>,
    ) -> Self {
        let Exchange {
            mut request,
            mut response,
            request_size,
            response_size,
            status,
            outcome,
            upstream_latency,
            cassette,
            interaction,
        } = exchange;
        let json = request.body.as_json();
        let field = |name: &str| {
            json.and_then(|body| body.get(name))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let client_id = crate::operations::path_client_id(&request.path)
            .map(str::to_owned)
            .or_else(|| field("client_id"));
        let (note, note_url, fingerprint) =
            (field("note"), field("note_url"), field("fingerprint"));
        if let Some(Answer::Captured(captured)) = &mut response {
            if let Some(raw) = captured.unredacted.take() {
                captured.body = bodies.redacted(raw);
            }
        }
        let mut truncated = cap(&mut request.body, request_size, body_limit);
        if response_size > body_limit {
            match &mut response {
                Some(Answer::Stored(shared)) => {
                    let mut owned = RecordedResponse::clone(shared);
                    truncated |= cap(&mut owned.body, response_size, body_limit);
                    *shared = Arc::new(owned);
                }
                Some(Answer::Captured(captured)) => {
                    truncated |= cap(&mut captured.body, response_size, body_limit);
                }
                None => {}
            }
        }
        let credential = Some(crate::matching::identity(&request)).filter(|id| !id.is_empty());
        let user_agent = request
            .header_values("user-agent")
            .next()
            .map(str::to_owned);
        let micros = now_micros();
        let entry = JournalEntry {
            id: micros,
            time: format_time(micros),
            mode,
            client: client.to_owned(),
            method: request.method.clone(),
            path: request.path.clone(),
            operation: crate::operations::operation(&request.method, &request.path)
                .map(str::to_owned),
            status,
            outcome,
            upstream_latency_us: upstream_latency
                .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX)),
            total_latency_us: u64::try_from(total.as_micros()).unwrap_or(u64::MAX),
            user_agent,
            credential,
            client_id,
            note,
            note_url,
            fingerprint,
            cassette: cassette.map(|path| path.display().to_string()),
            interaction,
            request,
            response: None,
            truncated,
        };
        Self {
            entry,
            answer: response,
        }
    }
}

impl JournalEntry {
    /// Whether the exchange failed (an error status or a proxy-made answer).
    pub fn is_error(&self) -> bool {
        self.status >= 400 || matches!(self.outcome, Outcome::ReplayMiss | Outcome::UpstreamError)
    }
}

/// Replaces a body over `limit` bytes with a note of its size; returns whether it did.
fn cap(body: &mut Body, size: usize, limit: usize) -> bool {
    if size <= limit {
        return false;
    }
    *body = Body::Text(format!(
        "(body of {size} bytes not journaled: over the {limit}-byte journal body limit)"
    ));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::RecordedRequest;

    fn exchange(body: Body, answer: Option<Answer>, sizes: (usize, usize)) -> Exchange {
        Exchange {
            request: RecordedRequest {
                method: "POST".to_owned(),
                path: "/api/v3/authorizations".to_owned(),
                query: Vec::new(),
                headers: vec![("user-agent".to_owned(), "legacy-cli/1.0".to_owned())],
                body,
            },
            response: answer,
            request_size: sizes.0,
            response_size: sizes.1,
            status: 201,
            outcome: Outcome::Forwarded,
            upstream_latency: Some(Duration::from_micros(120)),
            cassette: None,
            interaction: None,
        }
    }

    fn draft(exchange: Exchange, limit: usize) -> Draft {
        Draft::new(
            exchange,
            Mode::Passthrough,
            "127.0.0.1:50000",
            Duration::from_micros(150),
            limit,
            &mut crate::capture::AnswerBodies::new(&crate::capture::Capture::default(), 1),
        )
    }

    #[test]
    fn the_writer_redacts_a_body_the_request_only_copied() {
        let upstream = crate::origin::Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let capture = crate::capture::Capture::new(crate::redaction::Redactor::default(), upstream);
        let token = format!("ghp_{}", "t".repeat(36));
        let body = format!(r#"{{"url":"https://ghes.example.com/a/1","token":"{token}"}}"#);
        let answer = capture.answer(
            http::StatusCode::CREATED,
            &http::HeaderMap::new(),
            body.as_bytes(),
            1024,
        );
        let draft = Draft::new(
            exchange(Body::Empty, Some(Answer::Captured(answer)), (0, body.len())),
            Mode::Passthrough,
            "127.0.0.1:50000",
            Duration::from_micros(150),
            1024,
            &mut crate::capture::AnswerBodies::new(&capture, 1),
        );
        let Some(Answer::Captured(answer)) = draft.answer else {
            panic!("the answer stays captured");
        };
        assert!(answer.unredacted.is_none());
        let json = answer.body.as_json().unwrap();
        assert_eq!(json["token"], "");
        assert_eq!(json["url"], "{{origin}}/a/1");
        assert!(!format!("{answer:?}").contains(&token));
    }

    #[test]
    fn bodies_over_the_limit_are_left_out_and_the_entry_says_so() {
        let request = Body::Json(serde_json::json!({"note": "ci", "scopes": ["repo"]}).into());
        let captured = CapturedAnswer {
            status: 201,
            headers: "content-type: application/json\n".to_owned(),
            body: Body::Text("x".repeat(64)),
            unredacted: None,
        };
        let kept = draft(
            exchange(
                request.clone(),
                Some(Answer::Captured(captured.clone())),
                (40, 64),
            ),
            64,
        );
        assert!(!kept.entry.truncated);
        assert_eq!(kept.entry.request.body, request);
        assert_eq!(
            kept.entry.note.as_deref(),
            Some("ci"),
            "read before the cut"
        );
        assert_eq!(kept.answer, Some(Answer::Captured(captured.clone())));

        let cut = draft(
            exchange(request.clone(), Some(Answer::Captured(captured)), (40, 65)),
            39,
        );
        assert!(cut.entry.truncated);
        assert_eq!(cut.entry.note.as_deref(), Some("ci"), "read before the cut");
        let note = |size: usize| {
            Body::Text(format!(
                "(body of {size} bytes not journaled: over the 39-byte journal body limit)"
            ))
        };
        assert_eq!(cut.entry.request.body, note(40));
        let Some(Answer::Captured(answer)) = cut.answer else {
            panic!("the answer stays captured");
        };
        assert_eq!(answer.body, note(65));
        assert_eq!(answer.headers, "content-type: application/json\n");

        // A replayed answer is shared with the replay set: the entry gets its own copy.
        let shared = Arc::new(RecordedResponse {
            status: 200,
            headers: Vec::new(),
            body: Body::Text("y".repeat(65)),
        });
        let cut = draft(
            exchange(
                Body::Empty,
                Some(Answer::Stored(Arc::clone(&shared))),
                (0, 65),
            ),
            39,
        );
        assert!(cut.entry.truncated);
        let Some(Answer::Stored(answer)) = cut.answer else {
            panic!("the answer stays stored");
        };
        assert_eq!(answer.body, note(65));
        assert_eq!(
            shared.body,
            Body::Text("y".repeat(65)),
            "the shared answer is untouched"
        );
    }
}
