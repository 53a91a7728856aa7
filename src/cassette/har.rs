//! HAR 1.2, the format of browser devtools, mitmproxy and Charles: export a cassette to it, and
//! import one through the same capture step as recording, so a HAR saved with live tokens
//! yields a clean cassette.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use serde::{Deserialize, Serialize};

use super::{Body, Cassette, Interaction, ORIGIN_PLACEHOLDER};
use crate::capture::Capture;
use crate::origin::Origin;
use crate::redaction::Redactor;
use crate::scope::Scope;

#[derive(Debug, Serialize, Deserialize)]
pub struct Har {
    pub log: Log,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Log {
    #[serde(default = "version")]
    pub version: String,
    #[serde(default)]
    pub creator: Creator,
    #[serde(default)]
    pub entries: Vec<Entry>,
}

fn version() -> String {
    "1.2".to_owned()
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Creator {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(default)]
    pub started_date_time: String,
    #[serde(default)]
    pub time: f64,
    pub request: Request,
    pub response: Response,
    #[serde(default)]
    pub cache: serde_json::Value,
    #[serde(default)]
    pub timings: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NameValue {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    pub method: String,
    pub url: String,
    #[serde(default = "http11")]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<NameValue>,
    #[serde(default)]
    pub query_string: Vec<NameValue>,
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    #[serde(default = "unknown_size")]
    pub headers_size: i64,
    #[serde(default = "unknown_size")]
    pub body_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_data: Option<PostData>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostData {
    #[serde(default)]
    pub mime_type: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub status: u16,
    #[serde(default)]
    pub status_text: String,
    #[serde(default = "http11")]
    pub http_version: String,
    #[serde(default)]
    pub headers: Vec<NameValue>,
    #[serde(default)]
    pub cookies: Vec<serde_json::Value>,
    #[serde(default)]
    pub content: Content,
    #[serde(default, rename = "redirectURL")]
    pub redirect_url: String,
    #[serde(default = "unknown_size")]
    pub headers_size: i64,
    #[serde(default = "unknown_size")]
    pub body_size: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

fn http11() -> String {
    "HTTP/1.1".to_owned()
}

fn unknown_size() -> i64 {
    -1
}

fn pairs(list: &[(String, String)]) -> Vec<NameValue> {
    list.iter()
        .map(|(name, value)| NameValue {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A cassette as HAR, with `origin` in place of the origin placeholder.
pub fn export(cassette: &Cassette, origin: &str) -> Har {
    let put_origin = |text: &str| text.replace(ORIGIN_PLACEHOLDER, origin);
    let entries = cassette
        .interactions
        .iter()
        .map(|interaction| {
            let request = &interaction.request;
            let mut url = format!("{origin}{}", request.path);
            if !request.query.is_empty() {
                let mut query = form_urlencoded::Serializer::new(String::new());
                for (name, value) in &request.query {
                    query.append_pair(name, value);
                }
                url = format!("{url}?{}", query.finish());
            }
            let content_type = |headers: &[(String, String)]| {
                super::header_values(headers, "content-type")
                    .next()
                    .unwrap_or("")
                    .to_owned()
            };
            let request_body = request.body.to_bytes();
            let response = &interaction.response;
            let response_bytes = response.body.to_bytes();
            let (text, encoding) = match &response.body {
                Body::Empty => (None, None),
                Body::Binary(bytes) => (Some(BASE64.encode(bytes)), Some("base64".to_owned())),
                _ => (
                    Some(put_origin(&String::from_utf8_lossy(&response_bytes))),
                    None,
                ),
            };
            let time = interaction.latency_ms.unwrap_or(0) as f64;
            Entry {
                started_date_time: "1970-01-01T00:00:00.000Z".to_owned(),
                time,
                request: Request {
                    method: request.method.clone(),
                    url,
                    http_version: http11(),
                    headers: pairs(&request.headers),
                    query_string: pairs(&request.query),
                    cookies: vec![],
                    headers_size: -1,
                    body_size: i64::try_from(request_body.len()).unwrap_or(-1),
                    post_data: (!request.body.is_empty()).then(|| PostData {
                        mime_type: content_type(&request.headers),
                        text: put_origin(&String::from_utf8_lossy(&request_body)),
                    }),
                },
                response: Response {
                    status: response.status,
                    status_text: StatusCode::from_u16(response.status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                        .to_owned(),
                    http_version: http11(),
                    headers: response
                        .headers
                        .iter()
                        .map(|(name, value)| NameValue {
                            name: name.clone(),
                            value: put_origin(value),
                        })
                        .collect(),
                    cookies: vec![],
                    content: Content {
                        size: i64::try_from(response_bytes.len()).unwrap_or(-1),
                        mime_type: content_type(&response.headers),
                        text,
                        encoding,
                    },
                    redirect_url: String::new(),
                    headers_size: -1,
                    body_size: i64::try_from(response_bytes.len()).unwrap_or(-1),
                },
                cache: serde_json::json!({}),
                timings: serde_json::json!({"send": 0, "wait": time, "receive": 0}),
            }
        })
        .collect();
    Har {
        log: Log {
            version: version(),
            creator: Creator {
                name: "ghes-vcr".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            entries,
        },
    }
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub interactions: usize,
    /// Entries outside the scope (the deprecated API plus `includes`).
    pub out_of_scope: usize,
    /// Entries that could not be read (a bad URL, method or header).
    pub unreadable: Vec<String>,
}

/// A HAR as a cassette: each in-scope entry goes through the same capture step as a recording
/// (redaction, origin placeholder), so secrets in the HAR never reach the cassette.
pub fn import(har: &Har, scope: &Scope, redactor: &Redactor) -> (Cassette, Imported) {
    let mut cassette = Cassette::new();
    let mut report = Imported::default();
    for (index, entry) in har.log.entries.iter().enumerate() {
        match interaction(entry, scope, redactor) {
            Ok(Some(interaction)) => cassette.interactions.push(interaction),
            Ok(None) => report.out_of_scope += 1,
            Err(reason) => report
                .unreadable
                .push(format!("entries[{index}]: {reason}")),
        }
    }
    report.interactions = cassette.interactions.len();
    (cassette, report)
}

fn interaction(
    entry: &Entry,
    scope: &Scope,
    redactor: &Redactor,
) -> Result<Option<Interaction>, String> {
    let uri: Uri = entry
        .request
        .url
        .parse()
        .map_err(|_| format!("{:?} is not a URL", entry.request.url))?;
    if !scope.is_in_scope(uri.path()) {
        return Ok(None);
    }
    let method = Method::from_bytes(entry.request.method.as_bytes())
        .map_err(|_| format!("bad method {:?}", entry.request.method))?;
    let capture = Capture::new(redactor.clone(), Origin::of_uri(&uri));
    let headers = |list: &[NameValue]| -> Result<HeaderMap, String> {
        let mut map = HeaderMap::new();
        for NameValue { name, value } in list {
            // HTTP/2 pseudo-headers (":authority") are not headers.
            if name.starts_with(':') {
                continue;
            }
            let name = HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|_| format!("bad header name {name:?}"))?;
            let value =
                HeaderValue::from_str(value).map_err(|_| format!("bad value for header {name}"))?;
            map.append(name, value);
        }
        Ok(map)
    };
    let request_headers = headers(&entry.request.headers)?;
    let request_body = entry
        .request
        .post_data
        .as_ref()
        .map(|data| data.text.as_bytes().to_vec())
        .unwrap_or_default();
    let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let relative: Uri = path_and_query.parse().map_err(|_| "bad path".to_owned())?;
    let request = capture.request(&method, &relative, &request_headers, &request_body);
    let mut response_headers = headers(&entry.response.headers)?;
    // HAR bodies are stored decoded.
    response_headers.remove(http::header::CONTENT_ENCODING);
    let content = &entry.response.content;
    let body = match (&content.text, content.encoding.as_deref()) {
        (Some(text), Some("base64")) => BASE64
            .decode(text)
            .map_err(|_| "response content is not valid base64".to_owned())?,
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let status = StatusCode::from_u16(entry.response.status)
        .map_err(|_| format!("bad status {}", entry.response.status))?;
    let response = capture.response(status, &response_headers, &body);
    Ok(Some(Interaction {
        request,
        response,
        latency_ms: (entry.time >= 0.0).then(|| entry.time.round() as u64),
    }))
}
