//! The accept loop: one task per connection (HTTP/1.1 and HTTP/2 via hyper-util's auto builder:
//! h2c in the clear, h2 or HTTP/1.1 by ALPN over TLS), client limits, and graceful shutdown:
//! stop accepting → drain connections (bounded) → save cassettes → flush the journal → return.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use http::{header, HeaderValue, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::app::{App, Finished};
use crate::error::Error;
use crate::proxy::answer::{self, ErrorKind};
use crate::proxy::{ConnInfo, ConnMemo, Proxy, ProxyBody};

/// Room hyper keeps beyond `--max-header-size`, so that the proxy itself answers oversized
/// headers with its own 431 (hyper's buffer limit is the backstop).
const HEADER_BUFFER_SLACK: usize = 16 * 1024;

/// Serves `listener` until `shutdown` completes, then drains and saves.
///
/// # Errors
/// [`Error::Unsaved`] when the final cassette save failed.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<Finished, Error> {
    let local = listener.local_addr().map_err(Error::Runtime)?;
    tracing::info!(listen.addr = %local, tls = app.tls.is_some(), "{}", app.description);
    warn_if_exposed(local, &app);
    // TLS connections use hyper's header timer (it closes the connection); in the clear, the
    // proxy keeps its own watch so it can answer 408 first.
    let tls_builder = Arc::new(connection_builder(
        &app,
        Some(app.limits.client_header_timeout),
    ));
    let plain_builder = Arc::new(connection_builder(&app, None));
    let connections = Arc::new(Semaphore::new(app.limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Usually out of file descriptors; keep serving the open connections.
                        tracing::warn!(cause = %err, "failed to accept a connection");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = ConnInfo { peer, local, tls: app.tls.is_some() };
                let task = Connection {
                    proxy: Arc::clone(&app.proxy),
                    builder: Arc::clone(if app.tls.is_some() { &tls_builder } else { &plain_builder }),
                    watcher: graceful.watcher(),
                    conn,
                    permit: Arc::clone(&connections).try_acquire_owned().ok(),
                    header_timeout: app.limits.client_header_timeout,
                };
                match &app.tls {
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            // The handshake counts against the header timeout.
                            match tokio::time::timeout(task.header_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(tls)) => task.serve(tls).await,
                                Ok(Err(err)) => tracing::debug!(client.addr = %peer, cause = %err, "TLS handshake failed"),
                                Err(_) => tracing::debug!(client.addr = %peer, "TLS handshake timed out"),
                            }
                        });
                    }
                    None => {
                        tokio::spawn(task.serve_plain(stream));
                    }
                }
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("stopped accepting; draining open connections");
    if tokio::time::timeout(app.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(grace = ?app.shutdown_grace, "connections still open after the shutdown grace period; closing them");
    }
    let summary = app.finish().await;
    tracing::info!("stopped");
    summary
}

fn connection_builder(
    app: &App,
    header_timeout: Option<std::time::Duration>,
) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size((app.limits.max_header_size + HEADER_BUFFER_SLACK).max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(
            u32::try_from(app.limits.max_header_size + HEADER_BUFFER_SLACK).unwrap_or(u32::MAX),
        );
    builder
}

/// One accepted connection, ready to serve.
struct Connection {
    proxy: Arc<Proxy>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    watcher: Watcher,
    conn: ConnInfo,
    /// `None` when `--max-connections` are already open: the connection only gets 503s.
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    header_timeout: std::time::Duration,
}

impl Connection {
    /// A connection in the clear: served like any other, with a watch that answers
    /// `408 Request Timeout` (and closes) when a client takes longer than
    /// `--client-header-timeout` to send a request, idle keep-alive time included.
    async fn serve_plain(self, stream: TcpStream) {
        let peer = self.conn.peer;
        // A second handle on the socket, to write the 408 with. It joins the runtime's reactor
        // only then: registered from the start, it had every event on the socket (each request
        // and each answer) wake the kernel's epoll callbacks and the reactor twice.
        let split = stream.into_std().and_then(|std| {
            let writer = std.try_clone()?;
            Ok((TcpStream::from_std(std)?, writer))
        });
        let (stream, writer) = match split {
            Ok(split) => split,
            Err(err) => {
                tracing::debug!(client.addr = %peer, cause = %err, "cannot watch the connection");
                return;
            }
        };
        let timeout = self.header_timeout;
        let idle = Arc::new(IdleWatch::new());
        let stream = Watched {
            stream,
            idle: Arc::clone(&idle),
        };
        let served = self.serve_with(stream, Some(Arc::clone(&idle)));
        tokio::pin!(served);
        tokio::select! {
            () = &mut served => {}
            expired = idle.expired(timeout) => {
                let mut writer = match TcpStream::from_std(writer) {
                    Ok(writer) => writer,
                    Err(err) => {
                        tracing::debug!(client.addr = %peer, cause = %err, "cannot answer 408; closing");
                        return;
                    }
                };
                if expired == Expired::Stalled {
                    // Half an answer is out: nothing more can be said on this connection.
                    tracing::debug!(client.addr = %peer, "the client stopped reading its answer for the header timeout; closing");
                } else {
                    tracing::debug!(client.addr = %peer, "no request within the header timeout; answering 408");
                    let _ = writer.write_all(&request_timeout(timeout)).await;
                }
                let _ = writer.shutdown().await;
            }
        }
    }

    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_with(io, None).await;
    }

    async fn serve_with<I>(self, io: I, idle: Option<Arc<IdleWatch>>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            proxy,
            builder,
            watcher,
            conn,
            permit,
            ..
        } = self;
        let peer = conn.peer;
        let result = if permit.is_some() {
            let memo = Arc::new(ConnMemo::default());
            let service = service_fn(move |request: http::Request<Incoming>| {
                let proxy = Arc::clone(&proxy);
                let memo = Arc::clone(&memo);
                let busy = idle.as_ref().map(|idle| idle.busy());
                async move {
                    let response = proxy.handle(request, conn, &memo).await;
                    // Busy until the body is sent: a slow reader is not an idle connection.
                    Ok::<_, Infallible>(response.map(|body| BusyBody { body, _busy: busy }))
                }
            });
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(io), service)
                        .into_owned(),
                )
                .await
        } else {
            tracing::warn!(client.addr = %peer, "too many connections; answering 503 (raise --max-connections)");
            let service =
                service_fn(|_request| async { Ok::<_, Infallible>(too_many_connections()) });
            watcher
                .watch(
                    builder
                        .serve_connection(TokioIo::new(io), service)
                        .into_owned(),
                )
                .await
        };
        drop(permit);
        if let Err(err) = result {
            tracing::debug!(client.addr = %peer, cause = %err, "connection ended with an error");
        }
    }
}

/// The 408 watch of a connection in the clear: how many requests it is answering (HTTP/2 may
/// have several), and since when it has had none. Requests only touch two atomics, so nothing
/// wakes per request; the watch looks once per timeout period at most.
struct IdleWatch {
    base: Instant,
    in_flight: AtomicUsize,
    /// When the last request was answered or the last byte of an answer went out, in
    /// nanoseconds after `base` (0: since the connection opened).
    idle_since: AtomicU64,
    /// Whether the last write found the socket full: an answer is still going out to a client
    /// that reads it slowly.
    blocked: AtomicBool,
}

/// A response body that keeps its connection counted as busy until hyper has sent it all (and
/// drops it).
struct BusyBody {
    body: ProxyBody,
    _busy: Option<Busy>,
}

impl hyper::body::Body for BusyBody {
    type Data = bytes::Bytes;
    type Error = crate::proxy::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A request being answered; dropped (answered, or cancelled) it makes the connection idle again.
struct Busy(Arc<IdleWatch>);

impl Drop for Busy {
    fn drop(&mut self) {
        // The time first, so a watch that sees no request in flight sees when the last ended.
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection in the clear, telling its [`IdleWatch`] when an answer cannot be written as
/// fast as it is produced (hyper may hold the rest of a large body in its own buffer).
struct Watched {
    stream: TcpStream,
    idle: Arc<IdleWatch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.stream).poll_write(cx, buf);
        self.idle.wrote(&result);
        result
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let result = std::pin::Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.idle.wrote(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl IdleWatch {
    fn new() -> Self {
        Self {
            base: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            blocked: AtomicBool::new(false),
        }
    }

    /// Notes now as the last moment the connection was busy.
    fn touch(&self) {
        let since = u64::try_from(self.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.idle_since.fetch_max(since, Ordering::AcqRel);
    }

    /// Notes how a write went: blocked (the client is not reading; since when), or some bytes
    /// out.
    fn wrote<T>(&self, result: &std::task::Poll<std::io::Result<T>>) {
        match result {
            std::task::Poll::Pending => {
                if !self.blocked.load(Ordering::Relaxed) {
                    self.touch();
                    self.blocked.store(true, Ordering::Release);
                }
            }
            std::task::Poll::Ready(_) => {
                if self.blocked.load(Ordering::Relaxed)
                    && self.blocked.swap(false, Ordering::AcqRel)
                {
                    self.touch();
                }
            }
        }
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(self))
    }

    /// Completes once the connection has had no request to answer for `timeout` (then it is
    /// owed a 408), or its client has read nothing of an answer for `timeout` (then an answer
    /// is half sent, and the connection can only be closed).
    async fn expired(&self, timeout: std::time::Duration) -> Expired {
        let mut deadline = self.base + timeout;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Instant::now();
            let blocked = self.blocked.load(Ordering::Acquire);
            if !blocked && self.in_flight.load(Ordering::Acquire) > 0 {
                deadline = now + timeout;
                continue;
            }
            let since = self.base
                + std::time::Duration::from_nanos(self.idle_since.load(Ordering::Acquire));
            if since + timeout > now {
                deadline = since + timeout;
                continue;
            }
            return if blocked {
                Expired::Stalled
            } else {
                Expired::Idle
            };
        }
    }
}

/// Why a connection's watch ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expired {
    /// No request within the timeout: answer 408.
    Idle,
    /// The client stopped reading an answer: close.
    Stalled,
}

/// The bytes of a GitHub-shaped `408 Request Timeout`, written straight to the socket.
fn request_timeout(timeout: std::time::Duration) -> Vec<u8> {
    let body = serde_json::json!({
        "message": format!("ghes-vcr closed this connection: no complete request within {timeout:?} (--client-header-timeout)"),
        "documentation_url": answer::DOCUMENTATION_URL,
        "status": "408",
    })
    .to_string();
    format!(
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json; charset=utf-8\r\n{}: {}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        answer::ERROR_HEADER,
        ErrorKind::RequestTimeout.as_str(),
        body.len()
    )
    .into_bytes()
}

fn too_many_connections() -> Response<ProxyBody> {
    let mut response = answer::error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::TooManyConnections,
        "ghes-vcr is serving as many connections as --max-connections allows; try again shortly",
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Binding beyond loopback exposes the proxy (and its admin endpoints) to the network: say so.
fn warn_if_exposed(local: SocketAddr, app: &App) {
    if local.ip().is_loopback() {
        return;
    }
    let mode = app.proxy.mode;
    let forwarding = if app.proxy.forwarder.is_some() {
        " and forwards to the upstream for anyone who can connect"
    } else {
        ""
    };
    tracing::warn!(
        listen.addr = %local,
        "listening beyond loopback: this {mode:?} proxy answers every host that can reach {local}{forwarding}; \
         the admin endpoints /__ghes-vcr/health, /metrics, /journal (journal entries) and /reset are reachable too"
    );
}
