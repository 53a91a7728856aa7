//! Threads for work off the runtime: the journal's writer and the cassette saver each loop on a
//! thread of their own, which shutdown awaits ([`spawn`]); loading a large cassette spreads its
//! interactions over the cores ([`map_on_cores`]).

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

/// `work` applied to each of `items` on one scoped thread per core (at most 8), or on this
/// thread for fewer than 32 items (starting threads would cost more): the results in the items'
/// order, in one part per thread (flatten them; joining them into one `Vec` would copy every
/// result once more).
///
/// # Panics
/// When `work` panics.
pub fn map_on_cores<I: Send, T: Send>(items: Vec<I>, work: impl Fn(I) -> T + Sync) -> Vec<Vec<T>> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if cores == 1 || items.len() < 32 {
        return vec![items.into_iter().map(work).collect()];
    }
    let part = items.len().div_ceil(cores);
    let mut parts = Vec::with_capacity(cores);
    let mut items = items.into_iter();
    while items.len() > 0 {
        parts.push(items.by_ref().take(part).collect::<Vec<I>>());
    }
    let work = &work;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(work).collect::<Vec<T>>()))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("work on a core panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn work_on_cores_comes_back_in_order() {
        for count in [0, 1, 31, 32, 1001] {
            let items: Vec<usize> = (0..count).collect();
            let doubled: Vec<usize> = super::map_on_cores(items, |item| item * 2)
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(doubled, (0..count).map(|item| item * 2).collect::<Vec<_>>());
        }
    }
}
