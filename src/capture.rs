//! The one step where an exchange becomes what ghes-vcr stores: capture → transform → store.
//!
//! Everything that reaches a cassette, the matcher or a log line is built here: hop-by-hop and
//! derived headers are dropped, the upstream origin becomes [`ORIGIN_PLACEHOLDER`], and the
//! [`Redactor`] removes secrets. The original request is kept elsewhere only to forward it.

use http::{HeaderMap, Method, StatusCode, Uri};

use crate::cassette::body::Fidelity;
use crate::cassette::{Body, RecordedRequest, RecordedResponse, ORIGIN_PLACEHOLDER};
use crate::origin::Origin;
use crate::proxy::headers::is_hop_by_hop_name;
use crate::redaction::{Redactor, Secret};

/// Request headers that describe the connection to the proxy rather than the request.
const UNSTORED_REQUEST_HEADERS: [&str; 2] = ["host", "content-length"];
/// How many recent answer bodies [`BodyCopies`] keeps for later exchanges to share.
const RECENT_BODIES: usize = 8;
/// The largest answer body that [`BodyCopies`] keeps.
const SHARED_BODY_LIMIT: usize = 64 * 1024;

/// A forwarded answer as the request captures it for a cassette or the journal
/// ([`Capture::answer`]): headers redacted like a stored answer's, but as one block of lines
/// instead of two strings each, and the body only copied. A GHES answer has some 26 headers,
/// and allocating, escaping and freeing them one by one was most of what journaling every
/// exchange cost; the journal writes the block as it is, and the recorder and the journal's
/// readers turn it back into a [`RecordedResponse`].
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedAnswer {
    pub status: u16,
    /// `name: value\n` for each header, names in lower case, in the upstream's order (header
    /// values hold no line breaks).
    pub headers: String,
    pub body: Body,
    /// The upstream's body as it came (decoded; within the journal's body limit there), until
    /// a writer off the request's path redacts it into `body` ([`Capture::answer_body`]): the
    /// request only copies it.
    pub unredacted: Option<Secret<bytes::Bytes>>,
}

impl CapturedAnswer {
    /// The headers as stored pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        header_pairs(&self.headers)
    }
}

/// Whether headers read back the same from `name: value` lines ([`header_pairs`]): true for any
/// header HTTP can carry (a hand-edited cassette might hold others).
pub fn lines_hold(headers: &[(String, String)]) -> bool {
    headers.iter().all(|(name, value)| {
        !name.contains(['\n', ':']) && !name.is_empty() && !value.contains('\n')
    })
}

/// `name: value\n` header lines as stored pairs.
pub fn header_pairs(lines: &str) -> Vec<(String, String)> {
    header_lines(lines)
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// Each of `name: value\n` header lines as its name and value (a name holds no `:`; a line
/// without `: ` after its name is skipped).
pub fn header_lines(lines: &str) -> impl Iterator<Item = (&str, &str)> {
    // With memchr: the recorder's saver splits every answer's ~26 lines to print them, and
    // `str::split_terminator` and `split_once` took 11,000 instructions for a GHES answer's
    // headers, against 3,700.
    let bytes = lines.as_bytes();
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
    ends.filter_map(move |end| {
        let line = lines.get(start..end)?;
        start = end + 1;
        let colon = memchr::memchr(b':', line.as_bytes())?;
        Some((&line[..colon], line[colon + 1..].strip_prefix(' ')?))
    })
}

/// Captured answers' bodies redacted ([`Capture::answer_body`]) for one batch of exchanges, a
/// body equal to the one before it only once: legacy clients repeat the same calls and get the
/// same answers, and redacting a body (searching it for secrets and for the upstream origin,
/// and copying it) was a fifth of what the journal's writer spent on an entry. The last raw
/// body is held, in memory only, until the batch is done; the batch's last one is not (nor is
/// a lone exchange's), so that it costs no copy.
pub struct AnswerBodies<'c> {
    capture: &'c Capture,
    /// How many more bodies the batch may hold.
    to_come: usize,
    last: Option<(Secret<bytes::Bytes>, Body)>,
}

impl<'c> AnswerBodies<'c> {
    /// For a batch of `exchanges`.
    pub fn new(capture: &'c Capture, exchanges: usize) -> Self {
        Self {
            capture,
            to_come: exchanges,
            last: None,
        }
    }

    /// `raw`'s stored form: [`Capture::answer_body`], or a copy of the last one's when `raw`
    /// repeats the last body.
    pub fn redacted(&mut self, raw: Secret<bytes::Bytes>) -> Body {
        self.to_come = self.to_come.saturating_sub(1);
        if let Some((last, body)) = &self.last {
            if last.expose() == raw.expose() {
                return body.clone();
            }
        }
        let body = self.capture.answer_body(raw.expose());
        self.last = (self.to_come > 0).then(|| (raw, body.clone()));
        body
    }
}

/// The copies of answers' bodies that requests take for the journal and the recorder
/// ([`Capture::answer`]): a body equal to one of the last [`RECENT_BODIES`] copied shares that
/// copy instead of making its own. Legacy clients repeat the same calls and get the same
/// answers, and each copy waits in the journal's queue until its batch is written (some 10
/// ms): at 64 connections a copy per exchange kept some 600 KB of fresh copies in flight
/// (1.2 MB with the header lines, more than a core's 1 MB cache), and cost about a third of
/// what the journal cost the traffic (docs/performance-history.md). The recent
/// bodies (each up to [`SHARED_BODY_LIMIT`]) are held, in memory only, until newer ones take
/// their place; clones of a `Capture` share them.
#[derive(Clone, Debug, Default)]
struct BodyCopies {
    recent: std::sync::Arc<std::sync::Mutex<Recent>>,
}

/// The last bodies copied, the oldest replaced first.
#[derive(Debug, Default)]
struct Recent {
    copies: [Option<Secret<bytes::Bytes>>; RECENT_BODIES],
    next: usize,
}

impl BodyCopies {
    /// A copy of `body`: a recent one's when it is equal.
    fn copy(&self, body: &[u8]) -> Secret<bytes::Bytes> {
        if body.len() > SHARED_BODY_LIMIT {
            return Secret::new(bytes::Bytes::copy_from_slice(body));
        }
        let lock = || {
            self.recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(copy) = lock()
            .copies
            .iter()
            .flatten()
            .find(|copy| copy.expose() == body)
        {
            return Secret::new(copy.expose().clone());
        }
        // Copied outside the lock, which the other workers may be waiting for.
        let copy = bytes::Bytes::copy_from_slice(body);
        let mut recent = lock();
        let slot = recent.next;
        recent.copies[slot] = Some(Secret::new(copy.clone()));
        recent.next = (slot + 1) % RECENT_BODIES;
        Secret::new(copy)
    }
}

/// Turns exchanges into their stored, redacted form.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    redactor: Redactor,
    /// The upstream's origin; replaced by the placeholder in stored responses.
    upstream: Option<Origin>,
    /// Shared by every clone.
    copies: BodyCopies,
}

impl Capture {
    pub fn new(redactor: Redactor, upstream: Option<Origin>) -> Self {
        Self {
            redactor,
            upstream,
            copies: BodyCopies::default(),
        }
    }

    /// The stored form of a request (redacted).
    pub fn request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> RecordedRequest {
        self.request_reading(method, uri, headers, body, |_| true)
    }

    /// The stored form of a request (redacted) with only the headers `reads` names (lower
    /// case): what a replay that keeps no request (no journal, no recorder) captures for its
    /// lookup, since it reads only a few headers ([`crate::replay::ReplaySet::reads_header`]).
    /// The headers left out are never copied or redacted.
    pub fn request_reading(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
        reads: impl Fn(&str) -> bool,
    ) -> RecordedRequest {
        let query = uri
            .query()
            .map(|query| {
                form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        let headers = headers
            .iter()
            .filter(|(name, _)| {
                !is_hop_by_hop_name(name)
                    && !UNSTORED_REQUEST_HEADERS.contains(&name.as_str())
                    && reads(name.as_str())
            })
            .map(|(name, value)| (name.as_str().to_owned(), stored_value(value).into_owned()))
            .collect();
        let mut request = RecordedRequest {
            method: method.as_str().to_owned(),
            path: uri.path().to_owned(),
            query,
            headers,
            body: Body::from_bytes(body, Fidelity::Semantic),
        };
        self.redactor.request(&mut request);
        request
    }

    /// A request as far as messages and log lines name it: its method, and its path and query
    /// redacted (a legacy token path loses its token). Its headers and body are not captured.
    pub fn request_line(&self, method: &Method, uri: &Uri) -> RecordedRequest {
        self.request(method, uri, &HeaderMap::new(), &[])
    }

    /// A request path as log lines show it (a legacy token path loses its token).
    pub fn path(&self, path: &str) -> String {
        let mut path = path.to_owned();
        self.redactor.path(&mut path);
        path
    }

    /// The stored form of an upstream response whose body is already decoded (redacted, upstream
    /// origin replaced by the placeholder).
    pub fn response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> RecordedResponse {
        let mut stored = Vec::with_capacity(headers.len());
        stored.extend(stored_response_headers(headers).map(|(name, value)| {
            (
                name.as_str().to_owned(),
                self.placeholder(&stored_value(value)),
            )
        }));
        let headers = stored;
        let body = Body::from_bytes(&self.placeheld(body), Fidelity::Exact);
        let mut response = RecordedResponse {
            status: status.as_u16(),
            headers,
            body,
        };
        self.redactor.response(&mut response);
        response
    }

    /// An upstream response as the request takes it, for the journal or a cassette: its
    /// headers as one block of lines, redacted and placeheld as [`Capture::response`] does
    /// them, and its body only copied (within `body_limit`; a larger one is left out, and a
    /// journal entry notes its size). The journal's writer and the recorder's saver redact the
    /// body ([`Capture::answer_body`]) before it is stored. This runs for every forwarded
    /// exchange, so it stays cheap: a body equal to a recent one shares its copy.
    pub fn answer(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        body_limit: usize,
    ) -> CapturedAnswer {
        CapturedAnswer {
            status: status.as_u16(),
            headers: self.header_lines(headers),
            body: Body::Empty,
            // Redacted off the request's path ([`Capture::answer_body`]): the request only
            // copies it.
            unredacted: (!body.is_empty() && body.len() <= body_limit)
                .then(|| self.copies.copy(body)),
        }
    }

    /// A captured answer's body in its stored form (redacted, upstream origin placeheld): a
    /// body that redaction would not change is kept as text, unparsed (the journal's readers
    /// show JSON as JSON, and a cassette settles it with [`Body::settled`] when it prints it
    /// for review). Otherwise it is what [`Capture::response`] stores.
    pub fn answer_body(&self, body: &[u8]) -> Body {
        if self.redactor.may_change_response_body(body) {
            let mut body = Body::from_bytes(&self.placeheld(body), Fidelity::Exact);
            self.redactor.response_body(&mut body);
            body
        } else {
            // One copy at most: the placeheld body is already owned when the origin was in it.
            match String::from_utf8(self.placeheld(body).into_owned()) {
                Ok(text) => Body::Text(text),
                Err(err) => Body::Binary(err.into_bytes().into()),
            }
        }
    }

    /// A response's stored headers as `name: value\n` lines (see [`CapturedAnswer`]): one
    /// allocation, where [`Capture::response`] makes two per header.
    fn header_lines(&self, headers: &HeaderMap) -> String {
        if self.redactor.changes_only_cookies_in_response_headers() {
            if let Some(lines) = self.copied_header_lines(headers) {
                return lines;
            }
        }
        self.header_lines_one_by_one(headers)
    }

    /// [`Capture::header_lines`] when no value is redacted: every line copied as it is into one
    /// block, which is then checked as UTF-8 and searched for the upstream origin once, instead
    /// of value by value (a GHES answer has some 26 headers, and this runs for every journaled
    /// or recorded exchange). The same text as [`Capture::header_lines_one_by_one`], since the
    /// origin, holding `://` and no line break, can only match inside one value; `None` when a
    /// `Set-Cookie` header (always redacted) or a value that is not UTF-8 (stored lossily)
    /// needs the slow way.
    fn copied_header_lines(&self, headers: &HeaderMap) -> Option<String> {
        let mut lines = Vec::with_capacity(headers.len() * 64);
        for (name, value) in stored_response_headers(headers) {
            if name == http::header::SET_COOKIE {
                return None;
            }
            lines.extend_from_slice(name.as_str().as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value.as_bytes());
            lines.push(b'\n');
        }
        // The origin and the placeholder are ASCII, so replacing one by the other leaves the
        // block UTF-8 exactly when it was: checked once, after.
        let lines = match &self.upstream {
            Some(upstream) => upstream
                .replace_in_bytes(&lines, ORIGIN_PLACEHOLDER)
                .unwrap_or(lines),
            None => lines,
        };
        String::from_utf8(lines).ok()
    }

    /// [`Capture::header_lines`] value by value: each decoded, placeheld and redacted on its own.
    fn header_lines_one_by_one(&self, headers: &HeaderMap) -> String {
        // One pass: room for a typical line each (GHES's average ~48 bytes), grown if needed.
        let mut lines = String::with_capacity(headers.len() * 64);
        for (name, value) in stored_response_headers(headers) {
            let value = stored_value(value);
            let value = match &self.upstream {
                Some(upstream) => upstream.replace_in(&value, ORIGIN_PLACEHOLDER),
                None => std::borrow::Cow::Borrowed(&*value),
            };
            let redacted = self.redactor.response_header(name.as_str(), &value);
            lines.push_str(name.as_str());
            lines.push(':');
            lines.push(' ');
            lines.push_str(redacted.as_deref().unwrap_or(&value));
            lines.push('\n');
        }
        lines
    }

    /// A body with the upstream origin replaced by the placeholder.
    fn placeheld<'a>(&self, body: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        self.upstream
            .as_ref()
            .and_then(|upstream| upstream.replace_in_bytes(body, ORIGIN_PLACEHOLDER))
            .map_or(std::borrow::Cow::Borrowed(body), std::borrow::Cow::Owned)
    }

    fn placeholder(&self, value: &str) -> String {
        match &self.upstream {
            Some(upstream) => upstream.replace_in(value, ORIGIN_PLACEHOLDER).into_owned(),
            None => value.to_owned(),
        }
    }
}

/// The response headers that are stored: not hop-by-hop, and not `Content-Length` (derived
/// from the body when served).
fn stored_response_headers(
    headers: &HeaderMap,
) -> impl Iterator<Item = (&http::HeaderName, &http::HeaderValue)> {
    headers
        .iter()
        .filter(|(name, _)| !is_hop_by_hop_name(name) && *name != http::header::CONTENT_LENGTH)
}

/// A header value as text. Header values are nearly always visible ASCII, checked far faster
/// than UTF-8.
fn stored_value(value: &http::HeaderValue) -> std::borrow::Cow<'_, str> {
    value.to_str().map_or_else(
        |_| String::from_utf8_lossy(value.as_bytes()),
        std::borrow::Cow::Borrowed,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_stored_without_connection_headers_and_with_decoded_query() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:8080".parse().unwrap());
        headers.insert("connection", "keep-alive".parse().unwrap());
        headers.insert("content-length", "2".parse().unwrap());
        headers.insert("accept", "application/vnd.github.v3+json".parse().unwrap());
        let uri: Uri = "/api/v3/authorizations?per_page=2&note=a%20b"
            .parse()
            .unwrap();
        let req = Capture::default().request(&Method::GET, &uri, &headers, b"");
        assert_eq!(
            req.headers,
            vec![(
                "accept".to_owned(),
                "application/vnd.github.v3+json".to_owned()
            )]
        );
        assert_eq!(
            req.query,
            vec![
                ("per_page".into(), "2".into()),
                ("note".into(), "a b".into())
            ]
        );
        assert_eq!(req.path, "/api/v3/authorizations");
    }

    #[test]
    fn response_origin_becomes_placeholder() {
        let upstream = Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let capture = Capture::new(Redactor::default(), upstream);
        let mut headers = HeaderMap::new();
        headers.insert(
            "location",
            "https://ghes.example.com/api/v3/authorizations/1"
                .parse()
                .unwrap(),
        );
        headers.insert("content-length", "10".parse().unwrap());
        let resp = capture.response(
            StatusCode::CREATED,
            &headers,
            br#"{"url":"https://ghes.example.com/api/v3/authorizations/1"}"#,
        );
        assert_eq!(
            resp.headers,
            vec![(
                "location".to_owned(),
                "{{origin}}/api/v3/authorizations/1".to_owned()
            )]
        );
        assert_eq!(
            resp.body.to_bytes(),
            &br#"{"url":"{{origin}}/api/v3/authorizations/1"}"#[..]
        );
    }
    #[test]
    fn journal_form_skips_the_parse_only_when_nothing_is_secret() {
        let upstream = Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let capture = Capture::new(Redactor::default(), upstream);
        let clean = br#"[{"url":"https://ghes.example.com/api/v3/authorizations/1","token":""}]"#;
        assert_eq!(
            capture.answer_body(clean),
            Body::Text(r#"[{"url":"{{origin}}/api/v3/authorizations/1","token":""}]"#.into())
        );
        let token = format!("ghp_{}", "z".repeat(36));
        let secret = format!(r#"{{"id":1,"token":"{token}"}}"#);
        assert_eq!(
            capture.answer_body(secret.as_bytes()).as_json().unwrap()["token"],
            ""
        );
        // The request only copies the body, within the limit; the writer redacts it.
        let headers = HeaderMap::new();
        let resp = capture.answer(StatusCode::CREATED, &headers, secret.as_bytes(), 1024);
        assert_eq!(resp.body, Body::Empty);
        assert_eq!(
            resp.unredacted.as_ref().map(|raw| &raw.expose()[..]),
            Some(secret.as_bytes())
        );
        assert!(!format!("{resp:?}").contains(&token), "never printed");
        let resp = capture.answer(StatusCode::CREATED, &headers, secret.as_bytes(), 8);
        assert!(
            resp.unredacted.is_none(),
            "over the limit: left out, never copied"
        );
    }

    #[test]
    fn answers_share_the_copy_of_a_recent_equal_body_and_only_of_an_equal_one() {
        let capture = Capture::default();
        let other_clone = capture.clone();
        let headers = HeaderMap::new();
        let copied = |capture: &Capture, body: &[u8]| {
            capture
                .answer(StatusCode::OK, &headers, body, usize::MAX)
                .unredacted
                .expect("a body within the limit is copied")
                .into_inner()
        };
        let shares = |a: &bytes::Bytes, b: &bytes::Bytes| a.as_ptr() == b.as_ptr();

        let first = copied(&capture, br#"[{"id":1}]"#);
        assert_eq!(first, br#"[{"id":1}]"#.as_slice());
        let again = copied(&other_clone, br#"[{"id":1}]"#);
        assert!(
            shares(&first, &again),
            "an equal body shares the copy, across clones"
        );
        let longer = copied(&capture, br#"[{"id":1},{"id":2}]"#);
        assert!(!shares(&first, &longer));
        assert_eq!(longer, br#"[{"id":1},{"id":2}]"#.as_slice());
        let same_length = copied(&capture, br#"[{"id":3}]"#);
        assert!(!shares(&first, &same_length));
        assert_eq!(same_length, br#"[{"id":3}]"#.as_slice());
        assert!(shares(&first, &copied(&capture, br#"[{"id":1}]"#)));

        // Once RECENT_BODIES others were copied after it, a body is copied afresh.
        for n in 0..RECENT_BODIES {
            copied(&capture, format!("[{n:03}]").as_bytes());
        }
        let afresh = copied(&capture, br#"[{"id":1}]"#);
        assert!(!shares(&first, &afresh));
        assert_eq!(afresh, first);

        // A body over the limit is copied, never kept.
        let large = vec![b'x'; SHARED_BODY_LIMIT + 1];
        assert!(!shares(
            &copied(&capture, &large),
            &copied(&capture, &large)
        ));
        assert!(capture
            .answer(StatusCode::OK, &headers, b"", usize::MAX)
            .unredacted
            .is_none());
    }

    #[test]
    fn a_batch_redacts_a_repeated_body_once_and_every_body_alike() {
        let upstream = Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let capture = Capture::new(Redactor::default(), upstream);
        let token = format!("ghp_{}", "k".repeat(36));
        let secret = format!(r#"{{"url":"https://ghes.example.com/a/1","token":"{token}"}}"#);
        let clean = r#"[{"url":"https://ghes.example.com/a/2","token":""}]"#.to_owned();
        let raws = [&secret, &secret, &clean, &secret, &clean, &clean];
        let mut bodies = AnswerBodies::new(&capture, raws.len() + 1);
        for raw in raws {
            let raw = bytes::Bytes::from(raw.clone().into_bytes());
            assert_eq!(
                bodies.redacted(Secret::new(raw.clone())),
                capture.answer_body(&raw)
            );
        }
        let repeated = bodies.redacted(Secret::new(bytes::Bytes::from(secret.into_bytes())));
        assert_eq!(repeated.as_json().unwrap()["token"], "");
        assert_eq!(repeated.as_json().unwrap()["url"], "{{origin}}/a/1");
    }

    #[test]
    fn a_request_read_for_some_headers_is_the_whole_capture_without_the_others() {
        let capture = Capture::default();
        let mut headers = HeaderMap::new();
        headers.insert("accept", http::HeaderValue::from_static("application/json"));
        headers.insert("user-agent", http::HeaderValue::from_static("client/1"));
        headers.insert("x-github-otp", http::HeaderValue::from_static("123456"));
        headers.insert("connection", http::HeaderValue::from_static("keep-alive"));
        let uri: Uri = "/api/v3/authorizations?a=1".parse().unwrap();
        let body = br#"{"note":"n","client_secret":"s"}"#;
        let whole = capture.request(&Method::POST, &uri, &headers, body);
        let read = capture.request_reading(&Method::POST, &uri, &headers, body, |name| {
            name == "x-github-otp" || name == "connection"
        });
        let mut expected = whole.clone();
        expected.headers.retain(|(name, _)| name == "x-github-otp");
        assert_eq!(
            read, expected,
            "hop-by-hop headers stay out whatever is read"
        );
    }

    #[test]
    fn header_lines_split_at_the_first_colon_and_keep_the_rest() {
        let lines =
            "link: <a>; rel=\"next\"\nx-empty: \nbroken\nx-time: 12:00: noon\nlast: no newline";
        assert_eq!(
            header_lines(lines).collect::<Vec<_>>(),
            [
                ("link", "<a>; rel=\"next\""),
                ("x-empty", ""),
                ("x-time", "12:00: noon"),
                ("last", "no newline"),
            ]
        );
        assert_eq!(header_lines("").count(), 0);
        assert_eq!(header_lines("a: 1\n").collect::<Vec<_>>(), [("a", "1")]);
    }

    #[test]
    fn header_lines_copied_as_a_block_are_the_lines_made_one_by_one() {
        let upstream = Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let capture = Capture::new(Redactor::default(), upstream);
        let header_map = |pairs: &[(&'static str, &[u8])]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(
                    http::HeaderName::from_static(name),
                    http::HeaderValue::from_bytes(value).unwrap(),
                );
            }
            headers
        };
        let ghes = header_map(&[
            ("server", b"GitHub.com"),
            ("content-type", b"application/json; charset=utf-8"),
            ("transfer-encoding", b"chunked"),
            ("content-length", b"2"),
            (
                "location",
                b"https://ghes.example.com/api/v3/authorizations/1",
            ),
            (
                "link",
                b"<https://ghes.example.com/api/v3/authorizations?page=2>; rel=\"next\", \
                  <https://ghes.example.com/api/v3/authorizations?page=5>; rel=\"last\"",
            ),
            // Not the upstream: a longer host, another port.
            (
                "x-other",
                b"https://ghes.example.com.evil/ https://ghes.example.com:8443/",
            ),
            ("x-github-request-id", b""),
            ("x-time", b"12:00: noon"),
            ("x-utf8", "caf\u{e9}".as_bytes()),
        ]);
        let copied = capture.copied_header_lines(&ghes).unwrap();
        assert_eq!(copied, capture.header_lines_one_by_one(&ghes));
        assert_eq!(capture.header_lines(&ghes), copied);
        assert!(copied.contains("location: {{origin}}/api/v3/authorizations/1\n"));
        assert!(copied
            .contains("x-other: https://ghes.example.com.evil/ https://ghes.example.com:8443/\n"));
        assert!(!copied.contains("transfer-encoding") && !copied.contains("content-length"));
        assert_eq!(
            Capture::default().copied_header_lines(&ghes).unwrap(),
            Capture::default().header_lines_one_by_one(&ghes),
            "without an upstream to placehold"
        );

        // The slow way: a cookie to redact, or a value stored lossily.
        for needs_each in [
            header_map(&[
                ("server", b"GitHub.com"),
                ("set-cookie", b"_gh_sess=abc; path=/"),
            ]),
            header_map(&[("server", b"GitHub.com"), ("x-latin", b"caf\xe9")]),
        ] {
            assert_eq!(capture.copied_header_lines(&needs_each), None);
            assert_eq!(
                capture.header_lines(&needs_each),
                capture.header_lines_one_by_one(&needs_each)
            );
        }
    }

    #[test]
    fn journal_header_lines_hold_what_a_cassette_would() {
        let upstream = Origin::of_uri(&"https://ghes.example.com".parse().unwrap());
        let rules = crate::redaction::RedactionRules {
            headers: vec!["X-Request-Secret".to_owned()],
            patterns: vec![regex::Regex::new("sess-[0-9]+").unwrap()],
            ..Default::default()
        };
        let capture = Capture::new(Redactor::new(rules), upstream);
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("content-type", "application/json; charset=utf-8"),
            ("connection", "keep-alive"),
            ("content-length", "2"),
            (
                "location",
                "https://ghes.example.com/api/v3/authorizations/1",
            ),
            (
                "link",
                "<https://ghes.example.com/api/v3/authorizations?page=2>; rel=\"next\"",
            ),
            ("set-cookie", "_gh_sess=abc123; path=/; secure"),
            ("x-request-secret", "s3"),
            ("x-trace", "sess-42 and sess-7"),
            ("x-github-request-id", ""),
        ] {
            headers.append(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        headers.append(
            "x-latin",
            http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
        );
        let answer = capture.answer(StatusCode::OK, &headers, b"{}", 1024);
        let lines: Vec<(String, String)> = answer
            .headers
            .lines()
            .map(|line| {
                let (name, value) = line.split_once(": ").unwrap();
                (name.to_owned(), value.to_owned())
            })
            .collect();
        let stored = capture.response(StatusCode::OK, &headers, b"{}");
        assert_eq!(lines, stored.headers);
        assert_eq!(stored.headers.len(), 8, "hop-by-hop and length dropped");
        assert!(answer
            .headers
            .contains("location: {{origin}}/api/v3/authorizations/1\n"));
        assert!(answer
            .headers
            .contains("set-cookie: _gh_sess=REDACTED; path=/; secure\n"));
        assert!(answer.headers.contains("x-request-secret: REDACTED\n"));
        assert!(answer.headers.contains("x-trace: REDACTED and REDACTED\n"));
        assert!(answer.headers.ends_with("x-latin: caf\u{fffd}\n"));
        // Without user rules only Set-Cookie changes.
        let capture = Capture::new(Redactor::default(), None);
        let answer = capture.answer(StatusCode::OK, &headers, b"", 1024);
        assert!(answer
            .headers
            .contains("set-cookie: _gh_sess=REDACTED; path=/; secure\n"));
        assert!(answer.headers.contains("x-request-secret: s3\n"));
        assert!(answer.headers.contains("x-trace: sess-42 and sess-7\n"));
    }
}
