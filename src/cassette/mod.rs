//! Cassettes: the files that hold recorded interactions.
//!
//! A cassette is pretty-printed JSON with a stable key order (format version 1, documented in
//! `docs/cassette-format.md`). This module holds the in-memory model; [`store`] loads and saves
//! files, [`recording_log`] is what a running recorder appends beside one, [`body`] decides how
//! a body is written, and [`format`] prints the JSON so that re-recording an unchanged upstream
//! changes as few lines as possible.

pub mod body;
pub mod diff;
pub mod format;
pub mod har;
pub mod inspect;
pub mod recording_log;
pub mod store;

use serde::{Deserialize, Serialize};

pub use body::{Body, Json};
pub use recording_log::{
    recording_log_path, remove_recording_log, RecordingLog, RecordingLogHeader,
};
pub use store::{
    cassette_files, load_prepared, load_set, save_atomically, save_cassette_file, save_with,
    write_new, CassetteError, Durability, LoadedCassette, PreparedInteractions,
};

/// The only cassette format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;

/// Stands for the recorded upstream's origin (`scheme://host[:port]`) wherever it appeared:
/// `Location` and `Link` headers and string values in bodies. Replay puts its own origin back.
pub const ORIGIN_PLACEHOLDER: &str = "{{origin}}";

/// One cassette file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cassette {
    /// Format version; see [`FORMAT_VERSION`].
    pub version: u32,
    /// The tool and version that wrote the file, e.g. `ghes-vcr 0.1.0`.
    pub recorded_with: String,
    /// The upstream origin, always written as [`ORIGIN_PLACEHOLDER`]: the real host name is not
    /// kept, so re-recording against another staging host changes nothing.
    pub upstream: String,
    /// Interactions in the order they were recorded.
    pub interactions: Vec<Interaction>,
}

impl Cassette {
    /// An empty cassette stamped with this build's version.
    pub fn new() -> Self {
        Self {
            version: FORMAT_VERSION,
            recorded_with: concat!("ghes-vcr ", env!("CARGO_PKG_VERSION")).to_owned(),
            upstream: ORIGIN_PLACEHOLDER.to_owned(),
            interactions: Vec::new(),
        }
    }
}

impl Default for Cassette {
    fn default() -> Self {
        Self::new()
    }
}

/// One request and the response it got.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interaction {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
    /// How long the upstream took to answer, in milliseconds (for `replay --latency recorded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
}

/// A request as it is stored and matched: already redacted, lower-case header names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as the client sent it (percent-encoded), e.g. `/api/v3/authorizations`.
    pub path: String,
    /// Decoded query pairs in the order they were sent.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Body::is_empty")]
    pub body: Body,
}

impl RecordedRequest {
    /// Values of every header named `name` (lower-case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        header_values(&self.headers, name)
    }

    /// `METHOD /path?query`, for messages.
    pub fn summary(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            let query: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} {}?{}", self.method, self.path, query.join("&"))
        }
    }
}

/// A response as it is stored: redacted, upstream origin replaced by the placeholder,
/// hop-by-hop headers and `content-length` left out (replay computes the length).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Body::is_empty")]
    pub body: Body,
}

/// Values of every header named `name` (lower-case) in an ordered header list.
pub fn header_values<'a>(
    headers: &'a [(String, String)],
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
