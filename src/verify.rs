//! `cassette verify`: replays the recorded requests that are safe to repeat against the live
//! upstream and reports, field by field, where the live answers differ from the recording
//! (volatile fields ignored, as in `cassette diff`). Credentials come from flags or the
//! environment, never from the cassette, which holds none.

use http::header::{HeaderValue, AUTHORIZATION};
use http::{Method, Request};
use http_body_util::{BodyExt, Limited};

use crate::capture::Capture;
use crate::cassette::{diff, Cassette, Interaction};
use crate::config::Upstream;
use crate::proxy::answer;
use crate::proxy::forward::{decode, Forwarder, MAX_RESPONSE_BODY};
use crate::redaction::Redactor;

/// Request headers never replayed: credentials (the cassette holds only their redacted form)
/// and what the connection decides.
const NOT_REPLAYED: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "x-github-otp",
    "cookie",
    "content-length",
    "accept-encoding",
];

/// One verified interaction.
#[derive(Debug)]
pub struct Verified {
    pub index: usize,
    pub request: String,
    /// Empty when the live answer matches the recording.
    pub drift: Vec<String>,
}

/// Replays `cassette`'s safe requests (GET and HEAD; every method with `all_methods`) against
/// `upstream` with `authorization` (a whole header value, e.g. `Basic …` or `token …`).
pub async fn verify(
    cassette: &Cassette,
    forwarder: &Forwarder,
    upstream: &Upstream,
    authorization: Option<&str>,
    all_methods: bool,
) -> Vec<Verified> {
    let capture = Capture::new(Redactor::default(), Some(upstream.origin.clone()));
    let mut results = Vec::new();
    for (index, recorded) in cassette.interactions.iter().enumerate() {
        let method = Method::from_bytes(recorded.request.method.as_bytes()).unwrap_or(Method::GET);
        if !all_methods && method != Method::GET && method != Method::HEAD {
            continue;
        }
        let drift = match live(recorded, &method, forwarder, &capture, authorization).await {
            Ok(live) => diff::compare(recorded, &live),
            Err(reason) => vec![reason],
        };
        results.push(Verified {
            index,
            request: recorded.request.summary(),
            drift,
        });
    }
    results
}

async fn live(
    recorded: &Interaction,
    method: &Method,
    forwarder: &Forwarder,
    capture: &Capture,
    authorization: Option<&str>,
) -> Result<Interaction, String> {
    let request = &recorded.request;
    let mut target = request.path.clone();
    if !request.query.is_empty() {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &request.query {
            query.append_pair(name, value);
        }
        target = format!("{target}?{}", query.finish());
    }
    let mut builder = Request::builder().method(method.clone()).uri(&target);
    for (name, value) in &request.headers {
        if !NOT_REPLAYED.contains(&name.as_str()) {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    if let Some(authorization) = authorization {
        let value = HeaderValue::from_str(authorization)
            .map_err(|_| "the credentials are not a valid header value".to_owned())?;
        builder = builder.header(AUTHORIZATION, value);
    }
    let (parts, ()) = builder
        .body(())
        .map_err(|err| format!("cannot build the request: {err}"))?
        .into_parts();
    let response = forwarder
        .send(&parts, answer::full(request.body.to_bytes()), true, None)
        .await
        .map_err(|err| err.to_string())?;
    let (mut head, body) = response.into_parts();
    let raw = Limited::new(body, MAX_RESPONSE_BODY)
        .collect()
        .await
        .map_err(|err| format!("reading the live answer failed: {err}"))?
        .to_bytes();
    let encoding = head
        .headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let decoded = decode(&encoding, raw)?;
    head.headers.remove(http::header::CONTENT_ENCODING);
    Ok(Interaction {
        request: request.clone(),
        response: capture.response(head.status, &head.headers, &decoded),
        latency_ms: None,
    })
}
