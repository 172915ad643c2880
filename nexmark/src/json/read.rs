//! Reading events from JSON lines in order, with a bound on line length, so
//! that no input (not even `/dev/zero`) makes the reader hold more than the
//! limit.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::parse::parse_event;
use crate::error::{Error, Result};
use crate::model::Event;

/// The longest line a reader takes unless told otherwise: 16 MiB, far above
/// any event (the suite's average is a few hundred bytes), low enough that a
/// file without newlines fails fast instead of filling memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

/// Parses one line (with or without its line terminator) into the event at
/// place `line_number - 1`; errors carry `line_number` (1-based).
pub fn decode_event(line: &[u8], line_number: u64) -> Result<Event> {
    parse_event(line, line_number.saturating_sub(1)).map_err(|reason| Error::Json {
        file: None,
        line: line_number,
        reason,
    })
}

/// The reason given for a line longer than `limit` bytes.
pub(crate) fn line_too_long(limit: usize) -> String {
    format!("the line is longer than {limit} bytes, the line limit (--max-line-bytes)")
}

/// Reads the next line of `input` (through its `\n`, if any) into `buf`,
/// which it clears first. Returns `Ok(false)` at the end of the input, and
/// an error of kind `InvalidData` once the line exceeds `limit` bytes, having
/// read no more than that.
pub(crate) fn read_line(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    limit: usize,
) -> io::Result<bool> {
    buf.clear();
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(!buf.is_empty());
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(n) => (n + 1, true),
            None => (available.len(), false),
        };
        if buf.len() + take > limit.saturating_add(usize::from(done)) {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        buf.extend_from_slice(&available[..take]);
        input.consume(take);
        if done {
            return Ok(true);
        }
    }
}

/// Reads events from JSON lines, one per line, from any [`BufRead`]. Event
/// `seq` is the 0-based line.
///
/// Iterating yields `Result<Event>`; an error names its line and the reader
/// can go on with the next line (but for a line over the limit, which ends
/// the input).
pub struct EventReader<R: BufRead> {
    inner: R,
    line: Vec<u8>,
    line_number: u64,
    max_line_bytes: usize,
    failed: bool,
}

impl<R: BufRead> EventReader<R> {
    /// A reader over `inner` with the default line limit.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            line: Vec::with_capacity(1024),
            line_number: 0,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            failed: false,
        }
    }

    /// The same reader with a line limit of `max_line_bytes`.
    pub fn with_max_line_bytes(mut self, max_line_bytes: usize) -> Self {
        self.max_line_bytes = max_line_bytes;
        self
    }

    /// The next event, or `None` at the end of the input.
    pub fn read_event(&mut self) -> Result<Option<Event>> {
        if self.failed {
            return Ok(None);
        }
        loop {
            self.line_number += 1;
            match read_line(&mut self.inner, &mut self.line, self.max_line_bytes) {
                Ok(false) => {
                    self.line_number -= 1;
                    return Ok(None);
                }
                Ok(true) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.failed = true;
                    return Err(Error::Json {
                        file: None,
                        line: self.line_number,
                        reason: line_too_long(self.max_line_bytes),
                    });
                }
                Err(source) => {
                    return Err(Error::Read {
                        line: self.line_number,
                        source,
                    })
                }
            }
            if self.line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return decode_event(&self.line, self.line_number).map(Some);
        }
    }

    /// Number of lines read so far (the line of the last event or error).
    pub fn line_number(&self) -> u64 {
        self.line_number
    }
}

impl<R: BufRead> Iterator for EventReader<R> {
    type Item = Result<Event>;

    fn next(&mut self) -> Option<Result<Event>> {
        self.read_event().transpose()
    }
}

/// Opens the file at `path` for reading events.
pub fn open_file(path: impl AsRef<Path>) -> Result<EventReader<BufReader<File>>> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(EventReader::new(BufReader::with_capacity(256 * 1024, file)))
}
