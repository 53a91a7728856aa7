//! passthrough and the traffic journal: exact per-client reports, reading while the proxy
//! runs, kill -9, size bounds, no secrets, metrics, export.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::support::fake_ghes::FakeGhes;
use crate::support::proxy::{Binary, InProcess};
use crate::support::{basic, client, secret, Call};

/// Waits until the proxy's journal has written `count` entries (polling its health endpoint).
async fn journal_written(url: &str, count: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let health = Call::new("GET", "/__ghes-vcr/health")
            .send(&client(), url)
            .await
            .json();
        if health["journal"]["written"].as_u64().unwrap_or(0) >= count {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the journal never wrote {count} entries: {health}"
        );
        tokio::task::yield_now().await;
    }
}

async fn passthrough(ghes: &FakeGhes, journal: &Path, extra: &[&str]) -> InProcess {
    let origin = ghes.origin();
    let args: Vec<&str> = [
        "passthrough",
        "--upstream",
        &origin,
        "--journal",
        journal.to_str().unwrap(),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    InProcess::start(&args).await
}

/// `ghes-vcr passthrough` as a process, journaling to `journal`.
async fn passthrough_binary(ghes: &FakeGhes, journal: &Path, home: &Path) -> Binary {
    let origin = ghes.origin();
    let args = [
        "passthrough",
        "--upstream",
        &origin,
        "--listen",
        "127.0.0.1:0",
        "--journal",
        journal.to_str().unwrap(),
    ];
    Binary::start(&args, &[], home).await
}

async fn report_json(journal: &Path, home: &Path, extra: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = [
        "journal",
        "report",
        "--journal",
        journal.to_str().unwrap(),
        "--format",
        "json",
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .collect();
    let run = Binary::run(&args, &[], home).await;
    assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
    serde_json::from_str::<Value>(&run.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

/// Three legacy clients, each with its own User-Agent, credential and app.
async fn legacy_traffic(url: &str, password: &str, otp_password: &str, otp: &str) -> u64 {
    let client = client();
    let cli = |method, path: &str| {
        Call::new(method, path)
            .auth("octocat", password)
            .header("user-agent", "legacy-cli/1.0")
    };
    for _ in 0..3 {
        assert_eq!(
            cli("GET", "/api/v3/authorizations")
                .send(&client, url)
                .await
                .status,
            200
        );
    }
    let created = cli("POST", "/api/v3/authorizations")
        .json(json!({"scopes": ["repo"], "note": "legacy cli", "note_url": "https://cli.example.com"}))
        .send(&client, url)
        .await;
    assert_eq!(created.status, 201);
    let plugin = Call::new("POST", "/api/v3/authorizations")
        .auth("mona", otp_password)
        .header("user-agent", "editor-plugin/2.3")
        .json(json!({"scopes": [], "note": "editor"}));
    assert_eq!(plugin.send(&client, url).await.status, 401);
    assert_eq!(
        plugin
            .header("x-github-otp", otp)
            .send(&client, url)
            .await
            .status,
        201
    );
    let bot = Call::new("PUT", "/api/v3/authorizations/clients/c1d2e3f4a5b6c7d8e9f0")
        .auth("octocat", password)
        .header("user-agent", "ci-bot")
        .json(json!({"client_secret": secret("cs"), "fingerprint": "runner-7"}));
    assert_eq!(bot.send(&client, url).await.status, 201);
    assert_eq!(bot.send(&client, url).await.status, 200);
    // Out of scope: forwarded, not journaled.
    assert_eq!(
        cli("GET", "/api/v3/user").send(&client, url).await.status,
        200
    );
    8
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_reports_every_legacy_client_exactly() {
    let (password, otp_password, otp) = (secret("pw"), secret("pw"), "424242".to_owned());
    let ghes = FakeGhes::builder()
        .user("octocat", &password)
        .user_with_otp("mona", &otp_password, &otp)
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let proxy = passthrough(&ghes, &journal, &[]).await;
    let sent = legacy_traffic(&proxy.url, &password, &otp_password, &otp).await;
    journal_written(&proxy.url, sent).await;
    proxy.stop().await.unwrap();
    assert_eq!(
        ghes.hits(),
        9,
        "passthrough forwarded everything, /user included"
    );

    let rows = report_json(&journal, dir.path(), &[]).await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let row = |agent: &str| {
        rows.iter()
            .find(|r| r["user_agent"] == agent)
            .unwrap_or_else(|| panic!("{agent} in {rows:#?}"))
    };
    let cli = row("legacy-cli/1.0");
    assert_eq!(
        (
            cli["credential"].as_str(),
            cli["requests"].as_u64(),
            cli["errors"].as_u64()
        ),
        (Some("basic:octocat"), Some(4), Some(0))
    );
    assert_eq!(
        cli["operations"],
        json!([
            "oauth-authorizations/create-authorization",
            "oauth-authorizations/list-authorizations"
        ])
    );
    let plugin = row("editor-plugin/2.3");
    assert_eq!(
        (
            plugin["credential"].as_str(),
            plugin["requests"].as_u64(),
            plugin["errors"].as_u64()
        ),
        (Some("basic:mona"), Some(2), Some(1))
    );
    let bot = row("ci-bot");
    assert_eq!(
        (bot["client_id"].as_str(), bot["requests"].as_u64()),
        (Some("c1d2e3f4a5b6c7d8e9f0"), Some(2))
    );
    assert_eq!(
        bot["operations"],
        json!(["oauth-authorizations/get-or-create-authorization-for-app"])
    );
    assert_eq!(rows[0]["user_agent"], "ci-bot", "most recently seen first");
    for row in &rows {
        assert!(row["first_seen"].as_str().unwrap() <= row["last_seen"].as_str().unwrap());
    }

    // The other formats print the same rows.
    let table = Binary::run(
        &["journal", "report", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert!(table.stdout.starts_with("LAST SEEN"), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 4);
    let csv = Binary::run(
        &[
            "journal",
            "report",
            "--journal",
            journal.to_str().unwrap(),
            "--format",
            "csv",
        ],
        &[],
        dir.path(),
    )
    .await;
    assert!(
        csv.stdout.starts_with(
            "user_agent,credential,client_id,operations,requests,errors,first_seen,last_seen\n"
        ),
        "{}",
        csv.stdout
    );

    // Entries carry what the issue asks for.
    let tail = Binary::run(
        &["journal", "tail", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    let entries: Vec<Value> = tail
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(entries.len(), 8);
    let created = entries
        .iter()
        .find(|e| e["status"] == 201 && e["user_agent"] == "legacy-cli/1.0")
        .unwrap();
    assert_eq!(created["mode"], "passthrough");
    assert_eq!(created["outcome"], "forwarded");
    assert_eq!(
        created["operation"],
        "oauth-authorizations/create-authorization"
    );
    assert_eq!(
        (created["note"].as_str(), created["note_url"].as_str()),
        (Some("legacy cli"), Some("https://cli.example.com"))
    );
    assert!(
        created["upstream_latency_us"].as_u64().is_some()
            && created["total_latency_us"].as_u64().is_some()
    );
    assert!(created["client"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(
        created["response"]["body"]["json"]["token"], "",
        "the journal is redacted like cassettes"
    );
    let ids: Vec<u64> = entries.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "keys sort by time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_works_while_the_proxy_runs_and_export_replays() {
    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let proxy = passthrough_binary(&ghes, &journal, dir.path()).await;
    let grants = Call::new("GET", "/api/v3/applications/grants")
        .auth("octocat", &password)
        .header("user-agent", "grant-auditor");
    for _ in 0..3 {
        assert_eq!(grants.send(&client(), &proxy.url).await.status, 200);
    }
    journal_written(&proxy.url, 3).await;

    // The proxy holds the database: the report goes through its admin endpoint.
    let rows = report_json(&journal, dir.path(), &[]).await;
    assert_eq!((rows.len(), rows[0]["requests"].as_u64()), (1, Some(3)));
    let future = report_json(&journal, dir.path(), &["--since", "2099-01-01"]).await;
    assert!(future.is_empty());

    let export = |format: &'static str, output: std::path::PathBuf| {
        let journal = journal.clone();
        let home = dir.path().to_owned();
        async move {
            let run = Binary::run(
                &[
                    "journal",
                    "export",
                    "--journal",
                    journal.to_str().unwrap(),
                    "--format",
                    format,
                    "--output",
                    output.to_str().unwrap(),
                ],
                &[],
                &home,
            )
            .await;
            assert_eq!(run.status.code(), Some(0), "{}", run.stderr);
        }
    };
    let exported = dir.path().join("exported.json");
    export("cassette", exported.clone()).await;
    let jsonl = dir.path().join("exported.jsonl");
    export("jsonl", jsonl.clone()).await;
    let lines = std::fs::read_to_string(&jsonl).unwrap();
    assert_eq!(lines.lines().count(), 3);
    for line in lines.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        assert!(
            entry["response"]["body"]["json"].is_array(),
            "forwarded answers read back as JSON: {}",
            entry["response"]
        );
    }
    let cassette: Value =
        serde_json::from_str(&std::fs::read_to_string(&exported).unwrap()).unwrap();
    assert!(cassette["interactions"][0]["response"]["body"]["json"].is_array());

    let metrics = Call::new("GET", "/__ghes-vcr/metrics")
        .send(&client(), &proxy.url)
        .await;
    proxy.signal("TERM").await;
    let finished = proxy.wait().await;
    assert_eq!(finished.status.code(), Some(0));
    let exchanges: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|l| l.contains(" INFO") && l.contains("exchange"))
        .collect();
    assert_eq!(
        exchanges.len(),
        3,
        "one info line per exchange in passthrough: {}",
        finished.stderr
    );
    assert!(
        exchanges[0].contains("operation=\"oauth-authorizations/list-grants\"")
            || exchanges[0].contains("operation=oauth-authorizations/list-grants"),
        "{}",
        exchanges[0]
    );
    assert!(
        exchanges[0].contains("outcome") && exchanges[0].contains("elapsed_us"),
        "{}",
        exchanges[0]
    );
    assert!(
        !journal.join("admin-url").exists(),
        "the admin-url file goes with the proxy"
    );

    // Metrics parse as Prometheus text and count what happened.
    let lines: Vec<std::io::Result<String>> =
        metrics.body.lines().map(|l| Ok(l.to_owned())).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text");
    let requests: f64 = scrape
        .samples
        .iter()
        .filter(|s| {
            s.metric == "ghes_vcr_requests_total"
                && s.labels.get("operation") == Some("oauth-authorizations/list-grants")
        })
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert_eq!(requests, 3.0, "{}", metrics.body);
    for family in [
        "ghes_vcr_request_duration_seconds",
        "ghes_vcr_journal_queue_depth",
        "ghes_vcr_journal_dropped",
        "ghes_vcr_replay_misses_total",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == family),
            "{family} in {}",
            metrics.body
        );
    }

    // The exported cassette replays.
    ghes.stop().await;
    let replay = crate::support::proxy::replay(&exported).await;
    assert_eq!(grants.send(&client(), &replay.url).await.status, 200);
    replay.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_leaves_a_journal_that_reopens_with_every_flushed_entry() {
    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let proxy = passthrough_binary(&ghes, &journal, dir.path()).await;
    let answered = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|worker| {
            let (url, password, answered) =
                (proxy.url.clone(), password.clone(), Arc::clone(&answered));
            tokio::spawn(async move {
                let client = client();
                loop {
                    let sent = client
                        .get(format!("{url}/api/v3/authorizations"))
                        .header("authorization", basic("octocat", &password))
                        .header("user-agent", format!("worker-{worker}"))
                        .send()
                        .await;
                    match sent {
                        Ok(response) if response.status() == 200 => {
                            answered.fetch_add(1, Ordering::SeqCst)
                        }
                        _ => return,
                    };
                }
            })
        })
        .collect();
    journal_written(&proxy.url, 100).await;
    let health = Call::new("GET", "/__ghes-vcr/health")
        .send(&client(), &proxy.url)
        .await
        .json();
    let flushed = health["journal"]["written"].as_u64().unwrap();
    proxy.signal("KILL").await;
    assert!(!proxy.wait().await.status.success());
    for worker in workers {
        worker.await.unwrap();
    }

    let tail = Binary::run(
        &["journal", "tail", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(
        tail.status.code(),
        Some(0),
        "the journal reopens: {}",
        tail.stderr
    );
    let entries: Vec<Value> = tail
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("every entry is whole"))
        .collect();
    assert!(
        entries.len() as u64 >= flushed,
        "{} entries, {flushed} were flushed before the kill",
        entries.len()
    );
    assert!(entries.len() <= answered.load(Ordering::SeqCst));
    let rows = report_json(&journal, dir.path(), &[]).await;
    let total: u64 = rows.iter().map(|r| r["requests"].as_u64().unwrap()).sum();
    assert_eq!(total, entries.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_size_bound_keeps_the_newest_entries() {
    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let proxy = passthrough(&ghes, &journal, &["--journal-max-entries", "5"]).await;
    for page in 1..=12 {
        let call = Call::new("GET", format!("/api/v3/authorizations?page={page}"))
            .auth("octocat", &password);
        assert_eq!(call.send(&client(), &proxy.url).await.status, 200);
    }
    journal_written(&proxy.url, 12).await;
    proxy.stop().await.unwrap();
    let tail = Binary::run(
        &["journal", "tail", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    let pages: Vec<String> = tail
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["request"]["query"][0][1]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(pages, ["8", "9", "10", "11", "12"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_journals_hits_and_misses_with_the_answering_interaction() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let grants = concat!(env!("CARGO_MANIFEST_DIR"), "/cassettes/grants.json");
    let proxy = InProcess::start(&[
        "replay",
        "--cassette",
        grants,
        "--journal",
        journal.to_str().unwrap(),
    ])
    .await;
    let list = Call::new("GET", "/api/v3/applications/grants").auth("octocat", "x");
    assert_eq!(list.send(&client(), &proxy.url).await.status, 200);
    assert_eq!(
        Call::new("GET", "/api/v3/authorizations")
            .send(&client(), &proxy.url)
            .await
            .status,
        501
    );
    journal_written(&proxy.url, 2).await;
    proxy.stop().await.unwrap();
    let tail = Binary::run(
        &["journal", "tail", "--journal", journal.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    let entries: Vec<Value> = tail
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        (entries[0]["mode"].as_str(), entries[0]["outcome"].as_str()),
        (Some("replay"), Some("replayed"))
    );
    assert_eq!(entries[0]["cassette"], grants);
    assert_eq!(entries[0]["interaction"], 0);
    // Journaled as text to save the writer a tree walk; readers get JSON, as in the cassette.
    assert!(
        entries[0]["response"]["body"]["json"].is_array(),
        "{}",
        entries[0]["response"]
    );
    assert_eq!(
        (
            entries[1]["outcome"].as_str(),
            entries[1]["status"].as_u64()
        ),
        (Some("replay-miss"), Some(501))
    );
}

#[tokio::test]
async fn journal_commands_explain_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere");
    let run = Binary::run(
        &["journal", "report", "--journal", missing.to_str().unwrap()],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("there is no journal at"),
        "{}",
        run.stderr
    );
    let run = Binary::run(
        &["journal", "report", "--since", "last tuesday"],
        &[],
        dir.path(),
    )
    .await;
    assert_eq!(run.status.code(), Some(2));
    assert!(
        run.stderr.contains("a duration ago (2h, 7days)"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_follow_prints_new_entries_as_they_are_written() {
    use tokio::io::AsyncBufReadExt;

    let password = secret("pw");
    let ghes = FakeGhes::builder().user("octocat", &password).start().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal");
    let proxy = passthrough(&ghes, &journal, &[]).await;
    let mut tail = tokio::process::Command::new(env!("CARGO_BIN_EXE_ghes-vcr"))
        .args([
            "journal",
            "tail",
            "--follow",
            "--journal",
            journal.to_str().unwrap(),
        ])
        .env_clear()
        .env("HOME", dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(tail.stdout.take().unwrap()).lines();
    for page in 1..=3 {
        let call = Call::new("GET", format!("/api/v3/authorizations?page={page}"))
            .auth("octocat", &password);
        assert_eq!(call.send(&client(), &proxy.url).await.status, 200);
        let line = lines
            .next_line()
            .await
            .unwrap()
            .expect("a line per new entry");
        let entry: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(entry["request"]["query"][0][1], page.to_string());
    }
    tail.kill().await.unwrap();
    proxy.stop().await.unwrap();
}
