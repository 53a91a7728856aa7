//! Loading cassettes (with errors that name the file, line and column) and saving them
//! atomically (temp file in the same directory, fsync, rename), so a kill at any moment leaves
//! either the old file or the new one.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{format, Cassette, FORMAT_VERSION};

/// Why a cassette could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    /// The file or directory could not be read.
    #[error("cannot read cassette {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is not valid JSON, or not a valid cassette.
    #[error("cassette {}:{line}:{column}: {message}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// The file declares a format version this build does not read.
    #[error(
        "cassette {} has format version {found}; this build reads version {FORMAT_VERSION} \
         (re-record it, or use the ghes-vcr release that wrote it)",
        path.display()
    )]
    Version { path: PathBuf, found: u64 },
    /// An interaction holds a value HTTP cannot carry (bad status, header name or value).
    #[error("cassette {}: interactions[{index}]: {message}", path.display())]
    Invalid {
        path: PathBuf,
        index: usize,
        message: String,
    },
    /// A directory was given but holds no `*.json` file.
    #[error("no cassette (*.json) found in directory {}", path.display())]
    EmptyDirectory { path: PathBuf },
    /// The file could not be written or replaced.
    #[error("cannot save cassette {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A cassette together with the file it came from.
#[derive(Clone, Debug)]
pub struct LoadedCassette {
    pub path: PathBuf,
    pub cassette: Cassette,
}

impl Cassette {
    /// Reads and checks one cassette file.
    ///
    /// # Errors
    /// [`CassetteError::Read`], [`CassetteError::Malformed`] (with line and column) or
    /// [`CassetteError::Version`].
    pub fn load(path: &Path) -> Result<Cassette, CassetteError> {
        let text = fs::read_to_string(path).map_err(|source| CassetteError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses cassette text; `path` is only used in errors.
    ///
    /// # Errors
    /// As [`Cassette::load`].
    pub fn parse(path: &Path, text: &str) -> Result<Cassette, CassetteError> {
        let malformed = |err: serde_json::Error| CassetteError::Malformed {
            path: path.to_owned(),
            line: err.line(),
            column: err.column(),
            message: strip_position(&err.to_string()),
        };
        // One parse on the happy path (a 100k-interaction cassette is 130 MB); only a file that
        // fails is looked at again, to say first whether it is another format version.
        let full_error = match serde_json::from_str::<Cassette>(text) {
            Ok(cassette) if cassette.version == FORMAT_VERSION => return Ok(cassette),
            Ok(cassette) => {
                return Err(CassetteError::Version {
                    path: path.to_owned(),
                    found: u64::from(cassette.version),
                })
            }
            Err(err) => err,
        };
        #[derive(Deserialize)]
        struct VersionProbe {
            version: Option<serde_json::Value>,
        }
        let probe: VersionProbe = serde_json::from_str(text).map_err(malformed)?;
        match probe.version {
            None => Err(CassetteError::Malformed {
                path: path.to_owned(),
                line: 1,
                column: 1,
                message: "missing field `version` (is this a ghes-vcr cassette?)".into(),
            }),
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(FORMAT_VERSION)) => {
                Err(malformed(full_error))
            }
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some() => {
                Err(CassetteError::Version {
                    path: path.to_owned(),
                    found: n.as_u64().unwrap_or_default(),
                })
            }
            Some(other) => Err(CassetteError::Malformed {
                path: path.to_owned(),
                line: 1,
                column: 1,
                message: format!("`version` must be a whole number, found {other}"),
            }),
        }
    }

    /// The file's exact text: pretty JSON, fixed key order, trailing newline.
    pub fn to_pretty_json(&self) -> String {
        let value = serde_json::to_value(self).expect("a cassette always serializes");
        format::to_pretty_json(&value)
    }
}

/// serde_json appends " at line L column C"; the error already carries them as fields.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_owned(),
        None => message.to_owned(),
    }
}

/// Loads a cassette file, or every `*.json` file below a directory (sorted by path), as one set.
///
/// # Errors
/// The first file that fails, or [`CassetteError::EmptyDirectory`].
pub fn load_set(path: &Path) -> Result<Vec<LoadedCassette>, CassetteError> {
    let read_err = |source| CassetteError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(read_err)?;
    if !meta.is_dir() {
        let cassette = Cassette::load(path)?;
        return Ok(vec![LoadedCassette {
            path: path.to_owned(),
            cassette,
        }]);
    }
    let mut files = Vec::new();
    collect_json_files(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(CassetteError::EmptyDirectory {
            path: path.to_owned(),
        });
    }
    files
        .into_iter()
        .map(|file| {
            Cassette::load(&file).map(|cassette| LoadedCassette {
                path: file,
                cassette,
            })
        })
        .collect()
}

fn collect_json_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), CassetteError> {
    let read_err = |source| CassetteError::Read {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let path = entry.map_err(read_err)?.path();
        if path.is_dir() {
            collect_json_files(&path, files)?;
        } else if path.extension().is_some_and(|ext| ext == "json") {
            files.push(path);
        }
    }
    Ok(())
}

/// Whether a save waits for the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync the file and the directory: survives a power cut.
    Synced,
    /// Atomic against a crash of the process (the rename is), not against a power cut; for the
    /// saves after each recorded exchange, which must not wait for the disk.
    ProcessCrash,
}

/// Replaces `path` with `contents` atomically: a temp file in the same directory is written,
/// flushed to disk and renamed over the target, then the directory entry is flushed.
///
/// # Errors
/// [`CassetteError::Write`] naming the cassette.
pub fn save_atomically(path: &Path, contents: &[u8]) -> Result<(), CassetteError> {
    save_with(path, contents, Durability::Synced)
}

/// As [`save_atomically`], choosing whether to wait for the disk.
///
/// # Errors
/// [`CassetteError::Write`] naming the cassette.
pub fn save_with(
    path: &Path,
    contents: &[u8],
    durability: Durability,
) -> Result<(), CassetteError> {
    let write_err = |source| CassetteError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(write_err)?;
    let mut temp = tempfile::Builder::new()
        .prefix(".ghes-vcr-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(write_err)?;
    temp.write_all(contents).map_err(write_err)?;
    if durability == Durability::Synced {
        temp.as_file().sync_all().map_err(write_err)?;
    }
    temp.persist(path).map_err(|err| write_err(err.error))?;
    if durability == Durability::Synced {
        if let Ok(dir) = fs::File::open(dir) {
            // Makes the rename itself durable; not every platform allows syncing a directory.
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::{Body, Interaction, RecordedRequest, RecordedResponse};

    fn sample() -> Cassette {
        let mut cassette = Cassette::new();
        cassette.interactions.push(Interaction {
            request: RecordedRequest {
                method: "GET".into(),
                path: "/api/v3/authorizations".into(),
                query: vec![("page".into(), "2".into())],
                headers: vec![("accept".into(), "application/json".into())],
                body: Body::Empty,
            },
            response: RecordedResponse {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: Body::Json(
                    serde_json::json!([{"id": 1, "url": "{{origin}}/api/v3/authorizations/1"}]),
                ),
            },
            latency_ms: None,
        });
        cassette
    }

    #[test]
    fn save_then_load_round_trips_and_ends_with_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/c.json");
        let text = sample().to_pretty_json();
        assert!(text.ends_with("}\n"));
        save_atomically(&path, text.as_bytes()).unwrap();
        assert_eq!(Cassette::load(&path).unwrap(), sample());
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left behind");
    }

    #[test]
    fn syntax_error_names_line_and_column() {
        let text = "{\n  \"version\": 1,\n  \"interactions\": [,]\n}\n";
        let err = Cassette::parse(Path::new("x.json"), text).unwrap_err();
        let CassetteError::Malformed { line, column, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (3, 20));
        assert!(
            err.to_string().starts_with("cassette x.json:3:20: "),
            "{err}"
        );
    }

    #[test]
    fn schema_error_names_the_field() {
        let mut text = sample().to_pretty_json();
        text = text.replace("\"status\": 200", "\"status\": \"ok\"");
        let err = Cassette::parse(Path::new("x.json"), &text).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid type: string \"ok\", expected u16"),
            "{err}"
        );
    }

    #[test]
    fn other_versions_are_refused_with_the_version_we_read() {
        let text = sample()
            .to_pretty_json()
            .replace("\"version\": 1", "\"version\": 7");
        let err = Cassette::parse(Path::new("x.json"), &text).unwrap_err();
        assert!(matches!(err, CassetteError::Version { found: 7, .. }));
        assert!(
            err.to_string().contains("this build reads version 1"),
            "{err}"
        );
    }

    #[test]
    fn directory_loads_every_json_file_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let text = sample().to_pretty_json();
        for name in ["b.json", "a.json", "sub/c.json"] {
            save_atomically(&dir.path().join(name), text.as_bytes()).unwrap();
        }
        fs::write(dir.path().join("notes.txt"), "not a cassette").unwrap();
        let set = load_set(dir.path()).unwrap();
        let names: Vec<_> = set
            .iter()
            .map(|c| c.path.strip_prefix(dir.path()).unwrap().to_owned())
            .collect();
        assert_eq!(
            names,
            [
                PathBuf::from("a.json"),
                "b.json".into(),
                "sub/c.json".into()
            ]
        );
    }
}
