//! The recording log beside a cassette (`<cassette>.recording`): the interactions a running
//! recorder answered since it last wrote the whole file, one JSON line each after a header line
//! naming the exact file it continues. Loading a cassette applies its log
//! ([`super::store`]); the recorder appends to it ([`RecordingLog`]).

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::strip_position;
use super::{CassetteError, Interaction};

/// The recording log of the cassette at `path`: `<path>.recording`.
pub fn recording_log_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".recording");
    PathBuf::from(name)
}

/// The first line of a recording log: the exact cassette file it extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingLogHeader {
    /// The log format (1).
    pub ghes_vcr_recording_log: u32,
    /// The size in bytes of the cassette file the log continues.
    pub extends_bytes: u64,
    /// How many interactions that file holds.
    pub extends_interactions: usize,
}

/// The interactions of the cassette's recording log, if there is one and it continues this
/// very file (`file_len` bytes holding `interactions`). A log left behind after its
/// interactions were written into the file (a recorder stopped between the two steps) no
/// longer matches and is skipped; the next recording removes it. A partial last line (a
/// recorder killed mid-write, before it answered that exchange) is ignored.
pub(super) fn recording_log(
    path: &Path,
    file_len: usize,
    interactions: usize,
) -> Result<Vec<Interaction>, CassetteError> {
    let log = recording_log_path(path);
    let text = match fs::read_to_string(&log) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(CassetteError::Read { path: log, source }),
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    let mut lines = complete.lines().enumerate();
    let Some((_, header)) = lines.next() else {
        return Ok(Vec::new());
    };
    let malformed = |line: usize, err: serde_json::Error| {
        CassetteError::Malformed {
        path: log.clone(),
        line,
        column: err.column(),
        message: format!(
            "{} (this is the cassette's recording log; remove the file to load the cassette as it was last written whole)",
            strip_position(&err.to_string())
        ),
    }
    };
    let header: RecordingLogHeader =
        serde_json::from_str(header).map_err(|err| malformed(1, err))?;
    let extends = u64::try_from(file_len).ok() == Some(header.extends_bytes)
        && header.extends_interactions == interactions;
    if !extends {
        tracing::debug!(log = %log.display(), "skipping a recording log that does not continue this cassette file");
        return Ok(Vec::new());
    }
    lines
        .map(|(index, line)| {
            let mut interaction: Interaction =
                serde_json::from_str(line).map_err(|err| malformed(index + 1, err))?;
            // The recorder logs answers as text; the file it writes at the end holds them
            // settled.
            interaction.response.body = std::mem::take(&mut interaction.response.body).settled();
            Ok(interaction)
        })
        .collect()
}

/// A cassette's recording log, open for appending. The recorder's saver keeps it open from one
/// save to the next: opening and closing it for each save took two system calls per batch
/// of interactions (about one for every recorded exchange under load). Appends are not synced:
/// like the saves between answers, they survive a crash of the process, not a power cut.
#[derive(Debug)]
pub struct RecordingLog {
    file: fs::File,
    path: PathBuf,
}

impl RecordingLog {
    /// Starts the cassette's recording log afresh with `header`.
    ///
    /// # Errors
    /// [`CassetteError::Write`] naming the log.
    pub fn create(cassette: &Path, header: RecordingLogHeader) -> Result<Self, CassetteError> {
        let path = recording_log_path(cassette);
        let mut log = match fs::File::create(&path) {
            Ok(file) => Self { file, path },
            Err(source) => return Err(CassetteError::Write { path, source }),
        };
        let mut line = serde_json::to_string(&header).unwrap_or_default();
        line.push('\n');
        log.append(line.as_bytes())?;
        Ok(log)
    }

    /// Opens the cassette's existing recording log to append to it.
    ///
    /// # Errors
    /// [`CassetteError::Write`] naming the log.
    pub fn open(cassette: &Path) -> Result<Self, CassetteError> {
        let path = recording_log_path(cassette);
        match fs::OpenOptions::new().append(true).open(&path) {
            Ok(file) => Ok(Self { file, path }),
            Err(source) => Err(CassetteError::Write { path, source }),
        }
    }

    /// Whether the log is still where it was opened. One that was deleted while open (nothing
    /// else names it any more) would take appends that no one can read back: it is started
    /// afresh instead. Asked of the open file, which costs no path lookup.
    pub fn is_in_place(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            self.file.metadata().is_ok_and(|meta| meta.nlink() > 0)
        }
        #[cfg(not(unix))]
        {
            self.path.exists()
        }
    }

    /// Appends `lines` (whole lines).
    ///
    /// # Errors
    /// [`CassetteError::Write`] naming the log; part of `lines` may then be in it.
    pub fn append(&mut self, lines: &[u8]) -> Result<(), CassetteError> {
        self.file
            .write_all(lines)
            .map_err(|source| CassetteError::Write {
                path: self.path.clone(),
                source,
            })
    }
}

/// Removes the cassette's recording log once the file holds its interactions.
///
/// # Errors
/// [`CassetteError::Write`] naming the log.
pub fn remove_recording_log(path: &Path) -> Result<(), CassetteError> {
    let log = recording_log_path(path);
    match fs::remove_file(&log) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CassetteError::Write { path: log, source }),
    }
}
