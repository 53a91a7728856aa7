//! Prints a cassette as review-friendly JSON: two-space indentation, one line per header or
//! query pair (arrays of plain values stay on one line), keys in a fixed order, and a trailing
//! newline.

use serde_json::Value;

/// Pretty-prints `value` the way cassettes are written.
pub fn to_pretty_json(value: &Value) -> String {
    let mut out = Vec::with_capacity(4096);
    write_value(value, 0, &mut out);
    out.push(b'\n');
    into_string(out)
}

/// Pretty-prints `value` as it appears nested `depth` levels deep (no leading indentation, no
/// trailing newline), e.g. one interaction inside `"interactions"` at depth 2.
pub fn to_pretty_json_at(value: &Value, depth: usize) -> String {
    let mut out = Vec::with_capacity(2048);
    write_value(value, depth, &mut out);
    into_string(out)
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
}
