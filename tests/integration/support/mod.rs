//! Shared test support: the fake GHES upstream, proxy launchers (in-process and binary), and
//! small helpers for secrets built at run time.
#![allow(dead_code)]

pub mod fake_ghes;
pub mod load;
pub mod proxy;
pub mod tls;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

/// A fresh, unpredictable value for a test secret (never written in the source).
pub fn secret(label: &str) -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write(label.as_bytes());
    format!("{label}-{:016x}", hasher.finish())
}

/// The value of an `Authorization: Basic` header.
pub fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", BASE64.encode(format!("{user}:{password}")))
}

/// An HTTP client that talks to loopback directly (no proxy from the environment).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client builds")
}

/// Replaces every `http://127.0.0.1:PORT` origin with `ORIGIN`, to compare answers served on
/// different ports.
pub fn normalize_origins(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("http://127.0.0.1:") {
        out.push_str(&rest[..at]);
        out.push_str("ORIGIN");
        let after = &rest[at + "http://127.0.0.1:".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// One answer, as a client saw it.
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.body))
    }
}

/// A request to send.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
}

impl Call {
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: vec![
                ("accept".into(), "application/vnd.github.v3+json".into()),
                ("user-agent".into(), "ghes-vcr-tests".into()),
            ],
            body: None,
        }
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers
            .retain(|(existing, _)| !existing.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub fn auth(self, user: &str, password: &str) -> Self {
        self.header("authorization", basic(user, password))
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Sends the call to `base` + path.
    pub async fn send(&self, client: &reqwest::Client, base: &str) -> Answer {
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("method");
        let mut request = client.request(method, format!("{base}{}", self.path));
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(body).expect("json"));
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{} {} failed: {err}", self.method, self.path));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response.text().await.expect("body");
        Answer {
            status,
            headers,
            body,
        }
    }
}
