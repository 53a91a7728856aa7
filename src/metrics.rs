//! Prometheus metrics, served at `GET /__ghes-vcr/metrics` in the text format: requests by
//! operation, status and outcome, latency histograms by operation, replay misses, and the
//! journal's queue, writes and drops.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::journal::{JournalStats, Outcome};

// Labels are static strings: counting a request allocates nothing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: &'static str,
}

/// Latency buckets in seconds: 100 µs to 10 s.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// Tells [`Metrics`] instances apart (tests run several proxies in one process).
static INSTANCES: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The series this thread counted last, so a run of alike requests (a suite replaying one
    /// operation, a client polling) skips the label hashing and the families' locks.
    static RECENT: RefCell<Option<Recent>> = const { RefCell::new(None) };
}

struct Recent {
    metrics: u64,
    labels: RequestLabels,
    requests: Counter,
    latency: Histogram,
}

/// The proxy's metrics.
pub struct Metrics {
    id: u64,
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<OperationLabels, Histogram>,
    misses: Counter,
    journal_queued: Gauge,
    journal_written: Gauge,
    journal_dropped: Gauge,
    journal_entries: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("ghes_vcr");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<OperationLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS));
        let misses = Counter::default();
        let (journal_queued, journal_written, journal_dropped, journal_entries) = (
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
            Gauge::default(),
        );
        registry.register(
            "requests",
            "Requests answered, by operation, status and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a request, by operation",
            latency.clone(),
        );
        registry.register("replay_misses", "Requests no cassette held", misses.clone());
        registry.register(
            "journal_queue_depth",
            "Journal entries waiting for the writer",
            journal_queued.clone(),
        );
        registry.register(
            "journal_written",
            "Journal entries written since start",
            journal_written.clone(),
        );
        registry.register(
            "journal_dropped",
            "Journal entries dropped because the writer was behind",
            journal_dropped.clone(),
        );
        registry.register(
            "journal_entries",
            "Entries in the journal",
            journal_entries.clone(),
        );
        Self {
            id: INSTANCES.fetch_add(1, Ordering::Relaxed),
            registry,
            requests,
            latency,
            misses,
            journal_queued,
            journal_written,
            journal_dropped,
            journal_entries,
        }
    }
}

impl Metrics {
    /// Counts one answered request. `operation` is `None` outside the deprecated API.
    pub fn observe(
        &self,
        operation: Option<&'static str>,
        status: u16,
        outcome: Option<Outcome>,
        elapsed: Duration,
    ) {
        let operation = operation.unwrap_or("other");
        let outcome = outcome.map_or("forwarded", Outcome::as_str);
        if outcome == "replay-miss" {
            self.misses.inc();
        }
        let labels = RequestLabels {
            operation,
            status,
            outcome,
        };
        RECENT.with_borrow_mut(|recent| {
            let fresh = recent
                .as_ref()
                .is_none_or(|recent| recent.metrics != self.id || recent.labels != labels);
            if fresh {
                *recent = Some(Recent {
                    metrics: self.id,
                    requests: self.requests.get_or_create(&labels).clone(),
                    latency: self
                        .latency
                        .get_or_create(&OperationLabels { operation })
                        .clone(),
                    labels,
                });
            }
            if let Some(recent) = recent {
                recent.latency.observe(elapsed.as_secs_f64());
                recent.requests.inc();
            }
        });
    }

    /// The Prometheus text exposition.
    pub fn encode(&self, journal: Option<JournalStats>) -> String {
        let stats = journal.unwrap_or_default();
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.journal_queued.set(gauge(stats.queued));
        self.journal_written.set(gauge(stats.written));
        self.journal_dropped.set(gauge(stats.dropped));
        self.journal_entries.set(gauge(stats.entries));
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.push_str("# metrics could not be encoded\n");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_has_the_families() {
        let metrics = Metrics::default();
        metrics.observe(
            Some("oauth-authorizations/list-grants"),
            200,
            Some(Outcome::Replayed),
            Duration::from_millis(2),
        );
        metrics.observe(
            None,
            501,
            Some(Outcome::ReplayMiss),
            Duration::from_millis(1),
        );
        let text = metrics.encode(Some(JournalStats {
            queued: 1,
            written: 2,
            dropped: 3,
            entries: 4,
        }));
        assert!(text.contains("ghes_vcr_requests_total{operation=\"oauth-authorizations/list-grants\",status=\"200\",outcome=\"replayed\"} 1"), "{text}");
        assert!(text.contains("ghes_vcr_replay_misses_total 1"), "{text}");
        assert!(text.contains("ghes_vcr_journal_dropped 3"), "{text}");
        assert!(text.contains("ghes_vcr_request_duration_seconds_bucket{le=\"0.0025\",operation=\"oauth-authorizations/list-grants\"} 1"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn runs_of_alike_requests_count_in_their_own_instance_and_series() {
        let (a, b) = (Metrics::default(), Metrics::default());
        let list = Some("oauth-authorizations/list-authorizations");
        let ms = Duration::from_millis(1);
        for _ in 0..3 {
            a.observe(list, 200, Some(Outcome::Replayed), ms);
        }
        b.observe(list, 200, Some(Outcome::Replayed), ms);
        a.observe(list, 404, Some(Outcome::Replayed), ms);
        a.observe(list, 200, Some(Outcome::Replayed), ms);
        let series = |status| {
            format!("ghes_vcr_requests_total{{operation=\"oauth-authorizations/list-authorizations\",status=\"{status}\",outcome=\"replayed\"}}")
        };
        let (a, b) = (a.encode(None), b.encode(None));
        assert!(a.contains(&format!("{} 4\n", series(200))), "{a}");
        assert!(a.contains(&format!("{} 1\n", series(404))), "{a}");
        assert!(b.contains(&format!("{} 1\n", series(200))), "{b}");
        assert!(a.contains("ghes_vcr_request_duration_seconds_count{operation=\"oauth-authorizations/list-authorizations\"} 5"), "{a}");
    }
}
