//! `cassette list`, `cassette show` and `cassette prune`: reading and trimming cassettes for
//! review and CI.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{header_values, save_cassette_file, Cassette, CassetteError, LoadedCassette};
use crate::operations::operation;
use crate::usage::ReplayReport;

/// One line per cassette: interactions, operations (with counts), and the GHES version the
/// upstream reported when it was recorded.
pub fn list(set: &[LoadedCassette]) -> String {
    let mut out = String::new();
    for loaded in set {
        let mut operations: Vec<(String, usize)> = Vec::new();
        for interaction in &loaded.cassette.interactions {
            let name = operation(&interaction.request.method, &interaction.request.path)
                .map_or_else(
                    || {
                        format!(
                            "{} {}",
                            interaction.request.method, interaction.request.path
                        )
                    },
                    |id| id.trim_start_matches("oauth-authorizations/").to_owned(),
                );
            match operations.iter_mut().find(|(op, _)| *op == name) {
                Some((_, count)) => *count += 1,
                None => operations.push((name, 1)),
            }
        }
        let version = loaded
            .cassette
            .interactions
            .iter()
            .find_map(|i| header_values(&i.response.headers, "x-github-enterprise-version").next())
            .map_or_else(|| "unknown".to_owned(), str::to_owned);
        let operations: Vec<String> = operations
            .iter()
            .map(|(op, n)| format!("{op}×{n}"))
            .collect();
        let _ = writeln!(
            out,
            "{}\t{} interactions\tGHES {}\t{}",
            loaded.path.display(),
            loaded.cassette.interactions.len(),
            version,
            operations.join(", ")
        );
    }
    out
}

/// A readable summary of each interaction: request, status, and the body fields that matter
/// for this API.
pub fn show(cassette: &Cassette) -> String {
    const FIELDS: [&str; 8] = [
        "id",
        "note",
        "scopes",
        "client_id",
        "fingerprint",
        "token_last_eight",
        "message",
        "errors",
    ];
    let mut out = String::new();
    for (index, interaction) in cassette.interactions.iter().enumerate() {
        let request = &interaction.request;
        let _ = write!(
            out,
            "[{index}] {} -> {}",
            request.summary(),
            interaction.response.status
        );
        if let Some(otp) = header_values(&interaction.response.headers, "x-github-otp").next() {
            let _ = write!(out, " (x-github-otp: {otp})");
        }
        out.push('\n');
        for (side, body) in [
            ("request", &request.body),
            ("response", &interaction.response.body),
        ] {
            let Some(json) = body.as_json() else { continue };
            let object = json.as_object().or_else(|| {
                json.as_array()
                    .and_then(|a| a.first())
                    .and_then(|f| f.as_object())
            });
            let Some(object) = object else { continue };
            let fields: Vec<String> = FIELDS
                .iter()
                .filter_map(|field| object.get(*field).map(|value| format!("{field}={value}")))
                .collect();
            if !fields.is_empty() {
                let list = if json.is_array() {
                    format!(" (first of {})", json.as_array().map_or(0, Vec::len))
                } else {
                    String::new()
                };
                let _ = writeln!(out, "    {side}{list}: {}", fields.join(" "));
            }
        }
    }
    out
}

/// What `prune` removes from one cassette.
#[derive(Debug, PartialEq, Eq)]
pub struct Pruned {
    /// Positions removed, with their request summaries.
    pub removed: Vec<(usize, String)>,
    pub kept: usize,
}

/// Removes the interactions of `path` that `report` lists as unused; writes the cassette
/// atomically unless `dry_run`.
///
/// # Errors
/// The cassette cannot be read or written.
pub fn prune(path: &Path, report: &ReplayReport, dry_run: bool) -> Result<Pruned, CassetteError> {
    let mut cassette = Cassette::load(path)?;
    let same = |other: &PathBuf| same_file(other, path);
    let unused: Vec<usize> = report
        .unused
        .iter()
        .filter(|u| same(&u.cassette))
        .map(|u| u.index)
        .collect();
    let mut removed = Vec::new();
    let mut index = 0;
    cassette.interactions.retain(|interaction| {
        let keep = !unused.contains(&index);
        if !keep {
            removed.push((index, interaction.request.summary()));
        }
        index += 1;
        keep
    });
    if !dry_run && !removed.is_empty() {
        save_cassette_file(path, cassette.to_pretty_json().as_bytes())?;
    }
    Ok(Pruned {
        removed,
        kept: cassette.interactions.len(),
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
