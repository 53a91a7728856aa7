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
use crate::redaction::Redactor;

/// Request headers that describe the connection to the proxy rather than the request.
const UNSTORED_REQUEST_HEADERS: [&str; 2] = ["host", "content-length"];

/// Turns exchanges into their stored, redacted form.
#[derive(Clone, Debug, Default)]
pub struct Capture {
    redactor: Redactor,
    /// The upstream's origin; replaced by the placeholder in stored responses.
    upstream: Option<Origin>,
}

impl Capture {
    pub fn new(redactor: Redactor, upstream: Option<Origin>) -> Self {
        Self { redactor, upstream }
    }

    /// The stored form of a request (redacted).
    pub fn request(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
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
                !is_hop_by_hop_name(name) && !UNSTORED_REQUEST_HEADERS.contains(&name.as_str())
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
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

    /// The stored form of an upstream response whose body is already decoded (redacted, upstream
    /// origin replaced by the placeholder).
    pub fn response(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> RecordedResponse {
        let mut stored = Vec::with_capacity(headers.len());
        stored.extend(
            headers
                .iter()
                .filter(|(name, _)| {
                    !is_hop_by_hop_name(name) && *name != http::header::CONTENT_LENGTH
                })
                .map(|(name, value)| {
                    // Header values are nearly always visible ASCII, checked far faster than UTF-8.
                    let value = value.to_str().map_or_else(
                        |_| String::from_utf8_lossy(value.as_bytes()),
                        std::borrow::Cow::Borrowed,
                    );
                    (name.as_str().to_owned(), self.placeholder(&value))
                }),
        );
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

    /// The journal's form of an upstream response: as [`Capture::response`], but a body over
    /// `body_limit` is left out (the entry notes its size instead), and a body that redaction
    /// would not change is kept as text, unparsed (the journal's readers show JSON as JSON).
    /// This runs for every forwarded exchange in passthrough, so it stays cheap.
    pub fn response_for_journal(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        body_limit: usize,
    ) -> RecordedResponse {
        if body.len() <= body_limit && self.redactor.may_change_response_body(body) {
            return self.response(status, headers, body);
        }
        let mut response = self.response(status, headers, &[]);
        if body.len() <= body_limit && !body.is_empty() {
            let body = self.placeheld(body);
            response.body = match std::str::from_utf8(&body) {
                Ok(text) => Body::Text(text.to_owned()),
                Err(_) => Body::Binary(bytes::Bytes::copy_from_slice(&body)),
            };
        }
        response
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
        let headers = HeaderMap::new();
        let clean = br#"[{"url":"https://ghes.example.com/api/v3/authorizations/1","token":""}]"#;
        let resp = capture.response_for_journal(StatusCode::OK, &headers, clean, 1024);
        assert_eq!(
            resp.body,
            Body::Text(r#"[{"url":"{{origin}}/api/v3/authorizations/1","token":""}]"#.into())
        );
        let token = format!("ghp_{}", "z".repeat(36));
        let secret = format!(r#"{{"id":1,"token":"{token}"}}"#);
        let resp =
            capture.response_for_journal(StatusCode::CREATED, &headers, secret.as_bytes(), 1024);
        assert_eq!(resp.body.as_json().unwrap()["token"], "");
        let resp =
            capture.response_for_journal(StatusCode::CREATED, &headers, secret.as_bytes(), 8);
        assert_eq!(
            resp.body,
            Body::Empty,
            "over the limit: left out, never parsed"
        );
    }
}
