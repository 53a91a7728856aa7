//! The real binary: start-up errors, the environment, signals, and kill -9 mid-recording.

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::Binary;
use crate::support::{client, secret, Call};

#[tokio::test]
async fn malformed_cassette_fails_before_listening_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, "{\n  \"version\": 1,\n  \"interactions\": [,]\n}\n").unwrap();
    let run = Binary::run(
        &[
            "replay",
            "--cassette",
            bad.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(2), "{}", run.stderr);
    assert!(
        run.stdout.is_empty(),
        "nothing is printed before the cassette loads: {}",
        run.stdout
    );
    let expected = format!(
        "ghes-vcr: error: cassette {}:3:20: expected value",
        bad.display()
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

#[tokio::test]
async fn unknown_format_version_says_which_version_this_build_reads() {
    let dir = tempfile::tempdir().unwrap();
    let future = dir.path().join("future.json");
    std::fs::write(&future, "{\"version\": 2, \"interactions\": []}\n").unwrap();
    let run = Binary::run(
        &["replay", "--cassette", future.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr
            .contains("has format version 2; this build reads version 1"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn record_names_a_directory_given_as_its_cassette() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("set");
    std::fs::create_dir(&set).unwrap();
    std::fs::write(
        set.join("a.json"),
        "{\"version\": 1, \"interactions\": []}\n",
    )
    .unwrap();
    for mode in ["once", "new-episodes", "all"] {
        let run = Binary::run(
            &[
                "record",
                "--mode",
                mode,
                "--upstream",
                "http://127.0.0.1:9",
                "--cassette",
                set.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
            ],
            &[],
            dir.path(),
        )
        .await;
        assert_eq!(run.status.code(), Some(2), "{mode}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "cannot read cassette {}: a directory: record writes one cassette file",
                set.display()
            )),
            "{mode}: {}",
            run.stderr
        );
    }
}

#[tokio::test]
async fn invalid_flags_are_usage_errors_that_say_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let run = Binary::run(&["record", "--cassette", "c.json"], &[], dir.path()).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(run.stderr.contains("--upstream <URL>"), "{}", run.stderr);

    let run = Binary::run(
        &[
            "record",
            "--cassette",
            "c.json",
            "--upstream",
            "ghes.example.com",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr
            .contains("(e.g. --upstream https://ghes.example.com)"),
        "{}",
        run.stderr
    );

    let run = Binary::run(&["replay", "--cassette", "missing.json"], &[], dir.path()).await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("cannot read cassette missing.json"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_come_from_the_environment_and_sigterm_saves_and_exits_zero() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("env.json");
    let proxy = Binary::start(
        &["record"],
        &[
            ("GHES_VCR_UPSTREAM", ghes.origin().as_str()),
            ("GHES_VCR_CASSETTE", cassette.to_str().unwrap()),
            ("GHES_VCR_LISTEN", "127.0.0.1:0"),
            ("GHES_VCR_MODE", "all"),
        ],
        dir.path(),
    )
    .await;
    assert!(proxy.url.starts_with("http://127.0.0.1:"), "{}", proxy.url);
    for note in ["one", "two", "three"] {
        let answer = Call::new("POST", "/api/v3/authorizations")
            .auth("octocat", &password)
            .json(json!({"note": note}))
            .send(&client(), &proxy.url)
            .await;
        assert_eq!(answer.status, 201);
    }
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("saved 3 new interactions"),
        "{}",
        finished.stderr
    );
    assert!(!finished.stderr.contains(&password));
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    assert_eq!(saved.interactions.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_logs_each_exchange_while_it_runs_and_what_is_left_at_exit() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let upstream = ghes.origin();
    let mut proxy = Binary::start(
        &[
            "passthrough",
            "--upstream",
            &upstream,
            "--listen",
            "127.0.0.1:0",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    // Each line comes out while the proxy runs, not at exit: the log writer, asleep while no
    // line comes, is woken by the line and writes it out within its 10 ms.
    for _ in 0..2 {
        let answer = Call::new("GET", "/api/v3/authorizations")
            .auth("octocat", &password)
            .send(&client(), &proxy.url)
            .await;
        assert_eq!(answer.status, 200);
        let line = proxy.stderr_line_with(" exchange ").await;
        assert!(
            line.contains("operation=oauth-authorizations/list-authorizations")
                && line.contains("http.status=200")
                && line.contains("outcome=forwarded"),
            "{line}"
        );
    }
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert_eq!(finished.stderr.matches(" exchange ").count(), 2);
    assert!(
        finished.stderr.contains("shutting down"),
        "{}",
        finished.stderr
    );
    assert!(!finished.stderr.contains(&password));
}

/// An upstream that answers one request only when told to, to hold an exchange in flight.
async fn held_upstream() -> (
    String,
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let (arrived_tx, arrived_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let mut seen = Vec::new();
        while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed early");
            seen.extend_from_slice(&buf[..n]);
        }
        let _ = arrived_tx.send(());
        let _ = release_rx.await;
        let body = b"[]";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        let _ = stream.read(&mut buf).await;
    });
    (origin, arrived_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_exchange_in_flight_finish_and_records_it() {
    let (upstream, arrived, release) = held_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("inflight.json");
    let proxy = Binary::start(
        &[
            "record",
            "--upstream",
            &upstream,
            "--cassette",
            cassette.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
        dir.path(),
    )
    .await;
    let url = proxy.url.clone();
    let request = tokio::spawn(async move {
        Call::new("GET", "/api/v3/authorizations")
            .send(&client(), &url)
            .await
    });
    arrived.await.expect("the request reached the upstream");
    proxy.signal("TERM").await;
    release.send(()).unwrap();
    let answer = request.await.unwrap();
    assert_eq!((answer.status, answer.body.as_str()), (200, "[]"));
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    assert_eq!(
        ghes_vcr::cassette::Cassette::load(&cassette)
            .unwrap()
            .interactions
            .len(),
        1
    );
}

/// `ghes-vcr record` in front of `ghes`, as the built binary.
async fn recorder(
    ghes: &FakeGhes,
    cassette: &std::path::Path,
    mode: &str,
    dir: &std::path::Path,
) -> Binary {
    Binary::start(
        &[
            "record",
            "--upstream",
            &ghes.origin(),
            "--cassette",
            cassette.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--mode",
            mode,
        ],
        &[],
        dir,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_recording_leaves_a_whole_cassette_with_every_acknowledged_exchange() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("killed.json");
    let proxy = recorder(&ghes, &cassette, "all", dir.path()).await;
    const CLIENTS: usize = 4;
    let mut creators = crate::support::load::Creators::start(&proxy.url, &password, CLIENTS);
    creators.wait_for(40).await;
    let before_kill = creators.answered();
    proxy.signal("KILL").await;
    let finished = proxy.wait().await;
    assert!(!finished.status.success());
    let answered = creators.join().await;
    let saved =
        ghes_vcr::cassette::Cassette::load(&cassette).expect("the cassette is whole after kill -9");
    let stored = saved.interactions.len();
    assert!(
        stored >= before_kill,
        "every acknowledged exchange is on disk ({stored} < {before_kill})"
    );
    assert!(
        stored <= answered + CLIENTS,
        "at most the in-flight ones more"
    );
    // Later exchanges were appended to the recording log, which every reader applies.
    assert!(ghes_vcr::cassette::recording_log_path(&cassette).exists());
    let replay = crate::support::proxy::InProcess::start(&[
        "replay",
        "--cassette",
        cassette.to_str().unwrap(),
    ])
    .await;
    let health = Call::new("GET", "/__ghes-vcr/health")
        .send(&client(), &replay.url)
        .await;
    assert_eq!(
        health.json()["replay"]["interactions"].as_u64(),
        Some(stored as u64)
    );
    replay.stop().await.unwrap();
    // The next recording writes the whole file and removes the log.
    let resumed = recorder(&ghes, &cassette, "new-episodes", dir.path()).await;
    let fresh = Call::new("GET", "/api/v3/applications/grants/424242")
        .auth("octocat", &password)
        .send(&client(), &resumed.url)
        .await;
    assert_eq!(fresh.status, 404);
    resumed.signal("TERM").await;
    assert!(resumed.wait().await.status.success());
    assert!(!ghes_vcr::cassette::recording_log_path(&cassette).exists());
    let text = std::fs::read_to_string(&cassette).unwrap();
    let whole = ghes_vcr::cassette::Cassette::parse(&cassette, &text).unwrap();
    assert_eq!(whole.interactions.len(), stored + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let (upstream, arrived, _release) = held_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("second.json");
    let proxy = Binary::start(
        &[
            "record",
            "--upstream",
            &upstream,
            "--cassette",
            cassette.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--shutdown-grace",
            "1h",
        ],
        &[],
        dir.path(),
    )
    .await;
    let url = proxy.url.clone();
    let request = tokio::spawn(async move {
        Call::new("GET", "/api/v3/authorizations")
            .send(&client(), &url)
            .await
    });
    arrived.await.expect("the request reached the upstream");
    let addr = proxy.url.trim_start_matches("http://").to_owned();
    proxy.signal("TERM").await;
    // The first signal stops accepting (wait for that) and waits for the held exchange, up to
    // an hour; the second does not wait.
    let stopped_accepting = async {
        while tokio::net::TcpStream::connect(&addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), stopped_accepting)
        .await
        .expect("the first signal stops accepting");
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(130), "{}", finished.stderr);
    assert!(
        finished.stderr.contains("second signal"),
        "{}",
        finished.stderr
    );
    request.abort();
    assert!(
        !cassette.exists() || ghes_vcr::cassette::Cassette::load(&cassette).is_ok(),
        "never a torn file"
    );
}
