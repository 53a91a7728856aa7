//! The accept loop: one task per connection (HTTP/1.1 and h2c via hyper-util's auto builder),
//! and graceful shutdown: stop accepting → drain connections (bounded) → save → return.

use std::future::Future;
use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

use crate::app::App;
use crate::error::Error;
use crate::proxy::ConnInfo;
use crate::recording::RecordingSummary;

/// Serves `listener` until `shutdown` completes, then drains and saves.
///
/// # Errors
/// [`Error::Unsaved`] when the final cassette save failed.
pub async fn run(
    listener: TcpListener,
    app: App,
    shutdown: impl Future<Output = ()>,
) -> Result<Option<RecordingSummary>, Error> {
    let local = listener.local_addr().map_err(Error::Runtime)?;
    tracing::info!(listen.addr = %local, "{}", app.description);
    app.announce_admin(local);
    let builder = auto::Builder::new(TokioExecutor::new());
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
                let proxy = Arc::clone(&app.proxy);
                let conn_info = ConnInfo { peer, local };
                let service = service_fn(move |request| {
                    let proxy = Arc::clone(&proxy);
                    async move { Ok::<_, std::convert::Infallible>(proxy.handle(request, conn_info).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::debug!(client.addr = %peer, cause = %err, "connection ended with an error");
                    }
                });
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
