//! Cassette tooling for CI and review: the replay report (admin endpoint, --report, exit codes),
//! cassette list/show/prune, completions and the man page.

use crate::support::proxy::Binary;
use crate::support::{client, Call};

fn sample(name: &str) -> String {
    format!("{}/cassettes/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_report_lists_used_unused_and_misses_and_fails_ci_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("grants.json");
    std::fs::copy(sample("grants.json"), &cassette).unwrap();
    let report = dir.path().join("report.json");
    let proxy = Binary::start(
        &[
            "replay",
            "--cassette",
            cassette.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--report",
            report.to_str().unwrap(),
            "--fail-on-miss",
            "--fail-on-unused",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(
        Call::new("GET", "/api/v3/applications/grants")
            .send(&client(), &proxy.url)
            .await
            .status,
        200
    );
    assert_eq!(
        Call::new("GET", "/api/v3/authorizations")
            .send(&client(), &proxy.url)
            .await
            .status,
        501
    );
    let live = Call::new("GET", "/__ghes-vcr/report")
        .send(&client(), &proxy.url)
        .await
        .json();
    assert_eq!(
        (
            live["used"].as_array().unwrap().len(),
            live["unused"].as_array().unwrap().len()
        ),
        (1, 2)
    );
    assert_eq!(live["miss_count"], 1);
    assert!(live["misses"][0]["closest"]
        .as_str()
        .unwrap()
        .contains("GET /api/v3/applications/grants"));
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(1), "{}", finished.stderr);
    assert!(
        finished
            .stderr
            .contains("1 requests had no recording (--fail-on-miss)"),
        "{}",
        finished.stderr
    );
    assert!(
        finished
            .stderr
            .contains("2 recorded interactions were never used (--fail-on-unused)"),
        "{}",
        finished.stderr
    );

    // prune removes what the run never used: dry run first, then for real.
    let before = std::fs::read_to_string(&cassette).unwrap();
    let dry = Binary::run(
        &[
            "cassette",
            "prune",
            cassette.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--dry-run",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(dry.status.code(), Some(0), "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains("would remove interactions[1]: GET /api/v3/applications/grants/1"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        std::fs::read_to_string(&cassette).unwrap(),
        before,
        "a dry run changes nothing"
    );
    let pruned = Binary::run(
        &[
            "cassette",
            "prune",
            cassette.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert!(
        pruned.stdout.contains("removed 2, kept 1"),
        "{}",
        pruned.stdout
    );
    let left = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    assert_eq!(left.interactions.len(), 1);
    assert_eq!(
        left.interactions[0].request.path,
        "/api/v3/applications/grants"
    );
}

#[tokio::test]
async fn a_clean_run_exits_zero_with_the_fail_flags() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Binary::start(
        &[
            "replay",
            "--cassette",
            &sample("validation-failed.json"),
            "--listen",
            "127.0.0.1:0",
            "--fail-on-miss",
            "--fail-on-unused",
            "--no-journal",
        ],
        &[],
        dir.path(),
    )
    .await;
    let duplicate = Call::new("POST", "/api/v3/authorizations")
        .json(serde_json::json!({"scopes": ["repo"], "note": "release bot"}));
    assert_eq!(duplicate.send(&client(), &proxy.url).await.status, 422);
    proxy.signal("TERM").await;
    assert_eq!(proxy.wait().await.status.code(), Some(0));
}

#[tokio::test]
async fn list_show_completions_and_man() {
    let dir = tempfile::tempdir().unwrap();
    let list = Binary::run(
        &[
            "cassette",
            "list",
            &format!("{}/cassettes", env!("CARGO_MANIFEST_DIR")),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(list.stdout.lines().count(), 6, "{}", list.stdout);
    assert!(
        list.stdout.contains(
            "grants.json\t3 interactions\tGHES 3.0.25\tlist-grants×1, get-grant×1, delete-grant×1"
        ),
        "{}",
        list.stdout
    );
    let show = Binary::run(
        &["cassette", "show", &sample("two-factor.json")],
        &[],
        dir.path(),
    )
    .await;
    assert!(
        show.stdout
            .starts_with("[0] POST /api/v3/authorizations -> 401 (x-github-otp: required; app)"),
        "{}",
        show.stdout
    );
    let missing = Binary::run(&["cassette", "show", "nope.json"], &[], dir.path()).await;
    assert_eq!(missing.status.code(), Some(2));
    for shell in ["bash", "zsh", "fish"] {
        let completions = Binary::run(&["completions", shell], &[], dir.path()).await;
        assert_eq!(completions.status.code(), Some(0));
        assert!(completions.stdout.contains("passthrough"), "{shell}");
    }
    let man = Binary::run(&["man"], &[], dir.path()).await;
    assert!(man.stdout.contains(".TH ghes-vcr 1"), "{}", man.stdout);
}

#[tokio::test]
async fn diff_reports_meaningful_changes_only() {
    let dir = tempfile::tempdir().unwrap();
    let original = sample("grants.json");
    let same = Binary::run(&["cassette", "diff", &original, &original], &[], dir.path()).await;
    assert_eq!((same.status.code(), same.stdout.as_str()), (Some(0), ""));

    let mut changed = ghes_vcr::cassette::Cassette::load(std::path::Path::new(&original)).unwrap();
    changed.interactions[0]
        .response
        .headers
        .retain(|(name, _)| name != "date");
    changed.interactions[0]
        .response
        .headers
        .push(("date".into(), "Sat, 01 Jan 2000 00:00:00 GMT".into()));
    changed.interactions[1].response.status = 404;
    let copy = dir.path().join("changed.json");
    std::fs::write(&copy, changed.to_pretty_json()).unwrap();
    let run = Binary::run(
        &["cassette", "diff", &original, copy.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(1), "{}", run.stderr);
    assert_eq!(
        run.stdout.lines().count(),
        1,
        "a new Date is not a difference: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("~ [1 → 1] GET /api/v3/applications/grants/1: status 200 → 404"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn har_round_trips_and_imports_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let har = dir.path().join("out.har");
    let back = dir.path().join("back.json");
    for name in ["authorizations.json", "two-factor.json", "pagination.json"] {
        let export = Binary::run(
            &[
                "cassette",
                "export",
                &sample(name),
                "--har",
                har.to_str().unwrap(),
            ],
            &[],
            dir.path(),
        )
        .await;
        assert_eq!(export.status.code(), Some(0), "{}", export.stderr);
        let parsed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&har).unwrap()).unwrap();
        assert_eq!(parsed["log"]["version"], "1.2");
        assert!(parsed["log"]["entries"][0]["request"]["url"]
            .as_str()
            .unwrap()
            .starts_with("https://ghes.example.com/api/v3/"));
        let import = Binary::run(
            &[
                "cassette",
                "import",
                har.to_str().unwrap(),
                "--output",
                back.to_str().unwrap(),
            ],
            &[],
            dir.path(),
        )
        .await;
        assert_eq!(import.status.code(), Some(0), "{}", import.stderr);
        let original =
            ghes_vcr::cassette::Cassette::load(std::path::Path::new(&sample(name))).unwrap();
        let round_trip = ghes_vcr::cassette::Cassette::load(&back).unwrap();
        assert_eq!(
            round_trip.interactions, original.interactions,
            "{name}: cassette → HAR → cassette is lossless"
        );
    }

    // A HAR saved by a browser, with a live password and a live token, yields a clean cassette.
    let password = crate::support::secret("pw");
    let token = format!("ghp_{}", "a1B2c3D4e5".repeat(4)[..36].to_owned());
    let browser = serde_json::json!({"log": {"version": "1.2", "creator": {"name": "Firefox", "version": "120"}, "entries": [
        {"startedDateTime": "2026-11-24T10:00:00.000Z", "time": 42.0,
         "request": {"method": "POST", "url": "https://ghes.corp.example/api/v3/authorizations", "httpVersion": "HTTP/2",
                     "headers": [{"name": ":authority", "value": "ghes.corp.example"}, {"name": "Authorization", "value": crate::support::basic("octocat", &password)}, {"name": "Content-Type", "value": "application/json"}],
                     "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 20,
                     "postData": {"mimeType": "application/json", "text": "{\"note\":\"browser\"}"}},
         "response": {"status": 201, "statusText": "Created", "httpVersion": "HTTP/2",
                      "headers": [{"name": "content-type", "value": "application/json; charset=utf-8"}, {"name": "content-encoding", "value": "gzip"}, {"name": "location", "value": "https://ghes.corp.example/api/v3/authorizations/9"}],
                      "cookies": [], "content": {"size": 80, "mimeType": "application/json", "text": format!("{{\"id\":9,\"url\":\"https://ghes.corp.example/api/v3/authorizations/9\",\"token\":\"{token}\"}}")},
                      "redirectURL": "", "headersSize": -1, "bodySize": -1},
         "cache": {}, "timings": {"send": 0, "wait": 42, "receive": 0}},
        {"startedDateTime": "2026-11-24T10:00:01.000Z", "time": 3.0,
         "request": {"method": "GET", "url": "https://ghes.corp.example/assets/app.js", "headers": []},
         "response": {"status": 200, "headers": [], "content": {"size": 0, "mimeType": "text/javascript"}}}
    ]}});
    let browser_har = dir.path().join("browser.har");
    std::fs::write(&browser_har, browser.to_string()).unwrap();
    let cassette = dir.path().join("imported.json");
    let import = Binary::run(
        &[
            "cassette",
            "import",
            browser_har.to_str().unwrap(),
            "--output",
            cassette.to_str().unwrap(),
        ],
        &[],
        dir.path(),
    )
    .await;
    assert!(
        import.stdout.contains("wrote 1 interactions")
            && import.stdout.contains("1 entries out of scope"),
        "{}",
        import.stdout
    );
    let text = std::fs::read_to_string(&cassette).unwrap();
    assert!(
        !text.contains(&password)
            && !text.contains(&token)
            && !text.contains(&crate::support::basic("octocat", &password))
    );
    assert!(
        text.contains("Basic REDACTED user=octocat")
            && text.contains("{{origin}}/api/v3/authorizations/9")
    );
    assert!(!text.contains("content-encoding"), "HAR bodies are decoded");
    let saved = ghes_vcr::cassette::Cassette::load(&cassette).unwrap();
    let body = saved.interactions[0].response.body.as_json().unwrap();
    assert_eq!(
        body["hashed_token"],
        ghes_vcr::redaction::sha256_hex(token.as_bytes())
    );
    let audit = Binary::run(
        &["cassette", "audit", cassette.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(audit.status.code(), Some(0), "{}", audit.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_drift_against_the_live_upstream() {
    use crate::support::fake_ghes::FakeGhes;
    let password = crate::support::secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("verify.json");
    let recorder = crate::support::proxy::record(&ghes.origin(), &cassette, &[]).await;
    for path in ["/api/v3/authorizations", "/api/v3/applications/grants"] {
        assert_eq!(
            Call::new("GET", path)
                .auth("octocat", &password)
                .send(&client(), &recorder.url)
                .await
                .status,
            200
        );
    }
    recorder.stop().await.unwrap();

    let credentials = format!("octocat:{password}");
    let env = [("GHES_VCR_VERIFY_BASIC", credentials.as_str())];
    let args = [
        "cassette",
        "verify",
        cassette.to_str().unwrap(),
        "--upstream",
        &ghes.origin(),
    ];
    let unchanged = Binary::run(&args, &env, dir.path()).await;
    assert_eq!(
        unchanged.status.code(),
        Some(0),
        "{}{}",
        unchanged.stdout,
        unchanged.stderr
    );
    assert!(
        unchanged
            .stdout
            .contains("ok    [0] GET /api/v3/authorizations"),
        "{}",
        unchanged.stdout
    );

    // Staging changes: a new token appears in the list.
    let created = Call::new("POST", "/api/v3/authorizations")
        .auth("octocat", &password)
        .json(serde_json::json!({"scopes": ["repo"], "note": "made after the recording"}))
        .send(&client(), &ghes.origin())
        .await;
    assert_eq!(created.status, 201);
    let drifted = Binary::run(&args, &env, dir.path()).await;
    assert_eq!(
        drifted.status.code(),
        Some(1),
        "{}{}",
        drifted.stdout,
        drifted.stderr
    );
    assert!(
        drifted
            .stdout
            .contains("DRIFT [0] GET /api/v3/authorizations"),
        "{}",
        drifted.stdout
    );
    assert!(
        drifted
            .stdout
            .contains("ok    [1] GET /api/v3/applications/grants"),
        "{}",
        drifted.stdout
    );
    assert!(!drifted.stdout.contains(&password) && !drifted.stderr.contains(&password));
}
