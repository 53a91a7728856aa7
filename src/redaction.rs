//! Redaction: the rules that turn a captured exchange into something safe to store or log.
//!
//! It runs once, inside [`crate::capture`], before an exchange reaches the matcher, a cassette
//! or a log line. The defaults need no configuration:
//! - `Authorization` / `Proxy-Authorization`: Basic keeps the scheme and user name
//!   (`Basic REDACTED user=octocat`); `token` / `Bearer` keep the scheme, the last eight
//!   characters and the hex SHA-256 (`token REDACTED last8=… sha256=…`).
//! - request `X-GitHub-OTP`, `Cookie` and `Set-Cookie` values;
//! - query parameters `access_token`, `client_secret`, `password`;
//! - JSON request bodies: `client_secret` and `password` at any depth;
//! - JSON response bodies: every non-empty `token` string becomes `""` (as GHES itself answers
//!   on list and get), with `token_last_eight` and `hashed_token` filled in from it;
//! - the token in the legacy paths `/applications/{client_id}/tokens/{token}` and
//!   `/applications/{client_id}/grants/{token}`.
//!
//! Users add rules ([`RedactionRules`]): header names, JSON keys at any depth, and regular
//! expressions applied to header values, query values, paths and body text.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use regex::Regex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cassette::{Body, RecordedRequest, RecordedResponse};

/// What replaces a secret.
pub const MARKER: &str = "REDACTED";

/// Request headers whose whole value is a secret.
const SECRET_REQUEST_HEADERS: [&str; 2] = ["x-github-otp", "cookie"];
/// Headers that carry credentials with an identity worth keeping.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "proxy-authorization"];
/// Query parameters that carry secrets.
const SECRET_QUERY_PARAMS: [&str; 3] = ["access_token", "client_secret", "password"];
/// JSON keys (any depth) whose values are secrets in request bodies.
const SECRET_BODY_KEYS: [&str; 2] = ["client_secret", "password"];

/// Lower-case hex SHA-256, as GHES computes `hashed_token`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The last eight characters of a token, as GHES computes `token_last_eight`.
pub fn last_eight(token: &str) -> String {
    let start = token.char_indices().rev().nth(7).map_or(0, |(idx, _)| idx);
    token[start..].to_owned()
}

/// A value that must never be printed: its `Debug` says `(redacted)`. The original request is
/// held in these while it is forwarded.
#[derive(Clone, Default)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself, for the one place that needs it (forwarding).
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: PartialEq> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

/// Redaction rules the user adds to the defaults (`--redact-header`, `--redact-json-key`,
/// `--redact-regex`).
#[derive(Clone, Debug, Default)]
pub struct RedactionRules {
    /// Header names (any case) whose values are replaced, in requests and responses.
    pub headers: Vec<String>,
    /// JSON keys whose values are replaced at any depth, in request and response bodies.
    pub json_keys: Vec<String>,
    /// Patterns whose matches are replaced in header values, query values, paths and body text.
    pub patterns: Vec<Regex>,
}

/// The redaction rules: the defaults plus the user's.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    rules: RedactionRules,
}

impl Redactor {
    pub fn new(mut rules: RedactionRules) -> Self {
        rules
            .headers
            .iter_mut()
            .for_each(|name| name.make_ascii_lowercase());
        Self { rules }
    }

    /// Redacts a captured request in place.
    pub fn request(&self, request: &mut RecordedRequest) {
        self.path(&mut request.path);
        for (name, value) in &mut request.headers {
            match redact_request_header(name, value) {
                Some(redacted) => *value = redacted,
                None => self.header(name, value),
            }
        }
        for (key, value) in &mut request.query {
            if SECRET_QUERY_PARAMS.contains(&key.to_ascii_lowercase().as_str()) {
                *value = MARKER.to_owned();
            } else {
                self.text(value);
            }
        }
        self.body(&mut request.body, &SECRET_BODY_KEYS);
    }

    /// Redacts a captured response in place.
    pub fn response(&self, response: &mut RecordedResponse) {
        for (name, value) in &mut response.headers {
            if let Some(redacted) = self.response_header(name, value) {
                *value = redacted;
            }
        }
        self.response_body(&mut response.body);
    }

    /// Whether `Set-Cookie` is the only response header whose value redaction changes: true
    /// without rules of the user's ([`Redactor::response_header`]).
    pub fn changes_only_cookies_in_response_headers(&self) -> bool {
        self.rules.headers.is_empty() && self.rules.patterns.is_empty()
    }

    /// What a response header's value (name in lower case) becomes when stored: `None` when it
    /// stays as it is, so the usual header costs no allocation.
    #[inline]
    pub fn response_header(&self, name: &str, value: &str) -> Option<String> {
        if name != "set-cookie" && self.changes_only_cookies_in_response_headers() {
            // Without rules of the user's, no other response header changes (the usual case,
            // asked of every header of every journaled answer: decided here, inlined).
            return None;
        }
        self.response_header_by_rules(name, value)
    }

    fn response_header_by_rules(&self, name: &str, value: &str) -> Option<String> {
        if name == "set-cookie" {
            Some(redact_set_cookie(value))
        } else if self.rules.headers.iter().any(|listed| listed == name) {
            Some(MARKER.to_owned())
        } else {
            self.replaced(value)
        }
    }

    /// Redacts a captured response body in place.
    pub fn response_body(&self, body: &mut Body) {
        // JSON kept as text (compact JSON would not reproduce its bytes, e.g. Rails' `\u0026`
        // escapes) is redacted like JSON; when that removes anything, it is stored as JSON, since
        // a secret cannot stay for the sake of byte fidelity.
        if let Body::Text(text) = body {
            if let Ok(json) = serde_json::from_str::<Value>(text) {
                let mut redacted = Body::Json(json.clone().into());
                self.json_response_body(&mut redacted);
                // Compared as trees: printing both only to compare them would be wasted.
                if redacted.as_json() != Some(&json) {
                    *body = redacted;
                    return;
                }
            }
        }
        self.json_response_body(body);
    }

    fn json_response_body(&self, body: &mut Body) {
        if let Body::Json(json) = body {
            redact_tokens(json.value_mut());
        }
        self.body(body, &[]);
    }

    /// Whether redacting this response body could change it: false only when no user rule
    /// applies to bodies and no `token` key carries a non-empty string (the usual answer, e.g.
    /// GHES's lists, whose tokens are already blank). A cheap scan that never parses, so
    /// journaled answers skip the parse when there is nothing to remove.
    pub fn may_change_response_body(&self, body: &[u8]) -> bool {
        if !self.rules.json_keys.is_empty() || !self.rules.patterns.is_empty() {
            return true;
        }
        // An escaped key (`"\u0074oken"`) is not looked for as written: any escape in a key
        // position sends the body the slow way.
        static TOKEN_KEY: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"token\""));
        let finder = &*TOKEN_KEY;
        if memchr::memmem::find(body, b"\"\\u").is_some() {
            return true;
        }
        finder.find_iter(body).any(|at| {
            let rest = &body[at + 7..];
            let rest = rest.trim_ascii_start();
            let Some(rest) = rest.strip_prefix(b":") else {
                return false;
            };
            let rest = rest.trim_ascii_start();
            // A string value, unless it is empty; anything else (null, a number) has no secret
            // that the token rule would blank, but be safe with anything unexpected.
            match rest.first() {
                Some(b'"') => rest.get(1) != Some(&b'"'),
                Some(b'n') => !rest.starts_with(b"null"),
                _ => true,
            }
        })
    }

    /// A user-listed header is replaced whole; any other gets the patterns.
    fn header(&self, name: &str, value: &mut String) {
        if self.rules.headers.iter().any(|listed| listed == name) {
            *value = MARKER.to_owned();
        } else {
            self.text(value);
        }
    }

    /// Redacts a request path in place: a legacy token path's token, then the patterns.
    pub fn path(&self, path: &mut String) {
        if let Some(redacted) = redact_path_token(path) {
            *path = redacted;
        }
        self.text(path);
    }

    fn body(&self, body: &mut Body, default_keys: &[&str]) {
        match body {
            Body::Json(json) => {
                let json = json.value_mut();
                redact_keys(json, default_keys);
                let user_keys: Vec<&str> =
                    self.rules.json_keys.iter().map(String::as_str).collect();
                redact_keys(json, &user_keys);
                if !self.rules.patterns.is_empty() {
                    self.json_strings(json);
                }
            }
            Body::Text(text) => self.text(text),
            Body::Empty | Body::Binary(_) => {}
        }
    }

    fn json_strings(&self, value: &mut Value) {
        match value {
            Value::String(text) => self.text(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.json_strings(item)),
            Value::Object(map) => map.values_mut().for_each(|item| self.json_strings(item)),
            _ => {}
        }
    }

    /// Replaces every match of the user's patterns by the marker.
    fn text(&self, text: &mut String) {
        if let Some(replaced) = self.replaced(text) {
            *text = replaced;
        }
    }

    /// `text` with the patterns' matches replaced, or `None` when none matched.
    fn replaced(&self, text: &str) -> Option<String> {
        let mut out: Option<String> = None;
        for pattern in &self.rules.patterns {
            if let std::borrow::Cow::Owned(replaced) =
                pattern.replace_all(out.as_deref().unwrap_or(text), MARKER)
            {
                out = Some(replaced);
            }
        }
        out
    }
}

/// The token segment of `/applications/{client_id}/tokens/{token}` and
/// `/applications/{client_id}/grants/{token}` (GHES 2.18's check/reset/revoke routes) replaced;
/// `None` for any other path.
fn redact_path_token(path: &str) -> Option<String> {
    let api = crate::scope::api_path(path);
    if !api.starts_with("/applications/") {
        return None;
    }
    let prefix = &path[..path.len() - api.len()];
    let segments: Vec<&str> = api.split('/').collect();
    match segments.as_slice() {
        ["", "applications", client, kind @ ("tokens" | "grants"), token, rest @ ..]
            if *client != "grants" && !token.is_empty() =>
        {
            let mut out = format!("{prefix}/applications/{client}/{kind}/{MARKER}");
            for segment in rest {
                out.push('/');
                out.push_str(segment);
            }
            Some(out)
        }
        _ => None,
    }
}

fn redact_request_header(name: &str, value: &str) -> Option<String> {
    if CREDENTIAL_HEADERS.contains(&name) {
        return Some(redact_credentials(value));
    }
    if SECRET_REQUEST_HEADERS.contains(&name) {
        return Some(MARKER.to_owned());
    }
    None
}

/// `Basic <b64>` → `Basic REDACTED user=<name>`; `token|Bearer <t>` → scheme, last eight and
/// SHA-256; anything else → `<scheme> REDACTED`.
///
/// ```
/// use ghes_vcr::redaction::redact_credentials;
///
/// // "octocat:" followed by a password, in base64.
/// let basic = format!("Basic {}", "b2N0b2NhdDpodW50ZXIy");
/// assert_eq!(redact_credentials(&basic), "Basic REDACTED user=octocat");
/// assert_eq!(
///     redact_credentials("token abcdefgh12345678"),
///     "token REDACTED last8=12345678 \
///      sha256=25f94a2a5c7fbaf499c665bc73d67c1c87e496da8985131633ee0a95819db2e8"
/// );
/// ```
pub fn redact_credentials(value: &str) -> String {
    let value = value.trim();
    let (scheme, secret) = value.split_once(' ').unwrap_or((value, ""));
    let secret = secret.trim();
    if secret.is_empty() {
        return MARKER.to_owned();
    }
    if secret.starts_with(MARKER) {
        // Already redacted (a cassette exported to HAR and imported again): keep the identity.
        return value.to_owned();
    }
    // Pushed piece by piece: this runs for every request that carries a credential, and
    // `format!` and a lower-cased copy of the scheme cost as much as the rest of it.
    // Room for the longest form: ` REDACTED last8=` and a token's last eight and SHA-256.
    let mut out = String::with_capacity(scheme.len() + 96);
    out.push_str(scheme);
    out.push(' ');
    out.push_str(MARKER);
    let is = |name: &str| scheme.eq_ignore_ascii_case(name);
    if is("basic") {
        if let Some(user) = basic_user(secret) {
            out.push_str(" user=");
            out.push_str(&user);
        }
    } else if is("token") || is("bearer") {
        out.push_str(" last8=");
        out.push_str(&last_eight(secret));
        out.push_str(" sha256=");
        out.push_str(&sha256_hex(secret.as_bytes()));
    }
    out
}

/// The user name of a Basic credential, when it decodes to `user:password`.
pub fn basic_user(encoded: &str) -> Option<String> {
    let decoded = BASE64.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, _password) = decoded.split_once(':')?;
    let printable = user.chars().all(|c| !c.is_control() && c != ' ');
    printable.then(|| user.to_owned())
}

fn redact_set_cookie(value: &str) -> String {
    let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
    let name = pair.split_once('=').map_or(pair, |(name, _)| name).trim();
    if attributes.is_empty() {
        format!("{name}={MARKER}")
    } else {
        format!("{name}={MARKER};{attributes}")
    }
}

fn redact_keys(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                if keys.contains(&key.as_str()) && !item.is_null() {
                    *item = Value::String(MARKER.to_owned());
                } else {
                    redact_keys(item, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_keys(item, keys)),
        _ => {}
    }
}

fn redact_tokens(value: &mut Value) {
    match value {
        Value::Object(map) => {
            redact_token_field(map);
            map.values_mut().for_each(redact_tokens);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_tokens),
        _ => {}
    }
}

/// Blanks a non-empty `token` and keeps its identity in `token_last_eight` / `hashed_token`.
fn redact_token_field(map: &mut Map<String, Value>) {
    let token = match map.get("token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        _ => return,
    };
    let computed = [
        ("token_last_eight", last_eight(&token)),
        ("hashed_token", sha256_hex(token.as_bytes())),
    ];
    for (field, value) in computed {
        match map.get(field) {
            Some(Value::String(sent)) if *sent == value => {}
            Some(Value::String(_)) => {
                tracing::warn!(field, "upstream sent a {field} that does not match its token; keeping the upstream's value");
            }
            _ => {
                map.insert(field.to_owned(), Value::String(value));
            }
        }
    }
    map.insert("token".to_owned(), Value::String(String::new()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(headers: &[(&str, &str)], query: &[(&str, &str)], body: Body) -> RecordedRequest {
        RecordedRequest {
            method: "POST".into(),
            path: "/api/v3/authorizations".into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
        }
    }

    #[test]
    fn basic_keeps_only_the_user_name() {
        let password = format!("pw-{}", std::process::id());
        let encoded = BASE64.encode(format!("octocat:{password}"));
        assert_eq!(
            redact_credentials(&format!("Basic {encoded}")),
            "Basic REDACTED user=octocat"
        );
        assert_eq!(redact_credentials("Basic !!notbase64"), "Basic REDACTED");
        assert_eq!(
            redact_credentials("Basic REDACTED user=octocat"),
            "Basic REDACTED user=octocat",
            "idempotent"
        );
    }

    #[test]
    fn schemes_are_matched_in_any_case_and_kept_as_sent() {
        let encoded = BASE64.encode(format!("octocat:pw-{}", std::process::id()));
        assert_eq!(
            redact_credentials(&format!("BASIC {encoded}")),
            "BASIC REDACTED user=octocat"
        );
        let token = format!("t{}-87654321", std::process::id());
        assert_eq!(
            redact_credentials(&format!("Bearer {token}")),
            format!(
                "Bearer REDACTED last8=87654321 sha256={}",
                sha256_hex(token.as_bytes())
            )
        );
        assert_eq!(
            redact_credentials(&format!("Digest {token}")),
            "Digest REDACTED"
        );
        assert_eq!(redact_credentials("Basic"), "REDACTED");
    }

    #[test]
    fn tokens_keep_last_eight_and_hash() {
        let token = format!("{}{}", "a".repeat(32), "12345678");
        let redacted = redact_credentials(&format!("token {token}"));
        assert_eq!(
            redacted,
            format!(
                "token REDACTED last8=12345678 sha256={}",
                sha256_hex(token.as_bytes())
            )
        );
        assert!(!redacted.contains(&token));
    }

    #[test]
    fn docs_example_hash_matches() {
        assert_eq!(
            sha256_hex(b"abcdefgh12345678"),
            "25f94a2a5c7fbaf499c665bc73d67c1c87e496da8985131633ee0a95819db2e8"
        );
        assert_eq!(last_eight("abcdefgh12345678"), "12345678");
        assert_eq!(last_eight("short"), "short");
    }

    #[test]
    fn request_secrets_are_replaced_everywhere() {
        let mut req = request(
            &[
                ("x-github-otp", "123456"),
                ("cookie", "a=b"),
                ("accept", "*/*"),
            ],
            &[("client_secret", "s"), ("page", "2")],
            Body::Json(
                json!({"client_secret": "s", "nested": [{"password": "p"}], "note": "n"}).into(),
            ),
        );
        Redactor::default().request(&mut req);
        assert_eq!(req.headers[0].1, "REDACTED");
        assert_eq!(req.headers[1].1, "REDACTED");
        assert_eq!(req.headers[2].1, "*/*");
        assert_eq!(
            req.query,
            vec![
                ("client_secret".into(), "REDACTED".into()),
                ("page".into(), "2".into())
            ]
        );
        assert_eq!(
            req.body,
            Body::Json(
                json!({"client_secret": "REDACTED", "nested": [{"password": "REDACTED"}], "note": "n"}).into()
            )
        );
    }

    #[test]
    fn user_rules_cover_headers_keys_and_patterns() {
        let redactor = Redactor::new(RedactionRules {
            headers: vec!["X-Internal-Key".into()],
            json_keys: vec!["api_key".into()],
            patterns: vec![Regex::new("corp-[0-9a-f]{8}").unwrap()],
        });
        let mut req = request(
            &[("x-internal-key", "k"), ("x-trace", "id corp-0badcafe")],
            &[("q", "corp-12345678")],
            Body::Json(json!({"deep": {"api_key": "k"}, "note": "for corp-deadbeef"}).into()),
        );
        req.path = "/api/v3/corp-00000000/x".into();
        redactor.request(&mut req);
        assert_eq!(req.headers[0].1, "REDACTED");
        assert_eq!(req.headers[1].1, "id REDACTED");
        assert_eq!(req.query[0].1, "REDACTED");
        assert_eq!(req.path, "/api/v3/REDACTED/x");
        assert_eq!(
            req.body,
            Body::Json(json!({"deep": {"api_key": "REDACTED"}, "note": "for REDACTED"}).into())
        );
        let mut resp = RecordedResponse {
            status: 200,
            headers: vec![("x-internal-key".into(), "k".into())],
            body: Body::Text("token corp-abcdef01".into()),
        };
        redactor.response(&mut resp);
        assert_eq!(resp.headers[0].1, "REDACTED");
        assert_eq!(resp.body, Body::Text("token REDACTED".into()));
    }

    #[test]
    fn legacy_token_paths_lose_the_token() {
        let redact_path_token =
            |path: &str| redact_path_token(path).unwrap_or_else(|| path.to_owned());
        assert_eq!(
            redact_path_token("/api/v3/applications/abc/tokens/0123456789abcdef"),
            "/api/v3/applications/abc/tokens/REDACTED"
        );
        assert_eq!(
            redact_path_token("/applications/abc/grants/tok"),
            "/applications/abc/grants/REDACTED"
        );
        assert_eq!(
            redact_path_token("/applications/grants/12"),
            "/applications/grants/12"
        );
        assert_eq!(redact_path_token("/authorizations/1"), "/authorizations/1");
    }

    #[test]
    fn secrets_do_not_debug_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter")), "(redacted)");
    }

    #[test]
    fn response_tokens_become_empty_with_identity_kept() {
        let token = format!("{}{}", "f".repeat(32), "0badcafe");
        let mut resp = RecordedResponse {
            status: 201,
            headers: vec![("set-cookie".into(), "_gh_sess=abc; path=/; HttpOnly".into())],
            body: Body::Json(
                json!([{"id": 1, "token": token, "hashed_token": null, "token_last_eight": null}, {"token": ""}]).into(),
            ),
        };
        Redactor::default().response(&mut resp);
        assert_eq!(resp.headers[0].1, "_gh_sess=REDACTED; path=/; HttpOnly");
        let body = resp.body.as_json().unwrap();
        assert_eq!(body[0]["token"], "");
        assert_eq!(body[0]["token_last_eight"], "0badcafe");
        assert_eq!(body[0]["hashed_token"], sha256_hex(token.as_bytes()));
        assert_eq!(body[1], json!({"token": ""}));
    }
    #[test]
    fn json_kept_as_text_is_redacted_too() {
        // Rails escapes `&` as \u0026, so compact JSON does not reproduce these bytes and the
        // body is kept as text; its token must go all the same.
        let token = format!("gho_{}", "x".repeat(36));
        let text = format!(r#"{{"id":1,"note":"ci \u0026 release","token":"{token}"}}"#);
        let mut resp = RecordedResponse {
            status: 201,
            headers: vec![],
            body: Body::from_bytes(text.as_bytes(), crate::cassette::body::Fidelity::Exact),
        };
        assert!(matches!(resp.body, Body::Text(_)));
        Redactor::default().response(&mut resp);
        let body = resp.body.as_json().expect("stored as JSON once redacted");
        assert_eq!(body["token"], "");
        assert_eq!(body["note"], "ci & release");
        assert_eq!(body["token_last_eight"], last_eight(&token));

        // Nothing to remove: the exact text stays.
        let quiet = r#"{"note":"a \u0026 b","token":""}"#;
        let mut resp = RecordedResponse {
            status: 200,
            headers: vec![],
            body: Body::from_bytes(quiet.as_bytes(), crate::cassette::body::Fidelity::Exact),
        };
        Redactor::default().response(&mut resp);
        assert_eq!(resp.body, Body::Text(quiet.to_owned()));
    }

    #[test]
    fn the_cheap_scan_sends_every_possible_secret_the_slow_way() {
        let redactor = Redactor::default();
        let token = format!("ghp_{}", "y".repeat(36));
        let may = |body: &str| redactor.may_change_response_body(body.as_bytes());
        assert!(may(&format!(r#"[{{"token":"{token}"}}]"#)));
        assert!(may(&format!(r#"{{"token" : "{token}"}}"#)));
        assert!(may(r#"{"\u0074oken":"abc"}"#));
        assert!(may(r#"{"token":1234}"#));
        assert!(!may(
            r#"[{"token":"","hashed_token":"ab","scopes":["token"]}]"#
        ));
        assert!(!may(r#"{"token":null,"note":"token"}"#));
        assert!(!may("plain text"));
        let with_rules = Redactor::new(RedactionRules {
            json_keys: vec!["note".into()],
            ..RedactionRules::default()
        });
        assert!(with_rules.may_change_response_body(b"{}"));
    }
}
