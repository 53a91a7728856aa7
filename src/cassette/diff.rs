//! `cassette diff A B`: a semantic diff of two cassettes for reviewing a re-recording.
//! Interactions are paired by request (method, path, query, body, as replay matches them, in
//! recorded order); JSON is compared by value (key order does not matter); headers that change
//! on every recording (dates, request ids, rate-limit counters, entity tags) are ignored.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use super::{Body, Cassette, Interaction};
use crate::matching::MatchRules;

/// Response headers that differ between two recordings of the same answer.
const VOLATILE_HEADERS: [&str; 6] = [
    "date",
    "etag",
    "last-modified",
    "x-github-request-id",
    "x-runtime-rack",
    "age",
];

fn is_volatile(name: &str) -> bool {
    VOLATILE_HEADERS.contains(&name) || name.starts_with("x-ratelimit-")
}

/// Body fields that differ between two recordings of the same answer.
const VOLATILE_FIELDS: [&str; 2] = ["created_at", "updated_at"];

/// The differences, one line each; empty when the cassettes are the same for review purposes.
pub fn diff(a: &Cassette, b: &Cassette) -> Vec<String> {
    let rules = MatchRules::default();
    let mut pending: HashMap<String, VecDeque<usize>> = HashMap::new();
    for (index, interaction) in a.interactions.iter().enumerate() {
        pending
            .entry(rules.key(&interaction.request))
            .or_default()
            .push_back(index);
    }
    let mut lines = Vec::new();
    let mut paired = vec![false; a.interactions.len()];
    for (index, interaction) in b.interactions.iter().enumerate() {
        let key = rules.key(&interaction.request);
        match pending.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(old) => {
                paired[old] = true;
                for change in compare(&a.interactions[old], interaction) {
                    lines.push(format!(
                        "~ [{old} → {index}] {}: {change}",
                        interaction.request.summary()
                    ));
                }
            }
            None => lines.push(format!(
                "+ [{index}] {} -> {}",
                interaction.request.summary(),
                interaction.response.status
            )),
        }
    }
    for (index, interaction) in a.interactions.iter().enumerate() {
        if !paired[index] {
            lines.push(format!(
                "- [{index}] {} -> {}",
                interaction.request.summary(),
                interaction.response.status
            ));
        }
    }
    lines
}

/// How two interactions of the same request differ: status, headers and JSON body fields, volatile
/// ones left out.
pub fn compare(a: &Interaction, b: &Interaction) -> Vec<String> {
    let mut changes = Vec::new();
    if a.response.status != b.response.status {
        changes.push(format!(
            "status {} → {}",
            a.response.status, b.response.status
        ));
    }
    let headers = |i: &Interaction| -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = i
            .response
            .headers
            .iter()
            .filter(|(name, _)| !is_volatile(name))
            .cloned()
            .collect();
        list.sort();
        list
    };
    let (ha, hb) = (headers(a), headers(b));
    for (name, value) in &ha {
        if !hb.iter().any(|(n, v)| n == name && v == value) {
            match hb.iter().find(|(n, _)| n == name) {
                Some((_, other)) => changes.push(format!("header {name}: {value:?} → {other:?}")),
                None => changes.push(format!("header {name} removed ({value:?})")),
            }
        }
    }
    for (name, value) in &hb {
        if !ha.iter().any(|(n, _)| n == name) {
            changes.push(format!("header {name} added ({value:?})"));
        }
    }
    match (&a.response.body, &b.response.body) {
        (Body::Json(x), Body::Json(y)) => json_changes("", x.value(), y.value(), &mut changes),
        (x, y) if x != y => changes.push("body changed".to_owned()),
        _ => {}
    }
    changes
}

fn json_changes(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (key, value) in x {
                if VOLATILE_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let child = format!("{path}.{key}");
                match y.get(key) {
                    Some(other) => json_changes(&child, value, other, out),
                    None => out.push(format!("body {child} removed")),
                }
            }
            for key in y
                .keys()
                .filter(|key| !x.contains_key(*key) && !VOLATILE_FIELDS.contains(&key.as_str()))
            {
                out.push(format!("body {path}.{key} added"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (a, b)) in x.iter().zip(y).enumerate() {
                json_changes(&format!("{path}[{i}]"), a, b, out);
            }
        }
        (x, y) if x != y => {
            let at = if path.is_empty() {
                "(whole body)"
            } else {
                path
            };
            out.push(format!("body {at}: {x} → {y}"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{RecordedRequest, RecordedResponse};
    use serde_json::json;

    fn interaction(path: &str, status: u16, date: &str, body: Value) -> Interaction {
        Interaction {
            request: RecordedRequest {
                method: "GET".into(),
                path: path.into(),
                query: vec![],
                headers: vec![],
                body: Body::Empty,
            },
            response: RecordedResponse {
                status,
                headers: vec![
                    ("date".into(), date.into()),
                    ("content-type".into(), "application/json".into()),
                ],
                body: Body::Json(body.into()),
            },
            latency_ms: Some(3),
        }
    }

    #[test]
    fn only_meaningful_changes_are_reported() {
        let mut a = Cassette::new();
        a.interactions = vec![
            interaction(
                "/a",
                200,
                "Mon",
                json!({"id": 1, "note": "x", "updated_at": "then"}),
            ),
            interaction("/gone", 200, "Mon", json!([])),
        ];
        let mut b = Cassette::new();
        b.interactions = vec![
            interaction(
                "/a",
                200,
                "Tue",
                json!({"note": "y", "id": 1, "updated_at": "now"}),
            ),
            interaction("/new", 201, "Tue", json!({})),
        ];
        assert_eq!(
            diff(&a, &b),
            vec![
                "~ [0 → 0] GET /a: body .note: \"x\" → \"y\"",
                "+ [1] GET /new -> 201",
                "- [1] GET /gone -> 200",
            ]
        );
        assert!(diff(&a, &a).is_empty());
    }
}
