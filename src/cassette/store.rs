//! Loading cassettes (with errors that name the file, line and column) and saving them
//! atomically (temp file in the same directory, fsync, rename), so a kill at any moment leaves
//! either the old file or the new one.
//!
//! A running recording also keeps a *recording log* beside the cassette
//! (`<cassette>.recording`, see [`super::recording_log`]): the interactions it answered since it
//! last wrote the whole file, one JSON line each, appended before each answer. Loading a
//! cassette applies its log, so a recorder killed mid-run loses nothing it answered, and
//! settles the logged answers' bodies ([`super::Body::settled`]) as the recorder does when it
//! writes the file whole.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::recording_log::{recording_log, remove_recording_log};
use super::{format, Cassette, Interaction, FORMAT_VERSION};

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
        let text = read_text(path)?;
        let mut cassette = Self::parse(path, &text)?;
        let logged = recording_log(path, text.len(), cassette.interactions.len())?;
        cassette.interactions.extend(logged);
        Ok(cassette)
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

fn read_text(path: &Path) -> Result<String, CassetteError> {
    fs::read_to_string(path).map_err(|source| CassetteError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A file's bytes; a large file's in memory backed by huge pages where the system offers them.
/// Read into ordinary pages, a 130 MB cassette faulted in 33,000 fresh pages one by one, about a
/// tenth of a second of its load on the reference machine.
fn read_large(path: &Path, huge_pages_from: u64) -> Result<Box<dyn AsRef<[u8]>>, CassetteError> {
    let read_err = |source| CassetteError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::File::open(path).map_err(read_err)?;
    let len = file.metadata().map_err(read_err)?.len();
    let mapped = (len >= huge_pages_from)
        .then(|| usize::try_from(len).ok())
        .flatten()
        .and_then(|len| Some((memmap2::MmapMut::map_anon(len).ok()?, len)));
    let Some((mut buffer, len)) = mapped else {
        let mut bytes = Vec::new();
        io::Read::read_to_end(&mut file, &mut bytes).map_err(read_err)?;
        return Ok(Box::new(bytes));
    };
    // Only a hint: without transparent huge pages it is ordinary memory.
    let _ = buffer.advise(memmap2::Advice::HugePage);
    io::Read::read_exact(&mut file, &mut buffer[..len]).map_err(read_err)?;
    Ok(Box::new(buffer))
}

/// Loads a cassette as [`Cassette::load`] does, but hands each interaction, with its index, to
/// `prepare` as soon as it is parsed, on every core, and keeps only what `prepare` makes of it.
/// A large cassette is then never held whole as parsed interactions: at 100,000 interactions
/// they took more memory than the file, and the fresh memory they touched was most of the load.
///
/// # Errors
/// As [`Cassette::load`].
pub fn load_prepared<T: Send>(
    path: &Path,
    prepare: impl Fn(usize, Interaction) -> T + Sync,
) -> Result<PreparedInteractions<T>, CassetteError> {
    let bytes = read_large(path, 8 << 20)?;
    let text = std::str::from_utf8((*bytes).as_ref()).map_err(|err| CassetteError::Read {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, err),
    })?;
    let in_parts = |(top, texts): (Cassette, Vec<&str>)| {
        let parts = crate::worker::map_on_cores(
            texts.into_iter().enumerate().collect(),
            |(index, text)| {
                let interaction = serde_json::from_str(text).ok()?;
                Some(prepare(index, interaction))
            },
        );
        parts
            .iter()
            .flatten()
            .all(Option::is_some)
            .then_some((top, parts))
    };
    let parsed = interaction_texts_by_layout(text)
        .and_then(in_parts)
        .or_else(|| interaction_texts(text).and_then(in_parts));
    let (top, mut parts) = match parsed {
        Some(parsed) => parsed,
        // Anything wrong (or another version): parse the text again as a whole, to say what
        // and where.
        None => {
            let mut cassette = Cassette::parse(path, text)?;
            let items = std::mem::take(&mut cassette.interactions)
                .into_iter()
                .enumerate()
                .collect();
            let parts = crate::worker::map_on_cores(items, |(index, interaction)| {
                Some(prepare(index, interaction))
            });
            (cassette, parts)
        }
    };
    let count = parts.iter().map(Vec::len).sum();
    let logged = recording_log(path, text.len(), count)?;
    parts.push(
        logged
            .into_iter()
            .enumerate()
            .map(|(i, interaction)| Some(prepare(count + i, interaction)))
            .collect(),
    );
    Ok(PreparedInteractions { top, parts })
}

/// What [`load_prepared`] made of a cassette's interactions, in their order.
pub struct PreparedInteractions<T> {
    /// The cassette's top level (`version`, `recorded_with`, `upstream`), without interactions.
    top: Cassette,
    /// In parts as the cores made them (joining them would copy each once more); every one
    /// `Some`.
    parts: Vec<Vec<Option<T>>>,
}

impl<T> PreparedInteractions<T> {
    /// The cassette's top level, without interactions.
    pub fn top(&self) -> &Cassette {
        &self.top
    }

    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> IntoIterator for PreparedInteractions<T> {
    type Item = T;
    type IntoIter = std::iter::Flatten<std::iter::Flatten<std::vec::IntoIter<Vec<Option<T>>>>>;

    fn into_iter(self) -> Self::IntoIter {
        self.parts.into_iter().flatten().flatten()
    }
}

/// The top level and the text of each interaction of a cassette laid out as ghes-vcr writes
/// it, cut where each interaction opens on a line of its own four spaces in (`\n    {\n`),
/// without parsing: a JSON string holds no raw newline, so those lines are the file's
/// structure. `None` when the file is laid out otherwise, or when what is left with the
/// interactions taken out is not a cassette of this version with none. A cut in the wrong
/// place (a file laid out by hand) leaves a piece that is not one interaction, and parsing it
/// fails; when every piece parses, the file is exactly that cassette with those interactions.
/// Saves a pass over the whole file (about a fifth of a 100,000-interaction load).
fn interaction_texts_by_layout(text: &str) -> Option<(Cassette, Vec<&str>)> {
    const OPEN: &str = "\"interactions\": [\n    {\n";
    const BETWEEN: &str = "\n    },\n    {\n";
    const CLOSE: &str = "\n    }\n  ]";
    let first = memchr::memmem::find(text.as_bytes(), OPEN.as_bytes())? + OPEN.len() - 2;
    let last = memchr::memmem::rfind(text.as_bytes(), CLOSE.as_bytes())? + CLOSE.len() - 4;
    if last <= first {
        return None;
    }
    let skeleton: Cassette =
        serde_json::from_str(&[&text[..first], &text[last..]].concat()).ok()?;
    if skeleton.version != FORMAT_VERSION || !skeleton.interactions.is_empty() {
        return None;
    }
    let all = &text[first..last];
    let mut texts = Vec::new();
    let mut start = 0;
    for at in memchr::memmem::find_iter(all.as_bytes(), BETWEEN.as_bytes()) {
        // `…\n    }` closes one; `{\n…` opens the next.
        texts.push(&all[start..at + 6]);
        start = at + BETWEEN.len() - 2;
    }
    texts.push(&all[start..]);
    Some((skeleton, texts))
}

/// The top level and the text of each interaction of a cassette of this format version, found
/// in one pass that also checks the whole text; `None` when anything is wrong.
fn interaction_texts(text: &str) -> Option<(Cassette, Vec<&str>)> {
    /// [`Cassette`], with each interaction left as its text.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(
        dead_code,
        reason = "every field is read, to check it as `Cassette` would"
    )]
    struct Outline<'a> {
        version: u32,
        recorded_with: String,
        upstream: String,
        #[serde(borrow)]
        interactions: Vec<&'a serde_json::value::RawValue>,
    }
    let outline: Outline<'_> = serde_json::from_str(text).ok()?;
    (outline.version == FORMAT_VERSION).then(|| {
        let top = Cassette {
            version: outline.version,
            recorded_with: outline.recorded_with,
            upstream: outline.upstream,
            interactions: Vec::new(),
        };
        let texts = outline
            .interactions
            .into_iter()
            .map(serde_json::value::RawValue::get)
            .collect();
        (top, texts)
    })
}

/// serde_json appends " at line L column C"; the error already carries them as fields.
pub(crate) fn strip_position(message: &str) -> String {
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
    cassette_files(path)?
        .into_iter()
        .map(|file| {
            Cassette::load(&file).map(|cassette| LoadedCassette {
                path: file,
                cassette,
            })
        })
        .collect()
}

/// The cassette file at `path`, or every `*.json` file below the directory `path`, sorted.
///
/// # Errors
/// [`CassetteError::Read`] or [`CassetteError::EmptyDirectory`].
pub fn cassette_files(path: &Path) -> Result<Vec<PathBuf>, CassetteError> {
    let meta = fs::metadata(path).map_err(|source| CassetteError::Read {
        path: path.to_owned(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    collect_json_files(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(CassetteError::EmptyDirectory {
            path: path.to_owned(),
        });
    }
    Ok(files)
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
/// flushed to disk and renamed over the target, then the directory entry is flushed. The file
/// keeps the target's permissions, or, new, gets a new file's (`0666` less the umask), as the
/// recording log does: it holds nothing secret, and a temp file's `0600` would hide a reviewed
/// cassette from the rest of its group.
///
/// # Errors
/// [`CassetteError::Write`] naming the cassette.
pub fn save_atomically(path: &Path, contents: &[u8]) -> Result<(), CassetteError> {
    save_with(path, contents, Durability::Synced)
}

/// Writes a whole cassette as [`save_atomically`] does, then removes its recording log, whose
/// interactions `contents` holds (it was made from the cassette as loaded, log applied).
///
/// # Errors
/// [`CassetteError::Write`] naming the cassette or its log.
pub fn save_cassette_file(path: &Path, contents: &[u8]) -> Result<(), CassetteError> {
    save_atomically(path, contents)?;
    remove_recording_log(path)
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
    write_new(path, durability, false, |file| {
        file.write_all(contents)
            .map_err(|source| CassetteError::Write {
                path: path.to_owned(),
                source,
            })
    })
    .map(drop)
}

/// Replaces `path` atomically, as [`save_with`] does, with what `write` puts in the new file,
/// and hands the file back, open to read and to write (only at its end when `append`). When
/// `write` fails, `path` is left as it was.
///
/// # Errors
/// [`CassetteError::Write`] naming `path`, or what `write` returned.
pub fn write_new(
    path: &Path,
    durability: Durability,
    append: bool,
    write: impl FnOnce(&mut fs::File) -> Result<(), CassetteError>,
) -> Result<fs::File, CassetteError> {
    let write_err = |source| CassetteError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(write_err)?;
    let existing = fs::metadata(path).ok().map(|meta| meta.permissions());
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ghes-vcr-").suffix(".tmp").append(append);
    #[cfg(unix)]
    if existing.is_none() {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(write_err)?;
    if let Some(permissions) = existing {
        temp.as_file()
            .set_permissions(permissions)
            .map_err(write_err)?;
    }
    write(temp.as_file_mut())?;
    if durability == Durability::Synced {
        temp.as_file().sync_all().map_err(write_err)?;
    }
    let file = temp.persist(path).map_err(|err| write_err(err.error))?;
    if durability == Durability::Synced {
        if let Ok(dir) = fs::File::open(dir) {
            // Makes the rename itself durable; not every platform allows syncing a directory.
            let _ = dir.sync_all();
        }
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cassette::recording_log::{recording_log_path, RecordingLog, RecordingLogHeader};
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
                    serde_json::json!([{"id": 1, "url": "{{origin}}/api/v3/authorizations/1"}])
                        .into(),
                ),
            },
            latency_ms: None,
        });
        cassette
    }

    #[cfg(unix)]
    #[test]
    fn a_saved_file_keeps_its_permissions_or_gets_a_new_files() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let plain = dir.path().join("plain.json");
        fs::File::create(&plain).unwrap();
        let fresh = dir.path().join("fresh.json");
        save_atomically(&fresh, b"{}").unwrap();
        assert_eq!(mode(&fresh), mode(&plain), "as any new file, umask applied");
        for kept in [0o640, 0o604] {
            fs::set_permissions(&fresh, fs::Permissions::from_mode(kept)).unwrap();
            save_atomically(&fresh, b"{}").unwrap();
            assert_eq!(mode(&fresh), kept);
        }
    }

    /// Saves `cassette` at `path` with a recording log continuing it that holds `lines`.
    fn save_with_log(path: &Path, cassette: &Cassette, lines: &str) {
        let text = cassette.to_pretty_json();
        save_atomically(path, text.as_bytes()).unwrap();
        let header = RecordingLogHeader {
            ghes_vcr_recording_log: 1,
            extends_bytes: text.len() as u64,
            extends_interactions: cassette.interactions.len(),
        };
        RecordingLog::create(path, header)
            .and_then(|mut log| log.append(lines.as_bytes()))
            .unwrap();
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
    #[test]
    fn a_recording_log_is_applied_only_to_the_file_it_continues() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let cassette = sample();
        let line = serde_json::to_string(&cassette.interactions[0]).unwrap();
        // One whole line, then one cut short by a kill: only the whole one counts.
        let partial = &line[..line.len() / 2];
        save_with_log(&path, &cassette, &format!("{line}\n{partial}"));
        let loaded = Cassette::load(&path).unwrap();
        assert_eq!(loaded.interactions.len(), cassette.interactions.len() + 1);

        // Once the file is rewritten (the log folded in), the leftover log no longer applies.
        let mut folded = cassette.clone();
        folded.interactions.push(cassette.interactions[0].clone());
        save_atomically(&path, folded.to_pretty_json().as_bytes()).unwrap();
        assert_eq!(
            Cassette::load(&path).unwrap().interactions.len(),
            folded.interactions.len()
        );

        remove_recording_log(&path).unwrap();
        assert!(!recording_log_path(&path).exists());
        remove_recording_log(&path).unwrap();
    }

    #[test]
    fn a_malformed_recording_log_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        save_with_log(&path, &sample(), "{\"request\": 1}\n");
        let err = Cassette::load(&path).unwrap_err().to_string();
        assert!(err.contains("c.json.recording:2:"), "{err}");
    }

    #[test]
    fn loading_prepared_gives_what_loading_gives_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut cassette = sample();
        for n in 2..40 {
            let mut more = cassette.interactions[0].clone();
            more.request.path = format!("/api/v3/authorizations/{n}");
            cassette.interactions.push(more);
        }
        let mut logged = cassette.interactions[0].clone();
        logged.request.path = "/api/v3/authorizations/logged".into();
        let line = format!("{}\n", serde_json::to_string(&logged).unwrap());
        save_with_log(&path, &cassette, &line);

        let prepared = load_prepared(&path, |index, interaction| (index, interaction)).unwrap();
        assert_eq!(prepared.len(), cassette.interactions.len() + 1);
        let expected: Vec<_> = Cassette::load(&path)
            .unwrap()
            .interactions
            .into_iter()
            .enumerate()
            .collect();
        assert_eq!(prepared.into_iter().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn loading_prepared_fails_as_loading_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let good = sample().to_pretty_json();
        for text in [
            good.replace("\"status\": 200", "\"status\": \"ok\""),
            good.replace("\"version\": 1", "\"version\": 7"),
            good.replace("\"method\": \"GET\",", "\"method\": \"GET\", \"extra\": 1,"),
            good.replace("]\n}", "],\n}"),
            "{\n  \"version\": 1,\n  \"interactions\": [,]\n}\n".to_owned(),
        ] {
            save_atomically(&path, text.as_bytes()).unwrap();
            let expected = Cassette::load(&path).unwrap_err().to_string();
            let err = load_prepared(&path, |_, interaction| interaction)
                .err()
                .unwrap()
                .to_string();
            assert_eq!(err, expected);
        }
    }

    #[test]
    fn a_large_file_reads_the_same_into_huge_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let text = sample().to_pretty_json();
        save_atomically(&path, text.as_bytes()).unwrap();
        for huge_pages_from in [0, u64::MAX] {
            let bytes = read_large(&path, huge_pages_from).unwrap();
            assert_eq!((*bytes).as_ref(), text.as_bytes());
        }
    }

    #[test]
    fn a_cassette_laid_out_otherwise_loads_prepared_as_it_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut cassette = sample();
        cassette.interactions.push(cassette.interactions[0].clone());
        let pretty = cassette.to_pretty_json();
        assert_eq!(interaction_texts_by_layout(&pretty).unwrap().1.len(), 2);
        let compact = serde_json::to_string(&cassette).unwrap();
        assert!(interaction_texts_by_layout(&compact).is_none());
        // By hand: the lines that part interactions also inside the first one's body.
        let by_hand = r#"{
  "version": 1,
  "recorded_with": "x",
  "upstream": "{{origin}}",
  "interactions": [
    {
"request": {"method": "GET", "path": "/a", "query": [], "headers": []},
"response": {"status": 200, "headers": [], "body": {"json": [
    {
"id": 1
    },
    {
"id": 2
    }
]}}
    },
    {
"request": {"method": "GET", "path": "/b", "query": [], "headers": []},
"response": {"status": 200, "headers": []}
    }
  ]
}
"#;
        assert_eq!(interaction_texts_by_layout(by_hand).unwrap().1.len(), 3);
        for text in [pretty.as_str(), compact.as_str(), by_hand] {
            save_atomically(&path, text.as_bytes()).unwrap();
            let expected = Cassette::load(&path).unwrap().interactions;
            let prepared = load_prepared(&path, |_, interaction| interaction).unwrap();
            assert_eq!(prepared.into_iter().collect::<Vec<_>>(), expected, "{text}");
        }
    }
}
