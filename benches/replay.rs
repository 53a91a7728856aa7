//! In-process costs on the replay hot path, for the ~1.9 KB authorization list answer:
//! capturing (and redacting) a request, fingerprinting it, and looking it up in a set of 1 or
//! 100k interactions (the cost must not grow with the set).
//!
//! ```sh
//! cargo bench --bench replay
//! ```

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use ghes_vcr::capture::Capture;
use ghes_vcr::cassette::{
    Body, Cassette, Interaction, LoadedCassette, RecordedRequest, RecordedResponse,
};
use ghes_vcr::matching::MatchRules;
use ghes_vcr::redaction::Redactor;
use ghes_vcr::replay::{Lookup, ReplayOptions, ReplaySet};
use http::{HeaderMap, Method, Uri};

fn interaction(id: usize) -> Interaction {
    Interaction {
        request: RecordedRequest {
            method: "GET".into(),
            path: if id == 0 {
                "/api/v3/authorizations".into()
            } else {
                format!("/api/v3/authorizations/{id}")
            },
            query: vec![],
            headers: vec![("accept".into(), "application/vnd.github.v3+json".into())],
            body: Body::Empty,
        },
        response: RecordedResponse {
            status: 200,
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
            )],
            body: Body::Text("x".repeat(1900)),
        },
        latency_ms: None,
    }
}

fn set_of(size: usize) -> ReplaySet {
    let mut cassette = Cassette::new();
    cassette.interactions = (0..size).map(interaction).collect();
    let loaded = LoadedCassette {
        path: PathBuf::from("bench.json"),
        cassette,
    };
    ReplaySet::new(
        &[],
        vec![loaded],
        MatchRules::default(),
        &ReplayOptions::default(),
    )
    .expect("valid cassette")
}

fn bench(c: &mut Criterion) {
    let capture = Capture::new(Redactor::default(), None);
    let mut headers = HeaderMap::new();
    headers.insert("accept", "application/vnd.github.v3+json".parse().unwrap());
    headers.insert("authorization", "Basic b2N0b2NhdDp4".parse().unwrap());
    headers.insert("user-agent", "legacy-cli/1.0".parse().unwrap());
    let uri: Uri = "/api/v3/authorizations".parse().unwrap();
    c.bench_function("capture request", |b| {
        b.iter(|| capture.request(&Method::GET, &uri, &headers, b""))
    });
    let request = capture.request(&Method::GET, &uri, &headers, b"");
    let rules = MatchRules::default();
    c.bench_function("fingerprint", |b| b.iter(|| rules.key(&request)));
    for size in [1, 100_000] {
        let set = set_of(size);
        c.bench_function(&format!("lookup in {size}"), |b| {
            b.iter(|| match set.lookup(&request) {
                Lookup::Hit(entry) => entry.response.body.render("http://127.0.0.1:8080").len(),
                Lookup::Miss(_) => 0,
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
