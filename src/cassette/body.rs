//! How a body is written in a cassette: structured JSON when it is JSON, text when it is UTF-8,
//! base64 otherwise, so reviewers read real JSON instead of an escaped string.

use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A stored body.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Body {
    /// No body (absent from the file).
    #[default]
    Empty,
    /// `{"json": ...}`: served as compact JSON in the key order it was recorded in.
    Json(Json),
    /// `{"text": "..."}`: UTF-8 that is not JSON, or JSON whose exact bytes compact JSON would
    /// not reproduce (so replay stays byte-for-byte faithful).
    Text(String),
    /// `{"base64": "..."}`: anything else.
    Binary(Bytes),
}

/// A JSON body: its compact text (the bytes replay serves) and its parsed tree, each made from
/// the other when first asked for. A loaded cassette holds only the text, since most answers
/// are only ever served: parsing them into trees and freeing the trees again cost a large
/// cassette most of its load time. Equal when the compact texts are equal.
#[derive(Clone)]
pub struct Json {
    /// Compact JSON, keys in the recorded order.
    text: OnceLock<Bytes>,
    /// Boxed: most bodies of a loaded cassette never have one.
    tree: OnceLock<Box<Value>>,
}

impl Json {
    /// JSON known only by its compact text, which must be what compact printing of its tree
    /// gives (as [`Compact`] and [`prints_as`] make sure).
    fn compact(text: Bytes) -> Self {
        Self {
            text: text.into(),
            tree: OnceLock::new(),
        }
    }

    /// JSON whose compact text `text` is already known.
    fn both(tree: Value, text: Bytes) -> Self {
        Self {
            text: text.into(),
            tree: Box::new(tree).into(),
        }
    }

    /// The compact text.
    pub fn text(&self) -> &Bytes {
        self.text.get_or_init(|| {
            let tree = self.tree.get().expect("JSON holds its text or its tree");
            Bytes::from(serde_json::to_vec(tree).expect("a JSON tree prints"))
        })
    }

    /// The parsed tree.
    pub fn value(&self) -> &Value {
        self.tree.get_or_init(|| {
            let text = self.text.get().expect("JSON holds its text or its tree");
            Box::new(serde_json::from_slice(text).expect("compact JSON text parses"))
        })
    }

    /// The tree, to change; the text is made again from it when next asked for.
    pub fn value_mut(&mut self) -> &mut Value {
        self.value();
        self.text = OnceLock::new();
        self.tree.get_mut().expect("parsed above").as_mut()
    }
}

impl From<Value> for Json {
    fn from(tree: Value) -> Self {
        Self {
            text: OnceLock::new(),
            tree: Box::new(tree).into(),
        }
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.text()))
    }
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
            match fidelity {
                // Printed only if something asks for the text (matching reads the tree).
                Fidelity::Semantic => return Body::Json(value.into()),
                Fidelity::Exact if prints_as(&value, bytes) => {
                    return Body::Json(Json::both(value, Bytes::copy_from_slice(bytes)));
                }
                Fidelity::Exact => {}
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
        // Kept as its text alone: a loaded cassette's answers are served, not read.
        self.settle(false)
    }

    /// As [`Body::settled`], for a body about to be printed for review: JSON keeps the tree
    /// it was parsed into beside its text, since printing reads the tree (parsing it a second
    /// time there was a third of what the recorder's final save cost).
    #[must_use]
    pub fn settled_to_print(self) -> Self {
        self.settle(true)
    }

    fn settle(self, keep_tree: bool) -> Self {
        match self {
            Body::Text(text) => match serde_json::from_str::<Value>(&text) {
                Ok(value) if prints_as(&value, text.as_bytes()) => {
                    let text = Bytes::from(text);
                    Body::Json(if keep_tree {
                        Json::both(value, text)
                    } else {
                        Json::compact(text)
                    })
                }
                _ => Body::Text(text),
            },
            other => other,
        }
    }

    /// The bytes to send.
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::Json(json) => json.text().clone(),
            Body::Text(text) => Bytes::from(text.clone()),
            Body::Binary(bytes) => bytes.clone(),
        }
    }

    /// The parsed JSON, if this body is JSON.
    pub fn as_json(&self) -> Option<&Value> {
        match self {
            Body::Json(json) => Some(json.value()),
            _ => None,
        }
    }

    /// A canonical form for matching: JSON with sorted keys and no whitespace, so key order and
    /// formatting never decide a match.
    pub fn canonical(&self) -> String {
        match self {
            Body::Empty => String::new(),
            Body::Json(json) => {
                let mut out = String::new();
                write_canonical(json.value(), &mut out);
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
            Body::Json(json) => map.serialize_entry("json", json.value())?,
            Body::Text(text) => map.serialize_entry("text", text)?,
            Body::Binary(bytes) => map.serialize_entry("base64", &BASE64.encode(bytes))?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_option(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> serde::de::Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(ONE_KIND)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Body, E> {
        Ok(Body::Empty)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Body, E> {
        Ok(Body::Empty)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Body, D::Error> {
        deserializer.deserialize_map(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let Some(kind) = map.next_key::<String>()? else {
            return Err(A::Error::custom(ONE_KIND));
        };
        let body = match kind.as_str() {
            // Straight to the compact text that replay serves: no tree to build and free.
            "json" => Body::Json(Json::compact(map.next_value_seed(Compact)?)),
            "text" => Body::Text(map.next_value_seed(KindString("text"))?),
            "base64" => {
                let encoded = map.next_value_seed(KindString("base64"))?;
                let bytes = BASE64.decode(encoded.as_bytes()).map_err(|err| {
                    A::Error::custom(format!("body \"base64\" is not valid base64: {err}"))
                })?;
                Body::Binary(Bytes::from(bytes))
            }
            other => {
                return Err(A::Error::custom(format!(
                    "unknown body kind \"{other}\"; expected \"json\", \"text\" or \"base64\""
                )))
            }
        };
        if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            return Err(A::Error::custom(ONE_KIND));
        }
        Ok(body)
    }
}

/// The string a body kind holds; anything else is an error that names the kind.
struct KindString(&'static str);

impl<'de> serde::de::DeserializeSeed<'de> for KindString {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl serde::de::Visitor<'_> for KindString {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a string: body \"{}\" must be a string", self.0)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<String, E> {
        Ok(text.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, text: String) -> Result<String, E> {
        Ok(text)
    }
}

const ONE_KIND: &str =
    "a body is an object with exactly one of the keys \"json\", \"text\" or \"base64\"";

/// Deserializes any JSON value straight into its compact text, with no tree in between: the
/// bytes are those `serde_json` prints for the tree (a key given twice is kept twice, where a
/// tree would keep the last).
struct Compact;

impl<'de> serde::de::DeserializeSeed<'de> for Compact {
    type Value = Bytes;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bytes, D::Error> {
        thread_local! {
            /// Printed into first, then copied at its exact size: growing each body's own
            /// buffer left it up to twice the body's size, for as long as the body is kept.
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with_borrow_mut(|out| {
            out.clear();
            serde_transcode::transcode(deserializer, &mut serde_json::Serializer::new(&mut *out))
                .map_err(D::Error::custom)?;
            let body = Bytes::copy_from_slice(out);
            if out.capacity() > 1 << 20 {
                *out = Vec::new();
            }
            Ok(body)
        })
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
    fn settling_to_print_gives_what_settling_gives_with_the_tree_kept() {
        let compact = r#"{"b":1,"a":[true,null,"x"]}"#;
        for text in [compact, "{\"a\": 1.0}", "not json"] {
            let settled = Body::Text(text.into()).settled();
            let to_print = Body::Text(text.into()).settled_to_print();
            assert_eq!(to_print, settled, "{text}");
            assert_eq!(matches!(to_print, Body::Json(_)), text == compact, "{text}");
            if let (Body::Json(settled), Body::Json(to_print)) = (&settled, &to_print) {
                assert!(
                    settled.tree.get().is_none(),
                    "a loaded answer keeps its text alone"
                );
                assert!(
                    to_print.tree.get().is_some(),
                    "printing reads the tree: kept"
                );
                assert_eq!(&to_print.text()[..], compact.as_bytes());
            }
        }
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
    fn a_json_body_loads_as_the_compact_text_its_tree_prints() {
        // Pretty-printed as a cassette holds it, with escapes, numbers and nesting that compact
        // printing normalises: the loaded text must be what the tree would print.
        let stored = r#"{
          "json": {
            "b": [1, -2, 1.0e5, 0.5, 18446744073709551615, 184467440737095516150, 1.5E300],
            "a": "caf\u00e9 \/ \"q\" \n \u0001",
            "nested": {"empty": {}, "none": [], "null": null, "t": true}
          }
        }"#;
        let tree: Value = serde_json::from_str::<Value>(stored).unwrap()["json"].take();
        let Body::Json(json) = serde_json::from_str::<Body>(stored).unwrap() else {
            panic!("not JSON");
        };
        assert_eq!(json.text(), &serde_json::to_vec(&tree).unwrap());
        assert_eq!(json.value(), &tree);
        assert_eq!(Body::Json(json), Body::Json(tree.into()));
    }

    #[test]
    fn a_changed_tree_prints_again() {
        let mut body = Body::from_bytes(br#"{"token":"x","id":1}"#, Fidelity::Exact);
        let Body::Json(json) = &mut body else {
            panic!("not JSON");
        };
        json.value_mut()["token"] = Value::from("");
        assert_eq!(&body.to_bytes()[..], br#"{"token":"","id":1}"#);
    }

    #[test]
    fn a_body_with_two_kinds_or_a_kind_of_the_wrong_type_is_explained() {
        for (stored, expected) in [
            (r#"{"json": 1, "text": "x"}"#, "exactly one of the keys"),
            (r#"{}"#, "exactly one of the keys"),
            (r#"{"text": 1}"#, "body \"text\" must be a string"),
            (r#"{"base64": "%%"}"#, "not valid base64"),
            (r#"{"json": [1,}"#, "line 1 column 13"),
            (r#"{"text": "a\q"}"#, "invalid escape"),
        ] {
            let err = serde_json::from_str::<Body>(stored)
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{stored}: {err}");
        }
        assert_eq!(serde_json::from_str::<Body>("null").unwrap(), Body::Empty);
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
