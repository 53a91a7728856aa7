//! Replay that a client cannot tell from GHES, except for the deprecation headers: conditional
//! requests, two-factor flows, pagination, POST-as-PATCH, dates, latency, whole flows, reset.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{record, replay, InProcess};
use crate::support::{client, secret, Answer, Call};

const DEPRECATION_LINK: &str =
    "<https://developer.github.com/changes/2020-02-14-deprecating-oauth-auth-endpoint/>; rel=\"deprecation\"; type=\"text/html\"";

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cassettes")
        .join(name)
}

fn get(path: &str) -> Call {
    Call::new("GET", path).auth("octocat", "any password")
}

async fn send(call: Call, proxy: &InProcess) -> Answer {
    call.send(&client(), &proxy.url).await
}

#[tokio::test]
async fn deprecated_families_carry_the_three_headers_and_pagination_links_survive() {
    let proxy = replay(&sample("pagination.json")).await;
    let page = send(get("/api/v3/authorizations?per_page=2&page=1"), &proxy).await;
    assert_eq!(page.header("deprecation"), Some("@1581638400"));
    assert_eq!(page.header("sunset"), Some("Fri, 13 Nov 2020 16:00:00 GMT"));
    let link = page.header("link").unwrap();
    let pagination = format!(
        "<{}/api/v3/authorizations?per_page=2&page=2>; rel=\"next\"",
        proxy.url
    );
    assert!(link.starts_with(&pagination), "{link}");
    assert!(
        link.ends_with(&format!(", {DEPRECATION_LINK}")),
        "appended with a comma: {link}"
    );
    proxy.stop().await.unwrap();

    let custom = InProcess::start(&[
        "replay",
        "--cassette",
        sample("grants.json").to_str().unwrap(),
        "--deprecation-date",
        "2024-01-01",
        "--sunset-date",
        "2025-06-30T12:00:00Z",
        "--deprecation-link",
        "https://wiki.example.com/oauth-migration",
    ])
    .await;
    let grants = send(get("/api/v3/applications/grants"), &custom).await;
    assert_eq!(grants.header("deprecation"), Some("@1704067200"));
    assert_eq!(
        grants.header("sunset"),
        Some("Mon, 30 Jun 2025 12:00:00 GMT")
    );
    assert_eq!(
        grants.header("link"),
        Some("<https://wiki.example.com/oauth-migration>; rel=\"deprecation\"; type=\"text/html\"")
    );
    custom.stop().await.unwrap();

    let off = InProcess::start(&[
        "replay",
        "--cassette",
        sample("grants.json").to_str().unwrap(),
        "--no-deprecation-headers",
    ])
    .await;
    let grants = send(get("/api/v3/applications/grants"), &off).await;
    assert!(
        grants.header("deprecation").is_none()
            && grants.header("sunset").is_none()
            && grants.header("link").is_none()
    );
    off.stop().await.unwrap();
}

#[tokio::test]
async fn other_paths_get_no_deprecation_headers_and_inject_deprecation_marks_live_answers() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("user.json");
    let recorder = record(
        &ghes.origin(),
        &cassette,
        &["--include", "/user", "--inject-deprecation"],
    )
    .await;
    let live_list = get("/api/v3/authorizations")
        .auth("octocat", &password)
        .send(&client(), &recorder.url)
        .await;
    let live_user = Call::new("GET", "/api/v3/user")
        .auth("octocat", &password)
        .send(&client(), &recorder.url)
        .await;
    recorder.stop().await.unwrap();
    assert_eq!(
        live_list.header("deprecation"),
        Some("@1581638400"),
        "live answers are marked"
    );
    assert_eq!(live_list.header("link"), Some(DEPRECATION_LINK));
    assert!(
        live_user.header("deprecation").is_none(),
        "only the deprecated families"
    );
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(
        !text.contains("deprecation"),
        "injected headers are not recorded"
    );

    let proxy = replay(&cassette).await;
    let user = Call::new("GET", "/api/v3/user")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(user.status, 200);
    assert!(user.header("deprecation").is_none() && user.header("sunset").is_none());
    assert!(
        send(get("/authorizations"), &proxy)
            .await
            .header("deprecation")
            .is_some(),
        "also without /api/v3"
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn conditional_gets_get_304_with_validators_and_no_body() {
    let proxy = replay(&sample("grants.json")).await;
    let fresh = send(get("/api/v3/applications/grants/1"), &proxy).await;
    assert_eq!(fresh.status, 200);
    let etag = fresh.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with("W/"),
        "GHES sends weak tags on GET: {etag}"
    );

    let strong = etag.trim_start_matches("W/").to_owned();
    for tag in [
        etag.clone(),
        strong,
        format!("\"other\", {etag}"),
        "*".to_owned(),
    ] {
        let cached = send(
            get("/api/v3/applications/grants/1").header("if-none-match", tag.clone()),
            &proxy,
        )
        .await;
        assert_eq!(
            (cached.status, cached.body.as_str()),
            (304, ""),
            "If-None-Match: {tag}"
        );
        assert_eq!(cached.header("etag"), Some(etag.as_str()));
        for kept in [
            "cache-control",
            "vary",
            "last-modified",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "date",
            "x-github-request-id",
        ] {
            assert!(cached.header(kept).is_some(), "304 keeps {kept}");
        }
        assert!(
            cached.header("content-type").is_none(),
            "304 has no representation headers"
        );
    }
    let changed = send(
        get("/api/v3/applications/grants/1").header("if-none-match", "W/\"stale\""),
        &proxy,
    )
    .await;
    assert_eq!(changed.status, 200);

    let modified = fresh.header("last-modified").unwrap().to_owned();
    let since = send(
        get("/api/v3/applications/grants/1").header("if-modified-since", modified),
        &proxy,
    )
    .await;
    assert_eq!(since.status, 304);
    let older = send(
        get("/api/v3/applications/grants/1")
            .header("if-modified-since", "Mon, 01 Jan 2001 00:00:00 GMT"),
        &proxy,
    )
    .await;
    assert_eq!(older.status, 200);
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn two_factor_challenge_then_retry_with_any_code() {
    let proxy = replay(&sample("two-factor.json")).await;
    let create = Call::new("POST", "/api/v3/authorizations")
        .auth("mona", "any password")
        .json(json!({"scopes": ["repo"], "note": "two-factor login"}));
    let reset = || async {
        Call::new("POST", "/__ghes-vcr/reset")
            .send(&client(), &proxy.url)
            .await
    };

    let challenge = create.send(&client(), &proxy.url).await;
    assert_eq!(
        (challenge.status, challenge.header("x-github-otp")),
        (401, Some("required; app"))
    );
    assert_eq!(
        challenge.json()["message"],
        "Must specify two-factor authentication OTP code."
    );
    let retry = create
        .clone()
        .header("x-github-otp", "314159")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(retry.status, 201, "{}", retry.body);

    assert_eq!(reset().await.status, 200);
    let at_once = create
        .clone()
        .header("x-github-otp", "271828")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(
        at_once.status, 201,
        "a client that sends its code at once gets the token"
    );

    assert_eq!(reset().await.status, 200);
    assert_eq!(create.send(&client(), &proxy.url).await.status, 401);
    assert_eq!(
        create.send(&client(), &proxy.url).await.status,
        401,
        "no code, still challenged"
    );
    assert_eq!(
        create
            .clone()
            .header("x-github-otp", "1")
            .send(&client(), &proxy.url)
            .await
            .status,
        201
    );
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn pages_are_selected_by_query_and_links_point_at_the_replay() {
    let proxy = replay(&sample("pagination.json")).await;
    let second = send(get("/api/v3/authorizations?page=2&per_page=2"), &proxy).await;
    let first = send(get("/api/v3/authorizations?per_page=2&page=1"), &proxy).await;
    let ids = |answer: &Answer| -> Vec<u64> {
        answer
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&first).len(), 2);
    assert_eq!(ids(&second).len(), 1);
    assert!(ids(&first).iter().all(|id| !ids(&second).contains(id)));
    let link = second.header("link").unwrap();
    assert!(
        link.starts_with(&format!(
            "<{}/api/v3/authorizations?per_page=2&page=1>; rel=\"prev\"",
            proxy.url
        )),
        "{link}"
    );
    assert!(second
        .body
        .contains(&format!("\"url\":\"{}/api/v3/authorizations/", proxy.url)));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn post_and_patch_updates_replay_only_for_the_method_recorded() {
    let proxy = replay(&sample("authorizations.json")).await;
    let created = send(
        Call::new("POST", "/api/v3/authorizations").auth("octocat", "x").json(json!({
            "scopes": ["repo", "read:org"], "note": "deploy tool", "note_url": "https://deploy.example.com",
            "client_id": "0123456789abcdef0123", "client_secret": "any"
        })),
        &proxy,
    )
    .await;
    let item = format!("/api/v3/authorizations/{}", created.json()["id"]);
    let by_post = send(
        Call::new("POST", &item)
            .auth("octocat", "x")
            .json(json!({"remove_scopes": ["read:org"]})),
        &proxy,
    )
    .await;
    assert_eq!(by_post.status, 200, "{}", by_post.body);
    let by_patch = send(
        Call::new("PATCH", &item)
            .auth("octocat", "x")
            .json(json!({"remove_scopes": ["read:org"]})),
        &proxy,
    )
    .await;
    assert_eq!(
        by_patch.status, 501,
        "a PATCH does not replay a recorded POST"
    );
    assert_eq!(by_patch.header("x-ghes-vcr-error"), Some("replay-miss"));
    proxy.stop().await.unwrap();
}

#[tokio::test]
async fn date_is_the_replay_time_and_rate_limit_reset_moves_with_it() {
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cassette = ghes_vcr::cassette::Cassette::load(&sample("grants.json")).unwrap();
    let recorded = &cassette.interactions[0].response.headers;
    let recorded_value = |name: &str| {
        recorded
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let recorded_date = httpdate_secs(&recorded_value("date"));
    let recorded_reset: u64 = recorded_value("x-ratelimit-reset").parse().unwrap();

    let proxy = replay(&sample("grants.json")).await;
    let answer = send(get("/api/v3/applications/grants"), &proxy).await;
    proxy.stop().await.unwrap();
    let date = httpdate_secs(answer.header("date").unwrap());
    assert!(date >= before, "Date is the time of the replay");
    let reset: u64 = answer.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert_eq!(
        reset - date,
        recorded_reset - recorded_date,
        "X-RateLimit-Reset moved as much as Date"
    );
    let names = |headers: &[(String, String)]| -> Vec<String> {
        headers
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !["link", "deprecation", "sunset", "content-length"].contains(&n.as_str()))
            .collect()
    };
    assert_eq!(
        names(&answer.headers),
        names(recorded),
        "recorded order and duplicates"
    );
    assert_eq!(
        answer.header("content-length"),
        Some(answer.body.len().to_string().as_str())
    );

    let kept = InProcess::start(&[
        "replay",
        "--cassette",
        sample("grants.json").to_str().unwrap(),
        "--keep-recorded-date",
    ])
    .await;
    let answer = send(get("/api/v3/applications/grants"), &kept).await;
    kept.stop().await.unwrap();
    assert_eq!(answer.header("date"), Some(recorded_value("date").as_str()));
    assert_eq!(
        answer.header("x-ratelimit-reset"),
        Some(recorded_reset.to_string().as_str())
    );
}

fn httpdate_secs(text: &str) -> u64 {
    httpdate::parse_http_date(text)
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn latency_fixed_and_recorded() {
    let fixed = InProcess::start(&[
        "replay",
        "--cassette",
        sample("grants.json").to_str().unwrap(),
        "--latency",
        "150",
    ])
    .await;
    let started = Instant::now();
    assert_eq!(
        send(get("/api/v3/applications/grants"), &fixed)
            .await
            .status,
        200
    );
    assert!(
        started.elapsed().as_millis() >= 150,
        "waited the fixed latency"
    );
    fixed.stop().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.json");
    let mut cassette = ghes_vcr::cassette::Cassette::load(&sample("grants.json")).unwrap();
    cassette.interactions[0].latency_ms = Some(120);
    std::fs::write(&slow, cassette.to_pretty_json()).unwrap();
    let recorded = InProcess::start(&[
        "replay",
        "--cassette",
        slow.to_str().unwrap(),
        "--latency",
        "recorded",
    ])
    .await;
    let started = Instant::now();
    assert_eq!(
        send(get("/api/v3/applications/grants"), &recorded)
            .await
            .status,
        200
    );
    assert!(
        started.elapsed().as_millis() >= 120,
        "waited the recorded latency"
    );
    recorded.stop().await.unwrap();
}

/// list → create (201) → get-or-create existing (200, token "") → update → get → delete (204)
/// → get (404).
async fn whole_flow(base: &str, password: &str) -> Vec<(u16, String)> {
    let client = client();
    let call = |method, path: &str| Call::new(method, path).auth("octocat", password);
    let app = "f00dfeedf00dfeedf00d";
    let mut seen = Vec::new();
    let mut push = |answer: Answer| {
        seen.push((
            answer.status,
            crate::support::normalize_origins(&answer.body),
        ));
        answer
    };
    push(
        call("GET", "/api/v3/authorizations")
            .send(&client, base)
            .await,
    );
    let created = push(
        call("POST", "/api/v3/authorizations")
            .json(json!({"scopes": ["repo"], "note": "flow", "client_id": app, "client_secret": secret("cs")}))
            .send(&client, base)
            .await,
    );
    let id = created.json()["id"].as_u64().unwrap();
    let existing = push(
        call("PUT", &format!("/api/v3/authorizations/clients/{app}"))
            .json(json!({"client_secret": secret("cs"), "scopes": ["repo"]}))
            .send(&client, base)
            .await,
    );
    assert_eq!(existing.json()["token"], "");
    let item = format!("/api/v3/authorizations/{id}");
    push(
        call("PATCH", &item)
            .json(json!({"note": "flow (renamed)"}))
            .send(&client, base)
            .await,
    );
    push(call("GET", &item).send(&client, base).await);
    push(call("DELETE", &item).send(&client, base).await);
    push(call("GET", &item).send(&client, base).await);
    seen
}

#[tokio::test]
async fn a_whole_flow_replays_in_order_and_again_after_reset() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("flow.json");
    let recorder = record(&ghes.origin(), &cassette, &[]).await;
    let live = whole_flow(&recorder.url, &password).await;
    recorder.stop().await.unwrap();
    let statuses: Vec<u16> = live.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [200, 201, 200, 200, 200, 204, 404]);
    let hits = ghes.hits();

    let proxy = replay(&cassette).await;
    for round in 0..2 {
        if round > 0 {
            let reset = Call::new("POST", "/__ghes-vcr/reset")
                .send(&client(), &proxy.url)
                .await;
            assert_eq!(
                (reset.status, reset.json()["rewound"].as_bool()),
                (200, Some(true))
            );
        }
        let replayed = whole_flow(&proxy.url, &secret("other")).await;
        for ((live_status, live_body), (status, body)) in live.iter().zip(&replayed) {
            assert_eq!(live_status, status, "round {round}");
            if *status != 201 {
                assert_eq!(live_body, body, "round {round}");
            }
        }
    }
    proxy.stop().await.unwrap();
    assert_eq!(ghes.hits(), hits, "replay never reaches the upstream");
}

#[tokio::test]
async fn admin_endpoints_answer_and_are_never_forwarded() {
    let ghes = FakeGhes::builder()
        .user("octocat", &secret("pw"))
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = record(
        &ghes.origin(),
        &dir.path().join("admin.json"),
        &["--include", "/"],
    )
    .await;
    let health = Call::new("GET", "/__ghes-vcr/health")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["mode"], "record");
    let wrong = Call::new("GET", "/__ghes-vcr/reset")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!((wrong.status, wrong.header("allow")), (405, Some("POST")));
    let unknown = Call::new("GET", "/__ghes-vcr/nope")
        .send(&client(), &proxy.url)
        .await;
    assert_eq!(
        (unknown.status, unknown.header("x-ghes-vcr-error")),
        (404, Some("unknown-admin-endpoint"))
    );
    proxy.stop().await.unwrap();
    assert_eq!(ghes.hits(), 0);
}
