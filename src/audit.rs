//! `ghes-vcr cassette audit`: scans files for secrets that survived redaction.
//!
//! Rules, each reported as `file:line: rule: excerpt` with the secret masked:
//! - `github-token`: GitHub token shapes (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`);
//! - `hex-token`: a 40-hex legacy token in a token-like field, header or parameter;
//! - `token-credential`: an `Authorization: token|Bearer` value that is not redacted;
//! - `basic-password`: a Basic credential that decodes to `user:password`;
//! - `client-secret`, `password`, `otp`: values of those fields that are not `REDACTED`;
//! - `token-hash-mismatch`: a JSON object whose `token` contradicts its `hashed_token` or
//!   `token_last_eight`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use regex::Regex;
use serde_json::Value;

use crate::redaction::{last_eight, sha256_hex, MARKER};

/// A secret found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub path: PathBuf,
    /// 1-based.
    pub line: usize,
    pub rule: &'static str,
    /// The surrounding text with the secret masked.
    pub excerpt: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.path.display(),
            self.line,
            self.rule,
            self.excerpt
        )
    }
}

/// A path that could not be scanned.
#[derive(Debug, thiserror::Error)]
#[error("cannot audit {}", path.display())]
pub struct AuditError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Scans files and directories (recursively; `.git` and `target` are skipped, and so are files
/// that are not text).
///
/// # Errors
/// [`AuditError`] for the first path that cannot be read.
pub fn scan_paths(paths: &[PathBuf]) -> Result<Vec<Finding>, AuditError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let mut findings = Vec::new();
    for file in files {
        let bytes = fs::read(&file).map_err(|source| AuditError {
            path: file.clone(),
            source,
        })?;
        if bytes.contains(&0) {
            continue;
        }
        findings.extend(scan_text(&file, &String::from_utf8_lossy(&bytes)));
    }
    Ok(findings)
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> Result<(), AuditError> {
    let err = |source| AuditError {
        path: path.to_owned(),
        source,
    };
    if !fs::metadata(path).map_err(err)?.is_dir() {
        files.push(path.to_owned());
        // A cassette's recording log holds interactions too (a directory's files are all read).
        let log = crate::cassette::recording_log_path(path);
        if log.is_file() {
            files.push(log);
        }
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = fs::read_dir(path)
        .map_err(err)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for entry in entries {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if entry.is_dir() && (name == ".git" || name == "target") {
            continue;
        }
        collect(&entry, files)?;
    }
    Ok(())
}

/// A line rule: a pattern whose group 1 is the secret, and a check that it really is one.
struct LineRule {
    name: &'static str,
    pattern: Regex,
    is_secret: fn(&str) -> bool,
}

fn line_rules() -> &'static [LineRule] {
    static RULES: OnceLock<Vec<LineRule>> = OnceLock::new();
    RULES.get_or_init(|| {
        let rule = |name, pattern: &str, is_secret| LineRule {
            name,
            pattern: Regex::new(pattern).expect("audit patterns are valid"),
            is_secret,
        };
        vec![
            rule(
                "github-token",
                r"\b(gh[pousr]_[A-Za-z0-9_]{30,251}|github_pat_[A-Za-z0-9_]{22,}_[A-Za-z0-9]{30,})",
                |_| true,
            ),
            rule(
                "hex-token",
                r#"(?i)(?:"[a-z_-]*token[a-z_-]*"\s*[:,]\s*"|token=|\b(?:token|bearer)\s+)([0-9a-f]{40})\b"#,
                |_| true,
            ),
            rule(
                "token-credential",
                r"(?i)\b(?:token|bearer)\s+([A-Za-z0-9_.~+/=-]{16,})",
                |value| !value.starts_with(MARKER) && !is_hex40(value) && !value.starts_with("gh"),
            ),
            rule("basic-password", r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})", basic_has_password),
            rule(
                "client-secret",
                r#"(?i)"client_secret"\s*[:,]\s*"([^"]+)"|client_secret=([^&\s"]+)"#,
                is_unredacted,
            ),
            rule(
                "password",
                r#"(?i)"password"\s*[:,]\s*"([^"]+)"|[?&]password=([^&\s"]+)"#,
                is_unredacted,
            ),
            rule("otp", r#"(?i)"x-github-otp"\s*[:,]\s*"([^"]+)"|x-github-otp:\s*(\S+)"#, |value| {
                is_unredacted(value) && !value.to_ascii_lowercase().starts_with("required")
            }),
        ]
    })
}

fn is_hex40(value: &str) -> bool {
    value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_unredacted(value: &str) -> bool {
    !value.is_empty() && !value.starts_with(MARKER)
}

fn basic_has_password(encoded: &str) -> bool {
    BASE64
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once(':')
                .map(|(user, pw)| (user.to_owned(), pw.to_owned()))
        })
        .is_some_and(|(user, password)| !password.is_empty() && !user.chars().any(char::is_control))
}

/// Shows only the start of a secret: enough to find it, not enough to use it.
fn mask(secret: &str) -> String {
    let shown = (secret.chars().count() / 5).min(4);
    let head: String = secret.chars().take(shown).collect();
    format!("{head}…({} chars)", secret.chars().count())
}

/// Scans one file's text.
pub fn scan_text(path: &Path, text: &str) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        // JSON held in a string (a text body, or a body in a recording log) has its quotes
        // escaped: it is read as it would be stored as JSON too.
        let unescaped = raw.contains("\\\"").then(|| unescape_quotes(raw));
        for (line, rule) in std::iter::once(raw)
            .chain(unescaped.as_deref())
            .flat_map(|line| line_rules().iter().map(move |rule| (line, rule)))
        {
            for captures in rule.pattern.captures_iter(line) {
                let Some(secret) = captures.iter().skip(1).flatten().next() else {
                    continue;
                };
                if !(rule.is_secret)(secret.as_str()) {
                    continue;
                }
                let Some(whole) = captures.get(0) else {
                    continue;
                };
                let excerpt = format!(
                    "{}{}{}",
                    &line[whole.start()..secret.start()],
                    mask(secret.as_str()),
                    &line[secret.end()..whole.end()]
                );
                let finding = Finding {
                    path: path.to_owned(),
                    line: number + 1,
                    rule: rule.name,
                    excerpt: excerpt.trim().to_owned(),
                };
                if !findings.contains(&finding) {
                    findings.push(finding);
                }
            }
        }
    }
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        let mut mismatches = Vec::new();
        find_hash_mismatches(&json, &mut mismatches);
        for token in mismatches {
            let line = text
                .lines()
                .position(|line| line.contains(&token))
                .map_or(1, |index| index + 1);
            findings.push(Finding {
                path: path.to_owned(),
                line,
                rule: "token-hash-mismatch",
                excerpt: format!(
                    "token {} does not match its hashed_token/token_last_eight",
                    mask(&token)
                ),
            });
        }
    }
    findings.sort_by_key(|finding| finding.line);
    findings
}

/// `line` with one level of `\"` and `\\` escapes undone.
fn unescape_quotes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some(next @ ('"' | '\\'))) => {
                out.push(next);
                chars.next();
            }
            _ => out.push(c),
        }
    }
    out
}

fn find_hash_mismatches(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(token)) = map
                .get("token")
                .filter(|t| t.as_str().is_some_and(|t| !t.is_empty()))
            {
                let hash_wrong = map
                    .get("hashed_token")
                    .and_then(Value::as_str)
                    .is_some_and(|hash| hash != sha256_hex(token.as_bytes()));
                let last8_wrong = map
                    .get("token_last_eight")
                    .and_then(Value::as_str)
                    .is_some_and(|last8| last8 != last_eight(token));
                if hash_wrong || last8_wrong {
                    out.push(token.clone());
                }
            }
            map.values()
                .for_each(|item| find_hash_mismatches(item, out));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|item| find_hash_mismatches(item, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_hit(text: &str) -> Vec<&'static str> {
        scan_text(Path::new("f.json"), text)
            .into_iter()
            .map(|f| f.rule)
            .collect()
    }

    /// Secret-shaped values, built at run time so the source holds none.
    fn fake(prefix: &str, len: usize) -> String {
        let alphabet = "aB3dE5fG7hJ9kL1mN2pQ4rS6tU8vW0xY";
        let body: String = alphabet.chars().cycle().take(len).collect();
        format!("{prefix}{body}")
    }

    #[test]
    fn finds_each_kind_of_leak() {
        let ghp = fake("ghp_", 36);
        let hex: String = "0123456789abcdef".chars().cycle().take(40).collect();
        let basic = BASE64.encode("octocat:pw-123");
        assert_eq!(
            rules_hit(&format!(r#"{{"token": "{ghp}"}}"#)),
            ["github-token"]
        );
        assert_eq!(
            rules_hit(&format!(r#"["authorization", "token {hex}"]"#)),
            ["hex-token"]
        );
        assert_eq!(
            rules_hit(&format!(r#""hashed": "{hex}", "access_token": "{hex}""#)),
            ["hex-token"]
        );
        assert_eq!(
            rules_hit(&format!(r#"["authorization", "Basic {basic}"]"#)),
            ["basic-password"]
        );
        assert_eq!(
            rules_hit(r#"{"client_secret": "s3cr3t"}"#),
            ["client-secret"]
        );
        assert_eq!(rules_hit(r#"{"password": "pw"}"#), ["password"]);
        assert_eq!(rules_hit(r#"["x-github-otp", "123456"]"#), ["otp"]);
        assert_eq!(
            rules_hit(&format!(r#"["authorization", "Bearer {}"]"#, fake("", 30))),
            ["token-credential"]
        );
    }

    #[test]
    fn finds_leaks_in_json_held_as_text() {
        // A text body, or an answer in a recording log: its quotes are escaped.
        let hex: String = "0123456789abcdef".chars().cycle().take(40).collect();
        let ghp = fake("ghp_", 36);
        let body = format!(r#"{{"password":"pw","token":"{hex}","note":"a \"quoted\" {ghp}"}}"#);
        let line = serde_json::to_string(&serde_json::json!({ "body": { "text": body } })).unwrap();
        assert!(line.contains(r#"\"password\""#));
        assert_eq!(rules_hit(&line), ["github-token", "hex-token", "password"]);
        assert_eq!(unescape_quotes(r#"a\"b\\"c\n"#), r#"a"b\"c\n"#);
    }

    #[test]
    fn redacted_values_and_identities_are_clean() {
        let clean = r#"
          ["authorization", "Basic REDACTED user=octocat"],
          ["authorization", "token REDACTED last8=12345678 sha256=25f94a2a5c7fbaf499c665bc73d67c1c87e496da8985131633ee0a95819db2e8"],
          ["x-github-otp", "REDACTED"], ["x-github-otp", "required; app"],
          {"client_secret": "REDACTED", "password": "REDACTED", "token": "", "hashed_token": "25f94a2a5c7fbaf499c665bc73d67c1c87e496da8985131633ee0a95819db2e8"}
        "#;
        assert_eq!(rules_hit(clean), Vec::<&str>::new());
    }

    #[test]
    fn a_token_contradicting_its_hash_is_found_and_masked() {
        let text = "{\n  \"token\": \"abcdefgh12345678\",\n  \"hashed_token\": \"00\",\n  \"token_last_eight\": \"12345678\"\n}\n";
        let findings = scan_text(Path::new("c.json"), text);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].to_string(), "c.json:2: token-hash-mismatch: token abc…(16 chars) does not match its hashed_token/token_last_eight");
    }
}
