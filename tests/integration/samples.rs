//! The sample cassettes in `cassettes/`: recorded with `ghes-vcr record` against the fake GHES
//! (this test re-records them and fails if the checked-in files differ; run it with
//! `GHES_VCR_UPDATE_SAMPLES=1` to rewrite them), and served by `ghes-vcr replay`.

use std::path::{Path, PathBuf};

use ghes_vcr::cassette::{Body, Cassette};
use serde_json::json;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{record, InProcess};
use crate::support::{client, secret, Answer, Call};

const USER: &str = "octocat";
const OTP_USER: &str = "mona";
const APP: &str = "0123456789abcdef0123";

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("cassettes")
}

struct Session {
    ghes: FakeGhes,
    proxy: InProcess,
    password: String,
    otp_password: String,
    otp: String,
}

impl Session {
    async fn start(cassette: &Path) -> Self {
        let password = secret("password");
        let otp_password = secret("password");
        let otp = secret("otp");
        let ghes = FakeGhes::builder()
            .user(USER, &password)
            .user_with_otp(OTP_USER, &otp_password, &otp)
            .start()
            .await;
        let proxy = record(&ghes.origin(), cassette, &["--mode", "all"]).await;
        Self {
            ghes,
            proxy,
            password,
            otp_password,
            otp,
        }
    }

    fn call(&self, method: &'static str, path: &str) -> Call {
        Call::new(method, path).auth(USER, &self.password)
    }

    async fn send(&self, call: Call) -> Answer {
        call.send(&client(), &self.proxy.url).await
    }

    /// Sent to the fake directly: set-up that is not part of the recording.
    async fn setup(&self, call: Call) -> Answer {
        call.send(&client(), &self.ghes.origin()).await
    }

    async fn finish(self) {
        self.proxy.stop().await.unwrap();
        self.ghes.stop().await;
    }
}

async fn record_authorizations(path: &Path) {
    let s = Session::start(path).await;
    assert_eq!(
        s.send(s.call("GET", "/api/v3/authorizations")).await.status,
        200
    );
    let created = s
        .send(s.call("POST", "/api/v3/authorizations").json(json!({
            "scopes": ["repo", "read:org"],
            "note": "deploy tool",
            "note_url": "https://deploy.example.com",
            "client_id": APP,
            "client_secret": secret("client-secret"),
        })))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_u64().unwrap();
    let item = format!("/api/v3/authorizations/{id}");
    assert_eq!(
        s.send(s.call("GET", "/api/v3/authorizations")).await.status,
        200
    );
    assert_eq!(s.send(s.call("GET", &item)).await.status, 200);
    assert_eq!(
        s.send(
            s.call("PATCH", &item)
                .json(json!({"add_scopes": ["gist"], "note": "deploy tool (ci)"}))
        )
        .await
        .status,
        200
    );
    assert_eq!(
        s.send(
            s.call("POST", &item)
                .json(json!({"remove_scopes": ["read:org"]}))
        )
        .await
        .status,
        200
    );
    assert_eq!(s.send(s.call("DELETE", &item)).await.status, 204);
    assert_eq!(s.send(s.call("GET", &item)).await.status, 404);
    s.finish().await;
}

async fn record_get_or_create(path: &Path) {
    let s = Session::start(path).await;
    let body = json!({"client_secret": secret("client-secret"), "scopes": ["public_repo"], "note": "editor plugin"});
    let app = format!("/api/v3/authorizations/clients/{APP}");
    assert_eq!(
        s.send(s.call("PUT", &app).json(body.clone())).await.status,
        201
    );
    assert_eq!(
        s.send(s.call("PUT", &app).json(body.clone())).await.status,
        200
    );
    let fingerprinted = format!("{app}/laptop-7f3a");
    assert_eq!(
        s.send(s.call("PUT", &fingerprinted).json(body.clone()))
            .await
            .status,
        201
    );
    assert_eq!(
        s.send(s.call("PUT", &fingerprinted).json(body))
            .await
            .status,
        200
    );
    s.finish().await;
}

async fn record_grants(path: &Path) {
    let s = Session::start(path).await;
    let grants = s.send(s.call("GET", "/api/v3/applications/grants")).await;
    assert_eq!(grants.status, 200);
    let id = grants.json()[0]["id"].as_u64().unwrap();
    let item = format!("/api/v3/applications/grants/{id}");
    assert_eq!(s.send(s.call("GET", &item)).await.status, 200);
    assert_eq!(s.send(s.call("DELETE", &item)).await.status, 204);
    s.finish().await;
}

async fn record_two_factor(path: &Path) {
    let s = Session::start(path).await;
    let create = Call::new("POST", "/api/v3/authorizations")
        .auth(OTP_USER, &s.otp_password)
        .json(json!({"scopes": ["repo"], "note": "two-factor login"}));
    let challenge = s.send(create.clone()).await;
    assert_eq!(
        (challenge.status, challenge.header("x-github-otp")),
        (401, Some("required; app"))
    );
    assert_eq!(
        s.send(create.header("x-github-otp", s.otp.clone()))
            .await
            .status,
        201
    );
    s.finish().await;
}

async fn record_validation_failed(path: &Path) {
    let s = Session::start(path).await;
    let body = json!({"scopes": ["repo"], "note": "release bot"});
    assert_eq!(
        s.setup(s.call("POST", "/api/v3/authorizations").json(body.clone()))
            .await
            .status,
        201
    );
    let duplicate = s
        .send(s.call("POST", "/api/v3/authorizations").json(body))
        .await;
    assert_eq!(duplicate.status, 422, "{}", duplicate.body);
    s.finish().await;
}

async fn record_pagination(path: &Path) {
    let s = Session::start(path).await;
    for note in ["build agent 1", "build agent 2"] {
        let body = json!({"scopes": ["repo"], "note": note});
        assert_eq!(
            s.setup(s.call("POST", "/api/v3/authorizations").json(body))
                .await
                .status,
            201
        );
    }
    let first = s
        .send(s.call("GET", "/api/v3/authorizations?per_page=2&page=1"))
        .await;
    assert!(first.header("link").unwrap().contains("rel=\"next\""));
    let second = s
        .send(s.call("GET", "/api/v3/authorizations?per_page=2&page=2"))
        .await;
    assert!(second.header("link").unwrap().contains("rel=\"prev\""));
    s.finish().await;
}

/// Records every sample into `dir`.
async fn record_samples(dir: &Path) -> Vec<&'static str> {
    record_authorizations(&dir.join("authorizations.json")).await;
    record_get_or_create(&dir.join("get-or-create.json")).await;
    record_grants(&dir.join("grants.json")).await;
    record_two_factor(&dir.join("two-factor.json")).await;
    record_validation_failed(&dir.join("validation-failed.json")).await;
    record_pagination(&dir.join("pagination.json")).await;
    vec![
        "authorizations.json",
        "get-or-create.json",
        "grants.json",
        "two-factor.json",
        "validation-failed.json",
        "pagination.json",
    ]
}

#[tokio::test]
async fn sample_cassettes_are_what_record_produces() {
    let fresh = tempfile::tempdir().unwrap();
    let names = record_samples(fresh.path()).await;
    let update = std::env::var_os("GHES_VCR_UPDATE_SAMPLES").is_some();
    for name in names {
        let recorded = std::fs::read_to_string(fresh.path().join(name)).unwrap();
        let checked_in = samples_dir().join(name);
        if update {
            std::fs::write(&checked_in, &recorded).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
        assert!(
            without_latency(&current) == without_latency(&recorded),
            "cassettes/{name} differs from a fresh recording; if the change is intended, run \
             GHES_VCR_UPDATE_SAMPLES=1 cargo test samples and review the diff.\n--- fresh recording ---\n{recorded}"
        );
    }
}

/// The upstream's latency changes from run to run; everything else must not.
fn without_latency(text: &str) -> String {
    text.lines()
        .filter(|line| !line.trim_start().starts_with("\"latency_ms\":"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The operation an interaction exercises, without the `oauth-authorizations/` prefix.
fn operation(method: &str, path: &str) -> &'static str {
    ghes_vcr::operations::operation(method, path)
        .map_or("other", |id| id.trim_start_matches("oauth-authorizations/"))
}

#[tokio::test]
async fn every_sample_replays_its_recorded_answers_in_order() {
    let mut operations = std::collections::BTreeSet::new();
    let mut statuses = std::collections::BTreeSet::new();
    for loaded in ghes_vcr::cassette::load_set(&samples_dir()).unwrap() {
        let replay =
            InProcess::start(&["replay", "--cassette", loaded.path.to_str().unwrap()]).await;
        for interaction in &loaded.cassette.interactions {
            let request = &interaction.request;
            let mut path = request.path.clone();
            if !request.query.is_empty() {
                let pairs: Vec<String> = request
                    .query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                path = format!("{path}?{}", pairs.join("&"));
            }
            // Any credentials, any OTP code: replay matches on the redacted request.
            let mut call =
                Call::new(leak(&request.method), path).auth(USER, &secret("any-password"));
            if request.header_values("x-github-otp").next().is_some() {
                call = call.header("x-github-otp", "000000");
            }
            if let Body::Json(body) = &request.body {
                call = call.json(body.value().clone());
            }
            let answer = call.send(&client(), &replay.url).await;
            assert_eq!(
                answer.status,
                interaction.response.status,
                "{}: {}",
                loaded.path.display(),
                request.summary()
            );
            operations.insert(operation(&request.method, &request.path));
            statuses.insert((operation(&request.method, &request.path), answer.status));
        }
        replay.stop().await.unwrap();
    }
    assert_eq!(operations.len(), 10, "all 10 operations: {operations:?}");
    for expected in [
        ("get-or-create-authorization-for-app", 201),
        ("get-or-create-authorization-for-app", 200),
        ("create-authorization", 401),
        ("create-authorization", 422),
    ] {
        assert!(statuses.contains(&expected), "{expected:?} in {statuses:?}");
    }
}

fn leak(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        other => panic!("unexpected method {other}"),
    }
}

#[tokio::test]
async fn the_readme_curls_work_on_the_default_cassette_directory() {
    // cargo runs integration tests from the package root, where the default `cassettes` is.
    let replay = InProcess::start(&["replay"]).await;
    for path in ["/api/v3/authorizations", "/api/v3/applications/grants"] {
        // curl -I first: the status and headers the GET will get, no body, nothing used up.
        let head = Call::new("HEAD", path).send(&client(), &replay.url).await;
        assert_eq!((head.status, head.body.as_str()), (200, ""));
        let answer = Call::new("GET", path)
            .auth("anyone", "anything")
            .send(&client(), &replay.url)
            .await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert!(
            answer
                .json()
                .as_array()
                .is_some_and(|list| !list.is_empty()),
            "{path}"
        );
        assert_eq!(head.header("etag"), answer.header("etag"));
        assert_eq!(
            head.header("content-length"),
            answer.header("content-length")
        );
    }
    replay.stop().await.unwrap();
}

#[test]
fn sample_cassettes_load_and_hold_no_origin() {
    for loaded in ghes_vcr::cassette::load_set(&samples_dir()).unwrap() {
        let text = std::fs::read_to_string(&loaded.path).unwrap();
        assert!(!text.contains("127.0.0.1"), "{}", loaded.path.display());
        assert!(!loaded.cassette.interactions.is_empty());
        let _ = Cassette::load(&loaded.path).unwrap();
    }
}

#[tokio::test]
async fn replay_speaks_http2_in_the_clear() {
    let replay = InProcess::start(&["replay"]).await;
    let h2 = reqwest::Client::builder()
        .no_proxy()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(format!("{}/api/v3/applications/grants", replay.url))
        .basic_auth("octocat", Some("anything"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.text().await.unwrap();
    assert!(
        body.contains(&format!(
            "\"url\":\"{}/api/v3/applications/grants/",
            replay.url
        )),
        "{body}"
    );
    replay.stop().await.unwrap();
}
