//! What the client gets when something goes wrong: an unreachable or stalled upstream, a body
//! over the limit.

use serde_json::json;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::record;
use crate::support::{client, secret, Call};

/// A loopback port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_upstream_gives_a_502_naming_it_and_records_nothing() {
    let port = closed_port().await;
    let upstream = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("down.json");
    let proxy = record(&upstream, &cassette, &[]).await;
    for _ in 0..2 {
        let answer = Call::new("GET", "/api/v3/authorizations")
            .auth("octocat", &secret("pw"))
            .send(&client(), &proxy.url)
            .await;
        assert_eq!(answer.status, 502);
        assert_eq!(
            answer.header("x-ghes-vcr-error"),
            Some("upstream-unreachable")
        );
        let message = answer.json()["message"].as_str().unwrap().to_owned();
        assert!(message.contains(&upstream), "{message}");
        assert!(
            message.to_lowercase().contains("connection refused"),
            "{message}"
        );
        assert!(message.contains("nothing was recorded"), "{message}");
    }
    proxy.stop().await.unwrap();
    assert!(!cassette.exists());
}

#[tokio::test]
async fn passthrough_without_a_journal_names_the_request_redacted_when_the_upstream_is_down() {
    // Plain passthrough keeps nothing of a request, so it captures only what messages name.
    let port = closed_port().await;
    let upstream = format!("http://127.0.0.1:{port}");
    let proxy =
        crate::support::proxy::InProcess::start(&["passthrough", "--upstream", &upstream]).await;
    let token = secret("gho");
    let answer = Call::new(
        "GET",
        format!("/api/v3/authorizations?access_token={token}"),
    )
    .auth("octocat", &secret("pw"))
    .send(&client(), &proxy.url)
    .await;
    assert_eq!(answer.status, 502);
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains(&upstream), "{message}");
    assert!(
        message.contains("GET /api/v3/authorizations?access_token=REDACTED"),
        "{message}"
    );
    assert!(!message.contains(&token), "the token leaked: {message}");
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn stalled_upstream_gives_a_504() {
    // Accepts connections and never answers.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", stalled.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = stalled.accept().await {
            held.push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("stalled.json");
    let proxy = record(&upstream, &cassette, &["--upstream-timeout", "300ms"]).await;
    let answer = Call::new("GET", "/api/v3/authorizations")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.header("x-ghes-vcr-error"), Some("upstream-timeout"));
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .contains(&upstream));
    proxy.stop().await.unwrap();
    holder.abort();
    assert!(!cassette.exists());
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_is_not_forwarded() {
    let ghes = FakeGhes::builder()
        .user("octocat", &secret("pw"))
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("big.json");
    let proxy = record(&ghes.origin(), &cassette, &["--max-body-size", "1KiB"]).await;
    let answer = Call::new("POST", "/api/v3/authorizations")
        .json(json!({"note": "x".repeat(4096)}))
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("x-ghes-vcr-error"), Some("body-too-large"));
    assert!(answer.json()["message"]
        .as_str()
        .unwrap()
        .contains("--max-body-size"));
    proxy.stop().await.unwrap();
    assert_eq!(ghes.hits(), 0);
}
