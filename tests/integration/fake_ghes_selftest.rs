//! Self-tests of the fake GHES upstream: real HTTP over 127.0.0.1, one fresh server per test.

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::fake_ghes::{self, FakeGhes, DEFAULT_START_TIME};

const LOGIN: &str = "octocat";
const PASSWORD: &str = "hunter2";

async fn fake() -> FakeGhes {
    FakeGhes::builder().user(LOGIN, PASSWORD).start().await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!(
                "body is not JSON ({err}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:#?}", self.headers))
            .to_str()
            .expect("header is ASCII")
    }
}

/// One request as `octocat` (Basic auth) with optional JSON body and extra headers.
async fn call(
    ghes: &FakeGhes,
    method: Method,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> Answer {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/api/v3{path}", ghes.origin()))
        .basic_auth(LOGIN, Some(PASSWORD));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("fake GHES answers");
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.expect("body arrives"),
    }
}

async fn get(ghes: &FakeGhes, path: &str) -> Answer {
    call(ghes, Method::GET, path, None, &[]).await
}

async fn create_pat(ghes: &FakeGhes, note: &str) -> Answer {
    call(
        ghes,
        Method::POST,
        "/authorizations",
        Some(json!({"scopes": ["repo"], "note": note})),
        &[],
    )
    .await
}

#[tokio::test]
async fn create_returns_201_with_token_matching_hash_and_last_eight() {
    let ghes = fake().await;

    let created = call(
        &ghes,
        Method::POST,
        "/authorizations",
        Some(json!({"scopes": ["repo", "gist"], "note": "ci", "note_url": "https://ci.example"})),
        &[],
    )
    .await;

    assert_eq!(created.status, StatusCode::CREATED);
    let body = created.json();
    let token = body["token"].as_str().expect("token is a string");
    assert!(fake_ghes::token_checksum_ok(token), "bad checksum: {token}");
    assert_eq!(
        body["hashed_token"],
        fake_ghes::sha256_hex(token.as_bytes())
    );
    assert_eq!(body["token_last_eight"], token[token.len() - 8..]);
    assert_eq!(body["id"], 2, "the seeded token is id 1");
    let url = format!("{}/api/v3/authorizations/2", ghes.origin());
    assert_eq!(body["url"], url);
    assert_eq!(created.header("location"), url);
    assert_eq!(
        created.header("etag"),
        format!(
            "\"{}\"",
            fake_ghes::entity_hash(&created.body, &ghes.origin())
        )
    );
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "url",
            "app",
            "token",
            "hashed_token",
            "token_last_eight",
            "note",
            "note_url",
            "created_at",
            "updated_at",
            "scopes",
            "fingerprint",
            "user"
        ]
    );
    assert_eq!(
        body["app"],
        json!({"client_id": "00000000000000000000", "name": "ci", "url": "https://docs.github.com/enterprise/rest/reference/enterprise-admin#list-personal-access-tokens"})
    );
    assert_eq!(body["user"]["login"], LOGIN);
    assert_eq!(ghes.tokens_issued().last().map(String::as_str), Some(token));
    ghes.stop().await;
}

#[tokio::test]
async fn list_grows_after_create_and_never_shows_tokens() {
    let ghes = fake().await;

    let before = get(&ghes, "/authorizations").await.json();
    assert_eq!(
        before.as_array().unwrap().len(),
        1,
        "seeded token: {before}"
    );
    assert_eq!(before[0]["note"], fake_ghes::SEEDED_PAT_NOTE);
    assert_eq!(before[0]["app"]["name"], fake_ghes::SEEDED_PAT_NOTE);

    create_pat(&ghes, "deploy").await;
    let after = get(&ghes, "/authorizations").await;

    assert_eq!(after.status, StatusCode::OK);
    let after = after.json();
    let notes: Vec<&Value> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["note"])
        .collect();
    assert_eq!(notes, [fake_ghes::SEEDED_PAT_NOTE, "deploy"]);
    assert!(after.as_array().unwrap().iter().all(|a| a["token"] == ""));
    ghes.stop().await;
}

#[tokio::test]
async fn get_or_create_returns_201_then_200_with_empty_token() {
    let ghes = fake().await;
    let body = json!({"client_secret": "s3cret", "scopes": ["repo"], "note": "app"});

    let first = call(
        &ghes,
        Method::PUT,
        "/authorizations/clients/myclient/fp1",
        Some(body.clone()),
        &[],
    )
    .await;
    let second = call(
        &ghes,
        Method::PUT,
        "/authorizations/clients/myclient/fp1",
        Some(body.clone()),
        &[],
    )
    .await;
    let other_fingerprint = call(
        &ghes,
        Method::PUT,
        "/authorizations/clients/myclient/fp2",
        Some(body),
        &[],
    )
    .await;
    let no_secret = call(
        &ghes,
        Method::PUT,
        "/authorizations/clients/myclient",
        Some(json!({"scopes": ["repo"]})),
        &[],
    )
    .await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::OK);
    let (first_body, second_body) = (first.json(), second.json());
    assert!(first_body["token"].as_str().unwrap().starts_with("ghp_"));
    assert_eq!(second_body["token"], "");
    assert_eq!(second_body["id"], first_body["id"]);
    assert_eq!(second_body["hashed_token"], first_body["hashed_token"]);
    assert_eq!(second_body["app"]["name"], "App myclient");
    assert_eq!(second_body["fingerprint"], "fp1");
    assert_eq!(second.header("location"), first.header("location"));
    assert_eq!(other_fingerprint.status, StatusCode::CREATED);
    assert_eq!(no_secret.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        no_secret.json()["errors"],
        json!([{"resource": "OauthAccess", "field": "client_secret", "code": "missing_field"}])
    );
    let grants = get(&ghes, "/applications/grants?client_id=myclient")
        .await
        .json();
    assert_eq!(
        grants.as_array().unwrap().len(),
        1,
        "one grant per app: {grants}"
    );
    ghes.stop().await;
}

#[tokio::test]
async fn duplicate_note_is_422_already_exists() {
    let ghes = fake().await;

    let first = create_pat(&ghes, "laptop").await;
    let again = create_pat(&ghes, "laptop").await;

    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    let body = again.json();
    assert_eq!(body["message"], "Validation Failed");
    assert_eq!(
        body["errors"],
        json!([{"resource": "OauthAccess", "code": "already_exists", "field": "description"}])
    );
    assert_eq!(
        ghes.tokens_issued().len(),
        2,
        "seeded + first, none for the 422"
    );
    ghes.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_github_errors() {
    let ghes = fake().await;
    let raw = |body: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/api/v3/authorizations", ghes.origin()))
            .basic_auth(LOGIN, Some(PASSWORD))
            .body(body)
            .send()
    };

    let not_json = raw("{nope").await.unwrap();
    let not_object = raw("[1]").await.unwrap();
    let bad_scopes = create_scopes(&ghes, json!("repo")).await;
    let two_scope_edits = call(
        &ghes,
        Method::PATCH,
        "/authorizations/1",
        Some(json!({"scopes": ["a"], "add_scopes": ["b"]})),
        &[],
    )
    .await;

    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        not_json.json::<Value>().await.unwrap()["message"],
        "Problems parsing JSON"
    );
    assert_eq!(not_object.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        not_object.json::<Value>().await.unwrap()["message"],
        "Body should be a JSON object"
    );
    assert_eq!(bad_scopes.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_scopes.json()["errors"][0]["code"], "invalid");
    assert_eq!(two_scope_edits.status, StatusCode::UNPROCESSABLE_ENTITY);
    ghes.stop().await;
}

async fn create_scopes(ghes: &FakeGhes, scopes: Value) -> Answer {
    let body = json!({"scopes": scopes, "note": "x"});
    call(ghes, Method::POST, "/authorizations", Some(body), &[]).await
}

#[tokio::test]
async fn two_factor_user_gets_otp_challenge_then_succeeds_with_code() {
    let ghes = FakeGhes::builder()
        .user_with_otp(LOGIN, PASSWORD, "123456")
        .start()
        .await;
    let note = Some(json!({"note": "2fa"}));

    let without = call(&ghes, Method::POST, "/authorizations", note.clone(), &[]).await;
    let wrong = call(
        &ghes,
        Method::POST,
        "/authorizations",
        note.clone(),
        &[("x-github-otp", "000000")],
    )
    .await;
    let right = call(
        &ghes,
        Method::POST,
        "/authorizations",
        note,
        &[("x-github-otp", "123456")],
    )
    .await;

    for challenged in [&without, &wrong] {
        assert_eq!(challenged.status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenged.header("x-github-otp"), "required; app");
        assert_eq!(
            challenged.json(),
            json!({
                "message": "Must specify two-factor authentication OTP code.",
                "documentation_url": "https://docs.github.com/enterprise-server@3.0/rest/overview/other-authentication-methods#working-with-two-factor-authentication"
            })
        );
    }
    assert_eq!(right.status, StatusCode::CREATED);
    ghes.stop().await;
}

#[tokio::test]
async fn only_basic_auth_with_the_right_password_is_accepted() {
    let ghes = fake().await;
    let url = format!("{}/api/v3/authorizations", ghes.origin());
    let client = reqwest::Client::new();

    let token = client
        .get(&url)
        .header("authorization", "token ghp_x")
        .send()
        .await
        .unwrap();
    let bearer = client.get(&url).bearer_auth("ghp_x").send().await.unwrap();
    let missing = client.get(&url).send().await.unwrap();
    let wrong = client
        .get(&url)
        .basic_auth(LOGIN, Some("nope"))
        .send()
        .await
        .unwrap();

    for forbidden in [token, bearer] {
        assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            forbidden.json::<Value>().await.unwrap()["message"],
            "This API can only be accessed with username and password Basic Auth"
        );
    }
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/enterprise-server@3.0/rest/reference/oauth-authorizations"})
    );
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/enterprise-server@3.0/rest"})
    );
    ghes.stop().await;
}

#[tokio::test]
async fn per_page_1_gives_link_header_with_absolute_urls() {
    let ghes = fake().await;
    create_pat(&ghes, "two").await;
    create_pat(&ghes, "three").await;
    let base = format!("{}/api/v3/authorizations", ghes.origin());

    let first = get(&ghes, "/authorizations?per_page=1").await;
    let middle = get(&ghes, "/authorizations?per_page=1&page=2").await;
    let all = get(&ghes, "/authorizations").await;

    assert_eq!(
        first.header("link"),
        format!(
            "<{base}?per_page=1&page=2>; rel=\"next\", <{base}?per_page=1&page=3>; rel=\"last\""
        )
    );
    assert_eq!(
        middle.header("link"),
        format!(
            "<{base}?per_page=1&page=1>; rel=\"prev\", <{base}?per_page=1&page=3>; rel=\"next\", \
             <{base}?per_page=1&page=3>; rel=\"last\", <{base}?per_page=1&page=1>; rel=\"first\""
        )
    );
    assert_eq!(middle.json()[0]["note"], "two");
    assert!(
        all.headers.get("link").is_none(),
        "everything fits on one page"
    );
    assert_eq!(all.json().as_array().unwrap().len(), 3);
    ghes.stop().await;
}

#[tokio::test]
async fn json_answers_carry_ghes_headers_from_the_fake_clock() {
    let ghes = fake().await;

    let first = get(&ghes, "/authorizations/1").await;
    let second = get(&ghes, "/authorizations/1").await;

    assert_eq!(first.header("date"), "Thu, 15 Jan 2026 10:00:00 GMT");
    assert_eq!(second.header("date"), "Thu, 15 Jan 2026 10:00:01 GMT");
    assert_eq!(
        first.header("last-modified"),
        "Wed, 14 Jan 2026 10:00:00 GMT"
    );
    assert_eq!(first.header("server"), "GitHub.com");
    assert_eq!(
        first.header("content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(
        first.header("cache-control"),
        "private, max-age=60, s-maxage=60"
    );
    let vary: Vec<&str> = first
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        vary,
        [
            "Accept, Authorization, Cookie, X-GitHub-OTP",
            "Accept-Encoding, Accept, X-Requested-With"
        ]
    );
    assert_eq!(
        first.header("etag"),
        format!(
            "W/\"{}\"",
            fake_ghes::entity_hash(&first.body, &ghes.origin())
        )
    );
    assert_eq!(
        first.header("x-github-media-type"),
        "github.v3; format=json"
    );
    assert_eq!(first.header("x-github-enterprise-version"), "3.0.25");
    assert_eq!(first.header("x-ratelimit-limit"), "5000");
    assert_eq!(first.header("x-ratelimit-remaining"), "4999");
    assert_eq!(second.header("x-ratelimit-remaining"), "4998");
    assert_eq!(second.header("x-ratelimit-used"), "2");
    assert_eq!(
        first.header("x-ratelimit-reset"),
        (DEFAULT_START_TIME + 3600).to_string()
    );
    assert_eq!(first.header("x-ratelimit-resource"), "core");
    assert_eq!(first.header("access-control-allow-origin"), "*");
    assert_eq!(
        first.header("content-security-policy"),
        "default-src 'none'"
    );
    let request_id = first.header("x-github-request-id");
    let groups: Vec<&str> = request_id.split(':').collect();
    assert_eq!(groups.len(), 5, "{request_id}");
    assert!(groups
        .iter()
        .all(|g| g.chars().all(|c| matches!(c, '0'..='9' | 'A'..='F'))));
    assert_ne!(request_id, second.header("x-github-request-id"));
    assert_eq!(first.json()["created_at"], "2026-01-14T10:00:00Z");

    let quiet = FakeGhes::builder()
        .user(LOGIN, PASSWORD)
        .rate_limit_headers(false)
        .start()
        .await;
    assert!(get(&quiet, "/user")
        .await
        .headers
        .get("x-ratelimit-limit")
        .is_none());
    quiet.stop().await;
    ghes.stop().await;
}

#[tokio::test]
async fn conditional_get_with_matching_etag_is_304() {
    let ghes = fake().await;
    let fresh = get(&ghes, "/authorizations/1").await;
    let etag = fresh.header("etag").to_owned();

    let cached = call(
        &ghes,
        Method::GET,
        "/authorizations/1",
        None,
        &[("if-none-match", &etag)],
    )
    .await;
    // Weak comparison: the strong form of the same tag matches too.
    let strong = etag.trim_start_matches("W/");
    let cached_strong = call(
        &ghes,
        Method::GET,
        "/authorizations/1",
        None,
        &[("if-none-match", strong)],
    )
    .await;
    let stale = call(
        &ghes,
        Method::GET,
        "/authorizations/1",
        None,
        &[("if-none-match", "W/\"0\"")],
    )
    .await;

    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), etag);
    assert_eq!(
        cached.header("last-modified"),
        fresh.header("last-modified")
    );
    assert_eq!(
        cached.header("x-ratelimit-remaining"),
        "4999",
        "304s are free"
    );
    assert!(cached.headers.get("content-type").is_none());
    assert_eq!(cached_strong.status, StatusCode::NOT_MODIFIED);
    assert_eq!(stale.status, StatusCode::OK);
    ghes.stop().await;
}

#[tokio::test]
async fn gzip_only_when_asked() {
    let ghes = fake().await;

    let zipped = call(
        &ghes,
        Method::GET,
        "/authorizations",
        None,
        &[("accept-encoding", "gzip, deflate")],
    )
    .await;
    let plain = call(
        &ghes,
        Method::GET,
        "/authorizations",
        None,
        &[("accept-encoding", "identity")],
    )
    .await;

    assert_eq!(zipped.header("content-encoding"), "gzip");
    let mut unzipped = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&zipped.body[..]),
        &mut unzipped,
    )
    .expect("valid gzip");
    assert_eq!(unzipped, plain.body);
    assert!(plain.headers.get("content-encoding").is_none());
    ghes.stop().await;
}

#[tokio::test]
async fn delete_is_204_then_get_is_404() {
    let ghes = fake().await;
    let id = create_pat(&ghes, "temp").await.json()["id"].clone();
    let path = format!("/authorizations/{id}");

    let deleted = call(&ghes, Method::DELETE, &path, None, &[]).await;
    let gone = get(&ghes, &path).await;
    let grant_deleted = call(&ghes, Method::DELETE, "/applications/grants/1", None, &[]).await;
    let grants = get(&ghes, "/applications/grants").await;

    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(deleted.body.is_empty());
    assert!(deleted.headers.get("content-type").is_none());
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.json()["message"], "Not Found");
    assert_eq!(grant_deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(grants.json(), json!([]));
    ghes.stop().await;
}

#[tokio::test]
async fn stop_closes_keep_alive_connections_and_refuses_new_ones() {
    let ghes = fake().await;
    let addr = ghes.addr();
    let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /api/v3/meta HTTP/1.1\r\nHost: ghes\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    while !response.ends_with(b"}") {
        let mut chunk = [0u8; 4096];
        let n = idle.read(&mut chunk).await.unwrap();
        assert_ne!(n, 0, "closed early: {}", String::from_utf8_lossy(&response));
        response.extend_from_slice(&chunk[..n]);
    }
    assert!(response.starts_with(b"HTTP/1.1 200 OK\r\n"));

    ghes.stop().await;

    let mut rest = [0u8; 16];
    let after = idle.read(&mut rest).await;
    assert!(
        matches!(after, Ok(0) | Err(_)),
        "connection still open: {after:?}"
    );
    let refused = tokio::net::TcpStream::connect(addr).await;
    assert_eq!(
        refused.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
}

#[tokio::test]
async fn serves_h2c_with_prior_knowledge() {
    let ghes = fake().await;
    let stream = tokio::net::TcpStream::connect(ghes.addr()).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .expect("h2c handshake");
    tokio::spawn(connection);
    let request = http::Request::get(format!("{}/api/v3/meta", ghes.origin()))
        .body(http_body_util::Empty::<Bytes>::new())
        .unwrap();

    let response = sender.send_request(request).await.expect("h2 response");

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(ghes.requests()[0].version, http::Version::HTTP_2);
    ghes.stop().await;
}

#[tokio::test]
async fn same_requests_give_byte_identical_responses() {
    async fn session() -> (Vec<String>, Vec<fake_ghes::SeenRequest>) {
        let ghes = FakeGhes::builder()
            .user(LOGIN, PASSWORD)
            .public_origin("https://ghes.example.com")
            .start()
            .await;
        let mut transcript = Vec::new();
        let steps = [
            (
                Method::POST,
                "/authorizations",
                Some(json!({"note": "a", "scopes": ["repo"]})),
            ),
            (
                Method::PUT,
                "/authorizations/clients/cid",
                Some(json!({"client_secret": "s"})),
            ),
            (
                Method::PATCH,
                "/authorizations/2",
                Some(json!({"add_scopes": ["gist"]})),
            ),
            (Method::GET, "/authorizations?per_page=2", None),
            (Method::GET, "/applications/grants", None),
        ];
        for (method, path, body) in steps {
            let answer = call(&ghes, method, path, body, &[]).await;
            let mut headers: Vec<String> = answer
                .headers
                .iter()
                .map(|(name, value)| format!("{name}: {}", value.to_str().unwrap()))
                .collect();
            headers.sort();
            transcript.push(format!(
                "{}\n{}\n{}",
                answer.status,
                headers.join("\n"),
                String::from_utf8_lossy(&answer.body)
            ));
        }
        let seen = ghes.requests();
        ghes.stop().await;
        (transcript, seen)
    }

    let (one, seen) = session().await;
    let (two, _) = session().await;

    assert_eq!(one, two);
    assert!(
        one[0].contains("date: Thu, 15 Jan 2026 10:00:00 GMT"),
        "{}",
        one[0]
    );
    assert!(one[3].contains("<https://ghes.example.com/api/v3/authorizations?per_page=2&page=2>"));
    assert_eq!(seen.len(), 5);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/api/v3/authorizations");
    assert_eq!(seen[3].query, "per_page=2");
    assert_eq!(
        seen[0].body_json(),
        Some(json!({"note": "a", "scopes": ["repo"]}))
    );
    assert!(seen[0]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}
