//! Event files as a parallel, replayable source that runs in bounded memory.
//!
//! # Input
//!
//! One or more paths, each a file or a folder. A folder stands for the files
//! under it, recursively, in path order; names starting with `.` or `_` are
//! skipped (hidden files, and the `_SUCCESS`-style markers other writers
//! leave), as Flink's file source skips them. Together the files are one
//! input, in the order given: events are numbered (`seq`) by their 0-based
//! line in it, blank lines included; a file's last line need not end in a
//! newline.
//!
//! # Splits
//!
//! With `p` subtasks the bytes of all files, taken as one sequence, are cut
//! into `p` ranges of about equal size, each cut moved forward to the start
//! of the next line, so every line belongs to exactly one subtask: the one
//! whose range holds its first byte. A range may span files. Before reading,
//! the planner counts the newlines of every range but the last (in parallel,
//! one pass over the data at memory speed) so that each subtask knows the
//! line number and `seq` of its first line; then each subtask reads its
//! range in chunks of [`CHUNK_BYTES`] and parses lines in batches. Memory per
//! subtask is one chunk plus the longest line, which is bounded by the line
//! limit. Inputs that are not regular files (pipes, devices) cannot be cut:
//! all of the input then goes to subtask 0, read as a stream.
//!
//! # Position format
//!
//! Where a subtask is: the line it reads next. Little-endian:
//!
//! ```text
//! version  u8    = 1
//! split    u32   the subtask's range (its subtask index)
//! path_len u32 | path bytes   the file being read (as given or listed)
//! offset   u64   byte offset in that file of the next line
//! line     u64   1-based line number in that file of the next line
//! seq      u64   seq of the next line
//! ```
//!
//! A reader seeks only to a position of its own range; anything else is an
//! error naming what does not match.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use riverbed_compute::{Position, Source, SourceReader};

use crate::error::{Error, Result};
use crate::json::parse::parse_event;
use crate::json::read::line_too_long;
use crate::model::Event;

/// Bytes a reader asks the file for at a time: large enough that a read
/// call costs little per byte, small enough that many subtasks stay cheap.
pub const CHUNK_BYTES: usize = 256 << 10;

const POSITION_VERSION: u8 = 1;

/// One input file.
#[derive(Clone, Debug)]
struct InputFile {
    path: PathBuf,
    /// Its size, or `None` when it is not a regular file (read as a stream).
    len: Option<u64>,
}

/// The files of a run's input, listed once.
#[derive(Clone, Debug)]
pub struct EventFiles {
    files: Arc<Vec<InputFile>>,
    max_line_bytes: usize,
}

impl EventFiles {
    /// Lists the files of `paths` (files or folders, see the module docs).
    /// Fails, naming the path, when one does not exist or a folder holds no
    /// file.
    pub fn list(paths: &[PathBuf], max_line_bytes: usize) -> Result<Self> {
        if paths.is_empty() {
            return Err(Error::InvalidArgument("no event file given".into()));
        }
        if max_line_bytes == 0 {
            return Err(Error::InvalidArgument(
                "--max-line-bytes must be at least 1".into(),
            ));
        }
        let mut files = Vec::new();
        for path in paths {
            let meta = std::fs::metadata(path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            if meta.is_dir() {
                let before = files.len();
                list_folder(path, &mut files)?;
                if files.len() == before {
                    return Err(Error::InvalidArgument(format!(
                        "{}: the folder holds no event file",
                        path.display()
                    )));
                }
            } else {
                files.push(InputFile {
                    path: path.clone(),
                    len: meta.is_file().then_some(meta.len()),
                });
            }
        }
        Ok(EventFiles {
            files: Arc::new(files),
            max_line_bytes,
        })
    }

    /// The paths of the files, in input order.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|f| f.path.as_path())
    }

    /// Bytes of all files, when every one is a regular file.
    pub fn total_bytes(&self) -> Option<u64> {
        self.files.iter().map(|f| f.len).sum()
    }

    /// A source over these files (it plans its splits when first read).
    pub fn source(&self) -> FileSource {
        FileSource {
            files: self.clone(),
            plan: Mutex::new(None),
        }
    }
}

fn list_folder(dir: &Path, out: &mut Vec<InputFile>) -> Result<()> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(io)?
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let hidden = name
            .to_str()
            .is_some_and(|n| n.starts_with('.') || n.starts_with('_'));
        if hidden {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            list_folder(&path, out)?;
        } else {
            out.push(InputFile {
                path,
                len: meta.is_file().then_some(meta.len()),
            });
        }
    }
    Ok(())
}

/// The source of a job over [`EventFiles`].
pub struct FileSource {
    files: EventFiles,
    /// The plan for the parallelism it was made for (all subtasks of a job
    /// share one parallelism; the first to open makes it).
    plan: Mutex<Option<(usize, Arc<Plan>)>>,
}

/// Where each subtask's range starts and ends.
#[derive(Debug)]
struct Plan {
    splits: Vec<Split>,
}

/// One subtask's range of the input.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Split {
    /// First byte, as (file index, offset); a line start.
    start: (usize, u64),
    /// End (exclusive), as (file index, offset); `None` reads to the end of
    /// the last file (streams, and the last split).
    end: Option<(usize, u64)>,
    /// 1-based line number in the start file of the first line.
    first_line: u64,
    /// `seq` of the first line.
    first_seq: u64,
}

impl Source<Event> for FileSource {
    fn reader(
        &self,
        subtask: usize,
        parallelism: usize,
    ) -> riverbed_compute::Result<Box<dyn SourceReader<Event>>> {
        let plan = {
            let mut slot = self.plan.lock();
            match &*slot {
                Some((p, plan)) if *p == parallelism => plan.clone(),
                _ => {
                    let plan = Arc::new(plan(&self.files, parallelism).map_err(source_error)?);
                    *slot = Some((parallelism, plan.clone()));
                    plan
                }
            }
        };
        let split = plan.splits.get(subtask).cloned().ok_or_else(|| {
            riverbed_compute::Error::Source(format!(
                "subtask {subtask} is not below parallelism {parallelism}"
            ))
        })?;
        Ok(Box::new(FileReader::new(
            self.files.clone(),
            subtask,
            split,
        )))
    }
}

fn source_error(e: Error) -> riverbed_compute::Error {
    riverbed_compute::Error::Source(e.to_string())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Cuts the input into `parallelism` line-aligned ranges and numbers their
/// first lines.
fn plan(files: &EventFiles, parallelism: usize) -> Result<Plan> {
    let empty = |start: (usize, u64), first_seq: u64| Split {
        start,
        end: Some(start),
        first_line: 1,
        first_seq,
    };
    let whole = Split {
        start: (0, 0),
        end: None,
        first_line: 1,
        first_seq: 0,
    };
    let lens: Option<Vec<u64>> = files.files.iter().map(|f| f.len).collect();
    let Some(lens) = lens.filter(|_| parallelism > 1) else {
        // One subtask, or an input that cannot be cut: subtask 0 reads it all.
        let mut splits = vec![whole];
        splits.extend((1..parallelism).map(|_| empty((files.files.len(), 0), 0)));
        return Ok(Plan { splits });
    };
    let total: u64 = lens.iter().sum();
    // Cut points, as (file, offset), moved to line starts and kept in order.
    let mut cuts: Vec<(usize, u64)> = Vec::with_capacity(parallelism + 1);
    cuts.push((0, 0));
    for k in 1..parallelism {
        let raw = (u128::from(total) * k as u128 / parallelism as u128) as u64;
        let at = align(files, &lens, locate(&lens, raw))?;
        let prev = *cuts.last().expect("starts with (0, 0)");
        cuts.push(at.max(prev));
    }
    cuts.push((lens.len(), 0));
    // Newlines of every range but the last, and whether it ends a file
    // whose last line has no newline (that line counts too).
    let counts = count_ranges(files, &lens, &cuts[..cuts.len() - 1])?;
    let mut splits = Vec::with_capacity(parallelism);
    let (mut seq, mut line) = (0u64, 1u64);
    for k in 0..parallelism {
        let (start, end) = (cuts[k], cuts[k + 1]);
        splits.push(Split {
            start,
            end: (k + 1 < parallelism).then_some(end),
            first_line: line,
            first_seq: seq,
        });
        if let Some(c) = counts.get(k) {
            seq += c.lines;
            line = match (end.1, end.0 == start.0) {
                (0, _) => 1,
                (_, true) => line + c.newlines_in_end_file,
                (_, false) => 1 + c.newlines_in_end_file,
            };
        }
    }
    Ok(Plan { splits })
}

/// The (file, offset) of global byte `g` (the first file holding it; the end
/// of all files is `(files, 0)`).
fn locate(lens: &[u64], mut g: u64) -> (usize, u64) {
    for (i, &len) in lens.iter().enumerate() {
        if g < len {
            return (i, g);
        }
        g -= len;
    }
    (lens.len(), 0)
}

/// The first line start at or after `at`.
fn align(files: &EventFiles, lens: &[u64], at: (usize, u64)) -> Result<(usize, u64)> {
    let (file, offset) = at;
    if file >= lens.len() || offset == 0 {
        return Ok(at);
    }
    let path = &files.files[file].path;
    let mut f = File::open(path).map_err(|e| io_error(path, e))?;
    f.seek(SeekFrom::Start(offset - 1))
        .map_err(|e| io_error(path, e))?;
    let limit = files.max_line_bytes as u64 + 1;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut scanned = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| io_error(path, e))?;
        if n == 0 {
            // No newline before the end of the file: the next file starts
            // the next line.
            return Ok((file + 1, 0));
        }
        if let Some(i) = memchr::memchr(b'\n', &buf[..n]) {
            let next = offset - 1 + scanned + i as u64 + 1;
            return Ok(if next >= lens[file] {
                (file + 1, 0)
            } else {
                (file, next)
            });
        }
        scanned += n as u64;
        if scanned > limit {
            let line = 1 + count_newlines(path, 0, offset)?;
            return Err(Error::Json {
                file: Some(path.clone()),
                line,
                reason: line_too_long(files.max_line_bytes),
            });
        }
    }
}

/// What one range holds, for numbering the ranges after it.
#[derive(Clone, Copy, Debug, Default)]
struct RangeCount {
    /// Lines that start in it.
    lines: u64,
    /// Newlines within it in the file where it ends (where the next range
    /// starts).
    newlines_in_end_file: u64,
}

/// Counts every range `[cuts[k], cuts[k + 1])`, `k < cuts.len() - 1`, in
/// parallel over the machine's cores.
fn count_ranges(
    files: &EventFiles,
    lens: &[u64],
    cuts: &[(usize, u64)],
) -> Result<Vec<RangeCount>> {
    let ranges = cuts.len().saturating_sub(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RangeCount>>>> =
        Mutex::new((0..ranges).map(|_| None).collect());
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(ranges)
        .max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= ranges {
                    break;
                }
                let r = count_range(files, lens, cuts[k], cuts[k + 1]);
                results.lock()[k] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Ok(RangeCount::default())))
        .collect()
}

fn count_range(
    files: &EventFiles,
    lens: &[u64],
    start: (usize, u64),
    end: (usize, u64),
) -> Result<RangeCount> {
    let mut count = RangeCount::default();
    if start >= end {
        return Ok(count);
    }
    let last = end.0.min(lens.len() - 1);
    for (file, &len) in lens.iter().enumerate().take(last + 1).skip(start.0) {
        let from = if file == start.0 { start.1 } else { 0 };
        let to = if file == end.0 { end.1 } else { len };
        if from >= to {
            continue;
        }
        let path = &files.files[file].path;
        let newlines = count_newlines(path, from, to)?;
        count.lines += newlines;
        if to == len && !ends_with_newline(path, len)? {
            count.lines += 1;
        }
        if file == end.0 {
            count.newlines_in_end_file = newlines;
        }
    }
    Ok(count)
}

/// Newlines in bytes `[from, to)` of the file at `path`.
fn count_newlines(path: &Path, from: u64, to: u64) -> Result<u64> {
    let mut f = File::open(path).map_err(|e| io_error(path, e))?;
    f.seek(SeekFrom::Start(from))
        .map_err(|e| io_error(path, e))?;
    let mut left = to - from;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut n = 0u64;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let got = f.read(&mut buf[..want]).map_err(|e| io_error(path, e))?;
        if got == 0 {
            break;
        }
        // A plain loop: the compiler turns it into vector compares.
        n += buf[..got]
            .iter()
            .map(|&b| u64::from(b == b'\n'))
            .sum::<u64>();
        left -= got as u64;
    }
    Ok(n)
}

fn ends_with_newline(path: &Path, len: u64) -> Result<bool> {
    if len == 0 {
        return Ok(true);
    }
    let mut f = File::open(path).map_err(|e| io_error(path, e))?;
    f.seek(SeekFrom::Start(len - 1))
        .map_err(|e| io_error(path, e))?;
    let mut last = [0u8];
    f.read_exact(&mut last).map_err(|e| io_error(path, e))?;
    Ok(last[0] == b'\n')
}

/// Reads one subtask's range, a chunk at a time.
struct FileReader {
    files: EventFiles,
    split_index: usize,
    split: Split,
    /// The file being read, its handle, and where this range stops in it.
    file: usize,
    handle: Option<File>,
    stop: Option<u64>,
    /// File offset, 1-based line and seq of the next line.
    offset: u64,
    line: u64,
    seq: u64,
    /// Bytes read but not yet parsed: `buf[lo..hi]`, from `offset` on.
    buf: Vec<u8>,
    lo: usize,
    hi: usize,
    /// Whether the current file has no more bytes for this range.
    drained: bool,
    done: bool,
}

impl FileReader {
    fn new(files: EventFiles, split_index: usize, split: Split) -> Self {
        let mut r = FileReader {
            files,
            split_index,
            file: split.start.0,
            handle: None,
            stop: None,
            offset: split.start.1,
            line: split.first_line,
            seq: split.first_seq,
            split,
            buf: Vec::new(),
            lo: 0,
            hi: 0,
            drained: false,
            done: false,
        };
        r.enter_file();
        r
    }

    /// Sets `stop` for the current file and whether the range is over.
    fn enter_file(&mut self) {
        let files = &self.files.files;
        let past_end = match self.split.end {
            Some(end) => (self.file, self.offset) >= end,
            None => self.file >= files.len(),
        };
        if past_end || self.file >= files.len() {
            self.done = true;
            return;
        }
        self.stop = match self.split.end {
            Some((f, o)) if f == self.file => Some(o),
            _ => files[self.file].len,
        };
        self.handle = None;
        self.lo = 0;
        self.hi = 0;
        self.drained = false;
    }

    fn path(&self) -> &Path {
        &self.files.files[self.file].path
    }

    fn error(&self, reason: String) -> riverbed_compute::Error {
        source_error(Error::Json {
            file: Some(self.path().to_path_buf()),
            line: self.line,
            reason,
        })
    }

    fn io(&self, e: std::io::Error) -> riverbed_compute::Error {
        source_error(io_error(self.path(), e))
    }

    /// Reads more of the current file into the buffer, after what is left.
    fn refill(&mut self) -> riverbed_compute::Result<()> {
        let pending = self.hi - self.lo;
        if pending > self.files.max_line_bytes {
            return Err(self.error(line_too_long(self.files.max_line_bytes)));
        }
        if self.handle.is_none() {
            let path = self.path().to_path_buf();
            let mut f = File::open(&path).map_err(|e| self.io(e))?;
            if self.offset > 0 {
                f.seek(SeekFrom::Start(self.offset))
                    .map_err(|e| self.io(e))?;
            }
            self.handle = Some(f);
        }
        self.buf.copy_within(self.lo..self.hi, 0);
        self.lo = 0;
        self.hi = pending;
        let want = match self.stop {
            Some(stop) => {
                let read_to = self.offset + pending as u64;
                usize::try_from(stop.saturating_sub(read_to))
                    .unwrap_or(usize::MAX)
                    .min(CHUNK_BYTES)
            }
            None => CHUNK_BYTES,
        };
        if want == 0 {
            self.drained = true;
            return Ok(());
        }
        if self.buf.len() < pending + want {
            self.buf.resize(pending + want, 0);
        }
        let handle = self.handle.as_mut().expect("opened above");
        let got = loop {
            match handle.read(&mut self.buf[pending..pending + want]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.io(e)),
            }
        };
        if got == 0 {
            self.drained = true;
        }
        self.hi = pending + got;
        Ok(())
    }

    /// Parses the line `buf[lo..lo + len]` (with its newline, if any) and
    /// moves past it.
    fn take_line(&mut self, len: usize, out: &mut Vec<Event>) -> riverbed_compute::Result<()> {
        let line = &self.buf[self.lo..self.lo + len];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        if content.len() > self.files.max_line_bytes {
            return Err(self.error(line_too_long(self.files.max_line_bytes)));
        }
        if !content.iter().all(u8::is_ascii_whitespace) {
            let event = parse_event(content, self.seq).map_err(|reason| self.error(reason))?;
            out.push(event);
        }
        self.lo += len;
        self.offset += len as u64;
        self.line += 1;
        self.seq += 1;
        Ok(())
    }
}

impl SourceReader<Event> for FileReader {
    fn read_batch(&mut self, out: &mut Vec<Event>, max: usize) -> riverbed_compute::Result<bool> {
        let before = out.len();
        while out.len() - before < max && !self.done {
            if let Some(n) = memchr::memchr(b'\n', &self.buf[self.lo..self.hi]) {
                self.take_line(n + 1, out)?;
                continue;
            }
            if !self.drained {
                self.refill()?;
                continue;
            }
            if self.lo < self.hi {
                // The file's last line, without a newline.
                self.take_line(self.hi - self.lo, out)?;
                continue;
            }
            // This file is done for the range: on to the next one, unless
            // the range ends in it (the position stays at its end).
            if self.split.end.is_some_and(|(f, _)| f <= self.file) {
                self.done = true;
                continue;
            }
            self.file += 1;
            self.offset = 0;
            self.line = 1;
            self.enter_file();
        }
        Ok(out.len() > before)
    }

    fn position(&self) -> Position {
        let path = self
            .files
            .files
            .get(self.file)
            .map(|f| path_bytes(&f.path))
            .unwrap_or_default();
        let mut b = Vec::with_capacity(1 + 4 + 4 + path.len() + 24);
        b.push(POSITION_VERSION);
        b.extend_from_slice(&(self.split_index as u32).to_le_bytes());
        b.extend_from_slice(&(path.len() as u32).to_le_bytes());
        b.extend_from_slice(&path);
        b.extend_from_slice(&self.offset.to_le_bytes());
        b.extend_from_slice(&self.line.to_le_bytes());
        b.extend_from_slice(&self.seq.to_le_bytes());
        Position(b)
    }

    fn seek(&mut self, position: &Position) -> riverbed_compute::Result<()> {
        let bad = |why: String| riverbed_compute::Error::Source(format!("file position: {why}"));
        let at = decode_position(&position.0).ok_or_else(|| bad("malformed".into()))?;
        if at.split != self.split_index {
            return Err(bad(format!(
                "it belongs to subtask {}, not {}",
                at.split, self.split_index
            )));
        }
        let files = &self.files.files;
        let end_file = match self.split.end {
            Some((f, _)) => f.min(files.len()),
            None => files.len(),
        };
        let file = if at.path.is_empty() {
            files.len()
        } else {
            (self.split.start.0..files.len().min(end_file + 1))
                .find(|&i| path_bytes(&files[i].path) == at.path)
                .ok_or_else(|| {
                    bad(format!(
                        "file {} is not in this subtask's range",
                        String::from_utf8_lossy(&at.path)
                    ))
                })?
        };
        let here = (file, at.offset);
        let within = here >= self.split.start
            && self.split.end.is_none_or(|end| here <= end)
            && files
                .get(file)
                .and_then(|f| f.len)
                .is_none_or(|len| at.offset <= len);
        if !within {
            return Err(bad(format!(
                "offset {} of {} is outside this subtask's range",
                at.offset,
                String::from_utf8_lossy(&at.path)
            )));
        }
        self.file = file;
        self.offset = at.offset;
        self.line = at.line;
        self.seq = at.seq;
        self.done = false;
        self.enter_file();
        Ok(())
    }
}

fn path_bytes(path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    path.as_os_str().as_bytes().to_vec()
}

struct DecodedPosition {
    split: usize,
    path: Vec<u8>,
    offset: u64,
    line: u64,
    seq: u64,
}

fn decode_position(b: &[u8]) -> Option<DecodedPosition> {
    let (&version, b) = b.split_first()?;
    if version != POSITION_VERSION {
        return None;
    }
    let u32_at = |b: &[u8], i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
    };
    let u64_at = |b: &[u8], i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(i..i + 8)?.try_into().ok()?))
    };
    let split = u32_at(b, 0)? as usize;
    let len = u32_at(b, 4)? as usize;
    let path = b.get(8..8 + len)?.to_vec();
    let rest = 8 + len;
    if b.len() != rest + 24 {
        return None;
    }
    Some(DecodedPosition {
        split,
        path,
        offset: u64_at(b, rest)?,
        line: u64_at(b, rest + 8)?,
        seq: u64_at(b, rest + 16)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{encode_event, EventReader, DEFAULT_MAX_LINE_BYTES};
    use crate::{Generator, GeneratorConfig};

    /// Writes `files` (each a list of raw lines and whether the file ends
    /// with a newline) into `dir`, returning their paths.
    fn write_files(dir: &Path, files: &[(Vec<Vec<u8>>, bool)]) -> Vec<PathBuf> {
        files
            .iter()
            .enumerate()
            .map(|(i, (lines, final_newline))| {
                let mut bytes = lines.join(&b"\n"[..]);
                if *final_newline && !lines.is_empty() {
                    bytes.push(b'\n');
                }
                let path = dir.join(format!("part-{i:02}.jsonl"));
                std::fs::write(&path, bytes).unwrap();
                path
            })
            .collect()
    }

    /// The events of the files read one after the other by the sequential
    /// reader, numbered across files: the reference of every split.
    fn sequential(paths: &[PathBuf]) -> Vec<Event> {
        let mut all = Vec::new();
        let mut base = 0u64;
        for path in paths {
            let bytes = std::fs::read(path).unwrap();
            let mut lines = 0u64;
            for e in EventReader::new(&bytes[..]) {
                let mut e = e.unwrap();
                match &mut e {
                    Event::Person(p) => p.seq += base,
                    Event::Auction(a) => a.seq += base,
                    Event::Bid(b) => b.seq += base,
                }
                all.push(e);
            }
            lines += bytes.split(|&b| b == b'\n').count() as u64;
            if bytes.last() == Some(&b'\n') || bytes.is_empty() {
                lines -= 1;
            }
            base += lines;
        }
        all
    }

    fn read_all(reader: &mut dyn SourceReader<Event>, batch: usize) -> Vec<Event> {
        let mut out = Vec::new();
        while reader.read_batch(&mut out, batch).unwrap() {}
        out
    }

    /// Generated events as lines, with blank and CRLF lines mixed in.
    fn lines(generator: &Generator, range: std::ops::Range<u64>, blank_every: u64) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for n in range {
            if blank_every > 0 && n % blank_every == 0 {
                out.push(b"   ".to_vec());
            }
            let mut line = Vec::new();
            encode_event(&generator.event(n), &mut line).unwrap();
            line.pop();
            if n % 7 == 0 {
                line.push(b'\r');
            }
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_at_any_parallelism_read_exactly_the_sequential_events() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = write_files(
            dir.path(),
            &[
                (lines(&generator, 0..700, 97), true),
                (Vec::new(), true),
                (lines(&generator, 700..713, 0), false),
                (lines(&generator, 713..1500, 0), true),
                (lines(&generator, 1500..1501, 0), false),
            ],
        );
        let expected = sequential(&paths);
        assert_eq!(expected.len(), 1501);
        for p in 1..=7 {
            let files = EventFiles::list(&paths, DEFAULT_MAX_LINE_BYTES).unwrap();
            let source = files.source();
            let mut got = Vec::new();
            for i in 0..p {
                let mut reader = source.reader(i, p).unwrap();
                got.extend(read_all(reader.as_mut(), 64));
            }
            got.sort_by_key(Event::seq);
            assert_eq!(got.len(), expected.len(), "parallelism {p}");
            assert_eq!(got, expected, "parallelism {p}");
        }
        // A folder stands for its files, in name order, hidden ones skipped.
        std::fs::write(dir.path().join(".hidden"), b"junk").unwrap();
        std::fs::write(dir.path().join("_SUCCESS"), b"").unwrap();
        let folder = EventFiles::list(&[dir.path().to_path_buf()], DEFAULT_MAX_LINE_BYTES).unwrap();
        assert_eq!(
            folder.paths().collect::<Vec<_>>(),
            paths.iter().map(PathBuf::as_path).collect::<Vec<_>>()
        );
        let mut reader = folder.source().reader(0, 1).unwrap();
        assert_eq!(read_all(reader.as_mut(), 1000), expected);
    }

    #[test]
    fn a_reader_resumed_at_its_position_reads_on_as_the_uninterrupted_one() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let paths = write_files(
            dir.path(),
            &[
                (lines(&generator, 0..400, 50), true),
                (lines(&generator, 400..900, 0), false),
            ],
        );
        let files = EventFiles::list(&paths, DEFAULT_MAX_LINE_BYTES).unwrap();
        let source = files.source();
        for p in [1, 3] {
            for i in 0..p {
                let all = read_all(source.reader(i, p).unwrap().as_mut(), 50);
                for stop in [0, 1, 3, 7, 100] {
                    let mut first = source.reader(i, p).unwrap();
                    let mut head = Vec::new();
                    for _ in 0..stop {
                        first.read_batch(&mut head, 13).unwrap();
                    }
                    let at = first.position();
                    let mut resumed = source.reader(i, p).unwrap();
                    resumed.seek(&at).unwrap();
                    head.extend(read_all(resumed.as_mut(), 50));
                    assert_eq!(head, all, "subtask {i} of {p}, after {stop} batches");
                }
                // Positions of another subtask, or garbage, are refused.
                if p > 1 {
                    let other = source.reader((i + 1) % p, p).unwrap().position();
                    let err = source.reader(i, p).unwrap().seek(&other).unwrap_err();
                    assert!(err.to_string().contains("subtask"), "{err}");
                }
                let err = source
                    .reader(i, p)
                    .unwrap()
                    .seek(&Position(vec![9, 9]))
                    .unwrap_err();
                assert!(err.to_string().contains("malformed"), "{err}");
            }
        }
    }

    #[test]
    fn errors_name_the_file_and_its_line_at_any_parallelism() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut second = lines(&generator, 300..600, 0);
        second[123] =
            br#"{"event_type":2,"bid":{"auction":1,"bidder":2,"price":9223372036854775808}}"#
                .to_vec();
        let paths = write_files(
            dir.path(),
            &[(lines(&generator, 0..300, 0), true), (second, true)],
        );
        for p in [1, 2, 4] {
            let files = EventFiles::list(&paths, DEFAULT_MAX_LINE_BYTES).unwrap();
            let source = files.source();
            let errors: Vec<String> = (0..p)
                .filter_map(|i| {
                    let mut r = source.reader(i, p).unwrap();
                    let mut out = Vec::new();
                    loop {
                        match r.read_batch(&mut out, 100) {
                            Ok(true) => {}
                            Ok(false) => return None,
                            Err(e) => return Some(e.to_string()),
                        }
                    }
                })
                .collect();
            assert_eq!(errors.len(), 1, "{errors:?}");
            let e = &errors[0];
            assert!(
                e.contains(
                    "part-01.jsonl: line 124: bid.price: 9223372036854775808 is outside BIGINT"
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn long_lines_fail_within_the_limit_even_without_newlines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.jsonl");
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let mut bytes = Vec::new();
        for n in 0..10 {
            encode_event(&generator.event(n), &mut bytes).unwrap();
        }
        bytes.extend(std::iter::repeat_n(b'x', 300_000));
        std::fs::write(&path, &bytes).unwrap();
        for p in [1, 2, 3] {
            let files = EventFiles::list(std::slice::from_ref(&path), 100_000).unwrap();
            let source = files.source();
            let err = (0..p)
                .find_map(|i| match source.reader(i, p) {
                    Err(e) => Some(e.to_string()),
                    Ok(mut r) => {
                        let mut out = Vec::new();
                        loop {
                            match r.read_batch(&mut out, 100) {
                                Ok(true) => {}
                                Ok(false) => break None,
                                Err(e) => break Some(e.to_string()),
                            }
                        }
                    }
                })
                .expect("the long line fails");
            assert!(
                err.contains("line 11") && err.contains("longer than 100000 bytes"),
                "{err}"
            );
        }
        // A device without newlines: subtask 0 streams it and stops at the limit.
        let zero = EventFiles::list(&[PathBuf::from("/dev/zero")], 1 << 20).unwrap();
        assert_eq!(zero.total_bytes(), None);
        let source = zero.source();
        let mut r = source.reader(0, 2).unwrap();
        let err = r.read_batch(&mut Vec::new(), 10).unwrap_err().to_string();
        assert!(
            err.contains("/dev/zero: line 1") && err.contains("longer than"),
            "{err}"
        );
        assert!(!source
            .reader(1, 2)
            .unwrap()
            .read_batch(&mut Vec::new(), 10)
            .unwrap());
    }

    #[test]
    fn missing_paths_and_empty_folders_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = EventFiles::list(&[dir.path().join("nope.jsonl")], 10).unwrap_err();
        assert!(err.to_string().contains("nope.jsonl"), "{err}");
        let err = EventFiles::list(&[dir.path().to_path_buf()], 10).unwrap_err();
        assert!(err.to_string().contains("holds no event file"), "{err}");
    }
}
