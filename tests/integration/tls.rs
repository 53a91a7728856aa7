//! TLS both ways: an https upstream with a private CA (trusted with --upstream-ca, refused
//! without it, and with a wrong name, an expired certificate or a missing client certificate),
//! --upstream-insecure, and an https listener speaking h2 and HTTP/1.1 by ALPN.

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{record, Binary, InProcess};
use crate::support::tls::{TestPki, TlsFront};
use crate::support::{client, secret, Answer, Call};

async fn fake() -> (FakeGhes, String) {
    let password = secret("pw");
    (
        FakeGhes::builder().user("octocat", &password).start().await,
        password,
    )
}

async fn list_through(
    upstream: &str,
    extra: &[&str],
    password: &str,
) -> (Answer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = record(upstream, &dir.path().join("tls.json"), extra).await;
    let answer = Call::new("GET", "/api/v3/authorizations")
        .auth("octocat", password)
        .send(&client(), &proxy.url)
        .await;
    proxy.stop().await.unwrap();
    (answer, dir)
}

#[tokio::test]
async fn an_https_upstream_with_a_private_ca_is_trusted_only_with_upstream_ca() {
    let (ghes, password) = fake().await;
    let pki = TestPki::new();
    let (cert, key) = pki.issue(&["localhost"], false);
    let front = TlsFront::start(ghes.addr(), &cert, &key, None).await;
    let upstream = format!("https://localhost:{}", front.addr.port());

    let (refused, dir) = list_through(&upstream, &[], &password).await;
    assert_eq!(refused.status, 502, "{}", refused.body);
    assert_eq!(refused.header("x-ghes-vcr-error"), Some("upstream-tls"));
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains(&upstream)
            && message.contains("unknown CA")
            && message.contains("--upstream-ca"),
        "{message}"
    );
    assert!(!dir.path().join("tls.json").exists(), "nothing recorded");

    let (trusted, dir) = list_through(
        &upstream,
        &["--upstream-ca", pki.ca_pem.to_str().unwrap()],
        &password,
    )
    .await;
    assert_eq!(trusted.status, 200, "{}", trusted.body);
    let saved = ghes_vcr::cassette::Cassette::load(&dir.path().join("tls.json")).unwrap();
    assert_eq!(saved.interactions.len(), 1);
    assert_eq!(ghes.hits(), 1);
}

#[tokio::test]
async fn wrong_host_names_and_expired_certificates_are_named() {
    let (ghes, password) = fake().await;
    let pki = TestPki::new();
    let ca = pki.ca_pem.to_str().unwrap().to_owned();
    let (cert, key) = pki.issue(&["ghes.internal"], false);
    let wrong_name = TlsFront::start(ghes.addr(), &cert, &key, None).await;
    let (answer, _dir) = list_through(
        &format!("https://localhost:{}", wrong_name.addr.port()),
        &["--upstream-ca", &ca],
        &password,
    )
    .await;
    assert_eq!(answer.status, 502);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("wrong host name"),
        "{}",
        answer.body
    );

    let (cert, key) = pki.issue(&["localhost"], true);
    let expired = TlsFront::start(ghes.addr(), &cert, &key, None).await;
    let (answer, _dir) = list_through(
        &format!("https://localhost:{}", expired.addr.port()),
        &["--upstream-ca", &ca],
        &password,
    )
    .await;
    assert_eq!(answer.status, 502);
    assert!(
        answer.json()["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{}",
        answer.body
    );
    assert_eq!(ghes.hits(), 0);
}

#[tokio::test]
async fn a_client_certificate_is_presented_when_the_upstream_asks() {
    let (ghes, password) = fake().await;
    let pki = TestPki::new();
    let ca = pki.ca_pem.to_str().unwrap().to_owned();
    let (cert, key) = pki.issue(&["localhost"], false);
    let front = TlsFront::start(ghes.addr(), &cert, &key, Some(&pki.ca_pem)).await;
    let upstream = format!("https://localhost:{}", front.addr.port());

    let (without, _dir) = list_through(&upstream, &["--upstream-ca", &ca], &password).await;
    assert_eq!(without.status, 502, "{}", without.body);

    let (client_cert, client_key) = pki.issue(&["ghes-vcr"], false);
    let with = [
        "--upstream-ca",
        &ca,
        "--upstream-client-cert",
        client_cert.to_str().unwrap(),
        "--upstream-client-key",
        client_key.to_str().unwrap(),
    ];
    let (answer, _dir) = list_through(&upstream, &with, &password).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn upstream_insecure_is_an_explicit_opt_out_and_needs_i_know_for_passthrough() {
    let (ghes, password) = fake().await;
    let pki = TestPki::new();
    let (cert, key) = pki.issue(&["localhost"], false);
    let front = TlsFront::start(ghes.addr(), &cert, &key, None).await;
    let upstream = format!("https://localhost:{}", front.addr.port());
    let (answer, _dir) = list_through(&upstream, &["--upstream-insecure"], &password).await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    let dir = tempfile::tempdir().unwrap();
    let refused = Binary::run(
        &[
            "passthrough",
            "--upstream",
            &upstream,
            "--upstream-insecure",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        refused.stderr.contains("also needs --i-know"),
        "{}",
        refused.stderr
    );

    let proxy = Binary::start(
        &[
            "passthrough",
            "--upstream",
            &upstream,
            "--upstream-insecure",
            "--i-know",
            "--listen",
            "127.0.0.1:0",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    let answer = Call::new("GET", "/api/v3/authorizations")
        .auth("octocat", &password)
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(answer.status, 200);
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert!(
        finished.stderr.contains("NOT verified"),
        "a warning at start-up: {}",
        finished.stderr
    );
}

#[tokio::test]
async fn the_listener_serves_https_with_h2_and_http1_by_alpn() {
    let pki = TestPki::new();
    let (cert, key) = pki.issue(&["localhost"], false);
    let grants = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes/grants.json");
    let replay = InProcess::start(&[
        "replay",
        "--cassette",
        grants,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ])
    .await;
    let port = replay.url.rsplit(':').next().unwrap().to_owned();
    let base = format!("https://localhost:{port}");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca_pem).unwrap()).unwrap();
    for http1_only in [false, true] {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .add_root_certificate(ca.clone())
            .resolve("localhost", ([127, 0, 0, 1], port.parse().unwrap()).into());
        if http1_only {
            builder = builder.http1_only();
        }
        let https = builder.build().unwrap();
        let response = https
            .get(format!("{base}/api/v3/applications/grants"))
            .basic_auth("octocat", Some("x"))
            .send()
            .await
            .unwrap();
        let expected = if http1_only {
            reqwest::Version::HTTP_11
        } else {
            reqwest::Version::HTTP_2
        };
        assert_eq!(response.version(), expected);
        assert_eq!(response.status(), 200);
        let body = response.text().await.unwrap();
        assert!(
            body.contains(&format!("\"url\":\"{base}/api/v3/applications/grants/")),
            "URLs keep the https origin: {body}"
        );
    }
    replay.stop().await.unwrap();
}
