//! Prints a cassette as review-friendly JSON: two-space indentation, one line per header or
//! query pair (arrays of plain values stay on one line), keys in a fixed order, and a trailing
//! newline.

use serde_json::Value;

/// Pretty-prints `value` the way cassettes are written.
pub fn to_pretty_json(value: &Value) -> String {
    let mut out = String::with_capacity(4096);
    write_value(value, 0, &mut out);
    out.push('\n');
    out
}

/// Pretty-prints `value` as it appears nested `depth` levels deep (no leading indentation, no
/// trailing newline), e.g. one interaction inside `"interactions"` at depth 2.
pub fn to_pretty_json_at(value: &Value, depth: usize) -> String {
    let mut out = String::with_capacity(2048);
    write_value(value, depth, &mut out);
    out
}

fn write_value(value: &Value, depth: usize, out: &mut String) {
    match value {
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(depth + 1, out);
                write_string(key, out);
                out.push_str(": ");
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push('}');
        }
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) if items.iter().all(is_scalar) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, depth, out);
            }
            out.push(']');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(depth + 1, out);
                write_value(item, depth + 1, out);
            }
            newline(depth, out);
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn is_scalar(value: &Value) -> bool {
    !matches!(value, Value::Array(_) | Value::Object(_))
}

fn write_string(text: &str, out: &mut String) {
    // serde_json's escaping of a plain string cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn newline(depth: usize, out: &mut String) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
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
