//! Record through the proxy against the fake GHES, then replay with the upstream stopped.

use serde_json::json;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{record, replay, InProcess};
use crate::support::{client, normalize_origins, secret, Answer, Call};

const USER: &str = "octocat";

async fn fake() -> (FakeGhes, String) {
    let password = secret("password");
    let ghes = FakeGhes::builder().user(USER, &password).start().await;
    (ghes, password)
}

/// A whole client session: list → create → list → get → update (PATCH and POST) →
/// get-or-create (201, 200) → grants → delete → get (404). Ids come from the answers, so the
/// same code drives the recording and the replay.
async fn lifecycle(base: &str, password: &str) -> Vec<(String, Answer)> {
    let client = client();
    let mut answers = Vec::new();
    let mut step = |label: &str, answer: Answer| {
        answers.push((label.to_owned(), answer.clone()));
        answer
    };
    let call = |method, path: String| Call::new(method, path).auth(USER, password);

    step(
        "list",
        call("GET", "/api/v3/authorizations".into())
            .send(&client, base)
            .await,
    );
    let created = step(
        "create",
        call("POST", "/api/v3/authorizations".into())
            .json(json!({"scopes": ["repo", "user"], "note": "ci token", "note_url": "https://ci.example.com"}))
            .send(&client, base)
            .await,
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_u64().expect("id");
    step(
        "list again",
        call("GET", "/api/v3/authorizations".into())
            .send(&client, base)
            .await,
    );
    step(
        "get",
        call("GET", format!("/api/v3/authorizations/{id}"))
            .send(&client, base)
            .await,
    );
    step(
        "patch",
        call("PATCH", format!("/api/v3/authorizations/{id}"))
            .json(json!({"add_scopes": ["gist"]}))
            .send(&client, base)
            .await,
    );
    step(
        "post as patch",
        call("POST", format!("/api/v3/authorizations/{id}"))
            .json(json!({"note": "renamed"}))
            .send(&client, base)
            .await,
    );
    let app =
        json!({"client_secret": secret("client-secret"), "scopes": ["public_repo"], "note": "app"});
    step(
        "get-or-create new",
        call(
            "PUT",
            "/api/v3/authorizations/clients/abcdef0123456789abcd".into(),
        )
        .json(app.clone())
        .send(&client, base)
        .await,
    );
    step(
        "get-or-create existing",
        call(
            "PUT",
            "/api/v3/authorizations/clients/abcdef0123456789abcd".into(),
        )
        .json(app)
        .send(&client, base)
        .await,
    );
    let grants = step(
        "grants",
        call("GET", "/api/v3/applications/grants".into())
            .send(&client, base)
            .await,
    );
    let grant = grants.json()[0]["id"].as_u64().expect("grant id");
    step(
        "grant",
        call("GET", format!("/api/v3/applications/grants/{grant}"))
            .send(&client, base)
            .await,
    );
    step(
        "delete",
        call("DELETE", format!("/api/v3/authorizations/{id}"))
            .send(&client, base)
            .await,
    );
    step(
        "get deleted",
        call("GET", format!("/api/v3/authorizations/{id}"))
            .send(&client, base)
            .await,
    );
    answers
}

/// The body as replay serves it: the origin normalized and minted tokens blanked.
fn comparable(body: &str, tokens: &[String]) -> String {
    let mut text = normalize_origins(body);
    for token in tokens {
        text = text.replace(&format!("\"token\":\"{token}\""), "\"token\":\"\"");
    }
    text
}

fn comparable_headers(answer: &Answer) -> Vec<(String, String)> {
    answer
        .headers
        .iter()
        .filter(|(name, _)| name != "content-length")
        .map(|(name, value)| (name.clone(), normalize_origins(value)))
        .collect()
}

#[tokio::test]
async fn recorded_session_replays_identically_with_the_upstream_stopped() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("session.json");
    let cassette_arg = cassette.to_str().unwrap();

    let recorder = InProcess::start(&[
        "record",
        "--upstream",
        &ghes.origin(),
        "--cassette",
        cassette_arg,
    ])
    .await;
    let recorded = lifecycle(&recorder.url, &password).await;
    let summary = recorder.stop().await.unwrap().expect("a recording summary");
    assert_eq!(summary.recorded, recorded.len() as u64);
    let statuses: Vec<u16> = recorded.iter().map(|(_, a)| a.status).collect();
    assert_eq!(
        statuses,
        [200, 201, 200, 200, 200, 200, 201, 200, 200, 200, 204, 404]
    );
    let tokens = ghes.tokens_issued();
    assert!(
        tokens.len() >= 2,
        "create and get-or-create each minted a token"
    );
    let hits = ghes.hits();
    ghes.stop().await;

    // Another password: replay does not care which credentials CI uses.
    // The recorded Date and no added headers, to compare with what the client saw live.
    let replayer = InProcess::start(&[
        "replay",
        "--cassette",
        cassette_arg,
        "--keep-recorded-date",
        "--no-deprecation-headers",
    ])
    .await;
    let replayed = lifecycle(&replayer.url, &secret("other-password")).await;
    replayer.stop().await.unwrap();

    assert_eq!(
        hits,
        recorded.len(),
        "the upstream saw each recorded request once"
    );
    for ((label, live), (_, replay)) in recorded.iter().zip(&replayed) {
        assert_eq!(live.status, replay.status, "{label}");
        assert_eq!(
            comparable(&live.body, &tokens),
            normalize_origins(&replay.body),
            "{label}: body"
        );
        assert_eq!(
            comparable_headers(live),
            comparable_headers(replay),
            "{label}: headers"
        );
    }
}

#[tokio::test]
async fn once_records_a_new_cassette_then_only_replays_it() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("once.json");
    let args = [
        "record",
        "--upstream",
        &ghes.origin(),
        "--cassette",
        cassette.to_str().unwrap(),
        "--mode",
        "once",
    ];
    let list = Call::new("GET", "/api/v3/authorizations").auth(USER, &password);

    let first = InProcess::start(&args).await;
    assert_eq!(list.send(&client(), &first.url).await.status, 200);
    first.stop().await.unwrap();
    assert_eq!(ghes.hits(), 1);
    let saved = std::fs::read(&cassette).unwrap();

    let second = InProcess::start(&args).await;
    assert_eq!(list.send(&client(), &second.url).await.status, 200);
    let miss = Call::new("GET", "/api/v3/applications/grants")
        .auth(USER, &password)
        .send(&client(), &second.url)
        .await;
    assert_eq!(miss.status, 501);
    assert_eq!(miss.header("x-ghes-vcr-error"), Some("replay-miss"));
    second.stop().await.unwrap();

    assert_eq!(
        ghes.hits(),
        1,
        "once with an existing cassette never touches the upstream"
    );
    assert_eq!(
        std::fs::read(&cassette).unwrap(),
        saved,
        "and never rewrites the cassette"
    );
}

#[tokio::test]
async fn new_episodes_replays_what_matches_and_appends_the_rest() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("episodes.json");
    let list = Call::new("GET", "/api/v3/authorizations").auth(USER, &password);
    let grants = Call::new("GET", "/api/v3/applications/grants").auth(USER, &password);

    let first = record(&ghes.origin(), &cassette, &[]).await;
    list.send(&client(), &first.url).await;
    first.stop().await.unwrap();

    let second = record(&ghes.origin(), &cassette, &["--mode", "new-episodes"]).await;
    assert_eq!(list.send(&client(), &second.url).await.status, 200);
    assert_eq!(ghes.hits(), 1, "the known request was replayed");
    assert_eq!(grants.send(&client(), &second.url).await.status, 200);
    assert_eq!(ghes.hits(), 2, "the new request was forwarded");
    let summary = second.stop().await.unwrap().unwrap();
    assert_eq!((summary.recorded, summary.interactions), (1, 2));

    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    let paths: Vec<&str> = saved
        .interactions
        .iter()
        .map(|i| i.request.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["/api/v3/authorizations", "/api/v3/applications/grants"]
    );
    assert_eq!(
        std::fs::read_to_string(&cassette).unwrap(),
        saved.to_pretty_json(),
        "the loaded interaction is printed as a cassette prints it"
    );
}

#[tokio::test]
async fn all_forwards_everything_and_rewrites_the_cassette() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("all.json");
    let list = Call::new("GET", "/api/v3/authorizations").auth(USER, &password);
    let grants = Call::new("GET", "/api/v3/applications/grants").auth(USER, &password);

    let first = record(&ghes.origin(), &cassette, &[]).await;
    list.send(&client(), &first.url).await;
    grants.send(&client(), &first.url).await;
    first.stop().await.unwrap();

    let second = record(&ghes.origin(), &cassette, &["--mode", "all"]).await;
    list.send(&client(), &second.url).await;
    second.stop().await.unwrap();

    assert_eq!(ghes.hits(), 3, "all forwards even what the cassette held");
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    assert_eq!(
        saved.interactions.len(),
        1,
        "the cassette was written from scratch"
    );
}

#[tokio::test]
async fn a_miss_explains_itself_and_never_looks_like_github() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("miss.json");
    let path = cassette.to_str().unwrap();
    let create = |note: &str| {
        Call::new("POST", "/api/v3/authorizations")
            .auth(USER, &password)
            .json(json!({"scopes": ["repo"], "note": note}))
    };
    let recorder = record(&ghes.origin(), &cassette, &[]).await;
    assert_eq!(
        create("recorded note")
            .send(&client(), &recorder.url)
            .await
            .status,
        201
    );
    recorder.stop().await.unwrap();
    let hits = ghes.hits();

    let replayer = replay(&cassette).await;
    let miss = create("another note").send(&client(), &replayer.url).await;
    replayer.stop().await.unwrap();

    assert_eq!(miss.status, 501);
    assert_eq!(miss.header("x-ghes-vcr-error"), Some("replay-miss"));
    assert_eq!(
        miss.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = miss.json();
    let message = body["message"].as_str().unwrap();
    for needle in [
        "no recording for POST /api/v3/authorizations",
        path,
        "Closest recorded request: POST /api/v3/authorizations",
        "interactions[0]",
        ".note: \"another note\" here, \"recorded note\" recorded",
        "ghes-vcr record --mode new-episodes",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
    assert!(body["documentation_url"].is_string());
    assert_eq!(ghes.hits(), hits, "replay never contacts the upstream");
}

#[tokio::test]
async fn out_of_scope_requests_are_forwarded_but_recorded_only_when_included() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.json");
    let included = dir.path().join("included.json");
    let user = Call::new("GET", "/api/v3/user").auth(USER, &password);

    let proxy = record(&ghes.origin(), &plain, &[]).await;
    let answer = user.send(&client(), &proxy.url).await;
    assert_eq!(
        (answer.status, answer.json()["login"].as_str()),
        (200, Some(USER))
    );
    proxy.stop().await.unwrap();
    assert!(!plain.exists(), "nothing in scope, nothing written");

    let proxy = record(&ghes.origin(), &included, &["--include", "/user"]).await;
    assert_eq!(user.send(&client(), &proxy.url).await.status, 200);
    proxy.stop().await.unwrap();
    let saved = ghes_vcr::cassette::Cassette::load(&included).unwrap();
    assert_eq!(saved.interactions[0].request.path, "/api/v3/user");
    assert_eq!(ghes.hits(), 2);
}

#[tokio::test]
async fn urls_lead_back_through_the_proxy_when_recording_and_replaying() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("urls.json");
    let client = client();
    let create = Call::new("POST", "/api/v3/authorizations")
        .auth(USER, &password)
        .json(json!({"scopes": [], "note": "url check"}));
    let page = Call::new("GET", "/api/v3/authorizations?per_page=1&page=1").auth(USER, &password);

    let recorder = record(&ghes.origin(), &cassette, &[]).await;
    let proxy_url = recorder.url.clone();
    let created = create.send(&client, &proxy_url).await;
    let listed = page.send(&client, &proxy_url).await;
    recorder.stop().await.unwrap();
    let location = created.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{proxy_url}/api/v3/authorizations/")),
        "{location}"
    );
    assert!(created.json()["url"]
        .as_str()
        .unwrap()
        .starts_with(&proxy_url));
    let link = listed
        .header("link")
        .expect("a paginated list has a Link header");
    assert!(
        link.contains(&format!("<{proxy_url}/api/v3/authorizations?")),
        "{link}"
    );
    assert!(!link.contains(&ghes.origin()) && !listed.body.contains(&ghes.origin()));

    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(text.contains("{{origin}}/api/v3/authorizations"));
    assert!(
        !text.contains(&ghes.origin()) && !text.contains(&proxy_url),
        "no real origin in the cassette"
    );

    let replayer = replay(&cassette).await;
    let replay_url = replayer.url.clone();
    let replayed = page.send(&client, &replay_url).await;
    replayer.stop().await.unwrap();
    let link = replayed.header("link").unwrap();
    assert!(
        link.contains(&format!("<{replay_url}/api/v3/authorizations?")),
        "{link}"
    );
    assert!(replayed
        .body
        .contains(&format!("\"url\":\"{replay_url}/api/v3/authorizations/")));
}

#[tokio::test]
async fn no_rewrite_urls_leaves_live_answers_alone() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("raw.json");
    let args = [
        "record",
        "--upstream",
        &ghes.origin(),
        "--cassette",
        cassette.to_str().unwrap(),
        "--no-rewrite-urls",
    ];
    let recorder = InProcess::start(&args).await;
    let listed = Call::new("GET", "/api/v3/authorizations")
        .auth(USER, &password)
        .send(&client(), &recorder.url)
        .await;
    recorder.stop().await.unwrap();
    assert!(listed.body.contains(&ghes.origin()));
    assert!(std::fs::read_to_string(&cassette)
        .unwrap()
        .contains("{{origin}}"));
}

#[tokio::test]
async fn the_cassette_is_readable_json_without_secrets() {
    let (ghes, password) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("readable.json");
    let recorder = record(&ghes.origin(), &cassette, &[]).await;
    let client_secret = secret("client-secret");
    let created = Call::new("PUT", "/api/v3/authorizations/clients/0123456789abcdef0123")
        .auth(USER, &password)
        .header("accept-encoding", "gzip")
        .json(json!({"client_secret": client_secret, "scopes": ["repo"]}))
        .send(&client(), &recorder.url)
        .await;
    recorder.stop().await.unwrap();
    assert_eq!(created.status, 201);

    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(text.ends_with("}\n"));
    let token = ghes.tokens_issued().pop().unwrap();
    for leaked in [
        password.as_str(),
        &client_secret,
        &token,
        &crate::support::basic(USER, &password),
    ] {
        assert!(!text.contains(leaked), "cassette leaks {leaked}");
    }
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    let interaction = &saved.interactions[0];
    assert_eq!(
        interaction.request.header_values("authorization").next(),
        Some("Basic REDACTED user=octocat")
    );
    let body = interaction
        .response
        .body
        .as_json()
        .expect("the response body is stored as JSON");
    assert_eq!(body["token"], "");
    assert_eq!(body["token_last_eight"], token[token.len() - 8..]);
    assert_eq!(
        body["hashed_token"],
        ghes_vcr::redaction::sha256_hex(token.as_bytes())
    );
    assert!(
        interaction
            .response
            .headers
            .iter()
            .all(|(name, _)| name != "content-encoding" && name != "content-length"),
        "stored decoded, without derived headers"
    );
}
