//! Forwarding to the upstream: the pooled hyper client (HTTP/1.1 keep-alive, HTTP/2 by ALPN
//! over rustls), request rewriting, error classification and body decoding.

use std::io::Read as _;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{request, Request, Response, Uri, Version};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::headers::strip_hop_by_hop;
use super::ProxyBody;
use crate::config::Upstream;

/// Largest upstream body ghes-vcr buffers to record (after decoding).
pub const MAX_RESPONSE_BODY: usize = 100 * 1024 * 1024;

/// Why a forwarded request got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// No connection could be made, or it broke before an answer came.
    #[error("cannot reach upstream {upstream}: {cause}")]
    Unreachable { upstream: String, cause: String },
    /// The TLS handshake failed.
    #[error("cannot reach upstream {upstream}: {reason}")]
    Tls { upstream: String, reason: String },
    /// The upstream did not answer in time.
    #[error("upstream {upstream} did not answer within {after:?}")]
    Timeout { upstream: String, after: Duration },
    /// The answer could not be read or decoded.
    #[error("upstream {upstream} sent an answer ghes-vcr cannot use: {cause}")]
    BadResponse { upstream: String, cause: String },
}

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Sends requests to the configured upstream, and only there.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpsConnector, ProxyBody>,
    upstream: Upstream,
    response_timeout: Duration,
    /// `Host` for a plain-HTTP upstream, made once (see [`plain_http_host`]).
    host: Option<HeaderValue>,
}

impl Forwarder {
    /// A client for `upstream` over HTTP/1.1, or HTTP/2 when TLS ALPN offers it.
    pub fn new(
        upstream: Upstream,
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(https);
        Self {
            client,
            host: plain_http_host(&upstream.base),
            upstream,
            response_timeout,
        }
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    pub fn response_timeout(&self) -> Duration {
        self.response_timeout
    }

    /// Sends `parts` + `body` to the upstream and waits for the response head.
    /// `identity` asks the upstream not to compress, for answers that will be recorded.
    ///
    /// # Errors
    /// [`ForwardError::Unreachable`] or [`ForwardError::Timeout`].
    pub async fn send(
        &self,
        parts: &request::Parts,
        body: ProxyBody,
        identity: bool,
        forwarded: Option<&Forwarded>,
    ) -> Result<Response<Incoming>, ForwardError> {
        let mut request = self.upstream_request(parts, body, identity);
        if let Some(forwarded) = forwarded {
            forwarded.apply(request.headers_mut());
        }
        match tokio::time::timeout(self.response_timeout, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(match crate::tls::describe_failure(&err) {
                Some(reason) => ForwardError::Tls {
                    upstream: self.upstream.origin.to_string(),
                    reason,
                },
                None => ForwardError::Unreachable {
                    upstream: self.upstream.origin.to_string(),
                    cause: describe_client_error(&err),
                },
            }),
            Err(_) => Err(self.timeout()),
        }
    }

    pub fn timeout(&self) -> ForwardError {
        ForwardError::Timeout {
            upstream: self.upstream.origin.to_string(),
            after: self.response_timeout,
        }
    }

    pub fn bad_response(&self, cause: impl Into<String>) -> ForwardError {
        ForwardError::BadResponse {
            upstream: self.upstream.origin.to_string(),
            cause: cause.into(),
        }
    }

    /// The request as the upstream sees it: the configured upstream's URI (never the client's
    /// Host), hop-by-hop headers removed.
    fn upstream_request(
        &self,
        parts: &request::Parts,
        body: ProxyBody,
        identity: bool,
    ) -> Request<ProxyBody> {
        let mut uri = self.upstream.base.clone().into_parts();
        uri.path_and_query = Some(
            parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
        );
        let uri = Uri::from_parts(uri).unwrap_or_else(|_| self.upstream.base.clone());
        let mut request = Request::new(body);
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        let headers = request.headers_mut();
        // Room for what is added here and by `Forwarded::apply`, made once: a clone of the
        // client's map has room for its own headers only, and grew on each insert.
        *headers = HeaderMap::with_capacity(parts.headers.len() + FORWARDING_HEADERS);
        headers.extend(
            parts
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        strip_hop_by_hop(headers);
        match &self.host {
            Some(host) => headers.insert(header::HOST, host.clone()),
            None => headers.remove(header::HOST),
        };
        if identity {
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        request
    }
}

/// The `Host` of requests to a plain-HTTP upstream, as hyper-util's client would set it (host,
/// and the port unless it is 80). Such a connection is always HTTP/1.1 (no h2c), so `Host` can
/// be set once here rather than formatted by the client for every request. Over TLS, ALPN may
/// pick HTTP/2, where the authority goes in `:authority` instead: the client sets it then.
fn plain_http_host(base: &Uri) -> Option<HeaderValue> {
    if base.scheme() != Some(&http::uri::Scheme::HTTP) {
        return None;
    }
    let host = base.host()?;
    let value = match base.port_u16() {
        Some(port) if port != 80 => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value).ok()
}

/// Who the request came from, for `X-Forwarded-*` (RFC 7239's de-facto predecessors, which
/// GHES and its load balancers read).
#[derive(Clone, Debug)]
pub struct Forwarded {
    /// The client's IP address, as text.
    pub client: HeaderValue,
    /// `http` or `https`: how the client reached the proxy.
    pub proto: &'static str,
    /// The Host the client addressed.
    pub host: Option<HeaderValue>,
}

/// How many headers forwarding may add to a request: `Host`, `Accept-Encoding` and the three
/// `X-Forwarded-*`.
const FORWARDING_HEADERS: usize = 5;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

impl Forwarded {
    fn apply(&self, headers: &mut HeaderMap) {
        headers.reserve(3);
        let forwarded_for = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::as_bytes) {
            Some(earlier) => {
                HeaderValue::from_bytes(&[earlier, b", ", self.client.as_bytes()].concat()).ok()
            }
            None => Some(self.client.clone()),
        };
        if let Some(value) = forwarded_for {
            headers.insert(X_FORWARDED_FOR, value);
        }
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(self.proto));
        if let Some(host) = &self.host {
            headers.insert(X_FORWARDED_HOST, host.clone());
        }
    }
}

/// The whole cause chain of a client error, most specific last, e.g.
/// `client error (Connect): tcp connect error: Connection refused (os error 111)`.
fn describe_client_error(err: &hyper_util::client::legacy::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|seen| seen.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

/// Undoes `Content-Encoding` (gzip, deflate, br) so cassettes hold readable bodies.
///
/// # Errors
/// A description of why the body does not decode.
pub fn decode(encoding: &str, body: Bytes) -> Result<Bytes, String> {
    let encoding = encoding.trim().to_ascii_lowercase();
    let mut out = Vec::new();
    let limit = MAX_RESPONSE_BODY as u64 + 1;
    let result = match encoding.as_str() {
        "" | "identity" => return Ok(body),
        "gzip" | "x-gzip" => flate2::read::MultiGzDecoder::new(&body[..])
            .take(limit)
            .read_to_end(&mut out),
        "deflate" => {
            let zlib = flate2::read::ZlibDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out);
            if zlib.is_err() {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..])
                    .take(limit)
                    .read_to_end(&mut out)
            } else {
                zlib
            }
        }
        "br" => brotli::Decompressor::new(&body[..], 4096)
            .take(limit)
            .read_to_end(&mut out),
        other => return Err(format!("unsupported content-encoding {other:?}")),
    };
    match result {
        Ok(_) if out.len() > MAX_RESPONSE_BODY => Err(format!(
            "decoded body is larger than {MAX_RESPONSE_BODY} bytes"
        )),
        Ok(_) => Ok(Bytes::from(out)),
        Err(err) => Err(format!("body does not decode as {encoding}: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    #[test]
    fn a_plain_http_upstream_gets_its_host_set_once() {
        let host = |uri: &str| plain_http_host(&uri.parse().unwrap());
        assert_eq!(host("http://127.0.0.1:8080").unwrap(), "127.0.0.1:8080");
        assert_eq!(
            host("http://ghes.example.com:80").unwrap(),
            "ghes.example.com"
        );
        assert_eq!(host("http://ghes.example.com").unwrap(), "ghes.example.com");
        assert_eq!(host("http://[::1]:9000").unwrap(), "[::1]:9000");
        assert!(
            host("https://ghes.example.com").is_none(),
            "TLS may be HTTP/2"
        );
    }

    #[test]
    fn decodes_gzip_and_brotli() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"a\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(decode("gzip", Bytes::from(gz)).unwrap(), &b"{\"a\":1}"[..]);
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(b"hello")
            .unwrap();
        assert_eq!(decode("br", Bytes::from(br)).unwrap(), &b"hello"[..]);
        assert!(decode("gzip", Bytes::from_static(b"not gzip")).is_err());
        assert!(decode("zstd", Bytes::new())
            .unwrap_err()
            .contains("unsupported"));
    }
}
