//! The time on each log line: what tracing-subscriber writes (RFC 3339 in UTC, to the
//! microsecond), with the part down to the second made once a second by each thread.
//!
//! Passthrough logs a line for every exchange, and tracing-subscriber works out the calendar
//! date and formats six numbers for each one (about 2,300 instructions of a line's 10,000).

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime as Rfc3339};

/// The timer of ghes-vcr's log lines (text and JSON).
#[derive(Clone, Copy, Debug, Default)]
pub struct LineTime;

thread_local! {
    /// This thread's last second: since the epoch, and as `2026-11-24T21:03:12`.
    static SECOND: RefCell<Option<(u64, String)>> = const { RefCell::new(None) };
}

impl FormatTime for LineTime {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return Rfc3339.format_time(writer);
        };
        let second = now.as_secs();
        SECOND.with_borrow_mut(|last| {
            if last.as_ref().is_none_or(|(at, _)| *at != second) {
                match whole_second(second) {
                    Some(text) => *last = Some((second, text)),
                    // The second turned while it was being formatted: format this line whole.
                    None => return Rfc3339.format_time(writer),
                }
            }
            let (_, text) = last.as_ref().expect("filled above");
            write!(writer, "{text}.{:06}Z", now.subsec_micros())
        })
    }
}

/// tracing-subscriber's own text for `second`, down to the second (`2026-11-24T21:03:12`), if
/// the clock is still in that second once it is made.
fn whole_second(second: u64) -> Option<String> {
    let mut text = String::with_capacity(32);
    Rfc3339.format_time(&mut Writer::new(&mut text)).ok()?;
    let after = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    if after != second {
        return None;
    }
    let (whole, _fraction) = text.split_once('.')?;
    Some(whole.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formatted(timer: &impl FormatTime) -> String {
        let mut text = String::new();
        timer.format_time(&mut Writer::new(&mut text)).unwrap();
        text
    }

    #[test]
    fn writes_what_tracing_subscriber_writes() {
        // Twice: the second line comes from the kept second.
        for _ in 0..2 {
            let (before, ours, after) = (
                formatted(&Rfc3339),
                formatted(&LineTime),
                formatted(&Rfc3339),
            );
            assert_eq!(ours.len(), before.len(), "{ours} against {before}");
            assert!(ours.ends_with('Z') && ours.as_bytes()[19] == b'.', "{ours}");
            // Each is a time between the two made by tracing-subscriber (the text sorts as time).
            assert!(
                before <= ours && ours <= after,
                "{before} ≤ {ours} ≤ {after}"
            );
        }
    }
}
