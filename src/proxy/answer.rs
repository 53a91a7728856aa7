//! Responses the proxy makes itself (a replay miss, an unreachable upstream, a body too large).
//! They never look like a recorded answer: each carries `x-ghes-vcr-error` naming the cause and
//! a body in GitHub's error shape, so every GitHub client shows the message.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use super::ProxyBody;

/// The marker header on every response ghes-vcr makes itself.
pub const ERROR_HEADER: &str = "x-ghes-vcr-error";

/// Where a proxy-made error points readers.
pub const DOCUMENTATION_URL: &str = "https://github.com/ghes-vcr/ghes-vcr#errors";

/// Why the proxy answered on its own; the value of [`ERROR_HEADER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    ReplayMiss,
    UpstreamUnreachable,
    UpstreamTimeout,
    UpstreamBadResponse,
    BodyTooLarge,
    BadRequest,
    UnknownAdminEndpoint,
    NotAForwardProxy,
    HeadersTooLarge,
    TooManyConnections,
    UpstreamTls,
    RequestTimeout,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::ReplayMiss => "replay-miss",
            ErrorKind::UpstreamUnreachable => "upstream-unreachable",
            ErrorKind::UpstreamTimeout => "upstream-timeout",
            ErrorKind::UpstreamBadResponse => "upstream-bad-response",
            ErrorKind::BodyTooLarge => "body-too-large",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::UnknownAdminEndpoint => "unknown-admin-endpoint",
            ErrorKind::NotAForwardProxy => "not-a-forward-proxy",
            ErrorKind::HeadersTooLarge => "headers-too-large",
            ErrorKind::TooManyConnections => "too-many-connections",
            ErrorKind::UpstreamTls => "upstream-tls",
            ErrorKind::RequestTimeout => "request-timeout",
        }
    }
}

/// A GitHub-shaped JSON error made by the proxy.
pub fn error(status: StatusCode, kind: ErrorKind, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({
        "message": message,
        "documentation_url": DOCUMENTATION_URL,
        "status": status.as_str(),
    });
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let mut response = Response::new(full(bytes));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(ERROR_HEADER, HeaderValue::from_static(kind.as_str()));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A body from bytes already in memory.
pub fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes).map_err(|never| match never {}).boxed()
}
