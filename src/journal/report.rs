//! `journal report`: one row per legacy client (User-Agent, credential, OAuth app), with the
//! operations it used, request and error counts, and first/last seen.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;

use super::{format_time, JournalEntry};

/// One legacy client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Row {
    pub user_agent: Option<String>,
    pub credential: Option<String>,
    pub client_id: Option<String>,
    pub operations: Vec<String>,
    pub requests: u64,
    pub errors: u64,
    pub first_seen: String,
    pub last_seen: String,
    #[serde(skip)]
    last_seen_id: u64,
}

/// Groups entries by client, most recently seen first.
pub fn rows(entries: &[JournalEntry]) -> Vec<Row> {
    type Key = (Option<String>, Option<String>, Option<String>);
    let mut groups: BTreeMap<Key, (BTreeSet<String>, u64, u64, u64, u64)> = BTreeMap::new();
    for entry in entries {
        let key = (
            entry.user_agent.clone(),
            entry.credential.clone(),
            entry.client_id.clone(),
        );
        let group = groups
            .entry(key)
            .or_insert((BTreeSet::new(), 0, 0, u64::MAX, 0));
        group.0.insert(
            entry
                .operation
                .clone()
                .unwrap_or_else(|| format!("{} {}", entry.method, entry.path)),
        );
        group.1 += 1;
        group.2 += u64::from(entry.is_error());
        group.3 = group.3.min(entry.id);
        group.4 = group.4.max(entry.id);
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(
            |((user_agent, credential, client_id), (operations, requests, errors, first, last))| {
                Row {
                    user_agent,
                    credential,
                    client_id,
                    operations: operations.into_iter().collect(),
                    requests,
                    errors,
                    first_seen: format_time(first),
                    last_seen: format_time(last),
                    last_seen_id: last,
                }
            },
        )
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.last_seen_id));
    rows
}

/// How a report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// Prints rows.
///
/// # Errors
/// Writing to `out` failed.
pub fn write(rows: &[Row], format: Format, out: &mut dyn Write) -> std::io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, rows)?;
            writeln!(out)
        }
        Format::Csv => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record([
                "user_agent",
                "credential",
                "client_id",
                "operations",
                "requests",
                "errors",
                "first_seen",
                "last_seen",
            ])?;
            for row in rows {
                csv.write_record([
                    row.user_agent.as_deref().unwrap_or(""),
                    row.credential.as_deref().unwrap_or(""),
                    row.client_id.as_deref().unwrap_or(""),
                    &row.operations.join(" "),
                    &row.requests.to_string(),
                    &row.errors.to_string(),
                    &row.first_seen,
                    &row.last_seen,
                ])?;
            }
            csv.flush()
        }
        Format::Table => write_table(rows, out),
    }
}

fn write_table(rows: &[Row], out: &mut dyn Write) -> std::io::Result<()> {
    let header = [
        "LAST SEEN",
        "FIRST SEEN",
        "REQUESTS",
        "ERRORS",
        "USER AGENT",
        "CREDENTIAL",
        "CLIENT ID",
        "OPERATIONS",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|row| {
            let short = |op: &String| op.trim_start_matches("oauth-authorizations/").to_owned();
            let credential = row.credential.clone().unwrap_or_else(|| "-".into());
            // A token identity is a 64-character hash; its start is enough to tell them apart.
            let credential = match credential.strip_prefix("token:") {
                Some(hash) if hash.len() > 12 => format!("token:{}…", &hash[..12]),
                _ => credential,
            };
            [
                row.last_seen.clone(),
                row.first_seen.clone(),
                row.requests.to_string(),
                row.errors.to_string(),
                row.user_agent.clone().unwrap_or_else(|| "-".into()),
                credential,
                row.client_id.clone().unwrap_or_else(|| "-".into()),
                row.operations
                    .iter()
                    .map(short)
                    .collect::<Vec<_>>()
                    .join(","),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    writeln!(out, "{}", line(&header.map(str::to_owned)))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    if rows.is_empty() {
        writeln!(out, "(no traffic of the deprecated API in this period)")?;
    }
    Ok(())
}
