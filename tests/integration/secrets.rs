//! No secret reaches any byte ghes-vcr writes: cassettes, stdout, stderr. Every secret here is
//! built at run time.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::json;

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{Binary, InProcess};
use crate::support::{basic, client, secret, Call};

/// A 40-character lower-case hex value, like a legacy token.
fn hex40(label: &str) -> String {
    let a = secret(label);
    let b = secret(label);
    let hex: String = format!("{a}{b}")
        .bytes()
        .map(|byte| format!("{:x}", byte % 16))
        .collect();
    hex[hex.len() - 40..].to_owned()
}

const REDACT_FLAGS: [&str; 6] = [
    "--redact-header",
    "x-internal-key",
    "--redact-json-key",
    "api_key",
    "--redact-regex",
    "corp-[0-9a-f]{16}",
];

struct Secrets {
    password: String,
    otp_password: String,
    otp: String,
    legacy_token: String,
    query_token: String,
    client_secret: String,
    cookie: String,
    internal_key: String,
    api_key: String,
    corp_id: String,
}

impl Secrets {
    fn new() -> Self {
        let corp: String = hex40("corp")[..16].to_owned();
        Self {
            password: secret("password"),
            otp_password: secret("otp-password"),
            otp: format!("{:06}", secret("otp").len() * 7919 % 1_000_000),
            legacy_token: hex40("legacy"),
            query_token: hex40("query"),
            client_secret: hex40("client-secret"),
            cookie: secret("cookie"),
            internal_key: secret("internal-key"),
            api_key: secret("api-key"),
            corp_id: format!("corp-{corp}"),
        }
    }

    fn all(&self, minted: &[String]) -> Vec<String> {
        let mut all = vec![
            self.password.clone(),
            self.otp_password.clone(),
            self.legacy_token.clone(),
            self.query_token.clone(),
            self.client_secret.clone(),
            self.cookie.clone(),
            self.internal_key.clone(),
            self.api_key.clone(),
            self.corp_id.clone(),
        ];
        all.extend(minted.iter().cloned());
        all
    }
}

/// Every way a client of this API hands over a secret, sent through `url`.
async fn send_secrets(url: &str, s: &Secrets, round: &str) -> Vec<u16> {
    let client = client();
    let mut statuses = Vec::new();
    let created = Call::new("POST", "/api/v3/authorizations")
        .auth("octocat", &s.password)
        .header("x-internal-key", s.internal_key.clone())
        .header("cookie", format!("_gh_sess={}", s.cookie))
        .json(json!({"scopes": ["repo"], "note": format!("{round} for {}", s.corp_id), "api_key": s.api_key}))
        .send(&client, url)
        .await;
    statuses.push(created.status);
    let token = created.json()["token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = Call::new("GET", "/api/v3/user")
        .header("authorization", format!("token {token}"))
        .send(&client, url)
        .await;
    statuses.push(user.status);
    let legacy = Call::new("GET", "/api/v3/user")
        .header("authorization", format!("token {}", s.legacy_token))
        .send(&client, url)
        .await;
    statuses.push(legacy.status);
    let query = Call::new(
        "GET",
        format!("/api/v3/authorizations?access_token={}", s.query_token),
    )
    .auth("octocat", &s.password)
    .send(&client, url)
    .await;
    statuses.push(query.status);
    let app = Call::new(
        "PUT",
        format!(
            "/api/v3/authorizations/clients/abcdef0123456789{}",
            &round[..4]
        ),
    )
    .auth("octocat", &s.password)
    .json(json!({"client_secret": s.client_secret, "scopes": ["repo"]}))
    .send(&client, url)
    .await;
    statuses.push(app.status);
    let otp_create = Call::new("POST", "/api/v3/authorizations")
        .auth("mona", &s.otp_password)
        .json(json!({"scopes": [], "note": format!("{round} 2fa")}));
    statuses.push(otp_create.send(&client, url).await.status);
    statuses.push(
        otp_create
            .header("x-github-otp", s.otp.clone())
            .send(&client, url)
            .await
            .status,
    );
    statuses
}

/// Fails if `text` holds any secret, or its base64 form.
fn assert_clean(what: &str, text: &str, secrets: &[String], basics: &[String]) {
    for secret in secrets {
        assert!(
            !text.contains(secret.as_str()),
            "{what} holds a secret ({} chars)",
            secret.len()
        );
        assert!(
            !text.contains(&BASE64.encode(secret)),
            "{what} holds a secret in base64"
        );
    }
    for basic in basics {
        assert!(
            !text.contains(basic.as_str()),
            "{what} holds a Basic credential"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_planted_secret_reaches_cassettes_or_logs_and_replay_still_matches() {
    let s = Secrets::new();
    let ghes = FakeGhes::builder()
        .user("octocat", &s.password)
        .user_with_otp("mona", &s.otp_password, &s.otp)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cassettes = dir.path().join("cassettes");
    let cassette = cassettes.join("secrets.json");
    let base = [
        "record",
        "--upstream",
        &ghes.origin(),
        "--cassette",
        cassette.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--include",
        "/user",
    ];

    let journal = dir.path().join("journal");
    let journal_flag = ["--journal", journal.to_str().unwrap()];
    let origin = ghes.origin();
    let passthrough = [
        "passthrough",
        "--upstream",
        &origin,
        "--listen",
        "127.0.0.1:0",
        "--include",
        "/user",
    ];
    let mut logs = Vec::new();
    let mut mid_run = Vec::new();
    for (round, mode) in [
        ("first", "all"),
        ("second", "new-episodes"),
        ("third", "passthrough"),
    ] {
        let args: Vec<&str> = if mode == "passthrough" {
            passthrough
                .iter()
                .copied()
                .chain(journal_flag)
                .chain(REDACT_FLAGS)
                .collect()
        } else {
            base.iter()
                .copied()
                .chain(["--mode", mode])
                .chain(journal_flag)
                .chain(REDACT_FLAGS)
                .collect()
        };
        let proxy = Binary::start(&args, &[], dir.path()).await;
        let statuses = send_secrets(&proxy.url, &s, round).await;
        assert_eq!(statuses, [201, 200, 401, 200, 201, 401, 201], "{round}");
        if mode != "passthrough" {
            // While it runs, the recording log holds the answers (the file is written whole
            // at the end): it is on disk too.
            let log = ghes_vcr::cassette::recording_log_path(&cassette);
            assert!(log.exists(), "{round}: a recording log mid-run");
            for entry in std::fs::read_dir(&cassettes).unwrap() {
                let path = entry.unwrap().path();
                mid_run.push((
                    path.display().to_string(),
                    std::fs::read_to_string(&path).unwrap(),
                ));
            }
        }
        proxy.signal("TERM").await;
        let finished = proxy.wait().await;
        assert_eq!(finished.status.code(), Some(0), "{}", finished.stderr);
        logs.push(format!("{}{}", finished.stdout, finished.stderr));
    }

    let minted = ghes.tokens_issued();
    let secrets = s.all(&minted);
    let basics = vec![
        basic("octocat", &s.password),
        basic("mona", &s.otp_password),
    ];
    for entry in std::fs::read_dir(&cassettes).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_clean(&path.display().to_string(), &text, &secrets, &basics);
    }
    for (path, text) in &mid_run {
        assert_clean(&format!("{path} (mid-run)"), text, &secrets, &basics);
    }
    for log in &logs {
        assert!(log.contains("journal closed"), "the log was captured");
        assert_clean("the log", log, &secrets, &basics);
    }
    let mut journal_files = vec![journal.clone()];
    let mut scanned = 0;
    while let Some(path) = journal_files.pop() {
        if path.is_dir() {
            journal_files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_clean(
            &path.display().to_string(),
            &String::from_utf8_lossy(&bytes),
            &secrets,
            &basics,
        );
        scanned += bytes.len();
    }
    assert!(scanned > 0);
    let tail = Binary::run(
        &["journal", "tail", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(
        tail.stdout.lines().count(),
        21,
        "three rounds of seven exchanges: {}",
        tail.stderr
    );
    assert_clean("journal tail", &tail.stdout, &secrets, &basics);

    // token_last_eight and hashed_token are those of the real tokens.
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    let created: Vec<&serde_json::Value> = saved
        .interactions
        .iter()
        .filter(|i| i.response.status == 201)
        .filter_map(|i| i.response.body.as_json())
        .collect();
    assert_eq!(created.len(), 6);
    for body in created {
        let real = minted
            .iter()
            .find(|token| ghes_vcr::redaction::sha256_hex(token.as_bytes()) == body["hashed_token"])
            .expect("hashed_token is the SHA-256 of a token the upstream minted");
        assert_eq!(body["token_last_eight"], real[real.len() - 8..]);
        assert_eq!(body["token"], "");
    }

    // The audit passes what ghes-vcr wrote.
    let audit = Binary::run(
        &["cassette", "audit", cassettes.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(
        audit.status.code(),
        Some(0),
        "{}{}",
        audit.stdout,
        audit.stderr
    );

    // Replay with other credentials, OTP, client secret and user-rule values still matches.
    ghes.stop().await;
    let other = Secrets::new();
    let replay_args: Vec<&str> = ["replay", "--cassette", cassette.to_str().unwrap()]
        .into_iter()
        .chain(REDACT_FLAGS)
        .collect();
    let replay = InProcess::start(&replay_args).await;
    let statuses = send_secrets(&replay.url, &other, "first").await;
    replay.stop().await.unwrap();
    assert_eq!(statuses, [201, 200, 401, 200, 201, 401, 201]);
}

#[tokio::test]
async fn audit_finds_a_planted_leak_and_passes_the_bundled_cassettes() {
    let dir = tempfile::tempdir().unwrap();
    let bundled = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes");
    let clean = Binary::run(&["cassette", "audit", bundled], &[], dir.path()).await;
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        clean.stdout,
        clean.stderr
    );

    let leaked = dir.path().join("leaked.json");
    let original = std::fs::read_to_string(format!("{bundled}/two-factor.json")).unwrap();
    let token = format!("ghp_{}", hex40("planted")[..36].to_owned());
    let planted = original.replacen("\"token\": \"\"", &format!("\"token\": \"{token}\""), 1);
    assert_ne!(planted, original);
    std::fs::write(&leaked, &planted).unwrap();
    let line = planted.lines().position(|l| l.contains(&token)).unwrap() + 1;

    let run = Binary::run(
        &["cassette", "audit", dir.path().to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    let expected = format!("{}:{line}: github-token: ", leaked.display());
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "{}:{line}: token-hash-mismatch: ",
            leaked.display()
        )),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains(&token) && !run.stderr.contains(&token),
        "the audit masks what it finds"
    );

    let missing = Binary::run(&["cassette", "audit", "no-such-dir"], &[], dir.path()).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        missing.stderr.contains("cannot audit no-such-dir"),
        "{}",
        missing.stderr
    );
}

#[tokio::test]
async fn synthesized_tokens_and_match_on_auth_stand_in_for_the_recorded_identity() {
    let password = secret("password");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("auth.json");
    let path = cassette.to_str().unwrap();
    let recorder =
        crate::support::proxy::record(&ghes.origin(), &cassette, &["--include", "/user"]).await;
    let created = Call::new("POST", "/api/v3/authorizations")
        .auth("octocat", &password)
        .json(json!({"scopes": ["user"], "note": "cli login"}))
        .send(&client(), &recorder.url)
        .await;
    let real = created.json()["token"].as_str().unwrap().to_owned();
    let user = Call::new("GET", "/api/v3/user").header("authorization", format!("token {real}"));
    assert_eq!(user.send(&client(), &recorder.url).await.status, 200);
    recorder.stop().await.unwrap();
    let hits = ghes.hits();

    let replay = InProcess::start(&[
        "replay",
        "--cassette",
        path,
        "--match-on",
        "method,path,auth",
        "--synthesize-tokens",
    ])
    .await;
    let created = Call::new("POST", "/api/v3/authorizations")
        .auth("octocat", &secret("any"))
        .json(json!({"scopes": ["user"], "note": "cli login"}))
        .send(&client(), &replay.url)
        .await;
    let body = created.json();
    let fake = body["token"].as_str().unwrap().to_owned();
    assert_ne!(fake, real);
    assert_eq!(
        &fake[fake.len() - 8..],
        &real[real.len() - 8..],
        "same last eight"
    );
    assert_eq!(body["token_last_eight"], &real[real.len() - 8..]);
    assert_eq!(
        body["hashed_token"],
        ghes_vcr::redaction::sha256_hex(fake.as_bytes())
    );

    let with = |token: &str| {
        Call::new("GET", "/api/v3/user").header("authorization", format!("token {token}"))
    };
    assert_eq!(
        with(&fake).send(&client(), &replay.url).await.status,
        200,
        "the synthesized token is accepted"
    );
    let stranger = with(&hex40("stranger")).send(&client(), &replay.url).await;
    assert_eq!(stranger.status, 501, "another token is another identity");
    assert!(
        stranger.json()["message"]
            .as_str()
            .unwrap()
            .contains("auth: \"token:"),
        "{}",
        stranger.body
    );
    let mona = Call::new("POST", "/api/v3/authorizations")
        .auth("mona", "x")
        .send(&client(), &replay.url)
        .await;
    assert_eq!(mona.status, 501, "another Basic user is another identity");
    replay.stop().await.unwrap();
    assert_eq!(ghes.hits(), hits);
}

/// `/applications/{client_id}/tokens/{token}` is out of the recorded scope, so it is forwarded
/// as it streams; its token must still stay out of log lines and error messages.
#[tokio::test]
async fn a_token_in_an_out_of_scope_path_reaches_no_log_line_or_message() {
    let ghes = FakeGhes::builder().start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("scope.json");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let down = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let token = hex40("path-token");
    let path = format!("/api/v3/applications/Iv1.0123456789abcdef/tokens/{token}");
    let origin = ghes.origin();
    let runs: [(&[&str], u16); 2] = [
        (
            &[
                "record",
                "--upstream",
                &origin,
                "--cassette",
                cassette.to_str().unwrap(),
            ],
            404,
        ),
        (&["passthrough", "--upstream", &down, "--no-journal"], 502),
    ];
    for (args, status) in runs {
        let args: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--listen", "127.0.0.1:0"])
            .collect();
        let proxy = Binary::start(&args, &[], dir.path()).await;
        let answer = Call::new("GET", path.as_str())
            .auth("Iv1.0123456789abcdef", &secret("client-secret"))
            .send(&client(), &proxy.url)
            .await;
        assert_eq!(answer.status, status, "{}", args[0]);
        assert!(!answer.body.contains(&token), "{}", answer.body);
        proxy.signal("TERM").await;
        let finished = proxy.wait().await;
        assert!(
            finished.stderr.contains("/tokens/REDACTED"),
            "{}: the request is still logged:\n{}",
            args[0],
            finished.stderr
        );
        assert!(
            !finished.stderr.contains(&token),
            "{}: the token leaked into the log:\n{}",
            args[0],
            finished.stderr
        );
    }
}
