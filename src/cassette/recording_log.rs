//! The recording log beside a cassette (`<cassette>.recording`): the interactions a running
//! recorder answered since it last wrote the whole file, one JSON line each after a header line
//! naming the exact file it continues. Loading a cassette applies its log
//! ([`super::store`]); the recorder appends to it ([`RecordingLog`]).

use std::fs;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::store::{strip_position, write_new};
use super::{CassetteError, Durability, Interaction};

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
    let malformed = |line: usize, err: serde_json::Error| malformed_line(&log, line, &err);
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

/// The error for line `line` (counted from 1, the header line included) of the recording log at
/// `log`, which does not read as JSON: where, what, and what to do about it.
pub(crate) fn malformed_line(log: &Path, line: usize, err: &serde_json::Error) -> CassetteError {
    CassetteError::Malformed {
        path: log.to_owned(),
        line,
        column: err.column(),
        message: format!("{} ({LOG_REMEDY})", strip_position(&err.to_string())),
    }
}

/// What a malformed recording log's error tells the user to do.
const LOG_REMEDY: &str = "this is the cassette's recording log; remove the file to load the \
     cassette as it was last written whole";

/// A cassette's recording log, open to append to and to read back. The recorder's saver keeps
/// it open from its first save to its last, and it is the only place that holds what the run
/// recorded: the saver keeps no interaction in memory once its line is written (a long
/// recording does not grow), and reads them back through this file to write the cassette
/// whole at the end ([`RecordingLog::lines`]). Keeping it open also spares two system calls per
/// save (about one per recorded exchange under load).
///
/// The log is created afresh atomically (a temporary file renamed over it), so a kill leaves
/// the log before or after, and only whole lines are ever known to be in it: a failed append
/// is cut back. Appends are not synced: like the saves between answers, they survive a crash
/// of the process, not a power cut.
#[derive(Debug)]
pub struct RecordingLog {
    /// Open to read, and to append.
    file: fs::File,
    path: PathBuf,
    header: RecordingLogHeader,
    /// Where the interactions' lines start: after the header line.
    start: u64,
    /// The log's length up to its last whole line.
    whole: u64,
    /// A failed append may have left part of a line after `whole`, and it could not be cut.
    torn: bool,
}

impl RecordingLog {
    /// Starts the cassette's recording log afresh with `header` and no interactions.
    ///
    /// # Errors
    /// [`CassetteError::Write`] naming the log.
    pub fn create(cassette: &Path, header: RecordingLogHeader) -> Result<Self, CassetteError> {
        Self::create_at(recording_log_path(cassette), header, |_| Ok(()))
    }

    /// Writes a log at `path` with `header` and what `lines` appends to it, atomically.
    fn create_at(
        path: PathBuf,
        header: RecordingLogHeader,
        lines: impl FnOnce(&mut fs::File) -> io::Result<()>,
    ) -> Result<Self, CassetteError> {
        let mut first = serde_json::to_vec(&header).unwrap_or_default();
        first.push(b'\n');
        let file = write_new(&path, Durability::ProcessCrash, true, |file| {
            file.write_all(&first)
                .and_then(|()| lines(file))
                .map_err(|source| CassetteError::Write {
                    path: path.clone(),
                    source,
                })
        })?;
        let whole = file
            .metadata()
            .map_err(|source| CassetteError::Write {
                path: path.clone(),
                source,
            })?
            .len();
        Ok(Self {
            file,
            path,
            header,
            start: first.len() as u64,
            whole,
            torn: false,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the log is still where it was opened. One that was deleted or replaced while
    /// open (nothing names this file any more) would take appends that no one can read back.
    /// Asked of the open file, which costs no path lookup.
    fn is_in_place(&self) -> bool {
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

    /// Appends `lines` (whole lines). A log that is no longer in place (deleted or replaced
    /// since), or that a failed append left with part of a line it could not cut, is first
    /// started afresh at its path, holding what this one holds whole.
    ///
    /// # Errors
    /// [`CassetteError::Write`] naming the log, which then holds what it held before
    /// (or [`CassetteError::Read`], when the log to start afresh from cannot be read).
    pub fn append(&mut self, lines: &[u8]) -> Result<(), CassetteError> {
        if self.torn || !self.is_in_place() {
            let fresh = {
                let mut held = self.lines()?;
                Self::create_at(self.path.clone(), self.header, |file| {
                    io::copy(&mut held, file)?;
                    file.write_all(lines)
                })?
            };
            *self = fresh;
            return Ok(());
        }
        if let Err(source) = self.file.write_all(lines) {
            self.cut_back();
            return Err(CassetteError::Write {
                path: self.path.clone(),
                source,
            });
        }
        self.whole += lines.len() as u64;
        Ok(())
    }

    /// Cuts off what follows the last whole line (part of a line a failed append left), or
    /// else marks the log to be started afresh at the next append.
    fn cut_back(&mut self) {
        self.torn = self.file.set_len(self.whole).is_err();
    }

    /// The interactions' lines the log holds whole, read through the open file (so also after
    /// the log was deleted).
    ///
    /// # Errors
    /// [`CassetteError::Read`] naming the log.
    pub fn lines(&self) -> Result<impl io::BufRead + '_, CassetteError> {
        let mut file = &self.file;
        file.seek(io::SeekFrom::Start(self.start))
            .map_err(|source| CassetteError::Read {
                path: self.path.clone(),
                source,
            })?;
        Ok(io::BufReader::with_capacity(
            1 << 16,
            file.take(self.whole - self.start),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use io::BufRead as _;

    const HEADER: RecordingLogHeader = RecordingLogHeader {
        ghes_vcr_recording_log: 1,
        extends_bytes: 10,
        extends_interactions: 0,
    };

    fn read_back(log: &RecordingLog) -> Vec<String> {
        log.lines().unwrap().lines().map(Result::unwrap).collect()
    }

    fn on_disk(path: &Path) -> String {
        fs::read_to_string(recording_log_path(path)).unwrap()
    }

    #[test]
    fn lines_read_back_through_the_open_log_also_once_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut log = RecordingLog::create(&path, HEADER).unwrap();
        assert!(read_back(&log).is_empty());
        log.append(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        log.append(b"{\"c\":3}\n").unwrap();
        assert_eq!(read_back(&log), [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":3}"#]);
        let header = on_disk(&path).lines().next().unwrap().to_owned();
        assert_eq!(
            serde_json::from_str::<RecordingLogHeader>(&header).unwrap(),
            HEADER
        );

        fs::remove_file(recording_log_path(&path)).unwrap();
        assert_eq!(read_back(&log).len(), 3, "the open file still holds them");
        // Appending to a deleted log starts it afresh at its path, holding what it held.
        log.append(b"{\"d\":4}\n").unwrap();
        assert_eq!(
            on_disk(&path),
            format!("{header}\n{{\"a\":1}}\n{{\"b\":2}}\n{{\"c\":3}}\n{{\"d\":4}}\n")
        );
        assert_eq!(read_back(&log).len(), 4);
    }

    #[test]
    fn a_log_replaced_while_open_is_started_afresh_from_what_it_held() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut log = RecordingLog::create(&path, HEADER).unwrap();
        log.append(b"{\"a\":1}\n").unwrap();
        let header = on_disk(&path).lines().next().unwrap().to_owned();
        fs::write(dir.path().join("other"), "something else\n").unwrap();
        fs::rename(dir.path().join("other"), recording_log_path(&path)).unwrap();
        log.append(b"{\"b\":2}\n").unwrap();
        assert_eq!(
            on_disk(&path),
            format!("{header}\n{{\"a\":1}}\n{{\"b\":2}}\n")
        );
    }

    #[test]
    fn part_of_a_line_after_the_whole_ones_is_never_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let mut log = RecordingLog::create(&path, HEADER).unwrap();
        log.append(b"{\"a\":1}\n").unwrap();
        let header = on_disk(&path).lines().next().unwrap().to_owned();
        let partial = || {
            fs::OpenOptions::new()
                .append(true)
                .open(recording_log_path(&path))
                .unwrap()
                .write_all(b"{\"tor")
                .unwrap();
        };
        // What a failed append does: the part is cut off.
        partial();
        log.cut_back();
        assert!(!log.torn);
        log.append(b"{\"b\":2}\n").unwrap();
        assert_eq!(
            on_disk(&path),
            format!("{header}\n{{\"a\":1}}\n{{\"b\":2}}\n")
        );
        // When it cannot be cut, the next append starts afresh from the whole lines.
        partial();
        log.torn = true;
        log.append(b"{\"c\":3}\n").unwrap();
        assert_eq!(
            on_disk(&path),
            format!("{header}\n{{\"a\":1}}\n{{\"b\":2}}\n{{\"c\":3}}\n")
        );
        assert!(!log.torn);
    }
}
