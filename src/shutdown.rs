//! The shutdown signal: SIGINT (Ctrl-C) or SIGTERM.

/// Completes when the process receives SIGINT or SIGTERM.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut terminate =
            signal(SignalKind::terminate()).expect("failed to install the SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT; shutting down"),
            _ = terminate.recv() => tracing::info!("received SIGTERM; shutting down"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("received Ctrl-C; shutting down");
    }
}
