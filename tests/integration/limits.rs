//! Limits and the never-an-open-proxy rules, over raw sockets where a real client would not
//! misbehave: absolute-form targets, CONNECT, oversized headers, too many connections, a
//! slow-loris client, an upstream that resets mid-body, X-Forwarded-* headers, shutdown under
//! load, JSON logs.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{record, Binary, InProcess};
use crate::support::{client, secret, Call};

/// Sends raw bytes and reads until the server closes or a whole head has arrived.
async fn raw(url: &str, request: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 8192];
    let mut seen = Vec::new();
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&seen);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if seen.len() >= head_end + 4 + length {
                break;
            }
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn absolute_form_to_other_hosts_and_connect_are_refused() {
    let ghes = FakeGhes::builder()
        .user("octocat", &secret("pw"))
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = record(
        &ghes.origin(),
        &dir.path().join("c.json"),
        &["--include", "/"],
    )
    .await;
    let answer = raw(
        &proxy.url,
        "GET http://example.com/api/v3/authorizations HTTP/1.1\r\nHost: example.com\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("x-ghes-vcr-error: not-a-forward-proxy"),
        "{answer}"
    );
    let answer = raw(
        &proxy.url,
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    // An absolute form naming the proxy itself is just a request.
    let own = proxy.url.trim_start_matches("http://").to_owned();
    let answer = raw(
        &proxy.url,
        &format!(
            "GET http://{own}/api/v3/meta HTTP/1.1\r\nHost: {own}\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert!(
        !answer.starts_with("HTTP/1.1 400"),
        "forwarded, as any request: {answer}"
    );
    proxy.stop().await.unwrap();
    assert_eq!(
        ghes.hits(),
        1,
        "only the request to the proxy itself was forwarded"
    );
}

#[tokio::test]
async fn forwarded_headers_tell_the_upstream_who_asked() {
    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = record(&ghes.origin(), &dir.path().join("c.json"), &[]).await;
    Call::new("GET", "/api/v3/authorizations")
        .auth("octocat", &password)
        .send(&client(), &proxy.url)
        .await;
    proxy.stop().await.unwrap();
    let seen = ghes.requests().pop().unwrap();
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some(proxy_host(&seen)));
    assert_eq!(
        seen.header("host"),
        Some(ghes.addr().to_string().as_str()),
        "Host is the upstream's"
    );

    let proxy = record(
        &ghes.origin(),
        &dir.path().join("d.json"),
        &["--no-forwarded-headers"],
    )
    .await;
    Call::new("GET", "/api/v3/authorizations")
        .auth("octocat", &password)
        .send(&client(), &proxy.url)
        .await;
    proxy.stop().await.unwrap();
    assert!(ghes
        .requests()
        .pop()
        .unwrap()
        .header("x-forwarded-for")
        .is_none());
}

fn proxy_host(seen: &crate::support::fake_ghes::SeenRequest) -> &str {
    seen.header("x-forwarded-host")
        .filter(|h| h.starts_with("127.0.0.1:"))
        .unwrap_or("missing")
}

#[tokio::test]
async fn oversized_headers_get_431_and_too_many_connections_get_503() {
    let grants = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes/grants.json");
    let proxy = InProcess::start(&[
        "replay",
        "--cassette",
        grants,
        "--max-header-size",
        "2KiB",
        "--max-connections",
        "1",
    ])
    .await;
    let big = Call::new("GET", "/api/v3/applications/grants")
        .header("x-padding", "p".repeat(4096))
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(
        (big.status, big.header("x-ghes-vcr-error")),
        (431, Some("headers-too-large"))
    );
    assert!(big.json()["message"]
        .as_str()
        .unwrap()
        .contains("--max-header-size"));

    // One idle connection takes the only slot; the next one is told to come back.
    let held = TcpStream::connect(proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let busy = raw(
        &proxy.url,
        "GET /api/v3/applications/grants HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert!(busy.starts_with("HTTP/1.1 503"), "{busy}");
    assert!(
        busy.contains("x-ghes-vcr-error: too-many-connections"),
        "{busy}"
    );
    drop(held);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn a_slow_loris_client_is_cut_off_after_the_header_timeout() {
    let grants = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes/grants.json");
    let proxy = InProcess::start(&[
        "replay",
        "--cassette",
        grants,
        "--client-header-timeout",
        "300ms",
    ])
    .await;
    let mut stream = TcpStream::connect(proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /api/v3/applications/grants HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // The headers never end; the proxy answers 408 and closes the connection.
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen).await;
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408 Request Timeout"), "{text}");
    assert!(text.contains("x-ghes-vcr-error: request-timeout"), "{text}");
    assert!(
        text.contains("\"message\":\"ghes-vcr closed this connection"),
        "{text}"
    );
    // The proxy still serves others.
    let answer = Call::new("GET", "/api/v3/applications/grants")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(answer.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn an_upstream_that_resets_mid_body_gives_502_and_the_proxy_keeps_serving() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[{\"id\":1,").await;
                // Dropped here: the body ends 991 bytes early.
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("reset.json");
    let proxy = record(&upstream, &cassette, &[]).await;
    for _ in 0..2 {
        let answer = Call::new("GET", "/api/v3/authorizations")
            .send(&client(), &proxy.url)
            .await;
        assert_eq!(answer.status, 502, "{}", answer.body);
        assert_eq!(
            answer.header("x-ghes-vcr-error"),
            Some("upstream-bad-response")
        );
        assert!(answer.json()["message"]
            .as_str()
            .unwrap()
            .contains(&upstream));
    }
    proxy.stop().await.unwrap();
    assert!(!cassette.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_loses_no_recorded_exchange_and_logs_json() {
    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("load.json");
    let proxy = Binary::start(
        &[
            "record",
            "--upstream",
            &ghes.origin(),
            "--cassette",
            cassette.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--mode",
            "all",
            "--log-format",
            "json",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    let mut creators = crate::support::load::Creators::start(&proxy.url, &password, 4);
    creators.wait_for(30).await;
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
    let answered = creators.join().await;
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    assert_eq!(
        saved.interactions.len(),
        answered,
        "every answered exchange is in the cassette, and no other"
    );
    for line in finished.stderr.lines() {
        let entry: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(
            entry["level"].is_string() && entry["message"].is_string(),
            "{line}"
        );
    }
}

/// Sends one request for the grants list on a raw connection to a replay of the bundled grants
/// cassette started with `extra`, and reads until the proxy closes the connection: everything
/// read, when the answer began, and when the connection closed.
async fn one_request_then_idle(
    extra: &[&str],
) -> (
    String,
    std::time::Instant,
    Option<std::time::Instant>,
    std::time::Instant,
) {
    let grants = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes/grants.json");
    let mut args = vec!["replay", "--cassette", grants];
    args.extend_from_slice(extra);
    let proxy = InProcess::start(&args).await;
    let mut stream = TcpStream::connect(proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /api/v3/applications/grants HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    let mut seen = Vec::new();
    let mut buf = [0u8; 16384];
    let mut answered = None;
    loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if answered.is_none() && seen.starts_with(b"HTTP/1.1 200") {
            answered = Some(std::time::Instant::now());
        }
    }
    let closed = std::time::Instant::now();
    proxy.stop().await.unwrap();
    (
        String::from_utf8_lossy(&seen).into_owned(),
        asked,
        answered,
        closed,
    )
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    // Read the answer, then keep reading: the idle connection is closed by the proxy.
    let (text, ..) = one_request_then_idle(&["--client-header-timeout", "300ms"]).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("HTTP/1.1 408 Request Timeout"),
        "the idle connection is told why: {text}"
    );
}

#[tokio::test]
async fn a_slow_answer_is_not_cut_off_and_the_idle_clock_starts_after_it() {
    // The answer takes longer than the header timeout: time spent answering is not idle time.
    let (text, asked, answered, closed) =
        one_request_then_idle(&["--client-header-timeout", "300ms", "--latency", "700"]).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let answered = answered.expect("answered");
    assert!(answered - asked >= std::time::Duration::from_millis(700));
    assert!(
        text.contains("HTTP/1.1 408 Request Timeout"),
        "then idle, it is told why: {text}"
    );
    assert!(
        closed - answered >= std::time::Duration::from_millis(300),
        "the idle time counts from the answer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answer_is_cut_off_without_a_408_inside_it() {
    // The proxy is still writing the answer when the client stops reading, for longer than the
    // header timeout.
    let (proxy, _dir) = big_answer("300ms").await;
    let addr = proxy.url.trim_start_matches("http://").to_owned();
    let mut reader = TcpStream::connect(&addr).await.unwrap();
    reader
        .write_all(b"GET /api/v3/authorizations HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = vec![0u8; 64 * 1024];
    let n = reader.read(&mut seen).await.unwrap();
    seen.truncate(n);
    // Hold off for two header timeouts, one after the other: each idle connection opened in
    // turn is told off when its timeout has passed.
    for _ in 0..2 {
        let mut idle = TcpStream::connect(&addr).await.unwrap();
        let mut told = Vec::new();
        idle.read_to_end(&mut told).await.unwrap();
        assert!(String::from_utf8_lossy(&told).contains("408"));
    }
    reader.read_to_end(&mut seen).await.unwrap();
    let head_end = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section")
        + 4;
    let head = String::from_utf8_lossy(&seen[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {BIG}")), "{head}");
    let body = &seen[head_end..];
    assert!(
        body.len() < BIG,
        "a client that stopped reading for the timeout is cut off"
    );
    assert!(
        body.iter().all(|b| *b == b'x'),
        "and nothing was written into the part it got (no 408 inside an answer)"
    );
    proxy.stop().await.unwrap();
}

/// The size of [`big_answer`]'s body: far larger than loopback's socket buffers.
const BIG: usize = 24 * 1024 * 1024;

/// A replay whose one answer (`GET /api/v3/authorizations`) is [`BIG`] bytes of `x`.
async fn big_answer(header_timeout: &str) -> (InProcess, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("big.json");
    let text = serde_json::json!({
        "version": 1,
        "recorded_with": "ghes-vcr test",
        "upstream": "{{origin}}",
        "interactions": [{
            "request": {"method": "GET", "path": "/api/v3/authorizations", "query": [], "headers": []},
            "response": {
                "status": 200,
                "headers": [["content-type", "text/plain"]],
                "body": {"text": "x".repeat(BIG)}
            }
        }]
    });
    std::fs::write(&cassette, text.to_string()).unwrap();
    let proxy = InProcess::start(&[
        "replay",
        "--cassette",
        cassette.to_str().unwrap(),
        "--client-header-timeout",
        header_timeout,
        "--no-deprecation-headers",
    ])
    .await;
    (proxy, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_reading_a_long_answer_gets_it_whole() {
    // Sending the answer may take longer than the header timeout; it is not idle time.
    let (proxy, _dir) = big_answer("1s").await;
    let mut reader = TcpStream::connect(proxy.url.trim_start_matches("http://"))
        .await
        .unwrap();
    reader
        .write_all(b"GET /api/v3/authorizations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).await.unwrap();
    let head_end = seen
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section")
        + 4;
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    assert_eq!(
        seen.len() - head_end,
        BIG,
        "the whole answer, and nothing after it"
    );
    assert!(seen[head_end..].iter().all(|b| *b == b'x'));
    proxy.stop().await.unwrap();
}
