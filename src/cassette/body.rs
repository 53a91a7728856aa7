//! How a body is written in a cassette: structured JSON when it is JSON, text when it is UTF-8,
//! base64 otherwise, so reviewers read real JSON instead of an escaped string.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// A stored body.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Body {
    /// No body (absent from the file).
    #[default]
    Empty,
    /// `{"json": ...}`: served as compact JSON in the key order it was recorded in.
    Json(Value),
    /// `{"text": "..."}`: UTF-8 that is not JSON, or JSON whose exact bytes compact JSON would
    /// not reproduce (so replay stays byte-for-byte faithful).
    Text(String),
    /// `{"base64": "..."}`: anything else.
    Binary(Bytes),
}

/// What the body's bytes must survive: a request is compared semantically, a response is
/// served again and must come back byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fidelity {
    /// Any JSON is stored as JSON (whitespace and key order are not kept).
    Semantic,
    /// JSON is stored as JSON only when compact JSON reproduces the exact bytes.
    Exact,
}

impl Body {
    /// Classifies raw bytes.
    pub fn from_bytes(bytes: &[u8], fidelity: Fidelity) -> Self {
        if bytes.is_empty() {
            return Body::Empty;
        }
        if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
            let exact = fidelity == Fidelity::Semantic || prints_as(&value, bytes);
            if exact {
                return Body::Json(value);
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Body::Text(text.to_owned()),
            Err(_) => Body::Binary(Bytes::copy_from_slice(bytes)),
        }
    }

    pub fn is_empty(&self) -> bool {
        matches!(self, Body::Empty)
    }

    /// A response body as a cassette prints it for review: text that is JSON, and that compact
    /// JSON gives back byte for byte, becomes JSON (as [`Body::from_bytes`] with
    /// [`Fidelity::Exact`] would have made it); anything else stays as it is. The recorder
    /// logs answers as text and settles them when it writes the cassette whole.
    #[must_use]
    pub fn settled(self) -> Self {
        match self {
            Body::Text(text) => match Body::from_bytes(text.as_bytes(), Fidelity::Exact) {
                json @ Body::Json(_) => json,
                _ => Body::Text(text),
            },
            other => other,
        }
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::Json(value) => Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            Body::Text(text) => Bytes::from(text.clone()),
            Body::Binary(bytes) => bytes.clone(),
        }
    }

    /// The parsed JSON, if this body is JSON.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Body::Json(value) => Some(value),
            _ => None,
        }
    }

    /// A canonical form for matching: JSON with sorted keys and no whitespace, so key order and
    /// formatting never decide a match.
    pub fn canonical(&self) -> String {
        match self {
            Body::Empty => String::new(),
            Body::Json(value) => {
                let mut out = String::new();
                write_canonical(value, &mut out);
                out
            }
            Body::Text(text) => text.clone(),
            Body::Binary(bytes) => BASE64.encode(bytes),
        }
    }
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Whether compact JSON of `value` is exactly `bytes`, compared while printing (no copy; stops
/// at the first difference).
fn prints_as(value: &Value, bytes: &[u8]) -> bool {
    struct Compare<'a>(&'a [u8]);
    impl std::io::Write for Compare<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match self.0.strip_prefix(buf) {
                Some(rest) => {
                    self.0 = rest;
                    Ok(buf.len())
                }
                None => Err(std::io::ErrorKind::InvalidData.into()),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut compare = Compare(bytes);
    serde_json::to_writer(&mut compare, value).is_ok() && compare.0.is_empty()
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        // Written in place: a body can be large, and entries and interactions are serialized
        // on every journaled or recorded exchange.
        let mut map = match self {
            Body::Empty => return serializer.serialize_none(),
            _ => serializer.serialize_map(Some(1))?,
        };
        match self {
            Body::Empty => {}
            Body::Json(value) => map.serialize_entry("json", value)?,
            Body::Text(text) => map.serialize_entry("text", text)?,
            Body::Binary(bytes) => map.serialize_entry("base64", &BASE64.encode(bytes))?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(map) = Option::<Map<String, Value>>::deserialize(deserializer)? else {
            return Ok(Body::Empty);
        };
        if map.len() != 1 {
            return Err(D::Error::custom(
                "a body is an object with exactly one of the keys \"json\", \"text\" or \"base64\"",
            ));
        }
        let (key, value) = map.into_iter().next().expect("one entry");
        match (key.as_str(), value) {
            ("json", value) => Ok(Body::Json(value)),
            ("text", Value::String(text)) => Ok(Body::Text(text)),
            ("base64", Value::String(encoded)) => BASE64
                .decode(encoded.as_bytes())
                .map(|bytes| Body::Binary(Bytes::from(bytes)))
                .map_err(|err| {
                    D::Error::custom(format!("body \"base64\" is not valid base64: {err}"))
                }),
            ("text" | "base64", _) => {
                Err(D::Error::custom(format!("body \"{key}\" must be a string")))
            }
            (other, _) => Err(D::Error::custom(format!(
                "unknown body kind \"{other}\"; expected \"json\", \"text\" or \"base64\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_is_stored_as_json_and_round_trips() {
        let raw = br#"{"b":1,"a":[true,null,"x"]}"#;
        let body = Body::from_bytes(raw, Fidelity::Exact);
        assert!(matches!(body, Body::Json(_)));
        assert_eq!(&body.to_bytes()[..], raw);
    }

    #[test]
    fn json_that_compact_output_would_change_is_text_for_responses_only() {
        let raw = b"{\"a\": 1.0}";
        assert_eq!(
            Body::from_bytes(raw, Fidelity::Exact),
            Body::Text("{\"a\": 1.0}".into())
        );
        assert!(matches!(
            Body::from_bytes(raw, Fidelity::Semantic),
            Body::Json(_)
        ));
    }

    #[test]
    fn binary_is_base64_and_round_trips_through_serde() {
        let body = Body::from_bytes(&[0xff, 0x00, 0x10], Fidelity::Exact);
        let json = serde_json::to_string(&body).unwrap();
        assert_eq!(json, r#"{"base64":"/wAQ"}"#);
        assert_eq!(serde_json::from_str::<Body>(&json).unwrap(), body);
    }

    #[test]
    fn canonical_form_ignores_key_order() {
        let a = Body::from_bytes(br#"{"b":1,"a":{"y":2,"x":1}}"#, Fidelity::Semantic);
        let b = Body::from_bytes(br#"{ "a": {"x":1,"y":2}, "b": 1 }"#, Fidelity::Semantic);
        assert_eq!(a.canonical(), b.canonical());
    }

    #[test]
    fn unknown_body_kind_is_explained() {
        let err = serde_json::from_str::<Body>(r#"{"yaml":"x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown body kind \"yaml\""),
            "{err}"
        );
    }
}
