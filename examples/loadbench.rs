//! Load benchmark: how much does putting ghes-vcr in the path cost, compared with a bare hyper
//! server answering the same bytes?
//!
//! ```sh
//! cargo run --release --example loadbench -- [--duration 5s] [--warmup 1s] [--slices 5]
//!     [--connections 1,64]
//!     [--only replay,passthrough,hyper-proxy,nginx,passthrough-journal,record,record-journal]
//!     [--json FILE] [--ghes-vcr PATH] [--generator hyper|wrk]
//! ```
//!
//! # What is measured
//!
//! Every target answers `GET /api/v3/authorizations` with the same response: a ~1.9 KB JSON list
//! of two authorizations, shaped like GitHub Enterprise Server's answer, with GHES's headers and
//! the deprecation headers replay adds.
//!
//! - `baseline`: a bare hyper 1 server (hyper-util's auto builder, its own multi-threaded tokio
//!   runtime, in this process) that answers with those bytes. This is the ceiling.
//! - `replay`: `ghes-vcr replay --no-journal` serving a cassette that holds that exchange. The
//!   cassette is produced by `ghes-vcr record --mode all` in front of the baseline (one request,
//!   then SIGTERM), so it is exactly what the recorder writes. The baseline already sends the
//!   three deprecation headers replay would add (`Deprecation`, `Sunset`, `Link`), so replay
//!   keeps them instead, as it keeps a recording's own, and answers the same bytes.
//! - `passthrough`: `ghes-vcr passthrough --no-journal` in front of the baseline.
//! - `hyper-proxy` (a reference, not ghes-vcr): the smallest pass-through that can be built
//!   from ghes-vcr's own stack, in front of the baseline. It is this example re-run with
//!   `--serve-hyper-proxy http://HOST:PORT`, a process of its own like the baseline:
//!   hyper-util's auto server per connection and its legacy client (`HttpConnector`, HTTP/1.1
//!   keep-alive pool), TCP_NODELAY on both sides, on a multi-threaded tokio runtime with the
//!   default workers. Per request it points the URI and `Host` at the upstream, drops
//!   hop-by-hop headers both ways and streams both bodies through; an upstream error answers
//!   502. No logging, no capture. It is the floor of hyper on both sides: what passthrough
//!   costs above it is ghes-vcr's own work, not hyper's.
//! - `nginx` (a reference): nginx as a plain reverse proxy in front of the baseline, the bar
//!   the issue sets for pass-through (nginx 1.22 there: ~0.58× the bare server at 64
//!   connections, ~+15 µs p50 at 1 connection). It runs when `nginx` is on PATH or in
//!   /usr/sbin or /usr/local/sbin (Debian: `apt-get install nginx`); otherwise the default set
//!   skips it with a note, and `--only nginx` is an error. Its configuration, written to a
//!   fresh temporary directory that also holds its pid file, logs and every temp path:
//!   `worker_processes auto` (one per core), `worker_connections 4096`, an `upstream` block
//!   with `keepalive 64` plus `proxy_http_version 1.1` and an empty `Connection` header (so
//!   it keeps its connections to the baseline open, as ghes-vcr does; nginx's default is a
//!   new HTTP/1.0 connection per request), `keepalive_requests 1000000` on both sides (nginx
//!   closes a connection after 1,000 requests by default, which neither ghes-vcr nor the
//!   baseline does: its row would pay for handshakes the others do not), `proxy_buffering on`
//!   (nginx's default), and the access log on, in that directory, because passthrough logs
//!   one line per exchange too.
//!   nginx cannot listen on port 0 and say which port it got, so a free loopback port is
//!   picked by binding port 0 and releasing it; nginx prints nothing when ready, so it counts
//!   as started once a GET through it answers 200 (polled for up to 10 s).
//! - `passthrough-journal`: the same as `passthrough` with `--journal DIR` (a fresh temporary
//!   directory). The journal's `dropped` counter is read from `GET /__ghes-vcr/health` before
//!   it is stopped.
//! - `record`: `ghes-vcr record --mode all --no-journal` in front of the baseline, with a
//!   temporary cassette. Every request (warm-up included) is recorded: each is on disk
//!   (appended to the cassette's recording log) before its answer is sent, so this one measures
//!   the disk as much as the proxy. The log reaches about 1 GB in a default run; the whole
//!   cassette is written once, when the recorder stops (an exit over 2 s is reported).
//! - `record-journal`: the same with `--journal DIR` (a fresh temporary directory).
//!
//! Besides each row's ratios to the baseline, the report prints each journal's on/off
//! throughput (`passthrough-journal` ÷ `passthrough`, `record-journal` ÷ `record`) and record's
//! throughput as a share of passthrough's (`record` ÷ `passthrough`), and passthrough's against
//! each reference (`passthrough` ÷ `hyper-proxy`, `passthrough` ÷ `nginx`); and, at 1
//! connection, the p50 latency that passthrough adds next to the one each reference adds.
//!
//! Each ghes-vcr is a separate process started from the built binary (`target/release/ghes-vcr`,
//! next to this example's directory) with a cleared environment plus `HOME=<temp dir>`, on
//! `127.0.0.1:0`; its port is read from the `listening on http://HOST:PORT` line it prints on
//! stdout, and it is stopped with SIGTERM (through the `kill` command) and waited for. So are
//! the baseline, the hyper-proxy and nginx, also when dropped on an error path (SIGKILL would
//! leave nginx's worker processes running without their master).
//!
//! # How
//!
//! The load is closed-loop: each of N connections sends a request, reads the whole answer and
//! sends the next one. `--generator` chooses what sends it:
//!
//! - `hyper` (the default; needs nothing else): hyper's HTTP/1.1 client connection, one
//!   keep-alive connection per worker, in its own multi-threaded tokio runtime in this
//!   process. Each worker checks that the status is 200. Every latency (request sent → whole
//!   body received) is kept in microseconds. Failed requests (non-200, I/O errors, 10 s
//!   timeouts) are counted as errors; the worker reconnects after an I/O error, and after an
//!   answer that closes its connection (`Connection: close`, which is not an error).
//! - `wrk` (`wrk` 4.x on PATH; Debian: `apt-get install wrk`): every slice, warm-up and
//!   measured, target and baseline alike, is one `wrk -t1 -c<N> -d<slice> --timeout 10s -s
//!   <script>` run with the same request headers (so its connections are opened afresh for
//!   each slice). wrk spends far less CPU per request than the in-process hyper client, and
//!   since generator, servers and proxies share the machine's cores, the proxies' own cost
//!   then shows more fully (on the 2-core reference machine, replay at 64 connections served
//!   0.76–0.79× the bare server under wrk, against 0.94–1.01× under the hyper client, with the
//!   same build). The reference figures in the issue that asked for this benchmark were
//!   measured with wrk.
//!   wrk's `-d` takes whole seconds only, so the warm-up and each slice (`--duration` ÷
//!   `--slices`) must be whole seconds. A small Lua script (written to a temporary file) has
//!   wrk print, when it is done, one JSON line: answers, run time in µs, errors (connect,
//!   read, write, timeout, and answers with status ≥ 400, which is what wrk counts as a
//!   status error) and its whole latency histogram (each distinct latency in µs with its
//!   count). wrk adds synthetic latencies to that histogram after the run (its correction
//!   for coordinated omission, `stats_correct`); loadbench subtracts them again, exactly, so
//!   the latencies are the measured ones, as with the hyper client, and checks that they add
//!   up to the answers wrk counted. A slice's throughput is its answers divided by wrk's own
//!   run time (a run ends up to 100 ms after `-d`).
//!
//! Either way the latencies are kept in microseconds and the percentiles are read from the
//! sorted list; the single requests around the load (probes, the health reads, recording the
//! replay cassette) always go through the hyper client.
//!
//! Every target is started first (each ghes-vcr, the hyper-proxy and nginx a process of its
//! own) and stays up for the whole run; loads never overlap: one target is under load at a
//! time. The machine's speed moves during a run (other tenants of the host, CPU boost, which
//! cores the threads land on: on the 2-core reference machine the bare server's throughput
//! varied 1.1–1.7× between 1-second slices of one run), so no target is compared with another
//! measured minutes earlier. For each connection count in `--connections` (default 1 and 64),
//! every target is warmed up in turn (`--warmup`, unmeasured), then the measured `--duration`
//! is cut into `--slices` slices, and the targets take turns slice by slice: baseline, replay,
//! passthrough, …, record-journal, baseline, replay, … (with the hyper client, the
//! connections to each stay open from slice to slice; ghes-vcr runs with
//! `--client-header-timeout 1h` and nginx with `keepalive_timeout 1h` so that they wait idle
//! meanwhile). Each slice ends when its last answer is in (with wrk, when its wrk run has
//! exited). Every row's ratios divide by the baseline's slices of the same rounds, and the
//! ratios between two targets (a journal on and off, record and passthrough) divide figures
//! sampled over the same stretch of the run, so the machine's drift cancels out of them too.
//! The report prints how far apart the fastest and slowest baseline slices were. With the
//! defaults (2 connection counts × 8 targets, nginx included, × (1 s warm-up + 5 s)) the run
//! takes about two and a half minutes.

//! # Reading the results
//!
//! The load generator, the baseline server and the proxy under test all share the same machine
//! (on the reference machine: 2 cores), so the absolute numbers say as much about the machine
//! as about ghes-vcr, and they move from run to run. The ratios to the baseline of the *same
//! run* are the point: throughput ratio = target / baseline (1.0 = as fast as a bare server),
//! latency ratio = target / baseline (1.0 = no added latency), and for the proxies the latency
//! they add at p50 in microseconds (target p50 − baseline p50). Note that a proxy in front of
//! the baseline (passthrough, record, and the references hyper-proxy and nginx) makes the
//! machine run two servers for each request.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt as _, Either, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
// The deprecation headers as replay adds them, for the baseline to send too.
use ghes_vcr::deprecation::DeprecationHeaders;
// ghes-vcr's own rule for hop-by-hop headers (RFC 9110 §7.6.1, and those `Connection` names).
use ghes_vcr::proxy::headers::{connection_tokens, strip_hop_by_hop};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

/// What ghes-vcr's `--client-header-timeout` is set to (nginx's `keepalive_timeout` alike): the
/// connections a target keeps from slice to slice wait idle while the other targets take their
/// turns, and must not be answered `408` and closed meanwhile.
const IDLE_BETWEEN_SLICES: &str = "1h";

/// The path every target answers.
const PATH: &str = "/api/v3/authorizations";
/// A request taking longer than this counts as an error (and its connection is dropped).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a ghes-vcr may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a ghes-vcr may take to exit after SIGTERM (its default shutdown grace is 10 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a ghes-vcr's stderr is kept for error messages.
const STDERR_KEPT: usize = 16 * 1024;

/// What `--help` says about the two references passthrough is measured against.
const REFERENCES_HELP: &str = "\
References (each in front of the baseline, like passthrough, and measured the same way):
  hyper-proxy  The floor of hyper on both sides: the smallest pass-through built from
               ghes-vcr's own stack (this example with --serve-hyper-proxy, a process of its
               own): hyper-util's auto server and legacy client with TCP_NODELAY and a
               keep-alive pool; URI and Host pointed at the upstream, hop-by-hop headers
               dropped, bodies streamed, 502 on an upstream error; no logging, no capture.
  nginx        The issue's bar for pass-through: nginx as a plain reverse proxy, from a
               fresh temporary directory holding its config, pid file, logs and temp paths:
               worker_processes auto, worker_connections 4096, upstream keepalive 64 with
               proxy_http_version 1.1 and an empty Connection header (kept-alive connections
               to the baseline, as ghes-vcr keeps), keepalive_requests 1000000 on both sides
               (not nginx's default of closing each connection after 1,000 requests),
               proxy_buffering on, and the access log on (passthrough logs one line per
               exchange too). Looked up on PATH, then in /usr/sbin and /usr/local/sbin;
               skipped when absent, unless --only names it.";

#[derive(Debug, Parser)]
#[command(
    name = "loadbench",
    about = "Closed-loop load benchmark of ghes-vcr against a bare hyper server",
    after_long_help = REFERENCES_HELP
)]
struct Args {
    /// How long each (target, connection count) pair is measured, after the warm-up, in
    /// slices that take turns with the other targets'.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,

    /// How long each pair runs, unmeasured, before measuring starts.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,

    /// Into how many slices the measured duration is cut; the targets' slices, the baseline's
    /// among them, take turns.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    slices: u32,

    /// Connection counts (workers) to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    connections: Vec<usize>,

    /// Only these targets, comma-separated (the baseline always runs: every ratio needs it).
    /// Without it, every target runs, nginx only when it is installed.
    #[arg(long, value_delimiter = ',', value_enum)]
    only: Vec<Target>,

    /// Also write the results to this file as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,

    /// The ghes-vcr binary [default: `ghes-vcr` next to this example's directory, built with
    /// `cargo build --bin ghes-vcr` when missing].
    #[arg(long, value_name = "PATH")]
    ghes_vcr: Option<PathBuf>,

    /// Only start the baseline server, print `listening on http://HOST:PORT` and serve until
    /// killed: for profiling a ghes-vcr in front of it by hand (wrk, perf, callgrind).
    #[arg(long)]
    serve_baseline: bool,

    /// Only start the hyper-proxy reference in front of UPSTREAM_URL (http://HOST:PORT), print
    /// `listening on http://HOST:PORT` and serve until SIGTERM: the smallest pass-through built
    /// from ghes-vcr's own stack (hyper-util's server and client, nothing else), the floor that
    /// passthrough is compared with; also for profiling it by hand.
    #[arg(
        long,
        value_name = "UPSTREAM_URL",
        value_parser = parse_upstream,
        conflicts_with = "serve_baseline"
    )]
    serve_hyper_proxy: Option<Upstream>,

    /// Run the baseline server inside this process, on its own runtime, instead of as a
    /// process of its own like every ghes-vcr (switching between the generator's and the
    /// server's threads is then cheaper than between two processes, which favours it).
    #[arg(long)]
    baseline_in_process: bool,

    /// What sends the load. wrk spends far less CPU per request than the in-process hyper
    /// client, so the proxies' own cost shows more fully; it must be on PATH, and the warm-up
    /// and each slice (--duration / --slices) must then be whole seconds.
    #[arg(long, value_enum, default_value_t = Generator::Hyper)]
    generator: Generator,
}

/// The load generator, chosen with `--generator`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Generator {
    /// hyper's HTTP/1.1 client in this process (needs nothing else).
    Hyper,
    /// `wrk` 4.x from PATH, one run per slice.
    Wrk,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("{err} (write e.g. 5s, 500ms, 1m)"))
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Target {
    /// The bare hyper server everything is compared with.
    Baseline,
    /// ghes-vcr replay, answering from a cassette.
    Replay,
    /// ghes-vcr passthrough in front of the baseline.
    Passthrough,
    /// Reference: the floor of hyper on both sides (see References below).
    HyperProxy,
    /// Reference: nginx as a plain reverse proxy, the issue's bar (when installed).
    Nginx,
    /// ghes-vcr passthrough with a journal.
    PassthroughJournal,
    /// ghes-vcr record, writing every exchange to a cassette.
    Record,
    /// ghes-vcr record with a journal.
    RecordJournal,
}

impl Target {
    const ALL: [Target; 8] = [
        Target::Baseline,
        Target::Replay,
        Target::Passthrough,
        Target::HyperProxy,
        Target::Nginx,
        Target::PassthroughJournal,
        Target::Record,
        Target::RecordJournal,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Baseline => "baseline",
            Target::Replay => "replay",
            Target::Passthrough => "passthrough",
            Target::HyperProxy => "hyper-proxy",
            Target::Nginx => "nginx",
            Target::PassthroughJournal => "passthrough-journal",
            Target::Record => "record",
            Target::RecordJournal => "record-journal",
        }
    }
}

/// What the report says when the default set leaves nginx out.
const NGINX_SKIPPED: &str =
    "not found on PATH, in /usr/sbin or in /usr/local/sbin; skipped (Debian: apt-get install nginx)";

/// The targets to run, in [`Target::ALL`]'s order: those `--only` names, or every one, nginx
/// only when it is installed (`has_nginx`). The baseline always runs: its slices take turns
/// with the targets' slices.
///
/// # Errors
///
/// When `--only` names nginx and it is not installed.
fn choose_targets(only: &[Target], has_nginx: bool) -> anyhow::Result<Vec<Target>> {
    if only.contains(&Target::Nginx) && !has_nginx {
        bail!(
            "--only nginx needs nginx on PATH or in {} (Debian: apt-get install nginx)",
            NGINX_DIRS.join(" or ")
        );
    }
    let proxies: Vec<Target> = Target::ALL
        .into_iter()
        .filter(|t| *t != Target::Baseline && (only.is_empty() || only.contains(t)))
        .filter(|t| *t != Target::Nginx || has_nginx)
        .collect();
    Ok(if proxies.is_empty() {
        vec![Target::Baseline]
    } else {
        proxies
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadbench: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.serve_baseline {
        let baseline = Baseline::start()?;
        println!("listening on http://{}", baseline.addr);
        loop {
            std::thread::park();
        }
    }
    if let Some(upstream) = &args.serve_hyper_proxy {
        return run_hyper_proxy(upstream.clone());
    }
    if args.connections.is_empty() || args.connections.contains(&0) {
        bail!("--connections needs one or more counts above 0, e.g. --connections 1,64");
    }
    let generator = LoadGenerator::from_args(args)?;
    let named_nginx = args.only.contains(&Target::Nginx);
    let wants_nginx = args.only.is_empty() || named_nginx;
    // Why the default set runs without nginx, if it does: not installed, or not answering
    // `nginx -v` (an error only when `--only` names it).
    let (nginx, nginx_skipped) = match wants_nginx.then(Nginx::locate) {
        None => (None, None),
        Some(Ok(Some(nginx))) => (Some(nginx), None),
        Some(Ok(None)) => (None, Some(NGINX_SKIPPED.to_owned())),
        Some(Err(err)) if !named_nginx => (None, Some(format!("{err:#}; skipped"))),
        Some(Err(err)) => return Err(err),
    };
    let targets = choose_targets(&args.only, nginx.is_some())?;

    let command_line = std::env::args()
        .map(|arg| shell_quote(&arg))
        .collect::<Vec<_>>()
        .join(" ");
    let machine = machine_facts();
    let binary = match &args.ghes_vcr {
        Some(path) => path.clone(),
        None => locate_ghes_vcr()?,
    };
    let version = ghes_vcr_version(&binary)?;

    println!("ghes-vcr load benchmark");
    println!("command:  {command_line}");
    println!(
        "machine:  nproc {}, {}, {}, kernel {}, load average {}",
        machine.nproc, machine.cpu, machine.memory, machine.kernel, machine.loadavg
    );
    println!("binary:   {} ({version})", binary.display());
    if let Some(warning) = staleness_warning(&binary) {
        println!("warning:  {warning}");
    }
    if cfg!(debug_assertions) {
        println!("warning:  this example is a debug build; run it with --release");
    }
    println!(
        "load:     closed loop, GET {PATH}, HTTP/1.1 keep-alive, one connection per worker; per row {} warm-up, then {} measured in {} slices, every target's taking turns with the others' and the baseline's",
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
        args.slices
    );
    println!(
        "          generator, baseline server and proxy share this machine's {} cores: compare ratios, not absolute numbers",
        machine.nproc
    );
    println!("generator: {}", generator.describe());
    let mut notes: BTreeMap<&'static str, Value> = BTreeMap::new();
    match (&nginx, &nginx_skipped) {
        (Some(nginx), _) if targets.contains(&Target::Nginx) => {
            println!("nginx:    {} ({})", nginx.program.display(), nginx.version);
            notes.insert("nginx", nginx.to_json());
        }
        (None, Some(why)) => {
            println!("nginx:    {why}");
            notes.insert("nginx", json!({ "skipped": why }));
        }
        _ => {}
    }

    // The load generator's runtime. The baseline server gets its own (below), and every
    // ghes-vcr is its own process: all of them share the machine's cores (2 on the reference
    // machine), which is why the report compares ratios rather than absolute numbers.
    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("loadgen")
        .build()
        .context("cannot start the load generator's tokio runtime")?;
    let baseline = if args.baseline_in_process {
        Baseline::start()?
    } else {
        Baseline::spawn()?
    };
    let upstream = format!("http://{}", baseline.addr);
    let home = tempfile::Builder::new()
        .prefix("ghes-vcr-loadbench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let load = LoadSpec::new(args, generator);
    println!(
        "response: {} B JSON body (2 authorizations), {} GHES and deprecation headers (+ date, content-length)",
        baseline.body_len, baseline.header_count
    );
    println!();

    let baseline_answer = show_probe(&load_rt, Target::Baseline, baseline.addr, &load, None)?;
    let mut warnings: Vec<String> = Vec::new();
    // Every target is started first and stays up for the whole run: their slices then take
    // turns with each other's and the baseline's (see the module documentation).
    let mut running: Vec<(Target, Option<Proxy>)> = Vec::new();
    for &target in &targets {
        let proxy = match target {
            Target::Baseline => None,
            Target::Replay => {
                let cassette = home.path().join("replay.json");
                load_rt.block_on(record_cassette(
                    &binary,
                    home.path(),
                    &upstream,
                    &cassette,
                    &load,
                ))?;
                Some(Proxy::start(
                    &binary,
                    "replay",
                    &[
                        "replay",
                        "--cassette",
                        path_arg(&cassette)?,
                        "--listen",
                        "127.0.0.1:0",
                        "--client-header-timeout",
                        IDLE_BETWEEN_SLICES,
                        "--no-journal",
                    ],
                    home.path(),
                )?)
            }
            Target::Passthrough => Some(Proxy::start(
                &binary,
                "passthrough",
                &[
                    "passthrough",
                    "--upstream",
                    &upstream,
                    "--listen",
                    "127.0.0.1:0",
                    "--client-header-timeout",
                    IDLE_BETWEEN_SLICES,
                    "--no-journal",
                ],
                home.path(),
            )?),
            Target::HyperProxy => Some(start_hyper_proxy(&upstream, home.path())?),
            Target::Nginx => {
                let nginx = nginx.as_ref().context("nginx was chosen but not found")?;
                Some(load_rt.block_on(nginx.start(baseline.addr))?)
            }
            Target::PassthroughJournal => {
                let journal = home.path().join("journal");
                Some(Proxy::start(
                    &binary,
                    "passthrough --journal",
                    &[
                        "passthrough",
                        "--upstream",
                        &upstream,
                        "--listen",
                        "127.0.0.1:0",
                        "--client-header-timeout",
                        IDLE_BETWEEN_SLICES,
                        "--journal",
                        path_arg(&journal)?,
                    ],
                    home.path(),
                )?)
            }
            Target::Record | Target::RecordJournal => {
                let cassette = home.path().join(format!("{}.json", target.name()));
                let journal = home.path().join("record-journal");
                let journal_args = if target == Target::RecordJournal {
                    vec!["--journal", path_arg(&journal)?]
                } else {
                    vec!["--no-journal"]
                };
                let mut command = vec![
                    "record",
                    "--mode",
                    "all",
                    "--upstream",
                    &upstream,
                    "--cassette",
                    path_arg(&cassette)?,
                    "--listen",
                    "127.0.0.1:0",
                    "--client-header-timeout",
                    IDLE_BETWEEN_SLICES,
                ];
                command.extend(journal_args);
                Some(Proxy::start(&binary, target.name(), &command, home.path())?)
            }
        };
        let addr = proxy.as_ref().map_or(baseline.addr, |p| p.addr);
        if target != Target::Baseline {
            show_probe(&load_rt, target, addr, &load, Some(&baseline_answer))?;
        }
        running.push((target, proxy));
    }
    let measured: Vec<(Target, SocketAddr)> = running
        .iter()
        .filter(|(target, _)| *target != Target::Baseline)
        .map(|(target, proxy)| (*target, proxy.as_ref().map_or(baseline.addr, |p| p.addr)))
        .collect();
    let mut turns = vec![(Target::Baseline.name(), baseline.addr)];
    turns.extend(measured.iter().map(|(target, addr)| (target.name(), *addr)));
    let mut results: Vec<Row> = Vec::new();
    for &connections in &args.connections {
        // The machine's speed drifts (other tenants, CPU boost, which core a thread lands
        // on), so the targets are measured in slices that take turns, the baseline's among
        // them, and every ratio divides figures sampled over the same stretch.
        let mut outcomes = load_rt
            .block_on(measure(&turns, connections, &load))
            .with_context(|| format!("measuring at {connections} connections"))?
            .into_iter();
        let base = outcomes.next().context("no baseline outcome")?;
        for ((target, _), outcome) in measured.iter().zip(outcomes) {
            results.push(Row {
                target: *target,
                connections,
                outcome,
            });
        }
        results.push(Row {
            target: Target::Baseline,
            connections,
            outcome: base,
        });
    }
    // Grouped by target, in the order they were named, as the report prints them.
    let order = |target: Target| {
        std::iter::once(Target::Baseline)
            .chain(targets.iter().copied())
            .position(|t| t == target)
    };
    results.sort_by_key(|row| (order(row.target), row.connections));

    for (target, mut proxy) in running {
        if let Some(proxy) = proxy.as_mut() {
            if matches!(
                target,
                Target::PassthroughJournal | Target::Record | Target::RecordJournal
            ) {
                match load_rt.block_on(health(proxy.addr, &load)) {
                    Ok(health) => {
                        let part = |name: &str| health.get(name).cloned().unwrap_or(Value::Null);
                        match target {
                            Target::Record => {
                                notes.insert("record", part("recording"));
                            }
                            Target::RecordJournal => {
                                notes.insert("record_journal", part("journal"));
                            }
                            _ => {
                                notes.insert("passthrough_journal", part("journal"));
                            }
                        }
                    }
                    Err(err) => warnings.push(format!(
                        "{}: cannot read GET /__ghes-vcr/health: {err:#}",
                        target.name()
                    )),
                }
            }
        }
        if let Some(proxy) = proxy {
            let name = proxy.name.clone();
            let started = Instant::now();
            match proxy.stop() {
                Ok(status) if status.success() => {}
                Ok(status) => warnings.push(format!("{name} exited with {status}")),
                Err(err) => warnings.push(format!("{err:#}")),
            }
            let took = started.elapsed();
            if took > Duration::from_secs(2) {
                warnings.push(format!(
                    "{name} took {:.1} s to exit after SIGTERM",
                    took.as_secs_f64()
                ));
            }
        }
    }
    baseline.stop();
    if args.only.is_empty() || args.only.contains(&Target::Replay) {
        match load_rt.block_on(samples_memory(&binary, home.path(), &load)) {
            Ok(memory) => {
                notes.insert("replay_samples_resident_kib", memory);
            }
            Err(err) => warnings.push(format!("replay of the sample cassettes: {err:#}")),
        }
    }

    let report = Report {
        rows: &results,
        notes: &notes,
        connections: &args.connections,
    };
    println!();
    report.print();
    for warning in &warnings {
        println!("warning: {warning}");
    }

    if let Some(path) = &args.json {
        let value = report.to_json(
            &command_line,
            &machine,
            &version,
            args,
            &load.generator,
            &warnings,
        );
        let text = serde_json::to_string_pretty(&value).context("cannot serialize the results")?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write the results to {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The response: a GHES `GET /api/v3/authorizations` answer
// ---------------------------------------------------------------------------------------------

/// The JSON body: two authorizations (a personal access token and an OAuth app's token) as
/// GHES 3.x lists them, with `origin` in the `url` fields like GHES's own host.
fn authorizations_body(origin: &str) -> Bytes {
    // A site admin's personal access token with every scope GHES 3.0 offers, and a release
    // tool's OAuth app token with a fingerprint, as a legacy CLI creates them.
    let admin_scopes = [
        "admin:enterprise",
        "admin:gpg_key",
        "admin:org",
        "admin:org_hook",
        "admin:pre_receive_hook",
        "admin:public_key",
        "admin:repo_hook",
        "delete:packages",
        "delete_repo",
        "gist",
        "notifications",
        "read:packages",
        "repo",
        "site_admin",
        "user",
        "workflow",
        "write:discussion",
        "write:packages",
    ];
    let tool_scopes = [
        "repo",
        "admin:repo_hook",
        "admin:org_hook",
        "read:org",
        "read:user",
        "user:email",
        "admin:gpg_key",
        "admin:public_key",
        "delete_repo",
        "read:gpg_key",
        "read:public_key",
        "read:discussion",
        "write:discussion",
        "gist",
        "notifications",
        "workflow",
        "write:packages",
        "read:packages",
        "delete:packages",
    ];
    let body = json!([
        {
            "id": 2,
            "url": format!("{origin}/api/v3/authorizations/2"),
            "app": {
                "name": "My personal access token",
                "url": "https://docs.github.com/enterprise/rest/reference/enterprise-admin#list-personal-access-tokens",
                "client_id": "00000000000000000000"
            },
            "token": "",
            "hashed_token": "23cffb2fab1b0a62747863eba88cb9327e561f2f7a0c8661c0d9b83146cb8d45",
            "token_last_eight": "848f9f8a",
            "note": "Site admin token for the nightly enterprise audit export (ops-automation, rotated quarterly by platform-team)",
            "note_url": "https://wiki.corp.example.com/platform/runbooks/enterprise-audit-export",
            "created_at": "2019-04-24T21:49:02Z",
            "updated_at": "2024-02-08T07:31:44Z",
            "scopes": admin_scopes,
            "fingerprint": null
        },
        {
            "id": 7,
            "url": format!("{origin}/api/v3/authorizations/7"),
            "app": {
                "name": "Release Tooling (deploy-tool)",
                "url": "https://release-tooling.corp.example.com/deploy-tool",
                "client_id": "5f1e8a61f9b3a7aba766"
            },
            "token": "",
            "hashed_token": "a1f3ce2e0bd9d1b0e6fbd13b3f1c1e8dcb4ad1b2f9c6e7d3a4b5c6d7e8f90a1b",
            "token_last_eight": "3f9e1c7a",
            "note": "deploy-tool login on build-agent-17.ci.corp.example.com (deploy-tool 2.4.1)",
            "note_url": "https://release-tooling.corp.example.com/deploy-tool/agents/build-agent-17",
            "created_at": "2021-06-02T08:14:55Z",
            "updated_at": "2023-11-20T16:03:12Z",
            "scopes": tool_scopes,
            "fingerprint": "deploy-tool:build-agent-17.ci.corp.example.com:7c2d0a4e"
        }
    ]);
    // Compact, like GHES (serde_json keeps the key order: the project enables preserve_order).
    Bytes::from(serde_json::to_vec(&body).expect("a json! value serializes"))
}

/// GHES's headers for a 200 list answer, then the three deprecation headers `ghes-vcr replay`
/// adds by default (hyper adds `date` and `content-length`). GHES does not send those three
/// (GHES-API.md §2), but the baseline does, so that every target answers the same bytes: replay
/// keeps a recording's own deprecation headers instead of adding them, and the proxies pass the
/// baseline's on.
fn ghes_headers() -> HeaderMap {
    const HEADERS: &[(&str, &str)] = &[
        ("server", "GitHub.com"),
        ("content-type", "application/json; charset=utf-8"),
        ("cache-control", "private, max-age=60, s-maxage=60"),
        ("vary", "Accept, Authorization, Cookie, X-GitHub-OTP"),
        ("vary", "Accept-Encoding, Accept, X-Requested-With"),
        (
            "etag",
            "W/\"f79597a06e0f5037b217666c69976233192cd251cfba836bedf7cb1d4c1149ca\"",
        ),
        ("x-oauth-scopes", ""),
        ("x-accepted-oauth-scopes", ""),
        ("x-github-media-type", "github.v3; format=json"),
        ("x-github-enterprise-version", "3.0.25"),
        ("x-ratelimit-limit", "5000"),
        ("x-ratelimit-remaining", "4999"),
        ("x-ratelimit-reset", "1768474800"),
        ("x-ratelimit-used", "1"),
        ("x-ratelimit-resource", "core"),
        (
            "access-control-expose-headers",
            "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, Deprecation, Sunset",
        ),
        ("access-control-allow-origin", "*"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubdomains; preload",
        ),
        ("x-frame-options", "deny"),
        ("x-content-type-options", "nosniff"),
        ("x-xss-protection", "0"),
        (
            "referrer-policy",
            "origin-when-cross-origin, strict-origin-when-cross-origin",
        ),
        ("content-security-policy", "default-src 'none'"),
        ("x-github-request-id", "2A0F:3FEC:FC9EBD:C7289CD:6968BAA0"),
    ];
    let mut map = HeaderMap::new();
    for (name, value) in HEADERS {
        map.append(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    for (name, value) in deprecation_headers() {
        map.append(name.clone(), HeaderValue::from_static(value));
    }
    map
}

/// The deprecation headers as ghes-vcr formats them by default, made `'static` once: the
/// baseline's other values are static too, so cloning its map counts no references.
fn deprecation_headers() -> &'static [(HeaderName, &'static str)] {
    static HEADERS: OnceLock<Vec<(HeaderName, &'static str)>> = OnceLock::new();
    HEADERS.get_or_init(|| {
        let mut map = HeaderMap::new();
        DeprecationHeaders::default().apply_to_map(&mut map);
        map.iter()
            .map(|(name, value)| {
                let value = value
                    .to_str()
                    .expect("ghes-vcr's deprecation headers are text");
                (name.clone(), &*Box::leak(Box::<str>::from(value)))
            })
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Target (a): the baseline server
// ---------------------------------------------------------------------------------------------

/// The bare hyper server, on its own multi-threaded runtime: in a process of its own (this
/// example run with `--serve-baseline`), or in this one.
struct Baseline {
    addr: SocketAddr,
    body_len: usize,
    header_count: usize,
    host: BaselineHost,
}

enum BaselineHost {
    Runtime(tokio::runtime::Runtime),
    Process(Proxy),
}

impl Baseline {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("baseline")
            .build()
            .context("cannot start the baseline server's tokio runtime")?;
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .context("cannot bind the baseline server to 127.0.0.1:0")?;
        let addr = listener
            .local_addr()
            .context("cannot read the baseline server's address")?;
        let body = authorizations_body(&format!("http://{addr}"));
        let headers = ghes_headers();
        let (body_len, header_count) = (body.len(), headers.len());
        runtime.spawn(serve_baseline(listener, body, headers));
        Ok(Self {
            addr,
            body_len,
            header_count,
            host: BaselineHost::Runtime(runtime),
        })
    }

    /// Starts this example with `--serve-baseline` and waits for its listening line.
    fn spawn() -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this example's own path")?;
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let process = Proxy::start(&exe, "baseline", &["--serve-baseline"], &home)?;
        let addr = process.addr;
        Ok(Self {
            addr,
            body_len: authorizations_body(&format!("http://{addr}")).len(),
            header_count: ghes_headers().len(),
            host: BaselineHost::Process(process),
        })
    }

    fn stop(self) {
        match self.host {
            BaselineHost::Runtime(runtime) => runtime.shutdown_timeout(Duration::from_secs(1)),
            // It has no SIGTERM handler: the signal ends it.
            BaselineHost::Process(process) => drop(process.stop()),
        }
    }
}

async fn serve_baseline(listener: TcpListener, body: Bytes, headers: HeaderMap) {
    let answer = Arc::new((body, headers));
    serve_each(listener, move |request: Request<Incoming>| {
        let answer = Arc::clone(&answer);
        async move {
            let mut response =
                if request.method() == Method::GET && request.uri().path() == PATH {
                    let mut response = Response::new(Full::new(answer.0.clone()));
                    *response.headers_mut() = answer.1.clone();
                    response
                } else {
                    let mut response = Response::new(Full::new(Bytes::from_static(
                        br#"{"message":"Not Found","documentation_url":"https://docs.github.com/enterprise-server@3.0/rest"}"#,
                    )));
                    *response.status_mut() = StatusCode::NOT_FOUND;
                    response
                };
            response
                .headers_mut()
                .entry(header::CONTENT_TYPE)
                .or_insert(HeaderValue::from_static("application/json; charset=utf-8"));
            response
        }
    })
    .await;
}

/// Accepts connections on `listener` for good and serves each with hyper-util's auto builder
/// (TCP_NODELAY on), answering every request with `answer`: the baseline's and the
/// hyper-proxy's whole server.
async fn serve_each<A, F, B>(listener: TcpListener, answer: A)
where
    A: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Response<B>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let builder = Arc::clone(&builder);
        let answer = answer.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                let answered = answer(request);
                async move { Ok::<_, Infallible>(answered.await) }
            });
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Reference: the hyper-proxy
// ---------------------------------------------------------------------------------------------

/// Where the hyper-proxy forwards (`--serve-hyper-proxy`): the upstream's scheme and
/// authority, and the `Host` value every forwarded request carries.
#[derive(Clone, Debug)]
struct Upstream {
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
}

/// Reads `--serve-hyper-proxy`'s `http://HOST:PORT`.
fn parse_upstream(text: &str) -> Result<Upstream, String> {
    const EXAMPLE: &str = "write the upstream as http://HOST:PORT, e.g. http://127.0.0.1:8080";
    let uri: Uri = text.parse().map_err(|err| format!("{err} ({EXAMPLE})"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(EXAMPLE.to_owned());
    };
    if *scheme != Scheme::HTTP {
        return Err(format!(
            "the hyper-proxy speaks plain HTTP only ({EXAMPLE})"
        ));
    }
    if uri.path() != "/" || uri.query().is_some() {
        return Err(format!("the upstream has no path of its own ({EXAMPLE})"));
    }
    let host = HeaderValue::from_str(authority.as_str()).map_err(|err| err.to_string())?;
    Ok(Upstream {
        scheme: scheme.clone(),
        authority: authority.clone(),
        host,
    })
}

/// Starts this example with `--serve-hyper-proxy UPSTREAM` and waits for its listening line.
fn start_hyper_proxy(upstream: &str, home: &Path) -> anyhow::Result<Proxy> {
    let exe = std::env::current_exe().context("cannot find this example's own path")?;
    Proxy::start(
        &exe,
        "hyper-proxy",
        &["--serve-hyper-proxy", upstream],
        home,
    )
}

/// `--serve-hyper-proxy`: serves on 127.0.0.1:0 after printing the listening line that
/// [`Proxy::start`] reads, until SIGTERM, then exits 0 (so that stopping it is no failure).
fn run_hyper_proxy(upstream: Upstream) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("hyper-proxy")
        .build()
        .context("cannot start the hyper-proxy's tokio runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the hyper-proxy to 127.0.0.1:0")?;
        let addr = listener
            .local_addr()
            .context("cannot read the hyper-proxy's address")?;
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("cannot listen for SIGTERM")?;
        println!("listening on http://{addr}");
        tokio::select! {
            () = serve_hyper_proxy(listener, upstream) => {}
            _ = terminate.recv() => {}
        }
        Ok(())
    })
}

/// What the hyper-proxy answers with: the upstream's body as it streams in, or its own 502.
type HyperProxyBody = Either<Incoming, Full<Bytes>>;

/// The hyper-proxy's forwarding: hyper-util's legacy client and where it sends requests.
struct HyperProxy {
    /// HTTP/1.1 over TCP with TCP_NODELAY; its pool keeps connections to the upstream alive.
    client: Client<HttpConnector, Incoming>,
    upstream: Upstream,
}

impl HyperProxy {
    fn new(upstream: Upstream) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            upstream,
        }
    }

    /// Sends `request` upstream and hands back the answer as it streams in (hop-by-hop
    /// headers dropped), or 502 when the upstream fails.
    async fn forward(&self, request: Request<Incoming>) -> Response<HyperProxyBody> {
        match self
            .client
            .request(upstream_request(request, &self.upstream))
            .await
        {
            Ok(response) => {
                let (mut parts, body) = response.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Either::Left(body))
            }
            Err(_) => {
                let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
                    b"bad gateway\n",
                ))));
                *response.status_mut() = StatusCode::BAD_GATEWAY;
                response
            }
        }
    }
}

/// Serves the hyper-proxy on `listener`: hyper-util's auto server on each connection (with
/// TCP_NODELAY), every request forwarded by [`HyperProxy::forward`], and nothing else.
async fn serve_hyper_proxy(listener: TcpListener, upstream: Upstream) {
    let proxy = Arc::new(HyperProxy::new(upstream));
    serve_each(listener, move |request: Request<Incoming>| {
        let proxy = Arc::clone(&proxy);
        async move { proxy.forward(request).await }
    })
    .await;
}

/// The request sent upstream: its URI is the upstream's scheme and authority with the
/// request's path and query, `Host` is the upstream's, hop-by-hop headers are dropped, and
/// the body is passed on as it comes. It goes as HTTP/1.1 whatever the client spoke, since
/// that is what the client's pool speaks.
fn upstream_request<B>(request: Request<B>, upstream: &Upstream) -> Request<B> {
    let (mut parts, body) = request.into_parts();
    let path_and_query = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::builder()
        .scheme(upstream.scheme.clone())
        .authority(upstream.authority.clone())
        .path_and_query(path_and_query)
        .build()
        .expect("a scheme, an authority and a path make a URI");
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(header::HOST, upstream.host.clone());
    Request::from_parts(parts, body)
}

// ---------------------------------------------------------------------------------------------
// Reference: nginx as a plain reverse proxy
// ---------------------------------------------------------------------------------------------

/// Where nginx is looked for after PATH: Debian installs it in /usr/sbin, which is not on a
/// regular user's PATH.
const NGINX_DIRS: [&str; 2] = ["/usr/sbin", "/usr/local/sbin"];

/// How long nginx may take to answer a first GET through it: it prints nothing when ready.
const NGINX_START_TIMEOUT: Duration = Duration::from_secs(10);

/// nginx, found at startup.
struct Nginx {
    program: PathBuf,
    /// What `nginx -v` prints after `nginx version: `, e.g. `nginx/1.22.1`.
    version: String,
}

impl Nginx {
    /// Finds nginx on PATH or in [`NGINX_DIRS`] and reads its version; `None` when it is in
    /// neither.
    ///
    /// # Errors
    ///
    /// When `nginx -v` fails or does not print nginx's version line.
    fn locate() -> anyhow::Result<Option<Self>> {
        let found = find_on_path("nginx").or_else(|| {
            NGINX_DIRS
                .iter()
                .map(|dir| Path::new(dir).join("nginx"))
                .find(|candidate| is_executable(candidate))
        });
        let Some(program) = found else {
            return Ok(None);
        };
        // `nginx -v` prints `nginx version: nginx/1.22.1` on stderr.
        let output = version_output(&program)?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        let version = stderr
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("nginx version: "))
            .filter(|_| output.status.success())
            .with_context(|| {
                format!(
                    "{} -v printed {:?} ({}), not nginx's version line",
                    program.display(),
                    stderr.trim(),
                    output.status
                )
            })?
            .trim()
            .to_owned();
        Ok(Some(Self { program, version }))
    }

    fn to_json(&self) -> Value {
        json!({
            "program": self.program.display().to_string(),
            "version": self.version,
            "config": "worker_processes auto; worker_connections 4096; upstream keepalive 64; keepalive_requests 1000000 (client and upstream side); keepalive_timeout 1h; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_buffering on; access_log on",
        })
    }

    /// Starts nginx in front of `upstream` from a fresh temporary directory (see
    /// [`nginx_config`]) on a free loopback port, and waits until a GET through it answers
    /// 200.
    ///
    /// # Errors
    ///
    /// When the directory cannot be made, nginx cannot be started, or it exits or does not
    /// answer 200 within [`NGINX_START_TIMEOUT`] (with the end of its error log).
    async fn start(&self, upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let dir = tempfile::Builder::new()
            .prefix("ghes-vcr-loadbench-nginx-")
            .tempdir()
            .context("cannot create a temporary directory for nginx")?;
        let port = free_port()?;
        let config = dir.path().join("nginx.conf");
        std::fs::write(&config, nginx_config(dir.path(), port, upstream))
            .with_context(|| format!("cannot write {}", config.display()))?;
        let child = Command::new(&self.program)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&config)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.program.display()))?;
        let mut nginx = Proxy::adopt(child, "nginx".to_owned());
        nginx.addr = SocketAddr::from(([127, 0, 0, 1], port));
        nginx.workdir = Some(dir);
        wait_for_nginx(&mut nginx).await?;
        Ok(nginx)
    }
}

/// A loopback port that was free a moment ago. nginx cannot listen on port 0 and say which
/// port it got, so one is picked by binding port 0 and letting it go; should another program
/// take it in between, nginx fails to start and its error log says so.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .context("cannot bind 127.0.0.1:0 to pick a port for nginx")?;
    let addr = listener
        .local_addr()
        .context("cannot read the picked port's address")?;
    Ok(addr.port())
}

/// nginx's configuration: a plain reverse proxy on 127.0.0.1:`port` in front of `upstream`,
/// everything it writes (pid file, logs, temp files) inside `dir`. It keeps its connections
/// to the upstream alive (`keepalive` with HTTP/1.1 and no `Connection` header: nginx's
/// default is a new HTTP/1.0 connection per request, which no proxy worth comparing does),
/// keeps every connection for the whole run (`keepalive_requests`: by default nginx closes
/// one after 1,000 requests, on both sides, which neither ghes-vcr nor the baseline does, so
/// its row would pay for handshakes the others do not), keeps an idle client connection
/// while the other targets take their slices (`keepalive_timeout`, 75 s by default), and logs
/// every exchange, since passthrough does too.
fn nginx_config(dir: &Path, port: u16, upstream: SocketAddr) -> String {
    let path = |name: &str| format!("\"{}\"", dir.join(name).display());
    format!(
        r#"daemon off;
master_process on;
worker_processes auto;
pid {pid};
error_log {error_log};

events {{
    worker_connections 4096;
}}

http {{
    access_log {access_log};
    keepalive_requests 1000000;
    keepalive_timeout 1h;
    client_body_temp_path {client_body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};

    upstream baseline {{
        server {upstream};
        keepalive 64;
        keepalive_requests 1000000;
    }}

    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://baseline;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering on;
        }}
    }}
}}
"#,
        pid = path("nginx.pid"),
        error_log = path("error.log"),
        access_log = path("access.log"),
        client_body = path("client_body_temp"),
        proxy = path("proxy_temp"),
        fastcgi = path("fastcgi_temp"),
        uwsgi = path("uwsgi_temp"),
        scgi = path("scgi_temp"),
    )
}

/// Waits until a `GET` through nginx answers 200, trying again after 1 ms, 2 ms, … up to
/// 50 ms between tries (nginx prints nothing when it is ready).
///
/// # Errors
///
/// When nginx exits first, or has not answered 200 within [`NGINX_START_TIMEOUT`]; either
/// way with the end of its error log.
async fn wait_for_nginx(nginx: &mut Proxy) -> anyhow::Result<()> {
    let deadline = Instant::now() + NGINX_START_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        let last = match tokio::time::timeout(Duration::from_secs(1), fetch_plain(nginx.addr)).await
        {
            Ok(Ok((response, _))) if response.status() == StatusCode::OK => return Ok(()),
            Ok(Ok((response, _))) => format!("answered {}", response.status()),
            Ok(Err(err)) => format!("{err:#}"),
            Err(_) => "no answer within 1 s".to_owned(),
        };
        if let Some(status) = nginx.exit_status() {
            bail!(
                "{} exited before answering ({status}); {}",
                nginx.name,
                nginx_logs(nginx)
            );
        }
        if Instant::now() >= deadline {
            bail!(
                "{} on {} did not answer GET {PATH} with 200 within {} s (last try: {last}); {}",
                nginx.name,
                nginx.addr,
                NGINX_START_TIMEOUT.as_secs(),
                nginx_logs(nginx)
            );
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// The end of nginx's error log and of its stderr, for error messages.
fn nginx_logs(nginx: &Proxy) -> String {
    let error_log = nginx
        .workdir
        .as_ref()
        .map(|dir| dir.path().join("error.log"))
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_default();
    format!(
        "error log: {}; stderr: {}",
        output_tail(&error_log, "(empty)"),
        nginx.stderr_tail()
    )
}

// ---------------------------------------------------------------------------------------------
// Targets (b)–(d): ghes-vcr processes
// ---------------------------------------------------------------------------------------------

/// A running ghes-vcr, or another server process (the baseline, the hyper-proxy, nginx).
/// Dropped without [`Proxy::stop`] (on an error path), it is stopped the same way.
struct Proxy {
    /// The program and what it runs, e.g. `ghes-vcr replay`.
    name: String,
    addr: SocketAddr,
    child: Option<Child>,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// nginx's temporary directory (its configuration, logs and temp files): held here so
    /// that it is removed only after the process has ended (fields drop after [`Drop::drop`]).
    workdir: Option<tempfile::TempDir>,
}

impl Proxy {
    /// Starts `binary args…` with a cleared environment plus `HOME=home`, and waits for its
    /// `listening on http://HOST:PORT` line.
    fn start(
        binary: &Path,
        name: &'static str,
        args: &[&str],
        home: &Path,
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(binary)
            .args(args)
            .env_clear()
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {} {name}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let program = binary.file_stem().map_or_else(
            || binary.display().to_string(),
            |stem| stem.to_string_lossy().into_owned(),
        );
        let name = format!("{program} {name}");
        let mut proxy = Self::adopt(child, name.clone());

        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = reader.read_line(&mut line).map(|_| line);
            let _ = line_tx.send(first);
            // Keep the pipe open and drained for as long as the process runs.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = match line_rx.recv_timeout(START_TIMEOUT) {
            Ok(Ok(line)) if !line.is_empty() => line,
            Ok(Ok(_)) | Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = proxy.wait_briefly();
                bail!(
                    "{name} exited before listening ({}): {}",
                    status.map_or_else(|| "still running".to_owned(), |s| s.to_string()),
                    proxy.stderr_tail()
                );
            }
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "{name} printed no listening line within {} s: {}",
                START_TIMEOUT.as_secs(),
                proxy.stderr_tail()
            ),
        };
        proxy.addr = line
            .trim()
            .strip_prefix("listening on http://")
            .and_then(|addr| addr.parse().ok())
            .with_context(|| {
                format!(
                    "{name} printed {:?} instead of `listening on http://HOST:PORT`",
                    line.trim()
                )
            })?;
        Ok(proxy)
    }

    /// A started process whose address is not known yet, its stderr kept for error messages.
    fn adopt(mut child: Child, name: String) -> Self {
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            drain_stderr(pipe, Arc::clone(&stderr));
        }
        Self {
            name,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child: Some(child),
            stderr,
            workdir: None,
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL after [`STOP_TIMEOUT`]).
    fn stop(mut self) -> anyhow::Result<ExitStatus> {
        self.terminate()
    }

    /// [`Proxy::stop`]'s work. A process that has already exited is not signalled (its pid
    /// may belong to another process by now). SIGTERM goes through the `kill` command, as the
    /// crate forbids `unsafe`.
    fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        let name = self.name.clone();
        let mut child = self.child.take().context("already stopped")?;
        if let Some(status) = child
            .try_wait()
            .with_context(|| format!("cannot wait for {name}"))?
        {
            return Ok(status);
        }
        let pid = child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        if !sent.as_ref().is_ok_and(ExitStatus::success) {
            let _ = child.kill();
            let _ = child.wait();
            match sent {
                Ok(sent) => bail!("`kill -TERM {pid}` ({name}) failed with {sent} (killed)"),
                Err(err) => return Err(err).context("cannot run `kill -TERM` (killed instead)"),
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child
                .try_wait()
                .with_context(|| format!("cannot wait for {name}"))?
            {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{name} did not exit within {} s after SIGTERM (killed): {}",
                    STOP_TIMEOUT.as_secs(),
                    self.stderr_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The exit status if the process has ended (without waiting).
    fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The exit status if the process ends within a second.
    fn wait_briefly(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        for _ in 0..50 {
            if let Ok(Some(status)) = child.try_wait() {
                // Give the stderr thread a moment to read the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The end of what the process wrote on stderr, for error messages.
    fn stderr_tail(&self) -> String {
        let kept = self.stderr.lock().map(|b| b.clone()).unwrap_or_default();
        stderr_tail(&kept)
    }
}

/// The last ten lines of what a process wrote on stderr, indented, for error messages.
fn stderr_tail(stderr: &[u8]) -> String {
    output_tail(stderr, "(nothing on stderr)")
}

/// The last ten lines of a process's output or log, indented, for error messages; `empty`
/// when there is nothing to show.
fn output_tail(output: &[u8], empty: &str) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
    if tail.trim().is_empty() {
        empty.to_owned()
    } else {
        format!("\n  {tail}")
    }
}

impl Drop for Proxy {
    /// Stops the process the way [`Proxy::stop`] does, with SIGTERM rather than SIGKILL:
    /// killed outright, nginx's master would leave its worker processes running.
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.terminate();
        }
    }
}

/// Reads a child's stderr until it closes, keeping the last [`STDERR_KEPT`] bytes.
fn drain_stderr(mut pipe: std::process::ChildStderr, kept: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let Ok(mut kept) = kept.lock() else { break };
            kept.extend_from_slice(&buf[..n]);
            if kept.len() > 2 * STDERR_KEPT {
                let cut = kept.len() - STDERR_KEPT;
                kept.drain(..cut);
            }
        }
    });
}

/// Writes the replay cassette the way users do: `ghes-vcr record --mode all` in front of the
/// baseline, one request, SIGTERM.
async fn record_cassette(
    binary: &Path,
    home: &Path,
    upstream: &str,
    cassette: &Path,
    load: &LoadSpec,
) -> anyhow::Result<()> {
    let recorder = Proxy::start(
        binary,
        "record (cassette for replay)",
        &[
            "record",
            "--mode",
            "all",
            "--upstream",
            upstream,
            "--cassette",
            path_arg(cassette)?,
            "--listen",
            "127.0.0.1:0",
            "--no-journal",
        ],
        home,
    )?;
    let probe = probe(recorder.addr, load)
        .await
        .context("recording the replay cassette: the request through ghes-vcr record failed")?;
    if probe.status != StatusCode::OK {
        bail!(
            "recording the replay cassette: ghes-vcr record answered {}",
            probe.status
        );
    }
    let status = recorder.stop()?;
    if !status.success() {
        bail!("recording the replay cassette: ghes-vcr record exited with {status}");
    }
    if !cassette.is_file() {
        bail!(
            "recording the replay cassette: ghes-vcr record exited without writing {}",
            cassette.display()
        );
    }
    Ok(())
}

/// One request first: that the target answers, and what it answers; flagged when that is not
/// the baseline's answer in size (every target should send the same bytes).
fn show_probe(
    runtime: &tokio::runtime::Runtime,
    target: Target,
    addr: SocketAddr,
    load: &LoadSpec,
    baseline: Option<&Probe>,
) -> anyhow::Result<Probe> {
    let probe = runtime
        .block_on(probe(addr, load))
        .with_context(|| format!("{} does not answer GET {PATH}", target.name()))?;
    if probe.status != StatusCode::OK {
        bail!("{} answers GET {PATH} with {}", target.name(), probe.status);
    }
    let unlike = baseline
        .filter(|baseline| **baseline != probe)
        .map(|baseline| {
            format!(
                " (not the baseline's answer: {} headers ({} B), body {} B)",
                baseline.headers, baseline.header_bytes, baseline.body
            )
        })
        .unwrap_or_default();
    println!(
        "{:<20} answers {}, {} headers ({} B), body {} B{unlike}",
        target.name(),
        probe.status,
        probe.headers,
        probe.header_bytes,
        probe.body
    );
    Ok(probe)
}

/// The resident memory of `ghes-vcr replay` serving the sample cassettes (the repository's
/// `cassettes/`), without and with a journal, after a few answers: `{"no_journal": KiB,
/// "journal": KiB}`.
async fn samples_memory(binary: &Path, home: &Path, load: &LoadSpec) -> anyhow::Result<Value> {
    let samples = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes");
    let journal = home.join("samples-journal");
    let mut memory = serde_json::Map::new();
    for (key, flags) in [
        ("no_journal", vec!["--no-journal"]),
        ("journal", vec!["--journal", path_arg(&journal)?]),
    ] {
        let mut args = vec!["replay", "--cassette", samples, "--listen", "127.0.0.1:0"];
        args.extend(flags);
        let proxy = Proxy::start(binary, "replay (samples)", &args, home)?;
        for _ in 0..5 {
            let probe = probe(proxy.addr, load).await?;
            if probe.status != StatusCode::OK {
                bail!("the samples answer GET {PATH} with {}", probe.status);
            }
        }
        let pid = proxy.child.as_ref().context("not running")?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("cannot read the process's resident memory (/proc)")?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .context("no VmRSS in /proc/PID/status")?;
        memory.insert(key.to_owned(), kib.into());
        proxy.stop()?;
    }
    Ok(Value::Object(memory))
}

fn path_arg(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("temporary path {} is not UTF-8", path.display()))
}

// ---------------------------------------------------------------------------------------------
// The load generator
// ---------------------------------------------------------------------------------------------

/// What every request looks like, how long each load runs, and what sends it.
struct LoadSpec {
    headers: HeaderMap,
    warmup: Duration,
    duration: Duration,
    slices: u32,
    generator: LoadGenerator,
}

impl LoadSpec {
    fn new(args: &Args, generator: LoadGenerator) -> Self {
        // Built at run time: `octocat:x`, as a legacy client sends its password.
        let credentials = base64::engine::general_purpose::STANDARD.encode("octocat:x");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {credentials}"))
                .expect("base64 is a valid header value"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github.v3+json"),
        );
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static("ghes-vcr-loadbench"),
        );
        Self {
            headers,
            warmup: args.warmup,
            duration: args.duration,
            slices: args.slices,
            generator,
        }
    }

    fn request(&self, addr: SocketAddr, path: &'static str) -> Request<Empty<Bytes>> {
        get(addr, path, self.headers.clone())
    }
}

/// `GET path` to `addr` with `headers` and `Host`.
fn get(addr: SocketAddr, path: &'static str, headers: HeaderMap) -> Request<Empty<Bytes>> {
    let mut request = Request::new(Empty::new());
    *request.uri_mut() = Uri::from_static(path);
    *request.headers_mut() = headers;
    request.headers_mut().insert(
        header::HOST,
        HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header value"),
    );
    request
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake failed")?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole answer: status, headers, body length.
async fn exchange(
    sender: &mut Sender,
    request: Request<Empty<Bytes>>,
) -> anyhow::Result<(Response<()>, Bytes)> {
    sender.ready().await.context("connection closed")?;
    let response = sender
        .send_request(request)
        .await
        .context("request failed")?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the body failed")?
        .to_bytes();
    Ok((Response::from_parts(parts, ()), body))
}

/// What one request to a target gets.
#[derive(Debug, PartialEq, Eq)]
struct Probe {
    status: StatusCode,
    headers: usize,
    header_bytes: usize,
    body: usize,
}

async fn probe(addr: SocketAddr, load: &LoadSpec) -> anyhow::Result<Probe> {
    let (response, body) = fetch(addr, load.request(addr, PATH)).await?;
    let header_bytes = response
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    Ok(Probe {
        status: response.status(),
        headers: response.headers().len(),
        header_bytes,
        body: body.len(),
    })
}

/// One request on a new connection, answered within [`REQUEST_TIMEOUT`]: the answer and its
/// body.
async fn fetch(
    addr: SocketAddr,
    request: Request<Empty<Bytes>>,
) -> anyhow::Result<(Response<()>, Bytes)> {
    let mut sender = connect(addr).await?;
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(&mut sender, request))
        .await
        .map_err(|_| anyhow!("no answer within {} s", REQUEST_TIMEOUT.as_secs()))?
}

/// One plain `GET PATH` (only `Host` set) on a new connection.
async fn fetch_plain(addr: SocketAddr) -> anyhow::Result<(Response<()>, Bytes)> {
    fetch(addr, get(addr, PATH, HeaderMap::new())).await
}

/// `GET /__ghes-vcr/health` as JSON.
async fn health(addr: SocketAddr, load: &LoadSpec) -> anyhow::Result<Value> {
    let (response, body) = fetch(addr, load.request(addr, "/__ghes-vcr/health")).await?;
    if response.status() != StatusCode::OK {
        bail!("answered {}", response.status());
    }
    serde_json::from_slice(&body).context("the answer is not JSON")
}

/// The numbers of one or more measured slices against one target.
#[derive(Clone, Debug, Default)]
struct Outcome {
    /// Successful requests in the measured slices (with the hyper client, those started within
    /// them; with wrk, those answered within its runs).
    requests: u64,
    errors: u64,
    /// Latencies of the successful measured requests, in microseconds; sorted by
    /// [`Outcome::finish`].
    latencies_us: Vec<u32>,
    /// The measured time: the sum of the slices' lengths.
    measured: Duration,
    /// Each measured slice's throughput, to show how much the machine moved.
    slice_rps: Vec<f64>,
    /// The first few distinct error messages.
    error_samples: Vec<String>,
}

impl Outcome {
    fn rps(&self) -> f64 {
        if self.measured.is_zero() {
            return 0.0;
        }
        self.requests as f64 / self.measured.as_secs_f64()
    }

    /// Nearest-rank percentile (`q` in 0..=1), in microseconds, once sorted.
    fn percentile(&self, q: f64) -> Option<u32> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = (q * n as f64).ceil() as usize;
        Some(self.latencies_us[rank.clamp(1, n) - 1])
    }

    fn absorb(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
        self.measured += other.measured;
        self.slice_rps.extend(other.slice_rps);
        for message in other.error_samples {
            self.note_error(message);
        }
    }

    fn note_error(&mut self, message: String) {
        if self.error_samples.len() < 5 && !self.error_samples.contains(&message) {
            self.error_samples.push(message);
        }
    }

    fn finish(mut self) -> Self {
        self.latencies_us.sort_unstable();
        self
    }
}

/// `connections` keep-alive connections to one target, kept open from slice to slice (a worker
/// opens one when its slot is empty, and after an I/O error).
struct Pool {
    addr: SocketAddr,
    headers: Arc<HeaderMap>,
    slots: Vec<Option<Sender>>,
}

impl Pool {
    fn new(addr: SocketAddr, connections: usize, load: &LoadSpec) -> Self {
        Self {
            addr,
            headers: Arc::new(load.request(addr, PATH).headers().clone()),
            slots: (0..connections).map(|_| None).collect(),
        }
    }

    /// Runs every connection's closed loop for `length`, all of it measured or none of it;
    /// returns when every worker has its last answer, so two slices never overlap.
    async fn slice(&mut self, length: Duration, measured: bool) -> Outcome {
        let end = Instant::now() + length;
        let workers: Vec<_> = self
            .slots
            .iter_mut()
            .map(|slot| {
                let sender = slot.take();
                let (addr, headers) = (self.addr, Arc::clone(&self.headers));
                tokio::spawn(worker(addr, headers, sender, end, measured))
            })
            .collect();
        let mut outcome = Outcome {
            measured: if measured { length } else { Duration::ZERO },
            ..Outcome::default()
        };
        for (slot, worker) in self.slots.iter_mut().zip(workers) {
            match worker.await {
                Ok((done, sender)) => {
                    *slot = sender;
                    outcome.absorb(done);
                }
                Err(err) => {
                    outcome.errors += 1;
                    outcome.note_error(format!("worker panicked: {err}"));
                }
            }
        }
        if measured {
            outcome.slice_rps.push(outcome.rps());
        }
        outcome
    }
}

/// The load on one target at one connection count, from the generator `--generator` chose.
enum Load<'a> {
    /// Workers in this process, their connections kept from slice to slice.
    Hyper(Pool),
    /// One wrk run per slice.
    Wrk(WrkLoad<'a>),
}

impl<'a> Load<'a> {
    fn new(addr: SocketAddr, connections: usize, load: &'a LoadSpec) -> Self {
        match &load.generator {
            LoadGenerator::Hyper => Load::Hyper(Pool::new(addr, connections, load)),
            LoadGenerator::Wrk(wrk) => Load::Wrk(WrkLoad {
                wrk,
                addr,
                connections,
                headers: &load.headers,
            }),
        }
    }

    /// One slice of `length`, all of it measured or none of it; returns when the load has
    /// stopped, so two slices never overlap.
    ///
    /// # Errors
    ///
    /// When wrk cannot be run or its result cannot be read (the hyper client never fails
    /// here: its failed requests are counted in the outcome).
    async fn slice(&mut self, length: Duration, measured: bool) -> anyhow::Result<Outcome> {
        match self {
            Load::Hyper(pool) => Ok(pool.slice(length, measured).await),
            Load::Wrk(wrk) => wrk.slice(length, measured).await,
        }
    }
}

/// Measures every target in `targets` (its name, for errors, and its address) at `connections`:
/// a warm-up of each in turn, then `load.slices` rounds in which each target takes one slice of
/// `load.duration / slices`, in the order given, so every target is sampled over the same
/// stretch of the machine's ups and downs. Returns one outcome per target, in that order.
///
/// # Errors
///
/// When a wrk slice fails (see [`Load::slice`]).
async fn measure(
    targets: &[(&str, SocketAddr)],
    connections: usize,
    load: &LoadSpec,
) -> anyhow::Result<Vec<Outcome>> {
    let mut loads: Vec<Load<'_>> = targets
        .iter()
        .map(|&(_, addr)| Load::new(addr, connections, load))
        .collect();
    for (target, (name, _)) in loads.iter_mut().zip(targets) {
        target
            .slice(load.warmup, false)
            .await
            .with_context(|| format!("{name}'s warm-up"))?;
    }
    let slice = load.duration / load.slices;
    let mut outcomes: Vec<Outcome> = targets.iter().map(|_| Outcome::default()).collect();
    for round in 1..=load.slices {
        for ((target, outcome), (name, _)) in loads.iter_mut().zip(&mut outcomes).zip(targets) {
            let done = target
                .slice(slice, true)
                .await
                .with_context(|| format!("{name}'s slice {round}"))?;
            outcome.absorb(done);
        }
    }
    Ok(outcomes.into_iter().map(Outcome::finish).collect())
}

/// Whether an answer closes its connection (`Connection: close`).
fn ends_connection(response: &Response<()>) -> bool {
    connection_tokens(response.headers()).any(|token| token.eq_ignore_ascii_case("close"))
}

/// One connection's closed loop until `end`: send, read the whole answer, check it, repeat.
/// Returns what it saw and the connection, for the next slice.
async fn worker(
    addr: SocketAddr,
    headers: Arc<HeaderMap>,
    mut sender: Option<Sender>,
    end: Instant,
    measured: bool,
) -> (Outcome, Option<Sender>) {
    let mut outcome = Outcome {
        latencies_us: Vec::with_capacity(if measured { 8 * 1024 } else { 0 }),
        ..Outcome::default()
    };
    let error = |outcome: &mut Outcome, message: String| {
        if measured {
            outcome.errors += 1;
        }
        outcome.note_error(message);
    };
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let connection = match sender.as_mut() {
            Some(connection) => connection,
            None => match connect(addr).await {
                Ok(connection) => sender.insert(connection),
                Err(err) => {
                    error(&mut outcome, format!("{err:#}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let mut request = Request::new(Empty::new());
        *request.uri_mut() = Uri::from_static(PATH);
        *request.headers_mut() = HeaderMap::clone(&headers);
        let result = tokio::time::timeout(REQUEST_TIMEOUT, exchange(connection, request)).await;
        let elapsed = started.elapsed();
        match result {
            Ok(Ok((response, body))) => {
                if response.status() == StatusCode::OK {
                    if measured {
                        outcome.requests += 1;
                        let micros = u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX);
                        outcome.latencies_us.push(micros);
                    }
                } else {
                    let excerpt =
                        String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                    error(
                        &mut outcome,
                        format!("status {}: {excerpt}", response.status()),
                    );
                }
                if ends_connection(&response) {
                    // The next request goes on a new connection, as wrk's does, instead of
                    // failing on this one.
                    sender = None;
                }
            }
            Ok(Err(err)) => {
                error(&mut outcome, format!("{err:#}"));
                sender = None;
            }
            Err(_) => {
                error(
                    &mut outcome,
                    format!("no answer within {} s", REQUEST_TIMEOUT.as_secs()),
                );
                sender = None;
            }
        }
    }
    (outcome, sender)
}

// ---------------------------------------------------------------------------------------------
// The wrk generator
// ---------------------------------------------------------------------------------------------

/// What [`WRK_SCRIPT`] puts before its JSON result line.
const WRK_RESULT_PREFIX: &str = "loadbench-wrk-result ";

/// The Lua script every wrk run loads: when the run is done, it prints one line, the
/// [`WRK_RESULT_PREFIX`] and then a [`WrkReport`] as JSON. wrk's `latency` object gives its
/// histogram: `#latency` is the number of distinct latencies and `latency(i)` the i-th
/// smallest one in µs with its count (wrk's `script.c`: `script_stats_len`,
/// `script_stats_call`). The script defines no `request` or `response` function, so wrk keeps
/// sending its one prepared request and never hands an answer to Lua.
const WRK_SCRIPT: &str = r#"-- ghes-vcr loadbench: print the run's result as one JSON line.
function done(summary, latency, requests)
  local histogram = {}
  for i = 1, #latency do
    local micros, count = latency(i)
    histogram[i] = string.format("[%d,%d]", micros, count)
  end
  local errors = summary.errors
  io.write(string.format(
    'loadbench-wrk-result {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d},' ..
    '"latency_us":[%s]}\n',
    summary.requests, summary.duration, errors.connect, errors.read, errors.write,
    errors.timeout, errors.status, table.concat(histogram, ",")))
end
"#;

/// The generator chosen with `--generator`, ready to run.
enum LoadGenerator {
    /// hyper's client in this process.
    Hyper,
    /// One wrk run per slice.
    Wrk(Wrk),
}

impl LoadGenerator {
    /// # Errors
    ///
    /// With `--generator wrk`: when wrk is not on PATH, when the warm-up or a slice is not a
    /// whole number of seconds, or when the Lua script cannot be written.
    fn from_args(args: &Args) -> anyhow::Result<Self> {
        match args.generator {
            Generator::Hyper => Ok(LoadGenerator::Hyper),
            Generator::Wrk => {
                let wrk = Wrk::locate()?;
                check_wrk_lengths(args)?;
                Ok(LoadGenerator::Wrk(wrk))
            }
        }
    }

    /// One line for the report's header.
    fn describe(&self) -> String {
        match self {
            LoadGenerator::Hyper => {
                "hyper (HTTP/1.1 client in this process, one tokio task per connection, connections kept from slice to slice)".to_owned()
            }
            LoadGenerator::Wrk(wrk) => format!(
                "{} ({}), one run per slice: wrk -t1 -c<conns> -d<slice> --timeout {}s -s <Lua script> -H <the request headers> URL, new connections each slice; latencies without wrk's coordinated-omission correction",
                wrk.version,
                wrk.program.display(),
                REQUEST_TIMEOUT.as_secs()
            ),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            LoadGenerator::Hyper => json!({"name": "hyper"}),
            LoadGenerator::Wrk(wrk) => json!({
                "name": "wrk",
                "version": wrk.version,
                "program": wrk.program.display().to_string(),
                "run_per_slice": format!(
                    "wrk -t1 -c<conns> -d<slice> --timeout {}s -s <Lua script> -H <the request headers> http://<addr>{PATH}",
                    REQUEST_TIMEOUT.as_secs()
                ),
                "latencies": "as measured: wrk's coordinated-omission correction taken out",
            }),
        }
    }
}

/// wrk, found on PATH, with the Lua script it runs.
struct Wrk {
    program: PathBuf,
    /// The first line of `wrk -v`, e.g. `wrk debian/4.1.0-3+b2 [epoll]`.
    version: String,
    /// [`WRK_SCRIPT`] in a temporary file, removed when this is dropped.
    script: tempfile::NamedTempFile,
}

impl Wrk {
    /// Finds wrk on PATH, reads its version and writes the Lua script.
    ///
    /// # Errors
    ///
    /// When wrk is not on PATH or does not print wrk's version line, or the script cannot be
    /// written.
    fn locate() -> anyhow::Result<Self> {
        let program = find_on_path("wrk")
            .context("--generator wrk needs wrk on PATH (Debian: apt-get install wrk)")?;
        // `wrk -v` prints `wrk VERSION [epoll] Copyright (C) 2012 Will Glozer`, then its
        // usage, and exits with 1.
        let output = version_output(&program)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let first = stdout.lines().next().unwrap_or_default();
        let version = first.split(" Copyright").next().unwrap_or_default().trim();
        if !version.starts_with("wrk ") {
            bail!(
                "{} -v printed {first:?}, not wrk's version line; --generator wrk needs wrk (https://github.com/wg/wrk) on PATH",
                program.display()
            );
        }
        let mut script = tempfile::Builder::new()
            .prefix("ghes-vcr-loadbench-")
            .suffix(".lua")
            .tempfile()
            .context("cannot create a temporary file for wrk's Lua script")?;
        script
            .write_all(WRK_SCRIPT.as_bytes())
            .and_then(|()| script.flush())
            .with_context(|| {
                format!(
                    "cannot write wrk's Lua script to {}",
                    script.path().display()
                )
            })?;
        Ok(Self {
            program,
            version: version.to_owned(),
            script,
        })
    }
}

/// What `PROGRAM -v` prints: wrk and nginx both tell their version that way.
fn version_output(program: &Path) -> anyhow::Result<std::process::Output> {
    Command::new(program)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} -v", program.display()))
}

/// The first executable file called `program` in a directory of PATH.
fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file that someone may execute.
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// wrk's `-d` takes whole seconds only (`1s`, `2m`; it refuses `500ms` and `1.5s`), so with
/// wrk the warm-up and each slice must be whole seconds, and a slice at least one.
///
/// # Errors
///
/// When either is not, with a choice that would do.
fn check_wrk_lengths(args: &Args) -> anyhow::Result<()> {
    let show = humantime::format_duration;
    if args.warmup.subsec_nanos() != 0 {
        bail!(
            "--generator wrk runs the warm-up as `wrk -d<seconds>s`, which takes whole seconds only: --warmup {} is not (e.g. --warmup 1s, or 0s for none)",
            show(args.warmup)
        );
    }
    let slice = args.duration / args.slices;
    if slice.is_zero() || slice.subsec_nanos() != 0 {
        let seconds = (slice.as_secs_f64().round() as u64).max(1);
        bail!(
            "--generator wrk runs each slice as `wrk -d<seconds>s`, which takes whole seconds only: --duration {} in --slices {} makes slices of {}; pick a duration that is whole seconds per slice (e.g. --duration {}s --slices {})",
            show(args.duration),
            args.slices,
            show(slice),
            seconds * u64::from(args.slices),
            args.slices
        );
    }
    Ok(())
}

/// wrk runs against one target at one connection count: one run per slice.
struct WrkLoad<'a> {
    wrk: &'a Wrk,
    addr: SocketAddr,
    connections: usize,
    /// The request headers ([`LoadSpec::headers`]; wrk adds `Host` itself).
    headers: &'a HeaderMap,
}

impl WrkLoad<'_> {
    /// Runs `wrk -t1 -c<connections> -d<length>` and reads its result line; a zero `length`
    /// (`--warmup 0s`) runs nothing. The `-H` arguments are never shown: one is a credential.
    ///
    /// # Errors
    ///
    /// When wrk cannot be started, fails, prints no result line, or its latencies do not add
    /// up (see [`WrkReport::measured_latencies`]).
    async fn slice(&self, length: Duration, measured: bool) -> anyhow::Result<Outcome> {
        if length.is_zero() {
            return Ok(Outcome::default());
        }
        if length.subsec_nanos() != 0 {
            bail!(
                "wrk cannot run for {}: whole seconds only",
                humantime::format_duration(length)
            );
        }
        let what = format!(
            "wrk -t1 -c{} -d{}s against {}",
            self.connections,
            length.as_secs(),
            self.addr
        );
        let mut command = tokio::process::Command::new(&self.wrk.program);
        command
            .arg("-t1")
            .arg(format!("-c{}", self.connections))
            .arg(format!("-d{}s", length.as_secs()))
            .arg("--timeout")
            .arg(format!("{}s", REQUEST_TIMEOUT.as_secs()))
            .arg("-s")
            .arg(self.wrk.script.path());
        for (name, value) in self.headers {
            let value = value
                .to_str()
                .with_context(|| format!("request header {name} is not visible ASCII"))?;
            command.arg("-H").arg(format!("{name}: {value}"));
        }
        command
            .arg(format!("http://{}{PATH}", self.addr))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = command
            .output()
            .await
            .with_context(|| format!("cannot run {}", self.wrk.program.display()))?;
        if !output.status.success() {
            bail!(
                "{what} failed ({}): {}",
                output.status,
                stderr_tail(&output.stderr)
            );
        }
        WrkReport::from_stdout(&output.stdout)
            .and_then(|report| report.into_outcome(self.connections, measured))
            .with_context(|| format!("{what} (stderr: {})", stderr_tail(&output.stderr)))
    }
}

/// What one wrk run reports through [`WRK_SCRIPT`].
#[derive(Debug, Deserialize)]
struct WrkReport {
    /// Answers read, whatever their status (wrk's `summary.requests`).
    requests: u64,
    /// The run's length as wrk measured it (`summary.duration`): the `-d` seconds, plus up to
    /// 100 ms until its threads see that time is up.
    duration_us: u64,
    errors: WrkErrors,
    /// wrk's latency histogram: `[µs, count]` for each distinct latency, smallest first,
    /// synthetic latencies included (see [`WrkReport::measured_latencies`]).
    latency_us: Vec<(u64, u64)>,
}

/// wrk's error counts (`summary.errors`).
#[derive(Debug, Deserialize)]
struct WrkErrors {
    connect: u64,
    read: u64,
    write: u64,
    /// Answers that took `--timeout` or longer (they have no latency in the histogram). wrk
    /// 4.x does not count a request that never gets an answer at all.
    timeout: u64,
    /// Answers with status 400 or above (wrk does not count other statuses as errors).
    status: u64,
}

impl WrkReport {
    /// Finds the result line in wrk's stdout.
    ///
    /// # Errors
    ///
    /// When there is none, or it is not a [`WrkReport`].
    fn from_stdout(stdout: &[u8]) -> anyhow::Result<Self> {
        let text = String::from_utf8_lossy(stdout);
        let json = text
            .lines()
            .find_map(|line| line.strip_prefix(WRK_RESULT_PREFIX))
            .context("wrk printed no result line (the Lua script's `done` did not run)")?;
        serde_json::from_str(json).context("wrk's result line is not the JSON the script writes")
    }

    /// The run as an [`Outcome`]: successful requests are answers below status 400 within
    /// the timeout; the latencies are wrk's measured ones (those of answers with status 400
    /// or above among them: wrk does not say which they are). A warm-up run (`measured`
    /// false) keeps only its error messages, as the hyper client's warm-up does.
    ///
    /// # Errors
    ///
    /// When the latencies do not add up (see [`WrkReport::measured_latencies`]).
    fn into_outcome(self, connections: usize, measured: bool) -> anyhow::Result<Outcome> {
        let histogram = self.measured_latencies(connections)?;
        let e = &self.errors;
        let mut outcome = Outcome::default();
        let timeouts = format!(
            "timeouts (answers after {} s or more)",
            REQUEST_TIMEOUT.as_secs()
        );
        for (count, what) in [
            (e.connect, "connect errors"),
            (e.read, "read errors"),
            (e.write, "write errors"),
            (e.timeout, timeouts.as_str()),
            (e.status, "answers with status 400 or above"),
        ] {
            if count > 0 {
                outcome.note_error(format!("wrk: {what}: {count}"));
            }
        }
        if !measured {
            return Ok(outcome);
        }
        outcome.errors = e.connect + e.read + e.write + e.timeout + e.status;
        outcome.requests = self.requests.saturating_sub(e.timeout + e.status);
        outcome.latencies_us = histogram
            .into_iter()
            .flat_map(|(micros, count)| {
                let micros = u32::try_from(micros).unwrap_or(u32::MAX);
                std::iter::repeat_n(micros, usize::try_from(count).unwrap_or(usize::MAX))
            })
            .collect();
        outcome.measured = Duration::from_micros(self.duration_us);
        outcome.slice_rps.push(outcome.rps());
        Ok(outcome)
    }

    /// The latencies wrk measured (µs → count): its histogram without the synthetic
    /// latencies wrk 4.x adds after the run.
    ///
    /// wrk 4.x ends a run with `stats_correct(latency, interval)` (its correction for
    /// coordinated omission, which assumes the requests were due at a fixed rate; in a closed
    /// loop they were not), `interval` being the run time in µs divided by the answers per
    /// connection, in integers as wrk computes them. For each latency of at least twice the
    /// interval, it adds the same count again one interval lower, two intervals lower, and so
    /// on while above the interval. [`undo_wrk_correction`] takes them out again. Every answer
    /// quicker than `--timeout` has one measured latency, so the result must add up to
    /// `requests − timeout`; a histogram that already does (nothing was added) is kept as it is.
    ///
    /// # Errors
    ///
    /// When the latencies do not add up either way: this wrk works differently.
    fn measured_latencies(&self, connections: usize) -> anyhow::Result<BTreeMap<u64, u64>> {
        let reported: BTreeMap<u64, u64> = self.latency_us.iter().copied().collect();
        let expected = self.requests.saturating_sub(self.errors.timeout);
        let total = |histogram: &BTreeMap<u64, u64>| histogram.values().sum::<u64>();
        if total(&reported) == expected {
            return Ok(reported);
        }
        let per_connection = self.requests / connections as u64;
        // wrk corrects only when some connection had an answer (`complete / connections > 0`).
        let measured = self
            .duration_us
            .checked_div(per_connection)
            .and_then(|interval| undo_wrk_correction(&reported, interval));
        match measured {
            Some(measured) if total(&measured) == expected => Ok(measured),
            _ => bail!(
                "wrk's latency histogram holds {} latencies for {expected} answers within the timeout, also after taking out the ones wrk 4.x adds for coordinated omission; this wrk counts differently (use --generator hyper)",
                total(&reported)
            ),
        }
    }
}

/// `reported` without what wrk's `stats_correct(latency, interval)` added: as each latency
/// only adds below itself, the measured counts come back from the largest latency down (a
/// latency above the interval holds its own count plus the measured counts one, two, …
/// intervals above it). `None` when a count would go below zero: `reported` was not made so.
fn undo_wrk_correction(reported: &BTreeMap<u64, u64>, interval: u64) -> Option<BTreeMap<u64, u64>> {
    if interval == 0 {
        return None;
    }
    let max = reported.keys().next_back().copied().unwrap_or_default();
    let mut measured = BTreeMap::new();
    for (&micros, &count) in reported.iter().rev() {
        let mut added = 0u64;
        if micros > interval {
            let mut above = micros + interval;
            while above <= max {
                added += measured.get(&above).copied().unwrap_or(0);
                above += interval;
            }
        }
        let own = count.checked_sub(added)?;
        if own > 0 {
            measured.insert(micros, own);
        }
    }
    Some(measured)
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

/// One target's slices at one connection count. Its ratios divide by the baseline's row of the
/// same connection count, whose slices took turns with its own.
struct Row {
    target: Target,
    connections: usize,
    outcome: Outcome,
}

struct Report<'a> {
    rows: &'a [Row],
    notes: &'a BTreeMap<&'static str, Value>,
    connections: &'a [usize],
}

/// One row's figures and their ratios to the baseline's slices.
struct Figures {
    rps: f64,
    p50: Option<u32>,
    p99: Option<u32>,
    p999: Option<u32>,
    rps_ratio: Option<f64>,
    p50_ratio: Option<f64>,
    p99_ratio: Option<f64>,
    p999_ratio: Option<f64>,
    added_p50_us: Option<i64>,
}

impl Report<'_> {
    fn find(&self, target: Target, connections: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|row| row.target == target && row.connections == connections)
    }

    fn figures(&self, row: &Row) -> Figures {
        let base = self
            .find(Target::Baseline, row.connections)
            .map(|baseline| &baseline.outcome);
        let o = &row.outcome;
        let (p50, p99, p999) = (o.percentile(0.5), o.percentile(0.99), o.percentile(0.999));
        let ratio = |value: Option<u32>, base: Option<u32>| match (value, base) {
            (Some(v), Some(b)) if b > 0 => Some(f64::from(v) / f64::from(b)),
            _ => None,
        };
        let base_rps = base.map(Outcome::rps).filter(|r| *r > 0.0);
        Figures {
            rps: o.rps(),
            p50,
            p99,
            p999,
            rps_ratio: base_rps.map(|b| o.rps() / b),
            p50_ratio: ratio(p50, base.and_then(|b| b.percentile(0.5))),
            p99_ratio: ratio(p99, base.and_then(|b| b.percentile(0.99))),
            p999_ratio: ratio(p999, base.and_then(|b| b.percentile(0.999))),
            added_p50_us: match (p50, base.and_then(|b| b.percentile(0.5))) {
                (Some(v), Some(b)) if row.target != Target::Baseline => {
                    Some(i64::from(v) - i64::from(b))
                }
                _ => None,
            },
        }
    }

    fn print(&self) {
        println!(
            "{:<20} {:>5} {:>9} {:>6} {:>8} {:>6} {:>8} {:>6} {:>9} {:>6} {:>7} {:>8}",
            "target",
            "conns",
            "req/s",
            "×base",
            "p50 µs",
            "×base",
            "p99 µs",
            "×base",
            "p99.9 µs",
            "×base",
            "errors",
            "+p50 µs"
        );
        let mut last_target = None;
        for row in self.rows {
            if last_target.is_some() && last_target != Some(row.target) {
                println!();
            }
            last_target = Some(row.target);
            let f = self.figures(row);
            println!(
                "{:<20} {:>5} {:>9.0} {:>6} {:>8} {:>6} {:>8} {:>6} {:>9} {:>6} {:>7} {:>8}",
                row.target.name(),
                row.connections,
                f.rps,
                fmt_ratio(f.rps_ratio),
                fmt_us(f.p50),
                fmt_ratio(f.p50_ratio),
                fmt_us(f.p99),
                fmt_ratio(f.p99_ratio),
                fmt_us(f.p999),
                fmt_ratio(f.p999_ratio),
                row.outcome.errors,
                f.added_p50_us
                    .map_or_else(|| "-".to_owned(), |v| format!("{v:+}")),
            );
        }
        println!();
        println!("×base: ratio to the baseline's slices (same connection count), which took turns with every target's slices");
        println!("+p50 µs: latency added at p50 (this row's p50 − those baseline slices' p50)");
        println!(
            "baseline rows: the baseline's own slices, from the same rounds as every other row's"
        );
        for (connections, low, high, slices) in self.baseline_spread() {
            println!(
                "machine drift: the baseline's {slices} slices with {connections} conns ran at {low:.0}–{high:.0} req/s (max/min {:.2})",
                high / low
            );
        }

        for (label, _, top, bottom) in COMPARED {
            let ratios = self.throughput_ratios(top, bottom);
            if !ratios.is_empty() {
                println!();
            }
            for (connections, ratio) in &ratios {
                println!("{label} throughput, {connections} conns: {ratio:.3}");
            }
        }
        let added = self.added_p50_against_references();
        if !added.is_empty() {
            println!();
        }
        for (reference, _, passthrough, by_reference) in added {
            println!(
                "passthrough vs {name} added p50, 1 conn: {passthrough:+} µs vs {by_reference:+} µs (passthrough − {name}: {:+} µs)",
                passthrough - by_reference,
                name = reference.name()
            );
        }
        for (label, key) in [
            ("passthrough journal", "passthrough_journal"),
            ("record journal", "record_journal"),
        ] {
            if let Some(journal) = self.notes.get(key) {
                println!(
                    "{label} (GET /__ghes-vcr/health before stopping): dropped {}, written {}, queued {}, entries {}",
                    journal["dropped"], journal["written"], journal["queued"], journal["entries"]
                );
            }
        }
        if let Some(memory) = self.notes.get("replay_samples_resident_kib") {
            let mb = |key: &str| memory[key].as_f64().map_or(f64::NAN, |kib| kib / 1024.0);
            println!(
                "replay of the sample cassettes, resident after 5 answers: {:.1} MB without the journal, {:.1} MB with it (target ≤ 20 MB)",
                mb("no_journal"),
                mb("journal")
            );
        }
        if let Some(recording) = self.notes.get("record") {
            println!(
                "record (GET /__ghes-vcr/health before stopping): {} interactions recorded, {} in the cassette, saved {}",
                recording["recorded"], recording["interactions"], recording["saved"]
            );
        }
        for row in self.rows {
            for sample in &row.outcome.error_samples {
                println!(
                    "error sample, {} with {} conns: {sample}",
                    row.target.name(),
                    row.connections
                );
            }
        }
    }

    /// One target's throughput divided by another's, per connection count. Their slices took
    /// turns over the same stretch of the run, so the machine's drift cancels out.
    fn throughput_ratios(&self, top: Target, bottom: Target) -> Vec<(usize, f64)> {
        self.connections
            .iter()
            .filter_map(|&connections| {
                let on = self.find(top, connections)?;
                let off = self.find(bottom, connections)?;
                let (on_rps, off_rps) = (on.outcome.rps(), off.outcome.rps());
                (off_rps > 0.0).then(|| (connections, on_rps / off_rps))
            })
            .collect()
    }

    /// The p50 latency that passthrough and each reference add at 1 connection (each one's
    /// p50 minus its own baseline slices' p50), for the references that ran alongside
    /// passthrough at 1 connection: (reference, its JSON key, passthrough's µs, the
    /// reference's µs).
    fn added_p50_against_references(&self) -> Vec<(Target, &'static str, i64, i64)> {
        let added = |target| {
            self.find(target, 1)
                .and_then(|row| self.figures(row).added_p50_us)
        };
        REFERENCES
            .into_iter()
            .filter_map(|(reference, key)| {
                Some((
                    reference,
                    key,
                    added(Target::Passthrough)?,
                    added(reference)?,
                ))
            })
            .collect()
    }

    /// The lowest and highest throughput of the baseline's slices over the whole run, per
    /// connection count, and the number of slices: how much the machine itself moved.
    fn baseline_spread(&self) -> Vec<(usize, f64, f64, usize)> {
        self.rows
            .iter()
            .filter(|row| row.target == Target::Baseline)
            .filter_map(|row| {
                let slices = &row.outcome.slice_rps;
                let low = slices.iter().copied().reduce(f64::min)?;
                let high = slices.iter().copied().reduce(f64::max)?;
                (slices.len() > 1 && low > 0.0).then_some((
                    row.connections,
                    low,
                    high,
                    slices.len(),
                ))
            })
            .collect()
    }

    fn to_json(
        &self,
        command_line: &str,
        machine: &Machine,
        version: &str,
        args: &Args,
        generator: &LoadGenerator,
        warnings: &[String],
    ) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                let f = self.figures(row);
                json!({
                    "target": row.target.name(),
                    "connections": row.connections,
                    "requests": row.outcome.requests,
                    "errors": row.outcome.errors,
                    "requests_per_second": f.rps,
                    "p50_us": f.p50,
                    "p99_us": f.p99,
                    "p99_9_us": f.p999,
                    "max_us": row.outcome.latencies_us.last(),
                    "ratio_to_baseline": {
                        "throughput": f.rps_ratio,
                        "p50": f.p50_ratio,
                        "p99": f.p99_ratio,
                        "p99_9": f.p999_ratio,
                    },
                    "added_p50_us": f.added_p50_us,
                    "error_samples": row.outcome.error_samples,
                    "slice_requests_per_second": row.outcome.slice_rps,
                })
            })
            .collect();
        let mut comparisons = serde_json::Map::new();
        for (_, key, top, bottom) in COMPARED {
            let ratios: serde_json::Map<String, Value> = self
                .throughput_ratios(top, bottom)
                .into_iter()
                .map(|(connections, ratio)| (connections.to_string(), json!(ratio)))
                .collect();
            comparisons.insert(key.to_owned(), Value::Object(ratios));
        }
        let added_p50: serde_json::Map<String, Value> = self
            .added_p50_against_references()
            .into_iter()
            .map(|(reference, key, passthrough, by_reference)| {
                let value = json!({"passthrough": passthrough, reference.name(): by_reference});
                (key.to_owned(), value)
            })
            .collect();
        json!({
            "command": command_line,
            "ghes_vcr": version,
            "machine": {
                "nproc": machine.nproc,
                "cpu": machine.cpu,
                "memory": machine.memory,
                "kernel": machine.kernel,
                "loadavg_at_start": machine.loadavg,
            },
            "generator": generator.to_json(),
            "duration_s": args.duration.as_secs_f64(),
            "warmup_s": args.warmup.as_secs_f64(),
            "results": rows,
            "throughput_ratios": comparisons,
            "added_p50_us_at_1_connection": added_p50,
            "nginx": self.notes.get("nginx"),
            "passthrough_journal_health": self.notes.get("passthrough_journal"),
            "record_health": self.notes.get("record"),
            "record_journal_health": self.notes.get("record_journal"),
            "replay_samples_resident_kib": self.notes.get("replay_samples_resident_kib"),
            "warnings": warnings,
        })
    }
}

/// The throughputs compared with each other: label, JSON key, numerator, denominator.
const COMPARED: [(&str, &str, Target, Target); 5] = [
    (
        "passthrough journal on/off",
        "passthrough_journal_on_off",
        Target::PassthroughJournal,
        Target::Passthrough,
    ),
    (
        "record journal on/off",
        "record_journal_on_off",
        Target::RecordJournal,
        Target::Record,
    ),
    (
        "record ÷ passthrough",
        "record_over_passthrough",
        Target::Record,
        Target::Passthrough,
    ),
    (
        "passthrough ÷ hyper-proxy",
        "passthrough_over_hyper_proxy",
        Target::Passthrough,
        Target::HyperProxy,
    ),
    (
        "passthrough ÷ nginx",
        "passthrough_over_nginx",
        Target::Passthrough,
        Target::Nginx,
    ),
];

/// The references passthrough's added latency is set against: the target and its JSON key.
const REFERENCES: [(Target, &str); 2] = [
    (Target::HyperProxy, "passthrough_vs_hyper_proxy"),
    (Target::Nginx, "passthrough_vs_nginx"),
];

fn fmt_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn fmt_us(us: Option<u32>) -> String {
    us.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

// ---------------------------------------------------------------------------------------------
// Machine facts and the binary
// ---------------------------------------------------------------------------------------------

struct Machine {
    nproc: usize,
    cpu: String,
    memory: String,
    kernel: String,
    loadavg: String,
}

fn machine_facts() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or_else(|| "CPU unknown".to_owned(), |(_, v)| v.trim().to_owned());
    let meminfo = read("/proc/meminfo");
    let memory = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or_else(
            || "memory unknown".to_owned(),
            |kib| format!("{:.1} GiB RAM", kib as f64 / 1024.0 / 1024.0),
        );
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let loadavg = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    Machine {
        nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        memory,
        kernel: if kernel.is_empty() {
            "unknown".to_owned()
        } else {
            kernel
        },
        loadavg: if loadavg.is_empty() {
            "unknown".to_owned()
        } else {
            loadavg
        },
    }
}

/// `ghes-vcr` in the profile directory this example runs from (`target/release/examples/..`),
/// built there with cargo when missing. (`CARGO_BIN_EXE_*` is only set for tests and benches.)
fn locate_ghes_vcr() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this example's own path")?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .with_context(|| format!("{} is not in target/PROFILE/examples/", exe.display()))?;
    let binary = profile_dir.join(format!("ghes-vcr{}", std::env::consts::EXE_SUFFIX));
    if binary.is_file() {
        return Ok(binary);
    }
    let release = profile_dir
        .file_name()
        .is_some_and(|name| name == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--bin", "ghes-vcr"]);
    if release {
        command.arg("--release");
    }
    println!(
        "{} is missing; building it: cargo build --bin ghes-vcr{}",
        binary.display(),
        if release { " --release" } else { "" }
    );
    let status = command
        .status()
        .context("cannot run cargo to build ghes-vcr")?;
    if !status.success() {
        bail!(
            "`cargo build --bin ghes-vcr` failed ({status}); fix the build or pass --ghes-vcr PATH"
        );
    }
    // Cargo may have built it in another target directory than the one this example runs from.
    let elsewhere = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(if release { "release" } else { "debug" })
        .join(binary.file_name().unwrap_or_default());
    [binary.clone(), elsewhere.clone()]
        .into_iter()
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "cargo built ghes-vcr, but neither at {} nor at {}; pass --ghes-vcr PATH",
                binary.display(),
                elsewhere.display()
            )
        })
}

fn ghes_vcr_version(binary: &Path) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .arg("--version")
        .env_clear()
        .output()
        .with_context(|| format!("cannot run {} --version", binary.display()))?;
    if !output.status.success() {
        bail!(
            "{} --version failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// A warning when the binary is older than a file under `src/` (it may not measure the current
/// code).
fn staleness_warning(binary: &Path) -> Option<String> {
    fn newest(dir: &Path) -> Option<SystemTime> {
        let mut latest: Option<SystemTime> = None;
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            let time = if path.is_dir() {
                newest(&path)
            } else {
                entry.metadata().ok()?.modified().ok()
            };
            latest = latest.max(time);
        }
        latest
    }
    let built = std::fs::metadata(binary).ok()?.modified().ok()?;
    let source = newest(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))?;
    (source > built).then(|| {
        format!(
            "{} is older than the newest file in src/; `cargo build --release --bin ghes-vcr` to measure the current code",
            binary.display()
        )
    })
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
    {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// wrk 4.x's `stats_correct` (src/stats.c), on a histogram held as a map.
    fn wrk_stats_correct(histogram: &mut BTreeMap<u64, u64>, expected: u64) {
        let max = histogram.keys().next_back().copied().unwrap_or_default();
        for n in expected * 2..=max {
            let count = histogram.get(&n).copied().unwrap_or(0);
            let mut m = n - expected;
            while count > 0 && m > expected {
                *histogram.entry(m).or_default() += count;
                m -= expected;
            }
        }
    }

    #[test]
    fn undo_wrk_correction_gives_back_the_measured_histogram() {
        let measured: BTreeMap<u64, u64> = [
            (40, 3),
            (300, 50),
            (310, 41),
            (700, 9),
            (1_250, 4),
            (2_503, 1),
            (4_999, 2),
        ]
        .into_iter()
        .collect();
        for interval in [1, 7, 120, 333, 1_000, 5_000] {
            let mut reported = measured.clone();
            wrk_stats_correct(&mut reported, interval);
            assert_eq!(
                undo_wrk_correction(&reported, interval).as_ref(),
                Some(&measured),
                "interval {interval}"
            );
        }
    }

    #[test]
    fn wrk_report_becomes_an_outcome_with_measured_latencies() {
        // 2 connections, 6 answers in 3 ms: interval 3_000 / 3 = 1_000 µs, so wrk added a
        // synthetic latency at 1_500 µs below the 2_500 µs one (and none at 500: not above
        // the interval).
        let line = format!(
            "Running 1s test\n{WRK_RESULT_PREFIX}{{\"requests\":6,\"duration_us\":3000,\"errors\":{{\"connect\":0,\"read\":0,\"write\":0,\"timeout\":0,\"status\":1}},\"latency_us\":[[100,2],[200,2],[300,1],[1500,1],[2500,1]]}}\n"
        );
        let outcome = WrkReport::from_stdout(line.as_bytes())
            .and_then(|report| report.into_outcome(2, true))
            .expect("the line is a wrk report");
        assert_eq!(outcome.requests, 5);
        assert_eq!(outcome.errors, 1);
        assert_eq!(outcome.latencies_us, vec![100, 100, 200, 200, 300, 2_500]);
        assert_eq!(outcome.measured, Duration::from_millis(3));
        assert_eq!(
            outcome.error_samples,
            vec!["wrk: answers with status 400 or above: 1"]
        );
    }

    #[test]
    fn wrk_script_prints_the_prefix_loadbench_looks_for() {
        assert!(WRK_SCRIPT.contains(&format!("'{WRK_RESULT_PREFIX}{{")));
    }

    #[test]
    fn command_line_is_well_formed() {
        <Args as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn an_answer_that_closes_its_connection_says_so() {
        let answer = |values: &[&'static str]| {
            let mut response = Response::new(());
            for value in values {
                response
                    .headers_mut()
                    .append(header::CONNECTION, HeaderValue::from_static(value));
            }
            ends_connection(&response)
        };
        assert!(answer(&["close"]));
        assert!(answer(&["keep-alive", "Upgrade, Close"]));
        assert!(!answer(&["keep-alive"]));
        assert!(!answer(&[]));
    }

    #[tokio::test]
    async fn a_server_closing_each_connection_costs_the_hyper_generator_no_errors() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(serve_each(listener, |_request| async {
            let mut response = Response::new(Full::new(Bytes::from_static(b"{}")));
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }));
        let end = Instant::now() + Duration::from_millis(500);
        let (outcome, _) = worker(addr, Arc::new(HeaderMap::new()), None, end, true).await;
        assert_eq!(outcome.errors, 0, "{:?}", outcome.error_samples);
        assert!(outcome.requests >= 2, "{} requests", outcome.requests);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn targets_take_turns_slice_by_slice_and_never_overlap() {
        // Two servers noting when each request reached them.
        let seen: Arc<Mutex<Vec<(Instant, usize)>>> = Arc::default();
        let mut turns = Vec::new();
        for server in 0..2 {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            turns.push(("server", listener.local_addr().expect("address")));
            let seen = Arc::clone(&seen);
            tokio::spawn(serve_each(listener, move |_request| {
                seen.lock().expect("lock").push((Instant::now(), server));
                async { Response::new(Full::new(Bytes::from_static(b"{}"))) }
            }));
        }
        let args = Args::try_parse_from([
            "loadbench",
            "--warmup",
            "100ms",
            "--duration",
            "600ms",
            "--slices",
            "3",
        ])
        .expect("arguments");
        let load = LoadSpec::new(&args, LoadGenerator::Hyper);
        let outcomes = measure(&turns, 4, &load).await.expect("measured");

        assert_eq!(outcomes.len(), 2);
        for outcome in &outcomes {
            assert_eq!(outcome.slice_rps.len(), 3, "one measured slice per round");
            assert!(outcome.requests > 0);
            assert_eq!(outcome.errors, 0, "{:?}", outcome.error_samples);
        }
        // In time order, the requests form one run per slice: the two warm-ups, then three
        // rounds of two slices.
        let mut seen = seen.lock().expect("lock").clone();
        seen.sort_by_key(|(at, _)| *at);
        let mut turns: Vec<usize> = seen.iter().map(|(_, server)| *server).collect();
        turns.dedup();
        assert_eq!(turns, [0, 1, 0, 1, 0, 1, 0, 1]);
    }

    /// A baseline server on 127.0.0.1:0 in this test's runtime: its address and the body it
    /// answers with.
    async fn start_baseline() -> (SocketAddr, Bytes) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let body = authorizations_body(&format!("http://{addr}"));
        tokio::spawn(serve_baseline(listener, body.clone(), ghes_headers()));
        (addr, body)
    }

    /// A hyper-proxy on 127.0.0.1:0 in this test's runtime, in front of `upstream`.
    async fn start_hyper_proxy_in_process(upstream: SocketAddr) -> SocketAddr {
        let upstream = parse_upstream(&format!("http://{upstream}")).expect("upstream");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(serve_hyper_proxy(listener, upstream));
        addr
    }

    #[tokio::test]
    async fn hyper_proxy_forwards_the_baseline_answer() {
        let (baseline, body) = start_baseline().await;
        let proxy = start_hyper_proxy_in_process(baseline).await;
        let (response, received) = fetch_plain(proxy)
            .await
            .expect("a GET through the hyper-proxy");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(received, body);
        for (name, value) in &ghes_headers() {
            assert!(
                response.headers().get_all(name).iter().any(|v| v == value),
                "{name}: {value:?} not passed on"
            );
        }
    }

    #[tokio::test]
    async fn hyper_proxy_answers_502_when_the_upstream_is_down() {
        // A port that was just free: nothing listens there.
        let closed = SocketAddr::from(([127, 0, 0, 1], free_port().expect("a free port")));
        let proxy = start_hyper_proxy_in_process(closed).await;
        let (response, _) = fetch_plain(proxy)
            .await
            .expect("an answer from the hyper-proxy");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    }

    #[test]
    fn upstream_request_points_at_the_upstream_without_hop_by_hop_headers() {
        let upstream = parse_upstream("http://127.0.0.1:8080").expect("upstream");
        let request = Request::builder()
            .uri("/api/v3/authorizations?page=2")
            .header(header::HOST, "proxy.example:9000")
            .header(header::CONNECTION, "keep-alive, x-per-hop")
            .header("keep-alive", "timeout=5")
            .header("proxy-connection", "keep-alive")
            .header(header::TE, "trailers")
            .header(header::TRAILER, "x-checksum")
            .header(header::TRANSFER_ENCODING, "chunked")
            .header(header::UPGRADE, "h2c")
            .header("x-per-hop", "1")
            .header(header::ACCEPT, "application/json")
            .body(())
            .expect("request");
        let sent = upstream_request(request, &upstream);
        assert_eq!(
            sent.uri(),
            "http://127.0.0.1:8080/api/v3/authorizations?page=2"
        );
        assert_eq!(sent.version(), Version::HTTP_11);
        let names: Vec<&str> = sent.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["host", "accept"], "{:?}", sent.headers());
        assert_eq!(sent.headers()[header::HOST], "127.0.0.1:8080");
    }

    #[test]
    fn parse_upstream_takes_plain_http_host_and_port() {
        assert!(parse_upstream("http://127.0.0.1:8080").is_ok());
        assert!(parse_upstream("http://127.0.0.1:8080/").is_ok());
        for wrong in [
            "127.0.0.1:8080",
            "https://127.0.0.1:8443",
            "http://127.0.0.1:8080/api",
        ] {
            assert!(parse_upstream(wrong).is_err(), "{wrong}");
        }
    }

    #[test]
    fn choose_targets_skips_a_missing_nginx_unless_named() {
        let all = choose_targets(&[], false).expect("the default set");
        assert!(!all.contains(&Target::Nginx));
        assert!(all.contains(&Target::HyperProxy));
        let with = choose_targets(&[], true).expect("the default set");
        assert!(with.contains(&Target::Nginx));
        let error = choose_targets(&[Target::Passthrough, Target::Nginx], false)
            .expect_err("--only nginx without nginx");
        assert!(
            error.to_string().contains("apt-get install nginx"),
            "{error}"
        );
    }

    #[test]
    fn nginx_config_keeps_everything_in_its_directory() {
        let dir = Path::new("/tmp/loadbench-nginx-test");
        let upstream = SocketAddr::from(([127, 0, 0, 1], 4321));
        let config = nginx_config(dir, 5678, upstream);
        for expected in [
            "daemon off;",
            "master_process on;",
            "worker_processes auto;",
            "pid \"/tmp/loadbench-nginx-test/nginx.pid\";",
            "error_log \"/tmp/loadbench-nginx-test/error.log\";",
            "worker_connections 4096;",
            "access_log \"/tmp/loadbench-nginx-test/access.log\";",
            "server 127.0.0.1:4321;",
            "keepalive 64;",
            "keepalive_requests 1000000;",
            "listen 127.0.0.1:5678;",
            "proxy_pass http://baseline;",
            "proxy_http_version 1.1;",
            "proxy_set_header Connection \"\";",
            "proxy_buffering on;",
        ] {
            assert!(config.contains(expected), "{expected} not in:\n{config}");
        }
        for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            let line = format!("{temp}_temp_path \"/tmp/loadbench-nginx-test/{temp}_temp\";");
            assert!(config.contains(&line), "{line} not in:\n{config}");
        }
    }

    /// Starts the installed nginx in front of an in-process baseline; skipped (passing) when
    /// nginx is not installed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nginx_forwards_the_baseline_answer() {
        let Some(nginx) = Nginx::locate().expect("nginx -v") else {
            eprintln!("nginx is not installed: skipped");
            return;
        };
        let (baseline, body) = start_baseline().await;
        let proxy = nginx.start(baseline).await.expect("nginx starts");
        let (response, received) = fetch_plain(proxy.addr).await.expect("a GET through nginx");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(received, body);
        let status = proxy.stop().expect("nginx stops");
        assert!(status.success(), "nginx exited with {status}");
    }
}
