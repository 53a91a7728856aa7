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

pub mod admin;
pub mod answer;
pub mod forward;
pub mod headers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;
use hyper::body::Incoming;

use crate::capture::Capture;
use crate::cassette::RecordedRequest;
use crate::config::Latency;
use crate::deprecation::DeprecationHeaders;
use crate::journal::{Answer, Exchange, Journal, Mode, Outcome};
use crate::metrics::Metrics;
use crate::origin::Origin;
use crate::recording::{Captured, Recorder};
use crate::redaction::Secret;
use crate::replay::{is_kept_on_304, Entry, Lookup, MissReport, ReplaySet};
use crate::scope::{is_deprecated_family, Scope};
use answer::ErrorKind;
use forward::{ForwardError, Forwarded, Forwarder, MAX_RESPONSE_BODY};
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
    /// Whether the client connected over TLS.
    pub tls: bool,
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
    /// Deprecation headers added to live answers of the deprecated families.
    pub inject_deprecation: Option<DeprecationHeaders>,
    /// Delay before replayed answers.
    pub latency: Latency,
    /// Which command this is, for the journal.
    pub mode: Mode,
    /// Where exchanges are journaled (off with `--no-journal`).
    pub journal: Option<Arc<Journal>>,
    pub metrics: Metrics,
    pub started: Instant,
    /// Whether X-Forwarded-* headers are added upstream-bound.
    pub forwarded_headers: bool,
    pub max_header_size: usize,
    /// Requests no cassette held, for the replay report.
    pub misses: crate::usage::Misses,
}

impl Proxy {
    /// Answers one request; never fails (failures become proxy-made answers). In-scope
    /// exchanges are counted in the metrics and queued for the journal.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        conn: ConnInfo,
        memo: &ConnMemo,
    ) -> Response<ProxyBody> {
        let started = Instant::now();
        let method = request.method().clone();
        if let Some(refusal) = self.refuse(&request, conn) {
            return refusal;
        }
        // What the path decides, read before the request moves on (no copy of it is kept).
        let path = request.uri().path();
        if path.starts_with(ADMIN_PREFIX) {
            return Box::pin(admin::handle(self, request)).await;
        }
        let operation = crate::operations::operation(method.as_str(), path);
        let streamed = !self.scope.is_in_scope(path);
        // Redacted, as everywhere it is shown; only when the debug line below is written.
        let shown_path = (self.mode != Mode::Passthrough
            && tracing::enabled!(tracing::Level::DEBUG))
        .then(|| self.capture.path(path));
        let origin = memo.client_origin(&request, conn);
        // Only a proxy that forwards needs them (replay never does).
        let forwarded = (self.forwarded_headers && self.forwarder.is_some()).then(|| Forwarded {
            client: memo.peer_ip(conn).clone(),
            proto: if conn.tls { "https" } else { "http" },
            host: request.headers().get(header::HOST).cloned().or_else(|| {
                request
                    .uri()
                    .authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            }),
        });
        let (response, exchange) = match &self.forwarder {
            Some(forwarder) if streamed => (
                Box::pin(self.stream_through(forwarder, request, &origin, forwarded.as_ref()))
                    .await,
                None,
            ),
            _ => {
                self.record_or_replay(request, &origin, forwarded.as_ref())
                    .await
            }
        };
        let elapsed = started.elapsed();
        let status = response.status().as_u16();
        let outcome = exchange.as_ref().map(|exchange| exchange.outcome);
        self.metrics.observe(operation, status, outcome, elapsed);
        let peer = memo.peer(conn);
        if let (Some(journal), Some(exchange)) = (&self.journal, exchange) {
            journal.record(exchange, self.mode, Arc::clone(peer), elapsed);
        }
        let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let operation = operation.unwrap_or("other");
        let outcome = outcome.map_or("forwarded", Outcome::as_str);
        // Fields as Display (`%`): a `&str` field is written with `Debug`, escaped character by
        // character, and passthrough writes this line for every exchange.
        if self.mode == Mode::Passthrough {
            tracing::info!(client.addr = %peer, http.method = %method, operation = %operation, http.status = status, elapsed_us, outcome = %outcome, "exchange");
        } else if let Some(path) = shown_path {
            tracing::debug!(client.addr = %peer, http.method = %method, http.path = %path, operation = %operation, http.status = status, elapsed_us, outcome = %outcome, "exchange");
        }
        response
    }

    /// In-scope requests (and every request in replay): answer from the cassettes, or forward
    /// (and record). Returns what the journal needs to know, unless the request never got that
    /// far (a body over the limit).
    async fn record_or_replay(
        &self,
        request: Request<Incoming>,
        origin: &Origin,
        forwarded: Option<&Forwarded>,
    ) -> (Response<ProxyBody>, Option<Box<Exchange>>) {
        // The exchange is boxed: it is 368 bytes, and unboxed it was copied at every step of
        // the way back (ten copies a request, even as `None` in replay without a journal).
        let (parts, body) = request.into_parts();
        let body = match self.read_body(&parts.headers, body).await {
            Ok(body) => body,
            Err(response) => return (response, None),
        };
        let request_size = body.len();
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        let mut captured = match &self.replay {
            _ if self.keeps_requests() => self.capture.request(method, uri, headers, &body),
            // Only answering reads it: the headers it does not read are left out.
            Some(replay) => self
                .capture
                .request_reading(method, uri, headers, &body, |name| {
                    replay.reads_header(name)
                }),
            // Nothing keeps or matches it: only messages name the request.
            None => self.capture.request_line(method, uri),
        };
        // From here on only the captured (redacted) form is looked at; the original is kept
        // only to forward it.
        let original = Secret::new((parts, body));
        if let Some(replay) = &self.replay {
            replay.resolve_synthetic_tokens(&mut captured);
            let hit = match replay.lookup(&captured) {
                Lookup::Hit(entry) => Some(entry),
                Lookup::Miss(report) if self.forwarder.is_none() => {
                    // hyper sends the headers and Content-Length, but no body, for HEAD.
                    let head = (captured.method == "HEAD")
                        .then(|| replay.lookup_head_as_get(&captured))
                        .flatten();
                    match head {
                        Some(entry) => Some(entry),
                        None => {
                            let response = self.miss(&report);
                            let exchange = self.exchange(
                                captured,
                                request_size,
                                response.status(),
                                Outcome::ReplayMiss,
                            );
                            return (response, exchange);
                        }
                    }
                }
                Lookup::Miss(_) => None,
            };
            if let Some(entry) = hit {
                entry
                    .hits
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let response = self.replayed(replay, entry, origin, &captured).await;
                let exchange = self.journal.as_ref().map(|_| {
                    Box::new(Exchange {
                        status: response.status().as_u16(),
                        response: Some(Answer::Stored(
                            entry
                                .journal_copy()
                                .unwrap_or_else(|| Arc::new(entry.response.to_recorded())),
                        )),
                        request_size,
                        response_size: response
                            .body()
                            .size_hint()
                            .exact()
                            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX)),
                        request: captured,
                        outcome: Outcome::Replayed,
                        upstream_latency: None,
                        cassette: Some(replay.cassette_path(entry).to_owned()),
                        interaction: Some(entry.index),
                    })
                });
                return (response, exchange);
            }
        }
        let Some(forwarder) = &self.forwarder else {
            let response = answer::error(
                self.miss_status,
                ErrorKind::ReplayMiss,
                "ghes-vcr has no cassette loaded",
            );
            return (response, None);
        };
        // Boxed: the forwarding half's state is most of this future's size, and replay, which
        // never forwards, would move it around with every request otherwise.
        Box::pin(self.forward_and_answer(
            forwarder,
            original,
            captured,
            request_size,
            origin,
            forwarded,
        ))
        .await
    }

    /// Forwards an in-scope request, records and journals the exchange, and answers with the
    /// upstream's answer (own origin, deprecation headers).
    async fn forward_and_answer(
        &self,
        forwarder: &Forwarder,
        original: Secret<(http::request::Parts, Bytes)>,
        mut captured: RecordedRequest,
        request_size: usize,
        origin: &Origin,
        forwarded: Option<&Forwarded>,
    ) -> (Response<ProxyBody>, Option<Box<Exchange>>) {
        let (parts, body) = original.into_inner();
        match self
            .forward_buffered(forwarder, &parts, body, &captured, forwarded)
            .await
        {
            Err(response) => {
                let exchange = self.exchange(
                    captured,
                    request_size,
                    response.status(),
                    Outcome::UpstreamError,
                );
                (response, exchange)
            }
            Ok((mut head, decoded, latency)) => {
                let (captured, answer, outcome) = match (&self.recorder, &self.journal) {
                    (Some(recorder), journal) => {
                        tracing::info!(http.request = %captured.summary(), http.status = head.status.as_u16(), cassette.path = %recorder.path().display(), "recorded");
                        // The saver redacts the body and prints the interaction, off this path.
                        let answer =
                            self.capture
                                .answer(head.status, &head.headers, &decoded, usize::MAX);
                        let journaled = journal.as_ref().map(|journal| {
                            let mut copy = answer.clone();
                            copy.unredacted = copy
                                .unredacted
                                .filter(|_| decoded.len() <= journal.body_limit());
                            Answer::Captured(copy)
                        });
                        // The exchange needs the request only for the journal.
                        let request = match journal {
                            Some(_) => captured.clone(),
                            None => std::mem::take(&mut captured),
                        };
                        recorder
                            .append(Captured {
                                request,
                                answer,
                                latency_ms: Some(
                                    u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
                                ),
                            })
                            .await;
                        (captured, journaled, Outcome::Recorded)
                    }
                    (None, Some(journal)) => {
                        let answer = self.capture.answer(
                            head.status,
                            &head.headers,
                            &decoded,
                            journal.body_limit(),
                        );
                        (captured, Some(Answer::Captured(answer)), Outcome::Forwarded)
                    }
                    (None, None) => (captured, None, Outcome::Forwarded),
                };
                self.inject_deprecation(&parts.uri, &mut head.headers);
                let upstream_origin = &forwarder.upstream().origin;
                let body = if self.rewrite_urls {
                    rewrite_url_headers(&mut head.headers, upstream_origin, origin);
                    upstream_origin
                        .replace_in_bytes(&decoded, origin.as_str())
                        .map_or(decoded, Bytes::from)
                } else {
                    decoded
                };
                let response_size = body.len();
                let exchange = self.journal.as_ref().map(|_| {
                    Box::new(Exchange {
                        status: head.status.as_u16(),
                        request: captured,
                        response: answer,
                        request_size,
                        response_size,
                        outcome,
                        upstream_latency: Some(latency),
                        cassette: None,
                        interaction: None,
                    })
                });
                (Response::from_parts(head, answer::full(body)), exchange)
            }
        }
    }

    /// Forwards a buffered request and reads the whole answer, decoded, with hop-by-hop and
    /// derived headers removed; also returns how long the upstream took.
    async fn forward_buffered(
        &self,
        forwarder: &Forwarder,
        parts: &http::request::Parts,
        body: Bytes,
        captured: &RecordedRequest,
        forwarded: Option<&Forwarded>,
    ) -> Result<(http::response::Parts, Bytes, std::time::Duration), Response<ProxyBody>> {
        let started = tokio::time::Instant::now();
        let deadline = started + forwarder.response_timeout();
        let upstream = match forwarder
            .send(parts, answer::full(body), true, forwarded)
            .await
        {
            Ok(response) => response,
            Err(err) => return Err(upstream_failure(&captured.summary(), &err)),
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
                let cause = forwarder.bad_response(format!("reading the body failed: {err}"));
                return Err(upstream_failure(&captured.summary(), &cause));
            }
            Err(_) => return Err(upstream_failure(&captured.summary(), &forwarder.timeout())),
        };
        let latency = started.elapsed();
        let encoding = head
            .headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let decoded = match forward::decode(&encoding, raw) {
            Ok(decoded) => decoded,
            Err(cause) => {
                return Err(upstream_failure(
                    &captured.summary(),
                    &forwarder.bad_response(cause),
                ))
            }
        };
        strip_hop_by_hop(&mut head.headers);
        head.headers.remove(header::CONTENT_ENCODING);
        head.headers.remove(header::CONTENT_LENGTH);
        Ok((head, decoded, latency))
    }

    /// Whether a captured request is kept whole: by the recorder or the journal. Passthrough and
    /// replay without a journal keep none.
    fn keeps_requests(&self) -> bool {
        self.recorder.is_some() || self.journal.is_some()
    }

    /// An exchange the proxy answered itself, for the journal (when it is on).
    fn exchange(
        &self,
        request: RecordedRequest,
        request_size: usize,
        status: StatusCode,
        outcome: Outcome,
    ) -> Option<Box<Exchange>> {
        self.journal.as_ref().map(|_| {
            Box::new(Exchange {
                request,
                response: None,
                request_size,
                response_size: 0,
                status: status.as_u16(),
                outcome,
                upstream_latency: None,
                cassette: None,
                interaction: None,
            })
        })
    }

    /// ghes-vcr is never an open proxy: `CONNECT` (405) and absolute-form targets naming another
    /// host (400) are refused; so are header sections over the limit (431).
    fn refuse<B>(&self, request: &Request<B>, conn: ConnInfo) -> Option<Response<ProxyBody>> {
        if request.method() == http::Method::CONNECT {
            let mut response = answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::NotAForwardProxy,
                "ghes-vcr is a reverse proxy for one upstream and does not tunnel (CONNECT refused)",
            );
            response.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
            );
            return Some(response);
        }
        if request.version() < http::Version::HTTP_2 && request.uri().scheme().is_some() {
            // An absolute-form target may only name this proxy or its upstream: the destination
            // is always the configured upstream, whatever the request says.
            let target = request
                .uri()
                .authority()
                .map(|a| a.as_str().to_ascii_lowercase())
                .unwrap_or_default();
            let port = conn.local.port();
            let upstream = self.forwarder.as_ref().and_then(|f| {
                f.upstream()
                    .base
                    .authority()
                    .map(|a| a.as_str().to_ascii_lowercase())
            });
            let own = [
                conn.local.to_string(),
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
            ];
            if !own.contains(&target) && upstream.as_deref() != Some(target.as_str()) {
                return Some(answer::error(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::NotAForwardProxy,
                    &format!("ghes-vcr only forwards to its configured upstream; the absolute URL names another host ({target})"),
                ));
            }
        }
        let header_size: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        if header_size > self.max_header_size {
            return Some(answer::error(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ErrorKind::HeadersTooLarge,
                &format!(
                    "the request's headers take {header_size} bytes, more than ghes-vcr's limit of {} (raise it with --max-header-size)",
                    self.max_header_size
                ),
            ));
        }
        None
    }

    /// The replay-miss answer, also logged at warn level.
    fn miss(&self, report: &MissReport) -> Response<ProxyBody> {
        self.misses.note(report);
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
        forwarded: Option<&Forwarded>,
    ) -> Response<ProxyBody> {
        let (parts, body) = request.into_parts();
        let body = body.map_err(|err| Box::new(err) as BoxError).boxed();
        let upstream = match forwarder.send(&parts, body, false, forwarded).await {
            Ok(response) => response,
            Err(err) => {
                // Out of scope is not free of secrets: `/applications/{client_id}/tokens/{token}`
                // is forwarded this way, and the message names the request.
                let request = self.capture.request_line(&parts.method, &parts.uri);
                return upstream_failure(&request.summary(), &err);
            }
        };
        let (mut head, body) = upstream.into_parts();
        strip_hop_by_hop(&mut head.headers);
        if self.rewrite_urls {
            rewrite_url_headers(&mut head.headers, &forwarder.upstream().origin, origin);
        }
        self.inject_deprecation(&parts.uri, &mut head.headers);
        Response::from_parts(head, body.map_err(|err| Box::new(err) as BoxError).boxed())
    }

    /// `--inject-deprecation`: the deprecation headers on live answers of the deprecated families.
    fn inject_deprecation(&self, uri: &http::Uri, headers: &mut HeaderMap) {
        if let Some(deprecation) = &self.inject_deprecation {
            if is_deprecated_family(uri.path()) {
                deprecation.apply_to_map(headers);
            }
        }
    }

    /// The answer for a replay hit: this server's origin in place of the placeholder, the
    /// time of the replay in `Date` (and `X-RateLimit-Reset` moved by as much), `304` for a
    /// conditional GET whose validator matches, after the configured latency.
    async fn replayed(
        &self,
        replay: &ReplaySet,
        entry: &Entry,
        origin: &Origin,
        request: &RecordedRequest,
    ) -> Response<ProxyBody> {
        tracing::debug!(cassette.path = %replay.cassette_path(entry).display(), interaction.index = entry.index, "replayed");
        let prepared = &entry.response;
        let delay = match self.latency {
            Latency::None => None,
            Latency::Recorded => prepared.latency,
            Latency::Fixed(delay) => Some(delay),
        };
        if let Some(delay) = delay.filter(|delay| !delay.is_zero()) {
            tokio::time::sleep(delay).await;
        }
        let conditional = matches!(request.method.as_str(), "GET" | "HEAD");
        let not_modified = conditional
            && prepared.is_not_modified(
                request.header_values("if-none-match").next(),
                request.header_values("if-modified-since").next(),
            );
        let (now, date) = http_date_now();
        let shift = prepared
            .recorded_date
            .map_or(0, |recorded| now as i64 - recorded as i64);
        let body = if not_modified {
            Bytes::new()
        } else {
            prepared.body.render(origin.as_str())
        };
        let mut response = Response::new(answer::full(body));
        *response.status_mut() = if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            prepared.status
        };
        *response.headers_mut() = prepared.headers.render(
            origin.as_str(),
            &date,
            shift,
            not_modified.then_some(is_kept_on_304 as fn(&HeaderName) -> bool),
        );
        response
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
        // Most requests of this API (GET, DELETE) have none: nothing to gather.
        if hyper::body::Body::is_end_stream(&body) {
            return Ok(Bytes::new());
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

thread_local! {
    /// This thread's last `Date`: its second and its HTTP-date.
    static LAST_DATE: std::cell::RefCell<Option<(u64, HeaderValue)>> =
        const { std::cell::RefCell::new(None) };
}

/// Now, in Unix seconds and as an HTTP-date (the `Date` header value). Each thread formats it at
/// most once a second and keeps its own: one shared under a lock was taken by every replayed
/// answer on every worker.
fn http_date_now() -> (u64, HeaderValue) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    LAST_DATE.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((at, value)) if *at == secs => (secs, value.clone()),
            _ => {
                let value = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                *last = Some((secs, value.clone()));
                (secs, value)
            }
        }
    })
}

/// 502 or 504 naming the upstream and the cause.
fn upstream_failure(request: &str, err: &ForwardError) -> Response<ProxyBody> {
    let (status, kind) = match err {
        ForwardError::Unreachable { .. } => {
            (StatusCode::BAD_GATEWAY, ErrorKind::UpstreamUnreachable)
        }
        ForwardError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, ErrorKind::UpstreamTimeout),
        ForwardError::Tls { .. } => (StatusCode::BAD_GATEWAY, ErrorKind::UpstreamTls),
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
                    .map(|text| from.replace_in(text, to.as_str()))
                    .and_then(|text| HeaderValue::from_str(&text).ok());
                if let Some(rewritten) = rewritten {
                    *value = rewritten;
                }
            }
        }
    }
}

/// What a connection remembers between its requests: a client sends the same `Host` on each,
/// so the origin it addressed is worked out once; and its address as text, for log lines, the
/// journal and `X-Forwarded-For`.
#[derive(Debug, Default)]
pub struct ConnMemo {
    origin: std::sync::Mutex<Option<(HeaderValue, Arc<Origin>)>>,
    peer: std::sync::OnceLock<Arc<str>>,
    peer_ip: std::sync::OnceLock<HeaderValue>,
}

impl ConnMemo {
    /// The client's IP address as a header value (`X-Forwarded-For`).
    fn peer_ip(&self, conn: ConnInfo) -> &HeaderValue {
        self.peer_ip.get_or_init(|| {
            HeaderValue::from_str(&conn.peer.ip().to_string())
                .expect("an IP address is a valid header value")
        })
    }

    /// The client's address as text (`127.0.0.1:50000`).
    fn peer(&self, conn: ConnInfo) -> &Arc<str> {
        self.peer.get_or_init(|| conn.peer.to_string().into())
    }

    /// The proxy's own origin as the client addressed it: the request's authority (HTTP/2) or
    /// `Host`, else the listening address.
    fn client_origin(&self, request: &Request<Incoming>, conn: ConnInfo) -> Arc<Origin> {
        let host = request
            .headers()
            .get(header::HOST)
            .filter(|_| request.uri().authority().is_none());
        let mut memo = self.origin.lock().expect("origin memo lock poisoned");
        if let (Some(host), Some((seen, origin))) = (host, memo.as_ref()) {
            if seen == host {
                return Arc::clone(origin);
            }
        }
        let origin = Arc::new(client_origin(request, conn));
        if let Some(host) = host {
            *memo = Some((host.clone(), Arc::clone(&origin)));
        }
        origin
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
    let scheme = if conn.tls {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    };
    match authority {
        Some(authority) => Origin::new(&scheme, &authority),
        None => Origin::new(&scheme, &Authority::from_static("127.0.0.1")),
    }
}
