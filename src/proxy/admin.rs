//! Admin endpoints under `/__ghes-vcr/`, on the same listener. They are answered by ghes-vcr
//! itself and never forwarded, recorded or journaled.
//!
//! - `GET /__ghes-vcr/health`: mode, uptime, cassette and journal state, as JSON;
//! - `GET /__ghes-vcr/metrics`: Prometheus text format;
//! - `GET /__ghes-vcr/journal?since=&until=&after=&limit=`: journal entries as JSON (times in
//!   microseconds since the Unix epoch), so `ghes-vcr journal …` can read a journal that this
//!   process holds;
//! - `GET /__ghes-vcr/report`: the replay report (interactions used, unused, and misses);
//! - `POST /__ghes-vcr/reset`: rewinds every replay sequence to its first interaction.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::json;

use super::answer::{self, ErrorKind};
use super::{Proxy, ProxyBody};
use crate::journal::store::Filter;

const ENDPOINTS: &str =
    "/__ghes-vcr/health, /__ghes-vcr/metrics, /__ghes-vcr/journal and /__ghes-vcr/reset";

/// Answers a request whose path starts with [`super::ADMIN_PREFIX`].
pub async fn handle<B>(proxy: &Proxy, request: Request<B>) -> Response<ProxyBody> {
    let path = request.uri().path().to_owned();
    let endpoint = path
        .trim_start_matches(super::ADMIN_PREFIX)
        .trim_end_matches('/');
    let method = request.method();
    let readable = method == Method::GET || method == Method::HEAD;
    match endpoint {
        "health" if readable => json_answer(StatusCode::OK, &health(proxy)),
        "metrics" if readable => {
            let text = proxy
                .metrics
                .encode(proxy.journal.as_ref().map(|journal| journal.stats()));
            let mut response = Response::new(answer::full(Bytes::from(text)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        "journal" if readable => journal(proxy, request.uri().query().unwrap_or("")).await,
        "report" if readable => match &proxy.replay {
            Some(replay) => json_answer(
                StatusCode::OK,
                &crate::usage::ReplayReport::new(replay, &proxy.misses),
            ),
            None => answer::error(
                StatusCode::NOT_FOUND,
                ErrorKind::UnknownAdminEndpoint,
                "this ghes-vcr replays no cassette, so it has no replay report",
            ),
        },
        "reset" if method == Method::POST => {
            let interactions = proxy.replay.as_ref().map_or(0, |replay| {
                replay.rewind();
                replay.len()
            });
            tracing::info!(interactions, "replay sequences rewound");
            json_answer(
                StatusCode::OK,
                &json!({"rewound": true, "interactions": interactions}),
            )
        }
        "health" | "metrics" | "journal" | "report" | "reset" => {
            let allow = if endpoint == "reset" {
                "POST"
            } else {
                "GET, HEAD"
            };
            let mut response = answer::error(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorKind::BadRequest,
                &format!("{path} accepts {allow}"),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            response
        }
        _ => answer::error(
            StatusCode::NOT_FOUND,
            ErrorKind::UnknownAdminEndpoint,
            &format!("ghes-vcr has no admin endpoint {path}; there are {ENDPOINTS}"),
        ),
    }
}

fn health(proxy: &Proxy) -> serde_json::Value {
    let cassettes: Vec<String> = proxy
        .replay
        .as_ref()
        .map(|replay| {
            replay
                .cassettes()
                .iter()
                .map(|p| p.display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let recording = proxy.recorder.as_ref().map(|recorder| {
        let summary = recorder.summary();
        json!({
            "cassette": recorder.path().display().to_string(),
            "interactions": summary.interactions,
            "recorded": summary.recorded,
            "saved": summary.unsaved.is_none(),
        })
    });
    let journal = proxy.journal.as_ref().map(|journal| {
        let stats = journal.stats();
        json!({
            "dir": journal.dir().display().to_string(),
            "entries": stats.entries,
            "queued": stats.queued,
            "written": stats.written,
            "dropped": stats.dropped,
        })
    });
    json!({
        "status": "ok",
        "mode": proxy.mode,
        "uptime_seconds": proxy.started.elapsed().as_secs(),
        "upstream": proxy.forwarder.as_ref().map(|f| f.upstream().origin.to_string()),
        "replay": {
            "cassettes": cassettes,
            "interactions": proxy.replay.as_ref().map_or(0, |replay| replay.len()),
        },
        "recording": recording,
        "journal": journal,
    })
}

async fn journal(proxy: &Proxy, query: &str) -> Response<ProxyBody> {
    let Some(journal) = proxy.journal.clone() else {
        return answer::error(
            StatusCode::NOT_FOUND,
            ErrorKind::UnknownAdminEndpoint,
            "this ghes-vcr runs without a journal (--no-journal)",
        );
    };
    let mut filter = Filter::default();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let number = value.parse::<u64>().ok();
        match (key.as_ref(), number) {
            ("since", Some(n)) => filter.since = Some(n),
            ("until", Some(n)) => filter.until = Some(n),
            ("after", Some(n)) => filter.after = Some(n),
            ("limit", Some(n)) => filter.limit = usize::try_from(n).ok(),
            _ => {
                return answer::error(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::BadRequest,
                    &format!("bad journal query parameter {key}={value}; use since, until, after (microseconds since the epoch) and limit"),
                )
            }
        }
    }
    match tokio::task::spawn_blocking(move || journal.query(&filter)).await {
        Ok(Ok(entries)) => json_answer(StatusCode::OK, &entries),
        Ok(Err(err)) => answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::BadRequest,
            &format!("cannot read the journal: {err}"),
        ),
        Err(err) => answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::BadRequest,
            &format!("journal query failed: {err}"),
        ),
    }
}

fn json_answer(status: StatusCode, value: &impl serde::Serialize) -> Response<ProxyBody> {
    let mut response = Response::new(answer::full(Bytes::from(
        serde_json::to_vec(value).unwrap_or_default(),
    )));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
