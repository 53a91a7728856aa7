//! The shutdown signals: SIGINT (Ctrl-C) or SIGTERM. Both are listened for from start-up, so
//! a second signal is seen even when it follows the first closely.

/// SIGINT and SIGTERM, registered once.
pub struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers. Must run inside a tokio runtime.
    pub fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Self {
                interrupt: signal(SignalKind::interrupt())
                    .expect("failed to install the SIGINT handler"),
                terminate: signal(SignalKind::terminate())
                    .expect("failed to install the SIGTERM handler"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Completes at the next SIGINT or SIGTERM.
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => tracing::info!("received SIGINT"),
            _ = self.terminate.recv() => tracing::info!("received SIGTERM"),
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("received Ctrl-C");
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Self::new()
    }
}
