//! Matching: which recorded interaction answers a request.
//!
//! Requests are compared in their redacted form (see [`crate::capture`]), on the fields chosen
//! with `--match-on` (default `method,path,query,body`):
//! - `method`: exact (`POST /authorizations/1` and `PATCH /authorizations/1` are different
//!   requests: each replays for the method that was recorded);
//! - `path`: exact, after removing an optional `/api/v3` prefix;
//! - `query`: the decoded pairs, in any order;
//! - `body`: JSON compared semantically (key order and whitespace ignored), other bodies exactly;
//! - `headers:NAME`: the values of header NAME;
//! - `auth`: the credential's identity without its secret: the Basic user name, or the SHA-256
//!   of a presented token (compared with the hash recorded in its place).
//!
//! [`MatchRules::key`] turns a request into a fingerprint, so lookups go through an index instead
//! of a scan; [`MatchRules::differences`] explains a miss field by field.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::cassette::{Body, RecordedRequest};
use crate::redaction::MARKER;
use crate::scope::api_path;

/// One field a match compares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchField {
    Method,
    Path,
    Query,
    Body,
    /// A header, by lower-case name.
    Header(String),
    /// The identity of the `Authorization` credential.
    Auth,
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchField::Method => f.write_str("method"),
            MatchField::Path => f.write_str("path"),
            MatchField::Query => f.write_str("query"),
            MatchField::Body => f.write_str("body"),
            MatchField::Header(name) => write!(f, "headers:{name}"),
            MatchField::Auth => f.write_str("auth"),
        }
    }
}

/// A `--match-on` value that is not a known field.
#[derive(Debug, thiserror::Error)]
#[error("unknown match field \"{0}\"; use method, path, query, body, auth or headers:NAME (e.g. --match-on method,path,query,body,headers:accept)")]
pub struct UnknownMatchField(pub String);

impl FromStr for MatchField {
    type Err = UnknownMatchField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "method" => Ok(MatchField::Method),
            "path" => Ok(MatchField::Path),
            "query" => Ok(MatchField::Query),
            "body" => Ok(MatchField::Body),
            "auth" => Ok(MatchField::Auth),
            lower => match lower
                .strip_prefix("headers:")
                .or_else(|| lower.strip_prefix("header:"))
            {
                Some(name)
                    if !name.is_empty()
                        && http::HeaderName::from_bytes(name.as_bytes()).is_ok() =>
                {
                    Ok(MatchField::Header(name.to_owned()))
                }
                _ => Err(UnknownMatchField(text.to_owned())),
            },
        }
    }
}

/// The fields a match compares, in a fixed order.
///
/// ```
/// use ghes_vcr::cassette::{Body, RecordedRequest};
/// use ghes_vcr::matching::MatchRules;
///
/// let rules: MatchRules = "method,path,query".parse().unwrap();
/// let request = |path: &str, query: &[(&str, &str)]| RecordedRequest {
///     method: "GET".into(),
///     path: path.into(),
///     query: query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
///     headers: vec![],
///     body: Body::Empty,
/// };
/// // The /api/v3 prefix and the order of query pairs do not matter.
/// assert_eq!(
///     rules.key(&request("/api/v3/authorizations", &[("page", "2"), ("per_page", "5")])),
///     rules.key(&request("/authorizations", &[("per_page", "5"), ("page", "2")])),
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchRules {
    fields: Vec<MatchField>,
}

impl Default for MatchRules {
    fn default() -> Self {
        Self::new(vec![
            MatchField::Method,
            MatchField::Path,
            MatchField::Query,
            MatchField::Body,
        ])
    }
}

impl MatchRules {
    pub fn new(mut fields: Vec<MatchField>) -> Self {
        let mut seen = Vec::new();
        fields.retain(|field| {
            let fresh = !seen.contains(field);
            seen.push(field.clone());
            fresh
        });
        Self { fields }
    }

    pub fn fields(&self) -> &[MatchField] {
        &self.fields
    }

    /// The fingerprint of a request: equal keys mean the request matches.
    pub fn key(&self, request: &RecordedRequest) -> String {
        let mut key = String::with_capacity(128);
        self.write_key(request, &mut key);
        key
    }

    /// Appends the fingerprint of a request ([`MatchRules::key`]) to `key`: a lookup per
    /// request can reuse one buffer.
    pub fn write_key(&self, request: &RecordedRequest, key: &mut String) {
        let mut digits = itoa::Buffer::new();
        for field in &self.fields {
            let part = field_value(field, request);
            // Length-prefixed, so no field value can forge another field.
            key.push_str(digits.format(part.len()));
            key.push(':');
            key.push_str(&part);
        }
    }

    /// How many of the fields agree; used to pick the closest candidate for a miss report.
    pub fn score(&self, request: &RecordedRequest, candidate: &RecordedRequest) -> usize {
        self.fields
            .iter()
            .map(|field| {
                let weight = match field {
                    MatchField::Path => 8,
                    MatchField::Method => 4,
                    MatchField::Query | MatchField::Body => 2,
                    MatchField::Header(_) | MatchField::Auth => 1,
                };
                if field_value(field, request) == field_value(field, candidate) {
                    weight
                } else {
                    0
                }
            })
            .sum()
    }

    /// Each compared field that differs, as `field: what differs`.
    pub fn differences(
        &self,
        request: &RecordedRequest,
        candidate: &RecordedRequest,
    ) -> Vec<String> {
        self.fields
            .iter()
            .filter(|field| field_value(field, request) != field_value(field, candidate))
            .map(|field| match field {
                MatchField::Method => format!(
                    "method: {} here, {} recorded",
                    request.method, candidate.method
                ),
                MatchField::Path => format!(
                    "path: {} here, {} recorded",
                    api_path(&request.path),
                    api_path(&candidate.path)
                ),
                MatchField::Query => format!(
                    "query: {}",
                    query_difference(&request.query, &candidate.query)
                ),
                MatchField::Body => {
                    format!("body: {}", body_difference(&request.body, &candidate.body))
                }
                MatchField::Header(name) => {
                    let recorded = header_value(candidate, name);
                    if recorded.contains(MARKER) {
                        format!(
                            "header {name}: the recorded value is redacted ({}); {SAME_RULES}",
                            shown(&recorded)
                        )
                    } else {
                        format!(
                            "header {name}: {} here, {} recorded",
                            shown(&header_value(request, name)),
                            shown(&recorded)
                        )
                    }
                }
                MatchField::Auth => format!(
                    "auth: {} here, {} recorded",
                    shown(&identity(request)),
                    shown(&identity(candidate))
                ),
            })
            .collect()
    }
}

/// Parses `method,path,query,body,headers:NAME`.
impl FromStr for MatchRules {
    type Err = UnknownMatchField;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fields = text
            .split(',')
            .filter(|part| !part.trim().is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(fields))
    }
}

impl fmt::Display for MatchRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.fields.iter().map(ToString::to_string).collect();
        f.write_str(&names.join(","))
    }
}

/// One compared field of a request, borrowed where it needs no normalizing (the common case:
/// keys are made for every request).
fn field_value<'a>(field: &'a MatchField, request: &'a RecordedRequest) -> Cow<'a, str> {
    match field {
        MatchField::Method if !request.method.bytes().any(|b| b.is_ascii_lowercase()) => {
            Cow::Borrowed(&request.method)
        }
        MatchField::Method => Cow::Owned(request.method.to_ascii_uppercase()),
        MatchField::Path => Cow::Borrowed(api_path(&request.path)),
        MatchField::Query if request.query.is_empty() => Cow::Borrowed("[]"),
        MatchField::Query => {
            let mut pairs: Vec<&(String, String)> = request.query.iter().collect();
            pairs.sort();
            Cow::Owned(serde_json::to_string(&pairs).unwrap_or_default())
        }
        MatchField::Body if matches!(request.body, Body::Empty) => Cow::Borrowed(""),
        MatchField::Body => Cow::Owned(request.body.canonical()),
        MatchField::Header(name) => header_value(request, name),
        MatchField::Auth => Cow::Owned(identity(request)),
    }
}

/// What to do when a recorded value is redacted and the request's is not.
const SAME_RULES: &str = "give replay the same --redact-* rules as the recording";

/// The identity of a redacted `Authorization` header: `basic:<user>` or `token:<sha256>`.
pub fn identity(request: &RecordedRequest) -> String {
    let Some(value) = request.header_values("authorization").next() else {
        return String::new();
    };
    let scheme = value.split_whitespace().next().unwrap_or_default();
    let field = |name: &str| {
        value
            .split_whitespace()
            .find_map(|word| word.strip_prefix(name))
    };
    // Built by hand rather than with `format!`: the journal asks this of every entry.
    let (kind, found) = if scheme.eq_ignore_ascii_case("basic") {
        ("basic", field("user="))
    } else if scheme.eq_ignore_ascii_case("token") || scheme.eq_ignore_ascii_case("bearer") {
        ("token", field("sha256="))
    } else {
        return format!("{}:(unknown)", scheme.to_ascii_lowercase());
    };
    let found = found.unwrap_or("(unknown)");
    let mut identity = String::with_capacity(kind.len() + 1 + found.len());
    identity.push_str(kind);
    identity.push(':');
    identity.push_str(found);
    identity
}

fn header_value<'a>(request: &'a RecordedRequest, name: &'a str) -> Cow<'a, str> {
    let mut values = request.header_values(name);
    match (values.next(), values.next()) {
        (None, _) => Cow::Borrowed(""),
        (Some(only), None) => Cow::Borrowed(only),
        (Some(first), Some(second)) => Cow::Owned(
            [first, second]
                .into_iter()
                .chain(values)
                .collect::<Vec<_>>()
                .join(", "),
        ),
    }
}

const SHOWN_LIMIT: usize = 80;

/// A value cut to a readable length, quoted.
fn shown(text: &str) -> String {
    if text.is_empty() {
        return "(none)".to_owned();
    }
    format!("\"{}\"", cut(text))
}

/// Text cut to a readable length.
fn cut(text: &str) -> String {
    let mut out: String = text.chars().take(SHOWN_LIMIT).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

fn query_difference(here: &[(String, String)], recorded: &[(String, String)]) -> String {
    let mut notes = Vec::new();
    for (key, value) in here {
        match recorded.iter().find(|(k, _)| k == key) {
            None => notes.push(format!("{key}={value} is not in the recording")),
            Some((_, other)) if other.contains(MARKER) && other != value => {
                notes.push(format!("{key} is redacted in the recording; {SAME_RULES}"))
            }
            Some((_, other)) if other != value => {
                notes.push(format!("{key}={value} here, {key}={other} recorded"))
            }
            Some(_) => {}
        }
    }
    for (key, value) in recorded {
        if !here.iter().any(|(k, _)| k == key) {
            notes.push(format!("{key}={value} recorded, missing here"));
        }
    }
    if notes.is_empty() {
        notes.push("same pairs, different repetition".to_owned());
    }
    notes.join("; ")
}

const BODY_NOTES_LIMIT: usize = 5;

fn body_difference(here: &Body, recorded: &Body) -> String {
    match (here.as_json(), recorded.as_json()) {
        (Some(a), Some(b)) => {
            let mut notes = Vec::new();
            json_difference("", a, b, &mut notes);
            let extra = notes.len().saturating_sub(BODY_NOTES_LIMIT);
            notes.truncate(BODY_NOTES_LIMIT);
            if extra > 0 {
                notes.push(format!("and {extra} more"));
            }
            notes.join("; ")
        }
        _ => format!(
            "{} here, {} recorded",
            shown(&here.canonical()),
            shown(&recorded.canonical())
        ),
    }
}

fn json_difference(path: &str, here: &Value, recorded: &Value, notes: &mut Vec<String>) {
    match (here, recorded) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = format!("{path}.{key}");
                match b.get(key) {
                    Some(other) => json_difference(&child, value, other, notes),
                    None => notes.push(format!("{child} is not in the recording")),
                }
            }
            for key in b.keys().filter(|key| !a.contains_key(*key)) {
                notes.push(format!("{path}.{key} recorded, missing here"));
            }
        }
        (a, b) if a == b => {}
        (_, Value::String(marker)) if marker.contains(MARKER) => {
            let at = if path.is_empty() {
                "(whole body)"
            } else {
                path
            };
            notes.push(format!(
                "{at}: the recorded value is redacted; {SAME_RULES}"
            ));
        }
        (a, b) => {
            let at = if path.is_empty() {
                "(whole body)"
            } else {
                path
            };
            notes.push(format!(
                "{at}: {} here, {} recorded",
                cut(&a.to_string()),
                cut(&b.to_string())
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(method: &str, path: &str, query: &[(&str, &str)], body: Body) -> RecordedRequest {
        RecordedRequest {
            method: method.into(),
            path: path.into(),
            query: query
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            headers: vec![("accept".into(), "application/json".into())],
            body,
        }
    }

    #[test]
    fn prefix_query_order_and_json_layout_do_not_matter() {
        let rules = MatchRules::default();
        let a = req(
            "GET",
            "/api/v3/authorizations",
            &[("page", "2"), ("per_page", "1")],
            Body::Json(json!({"a": 1, "b": 2}).into()),
        );
        let b = req(
            "GET",
            "/authorizations",
            &[("per_page", "1"), ("page", "2")],
            Body::Json(json!({"b": 2, "a": 1}).into()),
        );
        assert_eq!(rules.key(&a), rules.key(&b));
    }

    #[test]
    fn method_is_exact_so_post_and_patch_differ() {
        let rules = MatchRules::default();
        let post = req("POST", "/authorizations/1", &[], Body::Empty);
        let patch = req("PATCH", "/authorizations/1", &[], Body::Empty);
        assert_ne!(rules.key(&post), rules.key(&patch));
        assert_eq!(
            rules.differences(&post, &patch),
            vec!["method: POST here, PATCH recorded"]
        );
    }

    #[test]
    fn parses_fields_and_rejects_unknown_ones() {
        let rules: MatchRules = "method,path,headers:Accept".parse().unwrap();
        assert_eq!(rules.to_string(), "method,path,headers:accept");
        let err = "method,colour".parse::<MatchRules>().unwrap_err();
        assert!(err.to_string().contains("unknown match field \"colour\""));
    }

    #[test]
    fn header_rule_adds_the_header() {
        let rules: MatchRules = "method,path,headers:accept".parse().unwrap();
        let a = req("GET", "/user", &[], Body::Empty);
        let mut b = a.clone();
        b.headers[0].1 = "text/html".into();
        assert_ne!(rules.key(&a), rules.key(&b));
        assert!(
            rules.differences(&a, &b)[0].starts_with("header accept: \"application/json\" here")
        );
    }

    #[test]
    fn identity_names_the_credential_by_its_redacted_form() {
        let with_auth = |value: &str| RecordedRequest {
            headers: vec![("authorization".to_owned(), value.to_owned())],
            ..RecordedRequest::default()
        };
        let hash = "a".repeat(64);
        for (value, expected) in [
            ("Basic REDACTED user=octocat", "basic:octocat".to_owned()),
            ("BASIC  REDACTED\tuser=mona", "basic:mona".to_owned()),
            ("basic REDACTED", "basic:(unknown)".to_owned()),
            (
                &format!("token REDACTED last8=12345678 sha256={hash}"),
                format!("token:{hash}"),
            ),
            (
                &format!("Bearer REDACTED last8=12345678 sha256={hash}"),
                format!("token:{hash}"),
            ),
            ("Bearer REDACTED", "token:(unknown)".to_owned()),
            ("Digest REDACTED", "digest:(unknown)".to_owned()),
            ("REDACTED", "redacted:(unknown)".to_owned()),
        ] {
            assert_eq!(identity(&with_auth(value)), expected, "{value}");
        }
        assert_eq!(identity(&RecordedRequest::default()), "");
    }

    #[test]
    fn auth_matches_on_identity_not_secret() {
        let rules: MatchRules = "method,path,auth".parse().unwrap();
        let with = |value: &str| {
            let mut r = req("GET", "/user", &[], Body::Empty);
            r.headers.push(("authorization".into(), value.into()));
            r
        };
        let octocat = with("Basic REDACTED user=octocat");
        assert_eq!(
            rules.key(&octocat),
            rules.key(&with("basic REDACTED user=octocat"))
        );
        assert_ne!(
            rules.key(&octocat),
            rules.key(&with("Basic REDACTED user=mona"))
        );
        let token = with("token REDACTED last8=12345678 sha256=abc");
        assert_eq!(
            rules.key(&token),
            rules.key(&with("Bearer REDACTED last8=12345678 sha256=abc"))
        );
        assert_ne!(
            rules.key(&token),
            rules.key(&with("token REDACTED last8=12345678 sha256=def"))
        );
        assert_eq!(
            rules.differences(&octocat, &with("Basic REDACTED user=mona")),
            vec!["auth: \"basic:octocat\" here, \"basic:mona\" recorded"]
        );
    }

    #[test]
    fn a_redacted_recorded_value_is_never_shown_next_to_the_live_one() {
        let rules = MatchRules::default();
        let here = req(
            "POST",
            "/x",
            &[("api_key", "live-secret")],
            Body::Json(json!({"api_key": "live-secret"}).into()),
        );
        let recorded = req(
            "POST",
            "/x",
            &[("api_key", "REDACTED")],
            Body::Json(json!({"api_key": "REDACTED"}).into()),
        );
        let text = rules.differences(&here, &recorded).join("\n");
        assert!(!text.contains("live-secret"), "{text}");
        assert!(text.contains("same --redact-* rules"), "{text}");
    }

    #[test]
    fn differences_name_query_and_body_fields() {
        let rules = MatchRules::default();
        let here = req(
            "POST",
            "/authorizations",
            &[("page", "3")],
            Body::Json(json!({"note": "x", "scopes": ["repo"]}).into()),
        );
        let recorded = req(
            "POST",
            "/authorizations",
            &[("page", "2")],
            Body::Json(json!({"note": "y", "scopes": ["repo"], "fingerprint": "f"}).into()),
        );
        let diffs = rules.differences(&here, &recorded);
        assert_eq!(diffs[0], "query: page=3 here, page=2 recorded");
        assert_eq!(
            diffs[1],
            "body: .note: \"x\" here, \"y\" recorded; .fingerprint recorded, missing here"
        );
    }
}
