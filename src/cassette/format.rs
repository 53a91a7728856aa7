//! Prints a cassette as review-friendly JSON: two-space indentation, one line per header or
//! query pair (arrays of plain values stay on one line), keys in a fixed order, and a trailing
//! newline.

use serde_json::Value;

use super::{Body, Interaction};

/// Pretty-prints `value` the way cassettes are written.
pub fn to_pretty_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(4096);
    write_value(value, 0, &mut out);
    out.push(b'\n');
    into_string(out)
}

/// Pretty-prints `value` as it appears nested `depth` levels deep (no leading indentation, no
/// trailing newline), e.g. one interaction inside `"interactions"` at depth 2. The recorder
/// prints interactions with [`interaction_at`]; this is its reference in tests.
#[cfg(test)]
pub fn to_pretty_json_at(value: &Value, depth: usize) -> String {
    let mut out = Vec::with_capacity(2048);
    write_value(value, depth, &mut out);
    into_string(out)
}

/// Prints one interaction as it stands nested `depth` levels deep, exactly as
/// [`to_pretty_json_at`] prints its `serde_json::Value`, without building that tree first (the
/// recorder prints every interaction it records).
pub fn interaction_at(interaction: &Interaction, depth: usize) -> String {
    let mut out = Vec::with_capacity(2048);
    let mut top = Object::open(depth, &mut out);
    let request = &interaction.request;
    let mut nested = Object::open(depth + 1, top.key("request"));
    write_scalar(&request.method, nested.key("method"));
    write_scalar(&request.path, nested.key("path"));
    write_pairs(&request.query, depth + 2, nested.key("query"));
    write_pairs(&request.headers, depth + 2, nested.key("headers"));
    if !request.body.is_empty() {
        write_body(&request.body, depth + 2, nested.key("body"));
    }
    nested.close();
    let response = &interaction.response;
    let mut nested = Object::open(depth + 1, top.key("response"));
    write_scalar(&response.status, nested.key("status"));
    write_pairs(&response.headers, depth + 2, nested.key("headers"));
    if !response.body.is_empty() {
        write_body(&response.body, depth + 2, nested.key("body"));
    }
    nested.close();
    if let Some(latency) = interaction.latency_ms {
        write_scalar(&latency, top.key("latency_ms"));
    }
    top.close();
    into_string(out)
}

/// An object being printed, one key after another (never empty).
struct Object<'a> {
    out: &'a mut Vec<u8>,
    depth: usize,
    first: bool,
}

impl<'a> Object<'a> {
    fn open(depth: usize, out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self {
            out,
            depth,
            first: true,
        }
    }

    /// Starts the next member; its value is written to the returned buffer.
    fn key(&mut self, name: &str) -> &mut Vec<u8> {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        newline(self.depth + 1, self.out);
        write_scalar(name, self.out);
        self.out.extend_from_slice(b": ");
        self.out
    }

    fn close(self) {
        newline(self.depth, self.out);
        self.out.push(b'}');
    }
}

/// Header or query pairs: one `["name", "value"]` per line.
fn write_pairs(pairs: &[(String, String)], depth: usize, out: &mut Vec<u8>) {
    if pairs.is_empty() {
        out.extend_from_slice(b"[]");
        return;
    }
    out.push(b'[');
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        newline(depth + 1, out);
        out.push(b'[');
        write_scalar(name, out);
        out.extend_from_slice(b", ");
        write_scalar(value, out);
        out.push(b']');
    }
    newline(depth, out);
    out.push(b']');
}

/// A body as its one-key object (`json`, `text` or `base64`).
fn write_body(body: &Body, depth: usize, out: &mut Vec<u8>) {
    let mut object = Object::open(depth, out);
    match body {
        Body::Empty => {}
        Body::Json(json) => write_value(json.value(), depth + 1, object.key("json")),
        Body::Text(text) => write_scalar(text, object.key("text")),
        Body::Binary(bytes) => {
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
            write_scalar(&encoded, object.key("base64"));
        }
    }
    object.close();
}

/// The printer only writes UTF-8 (serde_json's output and ASCII punctuation).
fn into_string(out: Vec<u8>) -> String {
    String::from_utf8(out)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

fn write_value(value: &Value, depth: usize, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) if map.is_empty() => out.extend_from_slice(b"{}"),
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(depth + 1, out);
                write_scalar(key, out);
                out.extend_from_slice(b": ");
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push(b'}');
        }
        Value::Array(items) if items.is_empty() => out.extend_from_slice(b"[]"),
        Value::Array(items) if items.iter().all(is_scalar) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_value(item, depth, out);
            }
            out.push(b']');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(depth + 1, out);
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push(b']');
        }
        scalar => write_scalar(scalar, out),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

/// A string (escaped) or another scalar, straight into the output.
fn write_scalar<T: serde::Serialize + ?Sized>(scalar: &T, out: &mut Vec<u8>) {
    // Writing a string or number into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, scalar);
}

fn newline(depth: usize, out: &mut Vec<u8>) {
    out.push(b'\n');
    for _ in 0..depth {
        out.extend_from_slice(b"  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_stay_on_one_line_and_objects_indent() {
        let value = json!({"headers": [["accept", "*/*"], ["x", "y"]], "empty": {}, "list": []});
        assert_eq!(
            to_pretty_json(&value),
            "{\n  \"headers\": [\n    [\"accept\", \"*/*\"],\n    [\"x\", \"y\"]\n  ],\n  \"empty\": {},\n  \"list\": []\n}\n"
        );
    }

    #[test]
    fn output_parses_back_to_the_same_value() {
        let value = json!({"a": [1, {"b": "c\"d"}, null], "e": 1.5, "f": "\u{1F600}"});
        let text = to_pretty_json(&value);
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
    }

    #[test]
    fn interactions_print_as_the_generic_printer_prints_them() {
        use crate::cassette::{RecordedRequest, RecordedResponse};
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let bodies = [
            Body::Empty,
            Body::Json(json!({"a": [1, {"b": "c\"d"}], "e": [], "f": {}, "g": null}).into()),
            Body::Json(json!([]).into()),
            Body::Text("line\nbreak \u{1F600}".into()),
            Body::Binary(bytes::Bytes::from_static(b"\x00\xff")),
        ];
        for (n, body) in bodies.iter().enumerate() {
            let interaction = Interaction {
                request: RecordedRequest {
                    method: "PUT".into(),
                    path: "/api/v3/authorizations/clients/abc".into(),
                    query: if n % 2 == 0 {
                        vec![]
                    } else {
                        pairs(&[("page", "2"), ("q", "a b")])
                    },
                    headers: pairs(&[("accept", "*/*"), ("x-quote", "\"")]),
                    body: body.clone(),
                },
                response: RecordedResponse {
                    status: 201,
                    headers: if n == 1 {
                        vec![]
                    } else {
                        pairs(&[("etag", "W/\"x\"")])
                    },
                    body: body.clone(),
                },
                latency_ms: (n % 2 == 1).then_some(12),
            };
            let value = serde_json::to_value(&interaction).unwrap();
            for depth in [0, 2] {
                assert_eq!(
                    interaction_at(&interaction, depth),
                    to_pretty_json_at(&value, depth),
                    "body {n} at depth {depth}"
                );
            }
        }
    }
}
