//! Conformance: every response body in every sample cassette under `cassettes/` must validate
//! against the response schema GitHub's OpenAPI description gives for its operation and status
//! (`../shared/spec/ghes-oauth-authorizations.openapi.json`), so the samples cannot drift from
//! what GHES returns.
//!
//! The spec is OpenAPI 3.0, whose Schema Object is not plain JSON Schema. It is converted to
//! JSON Schema draft 7 before validation:
//! - `nullable: true` adds `"null"` to `type` (and `null` to an `enum`); on a schema with
//!   `allOf`/`anyOf`/`oneOf`/`not`/`$ref` (whose subschemas would still reject `null`) the
//!   schema becomes `{"if": {"type": "null"}, "else": <the schema without nullable>}`;
//! - a `oneOf` whose branches are each `nullable` (validation-error's `value`) would reject
//!   `null`, which matches every branch; the `nullable` is moved from the branches to the
//!   `oneOf` itself;
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` become draft 7's numeric ones;
//! - `example`/`examples` are dropped.
//!
//! `$ref`s stay as they are: each response is validated against a root document that is the
//! whole converted spec plus a `$ref` to the JSON pointer of that response's schema, so
//! `#/components/...` references resolve inside the same document.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use jsonschema::error::ValidationErrorKind;
use serde_json::{json, Map, Value};

/// What a replay serves in place of the `{{origin}}` placeholder.
const ORIGIN: &str = "https://ghes.example.com";
const ORIGIN_PLACEHOLDER: &str = "{{origin}}";
/// Cassette paths carry the GHES API prefix; the spec's paths do not.
const API_PREFIX: &str = "/api/v3";
const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn spec_path() -> PathBuf {
    manifest_dir().join("../shared/spec/ghes-oauth-authorizations.openapi.json")
}

fn cassettes_dir() -> PathBuf {
    manifest_dir().join("cassettes")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The sample cassettes, sorted by file name, as `(file name, document)`.
fn sample_cassettes() -> Vec<(String, Value)> {
    let dir = cassettes_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cassettes in {}", dir.display());
    paths
        .into_iter()
        .map(|p| {
            let name = format!("cassettes/{}", p.file_name().unwrap().to_string_lossy());
            (name, read_json(&p))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// OpenAPI 3.0 -> JSON Schema (draft 7)
// ---------------------------------------------------------------------------------------------

/// Converts a whole OpenAPI 3.0 document (or any schema in it) in place. Every object is
/// treated as a possible Schema Object; the keys of `properties`/`patternProperties` maps are
/// property names, not keywords, and are left alone.
fn convert_openapi(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(convert_openapi),
        Value::Object(map) => {
            map.remove("example");
            map.remove("examples");
            hoist_nullable_out_of_one_of(map);
            convert_exclusive_bound(map, "exclusiveMinimum", "minimum");
            convert_exclusive_bound(map, "exclusiveMaximum", "maximum");
            for (key, child) in map.iter_mut() {
                match (key.as_str(), child) {
                    ("properties" | "patternProperties", Value::Object(props)) => {
                        props.values_mut().for_each(convert_openapi)
                    }
                    (_, child) => convert_openapi(child),
                }
            }
            apply_nullable(value);
        }
        _ => {}
    }
}

/// `oneOf: [{type: string, nullable}, {type: integer, nullable}, ...]`: `null` matches every
/// branch, so a literal conversion would reject it. OpenAPI's intent is "one of these, or null".
fn hoist_nullable_out_of_one_of(map: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = map.get_mut("oneOf") else {
        return;
    };
    let nullable_branches = branches
        .iter()
        .filter(|b| b.get("nullable") == Some(&Value::Bool(true)))
        .count();
    if nullable_branches < 2 {
        return;
    }
    for branch in branches.iter_mut() {
        if let Value::Object(b) = branch {
            b.remove("nullable");
        }
    }
    map.insert("nullable".into(), Value::Bool(true));
}

/// OpenAPI 3.0 (like draft 4) has boolean `exclusiveMinimum`/`exclusiveMaximum` modifying
/// `minimum`/`maximum`; draft 7 has numeric ones.
fn convert_exclusive_bound(map: &mut Map<String, Value>, exclusive: &str, inclusive: &str) {
    match map.get(exclusive) {
        Some(Value::Bool(true)) => {
            if let Some(bound) = map.remove(inclusive) {
                map.insert(exclusive.into(), bound);
            } else {
                map.remove(exclusive);
            }
        }
        Some(Value::Bool(false)) => {
            map.remove(exclusive);
        }
        _ => {}
    }
}

/// Keywords whose subschemas would still reject `null` after `"null"` is added to `type`.
const COMPOSITION_KEYWORDS: [&str; 5] = ["allOf", "anyOf", "oneOf", "not", "$ref"];

fn apply_nullable(value: &mut Value) {
    let Value::Object(map) = value else { return };
    match map.remove("nullable") {
        Some(Value::Bool(true)) => {}
        _ => return,
    }
    if COMPOSITION_KEYWORDS.iter().any(|k| map.contains_key(*k)) {
        // `null`, or else the schema (`if`/`else`, so errors for non-null values come straight
        // from the schema, with their own instance paths).
        let inner = Value::Object(std::mem::take(map));
        *value = json!({ "if": { "type": "null" }, "else": inner });
        return;
    }
    match map.get_mut("type") {
        Some(Value::String(t)) => {
            let t = std::mem::take(t);
            map.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(json!("null"));
        }
        // No `type`: the schema does not restrict the type, `null` included.
        _ => {}
    }
    if let Some(Value::Array(options)) = map.get_mut("enum") {
        if !options.contains(&Value::Null) {
            options.push(Value::Null);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operation and response lookup
// ---------------------------------------------------------------------------------------------

/// One RFC 6901 reference token, escaped and made safe for a URI fragment.
fn pointer_token(token: &str) -> String {
    let escaped = token.replace('~', "~0").replace('/', "~1");
    let mut out = String::with_capacity(escaped.len());
    for ch in escaped.chars() {
        if ch.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(ch) {
            out.push(ch);
        } else {
            let mut buf = [0u8; 4];
            for byte in ch.encode_utf8(&mut buf).bytes() {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

fn pointer(tokens: &[&str]) -> String {
    tokens
        .iter()
        .map(|t| format!("/{}", pointer_token(t)))
        .collect()
}

/// How a spec path template matches a request path: `None` if it does not, else how many
/// literal segments matched (more literal segments = a more specific template).
fn template_match(template: &str, path: &str) -> Option<usize> {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut literals = 0;
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') && ts.ends_with('}') {
            if ps.is_empty() {
                return None;
            }
        } else if ts == ps {
            literals += 1;
        } else {
            return None;
        }
    }
    Some(literals)
}

/// The spec operation a request maps to: `(path template, lower-case method)`.
fn find_operation(spec: &Value, method: &str, raw_path: &str) -> Result<(String, String), String> {
    let path = raw_path.split('?').next().unwrap_or_default();
    let path = match path.strip_prefix(API_PREFIX) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => path,
    };
    let paths = spec["paths"].as_object().expect("spec has paths");
    let (template, item) = paths
        .iter()
        .filter_map(|(template, item)| template_match(template, path).map(|n| (n, template, item)))
        .max_by_key(|(n, _, _)| *n)
        .map(|(_, template, item)| (template, item))
        .ok_or_else(|| format!("no path in the spec matches `{path}`"))?;
    let method = method.to_ascii_lowercase();
    if item.get(&method).is_some() {
        return Ok((template.clone(), method));
    }
    // GHES accepts POST in place of PATCH on resource endpoints (the v3 overview); the spec
    // never lists that alias (it matters for `POST /authorizations/{authorization_id}`).
    if method == "post" && item.get("patch").is_some() {
        return Ok((template.clone(), "patch".into()));
    }
    let listed: Vec<String> = HTTP_METHODS
        .iter()
        .filter(|m| item.get(**m).is_some())
        .map(|m| m.to_ascii_uppercase())
        .collect();
    Err(format!(
        "the spec has no {} operation on `{template}` (it has {})",
        method.to_ascii_uppercase(),
        listed.join(", ")
    ))
}

/// What the spec says a response with this status carries.
enum Expected {
    /// A JSON body validated against the schema at this JSON pointer (URI-fragment encoded).
    Schema { pointer: String, origin: String },
    /// The spec documents the status with no content.
    NoContent { origin: String },
}

fn resolve_local_ref<'a>(spec: &'a Value, value: &'a Value) -> Result<(&'a Value, String), String> {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let target = reference
                .strip_prefix('#')
                .and_then(|p| spec.pointer(p))
                .ok_or_else(|| format!("unresolvable $ref `{reference}` in the spec"))?;
            Ok((target, reference.to_owned()))
        }
        None => Ok((value, String::new())),
    }
}

fn expected_response(
    spec: &Value,
    template: &str,
    method: &str,
    status: u64,
) -> Result<Expected, String> {
    let responses = &spec["paths"][template][method]["responses"];
    if status == 404 && responses.get("404").is_none() {
        // A known gap: GHES answers an unknown or deleted id with its shared 404 (basic-error)
        // on every operation, but the description lists 404 only on the list operations.
        return expected_response(spec, "/authorizations", "get", 404).map(
            |expected| match expected {
                Expected::Schema { pointer, origin } => Expected::Schema {
                    pointer,
                    origin: format!("{origin} (404 on an unknown id: a gap in the description)"),
                },
                other => other,
            },
        );
    }
    let status_key = status.to_string();
    let range_key = format!("{}XX", status / 100);
    let key = [status_key.as_str(), range_key.as_str(), "default"]
        .into_iter()
        .find(|k| responses.get(*k).is_some())
        .ok_or_else(|| {
            let documented: Vec<&str> = responses
                .as_object()
                .map(|m| m.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!(
                "the spec documents no {status} response for this operation (it documents {})",
                documented.join(", ")
            )
        })?;
    let (response, via) = resolve_local_ref(spec, &responses[key])?;
    // The schema's location as unescaped JSON pointer tokens.
    let mut tokens: Vec<String> = if via.is_empty() {
        ["paths", template, method, "responses", key]
            .map(str::to_owned)
            .to_vec()
    } else {
        via.trim_start_matches("#/")
            .split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect()
    };
    let origin = if via.is_empty() {
        format!("responses.{key}")
    } else {
        format!("responses.{key} -> {via}")
    };
    let content = match response.get("content").and_then(Value::as_object) {
        Some(content) if !content.is_empty() => content,
        _ => return Ok(Expected::NoContent { origin }),
    };
    let (media_type, media) = content
        .iter()
        .find(|(mt, _)| {
            let mt = mt.split(';').next().unwrap_or_default().trim();
            mt == "application/json" || mt.ends_with("+json")
        })
        .ok_or_else(|| {
            let types: Vec<&str> = content.keys().map(String::as_str).collect();
            format!(
                "the spec's {origin} has no JSON media type ({})",
                types.join(", ")
            )
        })?;
    if media.get("schema").is_none() {
        return Err(format!("the spec's {origin} {media_type} has no schema"));
    }
    tokens.extend([
        "content".to_owned(),
        media_type.clone(),
        "schema".to_owned(),
    ]);
    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    Ok(Expected::Schema {
        pointer: format!("#{}", pointer(&token_refs)),
        origin: format!("{origin} {media_type}"),
    })
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

struct Conformance {
    /// The original spec, for lookups.
    spec: Value,
    /// The converted spec, the root document every validator is built from.
    converted: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

impl Conformance {
    fn load() -> Self {
        Self::new(read_json(&spec_path()))
    }

    fn new(spec: Value) -> Self {
        let mut converted = spec.clone();
        convert_openapi(&mut converted);
        Self {
            spec,
            converted,
            validators: HashMap::new(),
        }
    }

    /// The validator for the schema at `pointer` (`#/...`), built once.
    fn validator(&mut self, pointer: &str) -> &jsonschema::Validator {
        let converted = &self.converted;
        self.validators
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                let mut root = converted.clone();
                root.as_object_mut()
                    .expect("the spec is an object")
                    .insert("$ref".into(), Value::String(pointer.to_owned()));
                jsonschema::draft7::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("cannot build a validator for {pointer}: {e}"))
            })
    }

    /// Validation errors of `instance` against the schema at `pointer`, one line each (the
    /// branches of a failed `anyOf`/`oneOf` indented below it).
    fn errors(&mut self, pointer: &str, instance: &Value) -> Vec<String> {
        let mut lines = Vec::new();
        for error in self.validator(pointer).iter_errors(instance) {
            describe_error(&error, 0, &mut lines);
        }
        lines
    }

    /// Checks one interaction; `Err` carries a readable report naming where it is.
    fn check_interaction(
        &mut self,
        file: &str,
        index: usize,
        interaction: &Value,
    ) -> Result<Covered, String> {
        let method = interaction["request"]["method"].as_str().unwrap_or("?");
        let path = interaction["request"]["path"].as_str().unwrap_or("?");
        let status = interaction["response"]["status"].as_u64();
        let label = format!(
            "{file} interactions[{index}] {method} {path} -> {}",
            status.map_or_else(|| "?".to_owned(), |s| s.to_string())
        );
        let fail = |why: String| Err(format!("{label}: {why}"));
        let Some(status) = status else {
            return fail("response.status is not a number".into());
        };
        let (template, op_method) = match find_operation(&self.spec, method, path) {
            Ok(found) => found,
            Err(why) => return fail(why),
        };
        let operation = format!("{} {template}", op_method.to_ascii_uppercase());
        let label = format!("{label} [{operation}]");
        let fail = |why: String| Err(format!("{label}: {why}"));
        let body = match response_body(&interaction["response"]) {
            Ok(body) => body,
            Err(why) => return fail(why),
        };
        let expected = match expected_response(&self.spec, &template, &op_method, status) {
            Ok(expected) => expected,
            Err(why) => return fail(why),
        };
        let covered = Covered { operation, status };
        match (expected, body) {
            (Expected::NoContent { .. }, None) => Ok(covered),
            (Expected::NoContent { origin }, Some(_)) => fail(format!(
                "the spec defines no content for this response ({origin}), but the cassette has a body"
            )),
            (Expected::Schema { origin, .. }, None) => fail(format!(
                "the spec defines a JSON body ({origin}), but the cassette has none"
            )),
            (Expected::Schema { pointer, origin }, Some(body)) => {
                let errors = self.errors(&pointer, &body);
                if errors.is_empty() {
                    Ok(covered)
                } else {
                    fail(format!(
                        "body does not match the spec's schema ({origin}, {pointer}):\n    {}",
                        errors.join("\n    ")
                    ))
                }
            }
        }
    }
}

/// Longest error message kept: messages quote the failing instance, which can be a whole body.
const MAX_MESSAGE: usize = 240;

fn describe_error(error: &jsonschema::ValidationError<'_>, depth: usize, lines: &mut Vec<String>) {
    let pad = "  ".repeat(depth);
    let at = error.instance_path().to_string();
    let at = if at.is_empty() {
        "(root)".to_owned()
    } else {
        at
    };
    let mut message = error.to_string();
    if message.chars().count() > MAX_MESSAGE {
        message = message.chars().take(MAX_MESSAGE).collect::<String>() + "…";
    }
    lines.push(format!("{pad}at {at}: {message}"));
    if let ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } =
        error.kind()
    {
        for (branch, errors) in context.iter().enumerate() {
            lines.push(format!("{pad}  branch {branch}:"));
            for error in errors {
                describe_error(error, depth + 2, lines);
            }
        }
    }
}

/// One (operation, status) pair a cassette exercised and that conformed.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Covered {
    operation: String,
    status: u64,
}

/// The response body as JSON with `{{origin}}` replaced, or `None` when there is no body.
fn response_body(response: &Value) -> Result<Option<Value>, String> {
    let Some(body) = response.get("body") else {
        return Ok(None);
    };
    let mut value = if let Some(json) = body.get("json") {
        json.clone()
    } else if let Some(text) = body.get("text").and_then(Value::as_str) {
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(text)
            .map_err(|e| format!("the body is stored as text that is not JSON: {e}"))?
    } else if body.get("base64").and_then(Value::as_str) == Some("") {
        return Ok(None);
    } else {
        return Err(format!("the body is not stored as JSON: {body}"));
    };
    replace_origin(&mut value);
    Ok(Some(value))
}

fn replace_origin(value: &mut Value) {
    match value {
        Value::String(s) if s.contains(ORIGIN_PLACEHOLDER) => {
            *s = s.replace(ORIGIN_PLACEHOLDER, ORIGIN)
        }
        Value::Array(items) => items.iter_mut().for_each(replace_origin),
        Value::Object(map) => map.values_mut().for_each(replace_origin),
        _ => {}
    }
}

fn interactions(cassette: &Value) -> &[Value] {
    cassette["interactions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn every_cassette_response_matches_the_openapi_schema() {
    let mut conformance = Conformance::load();
    let mut failures = Vec::new();
    let mut covered = Vec::new();
    let mut checked = 0;
    for (file, cassette) in sample_cassettes() {
        let list = interactions(&cassette);
        assert!(!list.is_empty(), "{file} has no interactions");
        for (index, interaction) in list.iter().enumerate() {
            checked += 1;
            match conformance.check_interaction(&file, index, interaction) {
                Ok(pair) => covered.push(pair),
                Err(report) => failures.push(report),
            }
        }
    }
    covered.sort();
    covered.dedup();
    assert!(
        failures.is_empty(),
        "{} of {checked} cassette responses do not conform to {}:\n\n{}\n",
        failures.len(),
        spec_path().display(),
        failures.join("\n\n")
    );
    eprintln!(
        "{checked} responses conform; covered: {}",
        covered
            .iter()
            .map(|c| format!("{} {}", c.operation, c.status))
            .collect::<Vec<_>>()
            .join("; ")
    );
}

/// A real `GET /authorizations/{authorization_id}` 200 body from the samples.
fn sample_authorization() -> (Conformance, String, Value) {
    let conformance = Conformance::load();
    let pointer = match expected_response(
        &conformance.spec,
        "/authorizations/{authorization_id}",
        "get",
        200,
    ) {
        Ok(Expected::Schema { pointer, .. }) => pointer,
        _ => panic!("the spec has no schema for GET /authorizations/{{authorization_id}} 200"),
    };
    let body = sample_cassettes()
        .iter()
        .flat_map(|(_, c)| interactions(c).to_vec())
        .find(|i| {
            i["request"]["method"] == "GET"
                && find_operation(
                    &conformance.spec,
                    "GET",
                    i["request"]["path"].as_str().unwrap_or_default(),
                )
                .is_ok_and(|(t, _)| t == "/authorizations/{authorization_id}")
                && i["response"]["status"] == 200
        })
        .and_then(|i| response_body(&i["response"]).ok().flatten())
        .expect("a sample cassette has a GET /api/v3/authorizations/{id} 200 with a JSON body");
    (conformance, pointer, body)
}

#[test]
fn the_validator_is_not_vacuous() {
    let (mut conformance, pointer, good) = sample_authorization();
    assert_eq!(conformance.errors(&pointer, &good), Vec::<String>::new());

    let broken = |edit: &dyn Fn(&mut Map<String, Value>)| {
        let mut body = good.clone();
        edit(body.as_object_mut().expect("an authorization is an object"));
        body
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "drop hashed_token",
            broken(&|m| {
                m.remove("hashed_token");
            }),
            "hashed_token",
        ),
        (
            "id as a string",
            broken(&|m| {
                m.insert("id".into(), json!("3"));
            }),
            "/id",
        ),
        (
            "url not a uri",
            broken(&|m| {
                m.insert("url".into(), json!("not a uri"));
            }),
            "/url",
        ),
        (
            "created_at not a date-time",
            broken(&|m| {
                m.insert("created_at".into(), json!("yesterday"));
            }),
            "/created_at",
        ),
        (
            "token null (token is not nullable)",
            broken(&|m| {
                m.insert("token".into(), Value::Null);
            }),
            "/token",
        ),
        (
            "app missing client_id",
            broken(&|m| {
                m["app"].as_object_mut().unwrap().remove("client_id");
            }),
            "/app",
        ),
        (
            "user.id as a string (through allOf -> simple-user)",
            broken(&|m| {
                m["user"]["id"] = json!("1");
            }),
            "/user/id",
        ),
        ("not an object", json!([good.clone()]), "(root)"),
    ];
    for (what, body, mentions) in cases {
        let errors = conformance.errors(&pointer, &body);
        assert!(!errors.is_empty(), "{what}: the broken body validated");
        assert!(
            errors.iter().any(|e| e.contains(mentions)),
            "{what}: no error mentions {mentions}: {errors:?}"
        );
    }

    // `nullable` is honoured: next to `type`, and next to `allOf` (user, installation).
    for field in [
        "note",
        "note_url",
        "fingerprint",
        "token_last_eight",
        "hashed_token",
        "scopes",
        "user",
        "installation",
    ] {
        let body = broken(&|m| {
            m.insert(field.into(), Value::Null);
        });
        assert_eq!(
            conformance.errors(&pointer, &body),
            Vec::<String>::new(),
            "{field}: null"
        );
    }
}

#[test]
fn undocumented_statuses_and_bodies_fail_with_a_readable_report() {
    let mut conformance = Conformance::load();
    let interaction = |method: &str, path: &str, status: u64, body: Option<Value>| {
        let mut response = json!({ "status": status, "headers": [] });
        if let Some(body) = body {
            response["body"] = body;
        }
        json!({ "request": { "method": method, "path": path }, "response": response })
    };
    let not_found = json!({"json": {"message": "Not Found", "documentation_url": "x"}});

    // Status absent from the operation's responses.
    let err = conformance
        .check_interaction(
            "x.json",
            4,
            &interaction(
                "PATCH",
                "/api/v3/authorizations/3",
                409,
                Some(not_found.clone()),
            ),
        )
        .unwrap_err();
    for part in [
        "x.json",
        "interactions[4]",
        "PATCH",
        "/api/v3/authorizations/3",
        "409",
        "no 409 response",
    ] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    // 404 on an unknown id is what GHES sends everywhere, though only list operations list it.
    conformance
        .check_interaction(
            "x.json",
            5,
            &interaction(
                "GET",
                "/api/v3/authorizations/3",
                404,
                Some(not_found.clone()),
            ),
        )
        .expect("a basic-error 404 on an item");
    // Documented without content (304): only fine without a body.
    conformance
        .check_interaction(
            "x.json",
            0,
            &interaction("GET", "/api/v3/authorizations", 304, None),
        )
        .expect("a body-less 304");
    let err = conformance
        .check_interaction(
            "x.json",
            0,
            &interaction(
                "GET",
                "/api/v3/authorizations",
                304,
                Some(not_found.clone()),
            ),
        )
        .unwrap_err();
    assert!(err.contains("defines no content"), "{err}");
    // Documented with a schema: a body-less response does not pass.
    let err = conformance
        .check_interaction(
            "x.json",
            0,
            &interaction("GET", "/api/v3/authorizations/1", 200, None),
        )
        .unwrap_err();
    assert!(err.contains("has none"), "{err}");
    // A shared error response (`#/components/responses/*`) is validated too.
    conformance
        .check_interaction(
            "x.json",
            0,
            &interaction("GET", "/api/v3/authorizations", 404, Some(not_found)),
        )
        .expect("basic-error");
    let err = conformance
        .check_interaction(
            "x.json",
            7,
            &interaction(
                "POST",
                "/api/v3/authorizations",
                422,
                Some(json!({"json": {"message": "Validation Failed"}})),
            ),
        )
        .unwrap_err();
    assert!(
        err.contains("interactions[7]") && err.contains("documentation_url"),
        "{err}"
    );
    // validation-error's `value` is `oneOf` of nullable branches: null is allowed.
    let null_value = json!({"json": {
        "message": "Validation Failed", "documentation_url": "x",
        "errors": [{"resource": "OauthAccess", "code": "invalid", "field": "note", "value": null}]
    }});
    conformance
        .check_interaction(
            "x.json",
            0,
            &interaction("POST", "/api/v3/authorizations", 422, Some(null_value)),
        )
        .expect("value: null");
    // Unknown paths and methods fail.
    assert!(conformance
        .check_interaction("x.json", 0, &interaction("GET", "/api/v3/user", 200, None))
        .unwrap_err()
        .contains("no path in the spec"));
    assert!(conformance
        .check_interaction(
            "x.json",
            0,
            &interaction("PUT", "/api/v3/authorizations/3", 200, None)
        )
        .unwrap_err()
        .contains("no PUT operation"));
    // POST is PATCH's alias on an authorization.
    assert_eq!(
        find_operation(&conformance.spec, "POST", "/api/v3/authorizations/3"),
        Ok((
            "/authorizations/{authorization_id}".to_owned(),
            "patch".to_owned()
        ))
    );
    // The most specific template wins.
    assert_eq!(
        find_operation(
            &conformance.spec,
            "PUT",
            "/api/v3/authorizations/clients/abc"
        ),
        Ok((
            "/authorizations/clients/{client_id}".to_owned(),
            "put".to_owned()
        ))
    );
}
