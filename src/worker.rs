//! Dedicated threads for blocking work that the async side waits for: the journal's writer and
//! the cassette saver each loop on their own thread, off the runtime, and shutdown awaits them.

use tokio::task::JoinHandle;

/// Runs `work` on a new thread named `name`; the returned task completes when `work` returns
/// (`true`), or when the thread has died of a panic (`false`). Call inside the runtime.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(
    name: &str,
    work: impl FnOnce() + Send + 'static,
) -> std::io::Result<JoinHandle<bool>> {
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            work();
            let _ = done.send(());
        })?;
    // The sender is dropped unsent if `work` panicked.
    Ok(tokio::spawn(async move { finished.await.is_ok() }))
}
