//! Where log lines go: appended to a queue in memory, and written out by a thread of their
//! own in batches, every [`BATCH_INTERVAL`] while lines keep coming.
//!
//! Passthrough logs a line for every exchange. Handing each line to a writer thread
//! (`tracing-appender`'s way) wakes that thread for nearly every line when the load is light:
//! the wake-up, the thread's `write` and its spinning before it sleeps again came to a fifth
//! to a quarter of passthrough's CPU time per exchange with one connection. Here a line costs
//! its copy into the queue, and the thread is woken only by the first line after a quiet spell
//! (or a queue grown past [`WAKE_AT`]): lines reach stderr at most [`BATCH_INTERVAL`] after
//! they were logged.
//!
//! Each `write` is queued whole (tracing-subscriber writes each line with one). Nothing is
//! dropped. A full queue ([`QUEUE_LIMIT`]) makes loggers wait for room, as a direct
//! write to a slow pipe would; [`LogWriterGuard`], dropped, writes out what is queued; and a
//! line logged after that is written at once.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long the writer thread gathers lines before it writes them out.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(10);
/// A queue this long is written out at once, without waiting for the interval (a pipe's
/// buffer).
pub const WAKE_AT: usize = 64 * 1024;
/// Loggers wait for room while the queue holds this much (about 7,000 exchange lines).
pub const QUEUE_LIMIT: usize = 1024 * 1024;

/// The [`MakeWriter`] of ghes-vcr's log lines: each line is copied into the queue.
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes out the queued lines and stops the writer thread when dropped; lines logged after
/// that are written at once.
pub struct LogWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the writer thread: a line into a quiet queue, a queue past [`WAKE_AT`], closing.
    wake: Condvar,
    /// Wakes loggers waiting for room.
    room: Condvar,
    /// Where the lines go; the writer thread holds it while it writes a batch.
    out: Mutex<Box<dyn Write + Send>>,
}

#[derive(Default)]
struct Queue {
    lines: Vec<u8>,
    /// The writer thread sleeps until a line comes (not just for the interval).
    quiet: bool,
    /// The guard was dropped: the thread writes out what is left and ends.
    closing: bool,
    /// The thread has ended: loggers write themselves.
    closed: bool,
}

/// Starts the writer thread, named `name`, writing to `out`. Should the thread not start, each
/// line is written as it is logged.
pub fn start(name: &str, out: impl Write + Send + 'static) -> (LogWriter, LogWriterGuard) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        wake: Condvar::new(),
        room: Condvar::new(),
        out: Mutex::new(Box::new(out)),
    });
    let thread = std::thread::Builder::new().name(name.to_owned()).spawn({
        let shared = Arc::clone(&shared);
        move || {
            let _ended = Ended(&shared);
            shared.write_batches();
        }
    });
    let thread = match thread {
        Ok(thread) => Some(thread),
        Err(_) => {
            shared.queue().closed = true;
            None
        }
    };
    let writer = LogWriter {
        shared: Arc::clone(&shared),
    };
    (writer, LogWriterGuard { shared, thread })
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        // A logger that panicked held the lock only to copy a line: the queue is whole.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Copies `line` into the queue, waiting while it is full; writes it at once when the
    /// writer thread has ended.
    fn push(&self, line: &[u8]) {
        let mut queue = self.queue();
        while queue.lines.len() >= QUEUE_LIMIT && !queue.closed {
            queue = self
                .room
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        if queue.closed {
            drop(queue);
            self.write_out(line);
            return;
        }
        let before = queue.lines.len();
        queue.lines.extend_from_slice(line);
        let wake = queue.quiet || (before < WAKE_AT && queue.lines.len() >= WAKE_AT);
        queue.quiet = false;
        drop(queue);
        if wake {
            self.wake.notify_one();
        }
    }

    /// The writer thread: sleeps until a line comes, gathers lines for [`BATCH_INTERVAL`] (or
    /// until the queue passes [`WAKE_AT`]), writes them out, and again; at closing, writes out
    /// what is left.
    fn write_batches(&self) {
        let mut batch = Vec::new();
        let mut queue = self.queue();
        loop {
            if queue.lines.is_empty() {
                if queue.closing {
                    break;
                }
                queue.quiet = true;
                queue = self
                    .wake
                    .wait_while(queue, |queue| queue.quiet && !queue.closing)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            queue = self
                .wake
                .wait_timeout_while(queue, BATCH_INTERVAL, |queue| {
                    queue.lines.len() < WAKE_AT && !queue.closing
                })
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            std::mem::swap(&mut queue.lines, &mut batch);
            drop(queue);
            self.room.notify_all();
            self.write_out(&batch);
            batch.clear();
            // A burst's worth of capacity is not kept for good.
            batch.shrink_to(2 * WAKE_AT);
            queue = self.queue();
        }
    }

    /// Writes `bytes` to the output and flushes it. Nowhere is left to report a failure to.
    fn write_out(&self, bytes: &[u8]) {
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }
}

/// Marks the writer thread ended when it returns or unwinds, and writes out what is still
/// queued, so that loggers write themselves from then on and no line is left behind.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        let mut queue = self.0.queue();
        queue.closed = true;
        let left = std::mem::take(&mut queue.lines);
        // Taken before the queue is let go: a logger that finds it closed writes after these.
        let mut out = self.0.out.lock().unwrap_or_else(PoisonError::into_inner);
        drop(queue);
        self.0.room.notify_all();
        let _ = out.write_all(&left);
        let _ = out.flush();
    }
}

impl Write for &LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.push(buf);
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.shared.push(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        self.shared.queue().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LogWriterGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriterGuard").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::sync::mpsc;

    use super::{start, QUEUE_LIMIT};

    /// An output that hands each batch it is given to a channel, once `open` lets it.
    struct Batches {
        batches: mpsc::Sender<Vec<u8>>,
        open: Option<mpsc::Receiver<()>>,
    }

    impl std::io::Write for Batches {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(open) = self.open.take() {
                let _ = open.recv();
            }
            let _ = self.batches.send(buf.to_vec());
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn batches() -> (Batches, mpsc::Receiver<Vec<u8>>) {
        let (batches, received) = mpsc::channel();
        let output = Batches {
            batches,
            open: None,
        };
        (output, received)
    }

    #[test]
    fn a_line_is_written_without_waiting_for_the_end() {
        let (output, received) = batches();
        let (writer, _guard) = start("test-log", output);
        for line in ["first\n", "second\n"] {
            (&writer).write_all(line.as_bytes()).unwrap();
            let mut written = Vec::new();
            // Each line wakes the quiet thread; it may come in the same batch as nothing else.
            while written != line.as_bytes() {
                written.extend(received.recv().expect("the writer thread writes it"));
            }
        }
    }

    #[test]
    fn lines_from_many_threads_come_out_whole_and_in_each_threads_order() {
        let (output, received) = batches();
        let (writer, guard) = start("test-log", output);
        std::thread::scope(|scope| {
            for thread in 0..4 {
                let writer = &writer;
                scope.spawn(move || {
                    for line in 0..5_000 {
                        let line = format!("thread {thread} line {line}\n");
                        (&*writer).write_all(line.as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(guard);
        let written: Vec<u8> = received.try_iter().flatten().collect();
        let mut next = [0; 4];
        for line in String::from_utf8(written).unwrap().lines() {
            let words: Vec<&str> = line.split(' ').collect();
            let thread: usize = words[1].parse().unwrap();
            assert_eq!(words[3].parse::<usize>().unwrap(), next[thread], "{line}");
            next[thread] += 1;
        }
        assert_eq!(next, [5_000; 4]);
    }

    #[test]
    fn a_full_queue_makes_loggers_wait_and_nothing_is_lost() {
        let (mut output, received) = batches();
        let (open, opened) = mpsc::channel();
        output.open = Some(opened);
        let (writer, guard) = start("test-log", output);
        let line = [b'x'; 99];
        let lines = 3 * QUEUE_LIMIT / 100;
        let (pushed, all_pushed) = mpsc::channel();
        std::thread::scope(|scope| {
            let writer = &writer;
            scope.spawn(move || {
                for _ in 0..lines {
                    (&*writer).write_all(&line).unwrap();
                    (&*writer).write_all(b"\n").unwrap();
                }
                pushed.send(()).unwrap();
            });
            // The output is stuck on its first batch: three queues' worth cannot all be
            // queued behind it.
            assert!(all_pushed.try_recv().is_err());
            open.send(()).unwrap();
            all_pushed.recv().unwrap();
        });
        drop(guard);
        let batches: Vec<Vec<u8>> = received.try_iter().collect();
        assert!(
            batches.iter().all(|batch| batch.len() <= QUEUE_LIMIT + 100),
            "{:?}",
            batches.iter().map(Vec::len).collect::<Vec<_>>()
        );
        assert_eq!(batches.concat().len(), lines * 100);
    }

    #[test]
    fn a_line_after_the_guard_is_written_at_once() {
        let (output, received) = batches();
        let (writer, guard) = start("test-log", output);
        (&writer).write_all(b"before\n").unwrap();
        drop(guard);
        (&writer).write_all(b"after\n").unwrap();
        let written: Vec<u8> = received.try_iter().flatten().collect();
        assert_eq!(written, b"before\nafter\n");
    }
}
