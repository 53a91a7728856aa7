//! The request pipeline.
//!
//! ```text
//! client ─► scope? ──no──► forward, streaming (record only)
//!             │yes
//!             ▼
//!        buffer body (limit → 413) ─► capture (redacted view) ─► replay lookup ─hit─► answer
//!             │ miss, and an upstream is configured
//!             ▼
//!        forward the original ─► decode ─► capture ─► recorder.append ─► answer (own origin)
//! ```
//! The original request is only used to forward it; everything else sees its captured form.

pub mod answer;
pub mod forward;
pub mod headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::capture::Capture;
use crate::cassette::Interaction;
use crate::origin::{replace_origin, replace_origin_bytes, Origin};
use crate::recording::Recorder;
use crate::redaction::Secret;
use crate::replay::{Entry, Lookup, MissReport, ReplaySet};
use crate::scope::Scope;
use answer::ErrorKind;
use forward::{ForwardError, Forwarder, MAX_RESPONSE_BODY};
use headers::strip_hop_by_hop;

/// Any error a body may carry.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response the proxy sends and every request it forwards.
pub type ProxyBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// Admin endpoints live below this path; it is never forwarded or recorded.
pub const ADMIN_PREFIX: &str = "/__ghes-vcr/";

/// Headers whose URLs are rewritten to the proxy's origin.
const URL_HEADERS: [header::HeaderName; 3] =
    [header::LOCATION, header::LINK, header::CONTENT_LOCATION];

/// Where a request came in.
#[derive(Clone, Copy, Debug)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// What the proxy does with a request.
pub struct Proxy {
    /// Recorded interactions to answer from (replay, `once` with a cassette, `new-episodes`).
    pub replay: Option<ReplaySet>,
    /// Where new interactions go (record modes).
    pub recorder: Option<Arc<Recorder>>,
    /// The upstream (record modes that may forward).
    pub forwarder: Option<Forwarder>,
    pub scope: Scope,
    pub capture: Capture,
    pub miss_status: StatusCode,
    pub max_body_size: usize,
    /// Whether upstream URLs are rewritten to the proxy's origin in live answers.
    pub rewrite_urls: bool,
}

impl Proxy {
    /// Answers one request; never fails (failures become proxy-made answers).
    pub async fn handle(&self, request: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let response = self.route(request, conn).await;
        tracing::debug!(
            client.addr = %conn.peer,
            http.method = %method,
            http.path = %path,
            http.status = response.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "exchange"
        );
        response
    }

    async fn route(&self, request: Request<Incoming>, conn: ConnInfo) -> Response<ProxyBody> {
        if request.uri().path().starts_with(ADMIN_PREFIX) {
            return answer::error(
                StatusCode::NOT_FOUND,
                ErrorKind::UnknownAdminEndpoint,
                &format!("ghes-vcr has no admin endpoint {}", request.uri().path()),
            );
        }
        let origin = client_origin(&request, conn);
        match &self.forwarder {
            Some(forwarder) if !self.scope.is_in_scope(request.uri().path()) => {
                self.stream_through(forwarder, request, &origin).await
            }
            _ => self.record_or_replay(request, &origin).await,
        }
    }

    /// In-scope requests (and every request in replay): answer from the cassettes, or forward
    /// and record.
    async fn record_or_replay(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let body = match self.read_body(&parts.headers, body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let mut captured = self
            .capture
            .request(&parts.method, &parts.uri, &parts.headers, &body);
        // From here on only the captured (redacted) form is looked at; the original is kept
        // only to forward it.
        let original = Secret::new((parts, body));
        if let Some(replay) = &self.replay {
            replay.resolve_synthetic_tokens(&mut captured);
            match replay.lookup(&captured) {
                Lookup::Hit(entry) => return serve(replay, entry, origin),
                Lookup::Miss(report) if self.forwarder.is_none() => {
                    if captured.method == "HEAD" {
                        if let Some(entry) = replay.lookup_head_as_get(&captured) {
                            // hyper sends the headers and Content-Length, but no body, for HEAD.
                            return serve(replay, entry, origin);
                        }
                    }
                    return self.miss(&report);
                }
                Lookup::Miss(_) => {}
            }
        }
        let Some(forwarder) = &self.forwarder else {
            return answer::error(
                self.miss_status,
                ErrorKind::ReplayMiss,
                "ghes-vcr has no cassette loaded",
            );
        };
        let deadline = tokio::time::Instant::now() + forwarder.response_timeout();
        let (parts, body) = original.into_inner();
        let upstream = match forwarder.send(&parts, answer::full(body), true).await {
            Ok(response) => response,
            Err(err) => return upstream_failure(&captured.summary(), &err),
        };
        let (mut head, upstream_body) = upstream.into_parts();
        let collected = tokio::time::timeout_at(
            deadline,
            Limited::new(upstream_body, MAX_RESPONSE_BODY).collect(),
        )
        .await;
        let raw = match collected {
            Ok(Ok(collected)) => collected.to_bytes(),
            Ok(Err(err)) => {
                return upstream_failure(
                    &captured.summary(),
                    &forwarder.bad_response(format!("reading the body failed: {err}")),
                )
            }
            Err(_) => return upstream_failure(&captured.summary(), &forwarder.timeout()),
        };
        let encoding = head
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let decoded = match forward::decode(&encoding, raw) {
            Ok(decoded) => decoded,
            Err(cause) => {
                return upstream_failure(&captured.summary(), &forwarder.bad_response(cause))
            }
        };
        strip_hop_by_hop(&mut head.headers);
        head.headers.remove(header::CONTENT_ENCODING);
        head.headers.remove(header::CONTENT_LENGTH);
        if let Some(recorder) = &self.recorder {
            let stored = self.capture.response(head.status, &head.headers, &decoded);
            tracing::info!(http.request = %captured.summary(), http.status = stored.status, cassette.path = %recorder.path().display(), "recorded");
            recorder
                .append(Interaction {
                    request: captured,
                    response: stored,
                })
                .await;
        }
        let upstream_origin = &forwarder.upstream().origin;
        let body = if self.rewrite_urls {
            replace_origin_bytes(&decoded, upstream_origin.as_str(), origin.as_str())
                .map_or(decoded, Bytes::from)
        } else {
            decoded
        };
        if self.rewrite_urls {
            rewrite_url_headers(&mut head.headers, upstream_origin, origin);
        }
        Response::from_parts(head, answer::full(body))
    }

    /// The replay-miss answer, also logged at warn level.
    fn miss(&self, report: &MissReport) -> Response<ProxyBody> {
        let message = report.message();
        tracing::warn!(http.request = %report.request, "{message}");
        answer::error(self.miss_status, ErrorKind::ReplayMiss, &message)
    }

    /// Out-of-scope requests in record mode: forwarded without buffering, not recorded.
    async fn stream_through(
        &self,
        forwarder: &Forwarder,
        request: Request<Incoming>,
        origin: &Origin,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let body = body.map_err(|err| Box::new(err) as BoxError).boxed();
        let summary = format!("{} {}", parts.method, parts.uri.path());
        let upstream = match forwarder.send(&parts, body, false).await {
            Ok(response) => response,
            Err(err) => return upstream_failure(&summary, &err),
        };
        let (mut head, body) = upstream.into_parts();
        strip_hop_by_hop(&mut head.headers);
        if self.rewrite_urls {
            rewrite_url_headers(&mut head.headers, &forwarder.upstream().origin, origin);
        }
        Response::from_parts(head, body.map_err(|err| Box::new(err) as BoxError).boxed())
    }

    /// Buffers a request body up to the limit.
    async fn read_body(
        &self,
        headers: &HeaderMap,
        body: Incoming,
    ) -> Result<Bytes, Response<ProxyBody>> {
        let too_large = || {
            answer::error(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorKind::BodyTooLarge,
                &format!(
                    "request body is larger than ghes-vcr's limit of {} bytes (raise it with --max-body-size)",
                    self.max_body_size
                ),
            )
        };
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.max_body_size as u64) {
            return Err(too_large());
        }
        match Limited::new(body, self.max_body_size).collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
            Err(err) => Err(answer::error(
                StatusCode::BAD_REQUEST,
                ErrorKind::BadRequest,
                &format!("could not read the request body: {err}"),
            )),
        }
    }
}

/// Builds the answer for a replay hit, with this server's origin in place of the placeholder.
fn serve(replay: &ReplaySet, entry: &Entry, origin: &Origin) -> Response<ProxyBody> {
    tracing::debug!(cassette.path = %replay.cassette_path(entry).display(), interaction.index = entry.index, "replayed");
    let prepared = &entry.response;
    let mut response = Response::new(answer::full(prepared.body.render(origin.as_str())));
    *response.status_mut() = prepared.status;
    let headers = response.headers_mut();
    for (name, value) in &prepared.headers {
        if let Ok(value) = HeaderValue::from_maybe_shared(value.render(origin.as_str())) {
            headers.append(name.clone(), value);
        }
    }
    response
}

/// 502 or 504 naming the upstream and the cause.
fn upstream_failure(request: &str, err: &ForwardError) -> Response<ProxyBody> {
    let (status, kind) = match err {
        ForwardError::Unreachable { .. } => {
            (StatusCode::BAD_GATEWAY, ErrorKind::UpstreamUnreachable)
        }
        ForwardError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, ErrorKind::UpstreamTimeout),
        ForwardError::BadResponse { .. } => {
            (StatusCode::BAD_GATEWAY, ErrorKind::UpstreamBadResponse)
        }
    };
    let message = format!("ghes-vcr could not forward {request}: {err}; nothing was recorded");
    tracing::warn!(http.request = %request, cause = %err, "upstream failed");
    answer::error(status, kind, &message)
}

fn rewrite_url_headers(headers: &mut HeaderMap, from: &Origin, to: &Origin) {
    for name in &URL_HEADERS {
        // Rewritten in place, so header order stays as the upstream sent it.
        if let header::Entry::Occupied(mut entry) = headers.entry(name) {
            for value in entry.iter_mut() {
                let rewritten = value
                    .to_str()
                    .ok()
                    .map(|text| replace_origin(text, from.as_str(), to.as_str()))
                    .and_then(|text| HeaderValue::from_str(&text).ok());
                if let Some(rewritten) = rewritten {
                    *value = rewritten;
                }
            }
        }
    }
}

/// The proxy's own origin as the client addressed it: the request's authority (HTTP/2) or
/// `Host`, else the listening address.
fn client_origin(request: &Request<Incoming>, conn: ConnInfo) -> Origin {
    let authority = request.uri().authority().cloned().or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .and_then(|host| host.parse::<Authority>().ok())
    });
    let authority = authority
        .filter(|authority| !authority.as_str().contains('@'))
        .or_else(|| conn.local.to_string().parse().ok());
    match authority {
        Some(authority) => Origin::new(&Scheme::HTTP, &authority),
        None => Origin::new(&Scheme::HTTP, &Authority::from_static("127.0.0.1")),
    }
}
