//! Admin endpoints under `/__ghes-vcr/`, on the same listener. They are answered by ghes-vcr
//! itself and never forwarded or recorded.
//!
//! - `GET /__ghes-vcr/health`: mode and cassette state, as JSON;
//! - `POST /__ghes-vcr/reset`: rewinds every replay sequence to its first interaction, so a
//!   recorded flow can be replayed again from the start.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::answer::{self, ErrorKind};
use super::{Proxy, ProxyBody};

/// Answers a request whose path starts with [`super::ADMIN_PREFIX`].
pub fn handle<B>(proxy: &Proxy, request: &Request<B>) -> Response<ProxyBody> {
    let path = request.uri().path();
    let endpoint = path
        .trim_start_matches(super::ADMIN_PREFIX)
        .trim_end_matches('/');
    match (endpoint, request.method()) {
        ("health", &Method::GET | &Method::HEAD) => json_answer(&health(proxy)),
        ("reset", &Method::POST) => {
            let interactions = proxy.replay.as_ref().map_or(0, |replay| {
                replay.rewind();
                replay.len()
            });
            tracing::info!(interactions, "replay sequences rewound");
            json_answer(&json!({"rewound": true, "interactions": interactions}))
        }
        ("health" | "reset", _) => {
            let allow = if endpoint == "reset" { "POST" } else { "GET, HEAD" };
            let mut response = answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::BadRequest,
                &format!("{path} accepts {allow}"),
            );
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
        _ => answer::error(
            StatusCode::NOT_FOUND,
            ErrorKind::UnknownAdminEndpoint,
            &format!("ghes-vcr has no admin endpoint {path}; there are /__ghes-vcr/health and /__ghes-vcr/reset"),
        ),
    }
}

fn health(proxy: &Proxy) -> serde_json::Value {
    let mode = match (&proxy.forwarder, &proxy.recorder) {
        (None, _) => "replay",
        (Some(_), _) => "record",
    };
    let cassettes: Vec<String> = proxy
        .replay
        .as_ref()
        .map(|replay| {
            replay
                .cassettes()
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let recording = proxy.recorder.as_ref().map(|recorder| {
        let summary = recorder.summary();
        json!({
            "cassette": recorder.path().display().to_string(),
            "interactions": summary.interactions,
            "recorded": summary.recorded,
            "saved": summary.unsaved.is_none(),
        })
    });
    json!({
        "status": "ok",
        "mode": mode,
        "replay": {
            "cassettes": cassettes,
            "interactions": proxy.replay.as_ref().map_or(0, |replay| replay.len()),
        },
        "recording": recording,
    })
}

fn json_answer(value: &serde_json::Value) -> Response<ProxyBody> {
    let mut response = Response::new(answer::full(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    )));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
