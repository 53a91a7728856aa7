//! How cassette size affects ghes-vcr: load time, resident memory, and the cost of matching one
//! request, for generated cassettes of 1, 1k, 10k and 100k interactions.
//!
//! ```sh
//! cargo run --release --example cassette_scale                   # as `replay` runs by default
//! cargo run --release --example cassette_scale -- --no-journal    # as `replay --no-journal`
//! ```
//!
//! Each cassette holds distinct `GET /api/v3/authorizations/{id}` interactions with a ~1 KB
//! authorization body, like a recording of a busy GHES. Matching is measured as the time to look
//! up a request (capture → fingerprint → index) averaged over many lookups, and reported as a
//! ratio to the 1-interaction cassette from the same run, because absolute figures on a shared
//! 2-core machine are noisy. Each cassette is loaded as `replay` loads it, by a fresh process of
//! its own (this example, run with `--measure`), since a `replay` starts fresh: memory is the
//! growth of that process's resident set while the cassette is loaded, as a ratio to the file
//! size.

use std::path::Path;
use std::time::Instant;

use ghes_vcr::cassette::{Body, Cassette, Interaction, RecordedRequest, RecordedResponse};
use ghes_vcr::deprecation::DeprecationHeaders;
use ghes_vcr::matching::MatchRules;
use ghes_vcr::replay::{Lookup, ReplayOptions, ReplaySet};
use serde_json::json;

fn interaction(id: usize) -> Interaction {
    Interaction {
        request: RecordedRequest {
            method: "GET".into(),
            path: format!("/api/v3/authorizations/{id}"),
            query: vec![],
            headers: vec![
                ("accept".into(), "application/vnd.github.v3+json".into()),
                ("authorization".into(), "Basic REDACTED user=octocat".into()),
            ],
            body: Body::Empty,
        },
        response: RecordedResponse {
            status: 200,
            headers: vec![
                (
                    "content-type".into(),
                    "application/json; charset=utf-8".into(),
                ),
                ("etag".into(), format!("W/\"{id:064x}\"")),
                (
                    "x-github-request-id".into(),
                    format!("0000:0000:{id:06X}:0000000:00000000"),
                ),
            ],
            body: Body::Json(json!({
                "id": id,
                "url": format!("{{{{origin}}}}/api/v3/authorizations/{id}"),
                "app": {"client_id": "00000000000000000000", "name": "My personal access token", "url": "https://docs.github.com/enterprise/rest"},
                "token": "",
                "hashed_token": format!("{id:064x}"),
                "token_last_eight": format!("{id:08x}"),
                "note": format!("token {id}"),
                "note_url": null,
                "created_at": "2026-01-15T10:00:00Z",
                "updated_at": "2026-01-15T10:00:00Z",
                "scopes": ["repo", "user"],
                "fingerprint": null
            }).into()),
        },
        latency_ms: None,
    }
}

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Nanoseconds per lookup of an existing request, over `rounds` lookups spread over the set.
fn lookup_cost(set: &ReplaySet, size: usize, rounds: usize) -> f64 {
    let requests: Vec<RecordedRequest> = (0..64)
        .map(|i| interaction((i * 7919) % size).request)
        .collect();
    let started = Instant::now();
    for round in 0..rounds {
        match set.lookup(&requests[round % requests.len()]) {
            Lookup::Hit(entry) => {
                std::hint::black_box(entry.response.status);
            }
            Lookup::Miss(report) => panic!("unexpected miss: {}", report.message()),
        }
    }
    started.elapsed().as_nanos() as f64 / rounds as f64
}

/// What one fresh process measured on loading a cassette.
struct Measured {
    load: f64,
    resident: u64,
    lookup_ns: f64,
}

/// In a child process (`--measure PATH SIZE`): loads the cassette as `replay` does and prints
/// the load time, the growth of the resident set, and the lookup cost, on one line.
fn measure(
    path: &Path,
    size: usize,
    options: &ReplayOptions,
) -> Result<(), Box<dyn std::error::Error>> {
    let before = resident_kib();
    let started = Instant::now();
    let set = ReplaySet::load(path, MatchRules::default(), options)?;
    let load = started.elapsed().as_secs_f64();
    let resident = resident_kib().saturating_sub(before) * 1024;
    let cost = lookup_cost(&set, size, 200_000);
    println!("{load} {resident} {cost}");
    Ok(())
}

/// Runs [`measure`] in a fresh process, so that memory freed by generating the cassette (or by
/// a smaller one before it) cannot hide what loading takes: a `replay` starts fresh.
fn measure_in_child(
    path: &Path,
    size: usize,
    journal: bool,
) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut child = std::process::Command::new(std::env::current_exe()?);
    child.arg("--measure").arg(path).arg(size.to_string());
    if !journal {
        child.arg("--no-journal");
    }
    let output = child.output()?;
    if !output.status.success() {
        return Err(format!(
            "measuring {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let line = String::from_utf8(output.stdout)?;
    let mut fields = line.split_whitespace();
    let mut next = || fields.next().ok_or("short measurement line");
    Ok(Measured {
        load: next()?.parse()?,
        resident: next()?.parse()?,
        lookup_ns: next()?.parse()?,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    // As `ghes-vcr replay` runs by default (deprecation headers added, each stored answer kept
    // for the journal), or with `--no-journal`.
    let journal = !args.iter().any(|arg| arg == "--no-journal");
    let options = ReplayOptions {
        deprecation: Some(DeprecationHeaders::default()),
        keep_recorded: journal,
        ..ReplayOptions::default()
    };
    if let Some(at) = args.iter().position(|arg| arg == "--measure") {
        let (Some(path), Some(size)) = (args.get(at + 1), args.get(at + 2)) else {
            return Err(
                "--measure needs a cassette path and its size, e.g. --measure c.json 1000".into(),
            );
        };
        return measure(Path::new(path), size.parse()?, &options);
    }
    let dir = tempfile::tempdir()?;
    println!("cargo run --release --example cassette_scale");
    println!(
        "{:>8}  {:>10}  {:>9}  {:>10}  {:>8}  {:>11}  {:>10}",
        "size", "file", "load", "resident", "mem/file", "match/req", "vs size 1"
    );
    println!(
        "options:  replay's defaults, journal {}; each size loaded by a fresh process",
        if journal { "on" } else { "off (--no-journal)" }
    );
    let mut baseline = None;
    for size in [1usize, 1_000, 10_000, 100_000] {
        let path = dir.path().join(format!("scale-{size}.json"));
        let mut cassette = Cassette::new();
        cassette.interactions = (0..size).map(interaction).collect();
        // On disk before it is measured, as a user's cassette is: writing it back must not
        // compete with the load.
        let mut file = std::fs::File::create(&path)?;
        std::io::Write::write_all(&mut file, cassette.to_pretty_json().as_bytes())?;
        file.sync_all()?;
        drop((file, cassette));
        let file = std::fs::metadata(&path)?.len();
        let measured = measure_in_child(&path, size, journal)?;
        let base = *baseline.get_or_insert(measured.lookup_ns);
        println!(
            "{:>8}  {:>8.1}MB  {:>7.3}s  {:>8.1}MB  {:>7.2}x  {:>9.0}ns  {:>9.2}x",
            size,
            file as f64 / 1e6,
            measured.load,
            measured.resident as f64 / 1e6,
            measured.resident as f64 / file as f64,
            measured.lookup_ns,
            measured.lookup_ns / base,
        );
    }
    Ok(())
}
