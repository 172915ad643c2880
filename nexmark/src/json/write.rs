//! Writing events as JSON lines (the format is specified in the module
//! docs of [`crate::json`]).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::model::Event;
use crate::timestamp::{format_timestamp, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};

/// The writer hands its buffer to the output once it holds this many bytes.
const WRITE_CHUNK: usize = 64 * 1024;

// ---------------------------------------------------------------- writing

/// Appends `event` as one line (with its `\n`) to `out`. Fails only for a
/// timestamp outside the years 0000-9999, appending nothing then.
pub fn encode_event(event: &Event, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    let result = encode_into(event, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(event: &Event, out: &mut Vec<u8>) -> Result<()> {
    out.extend_from_slice(b"{\"event_type\":");
    out.push(b'0' + event.event_type().code());
    match event {
        Event::Person(p) => {
            out.extend_from_slice(b",\"person\":{\"id\":");
            push_i64(out, p.id);
            push_str_field(out, b",\"name\":", &p.name);
            push_str_field(out, b",\"emailAddress\":", &p.email_address);
            push_str_field(out, b",\"creditCard\":", &p.credit_card);
            push_str_field(out, b",\"city\":", &p.city);
            push_str_field(out, b",\"state\":", &p.state);
            push_time_field(out, b",\"dateTime\":", p.date_time)?;
            push_str_field(out, b",\"extra\":", &p.extra);
            out.extend_from_slice(b"},\"auction\":null,\"bid\":null}\n");
        }
        Event::Auction(a) => {
            out.extend_from_slice(b",\"person\":null,\"auction\":{\"id\":");
            push_i64(out, a.id);
            push_str_field(out, b",\"itemName\":", &a.item_name);
            push_str_field(out, b",\"description\":", &a.description);
            push_i64_field(out, b",\"initialBid\":", a.initial_bid);
            push_i64_field(out, b",\"reserve\":", a.reserve);
            push_time_field(out, b",\"dateTime\":", a.date_time)?;
            push_time_field(out, b",\"expires\":", a.expires)?;
            push_i64_field(out, b",\"seller\":", a.seller);
            push_i64_field(out, b",\"category\":", a.category);
            push_str_field(out, b",\"extra\":", &a.extra);
            out.extend_from_slice(b"},\"bid\":null}\n");
        }
        Event::Bid(b) => {
            out.extend_from_slice(b",\"person\":null,\"auction\":null,\"bid\":{\"auction\":");
            push_i64(out, b.auction);
            push_i64_field(out, b",\"bidder\":", b.bidder);
            push_i64_field(out, b",\"price\":", b.price);
            push_str_field(out, b",\"channel\":", &b.channel);
            push_str_field(out, b",\"url\":", &b.url);
            push_time_field(out, b",\"dateTime\":", b.date_time)?;
            push_str_field(out, b",\"extra\":", &b.extra);
            out.extend_from_slice(b"}}\n");
        }
    }
    Ok(())
}

fn push_i64_field(out: &mut Vec<u8>, key: &[u8], value: i64) {
    out.extend_from_slice(key);
    push_i64(out, value);
}

fn push_str_field(out: &mut Vec<u8>, key: &[u8], value: &str) {
    out.extend_from_slice(key);
    push_json_string(out, value);
}

fn push_time_field(out: &mut Vec<u8>, key: &[u8], ms: i64) -> Result<()> {
    out.extend_from_slice(key);
    out.push(b'"');
    if !format_timestamp(ms, out) {
        return Err(Error::InvalidArgument(format!(
            "timestamp {ms} ms is outside {MIN_TIMESTAMP_MS}..={MAX_TIMESTAMP_MS} \
             (years 0000-9999), which the event format cannot hold"
        )));
    }
    out.push(b'"');
    Ok(())
}

/// Appends `value` in decimal, without the formatting machinery.
pub(crate) fn push_i64(out: &mut Vec<u8>, value: i64) {
    if value < 0 {
        out.push(b'-');
    }
    push_u64(out, value.unsigned_abs());
}

/// Appends `value` in decimal, without the formatting machinery.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends `s` as a JSON string: quotes, backslashes and control characters
/// escaped, runs of other bytes copied whole.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut run_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0x00..=0x1f => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.extend_from_slice(escape);
        run_start = i + 1;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

/// Writes events as JSON lines to any [`Write`], through its own buffer (no
/// need to wrap `W` in a `BufWriter`).
///
/// Call [`finish`](Self::finish) at the end to write the buffered tail and
/// see any error; dropping the writer writes the tail too but, like
/// `BufWriter`, cannot report a failure.
pub struct EventWriter<W: Write> {
    inner: Option<W>,
    buf: Vec<u8>,
}

impl<W: Write> EventWriter<W> {
    /// A writer appending to `inner`.
    pub fn new(inner: W) -> Self {
        Self {
            inner: Some(inner),
            buf: Vec::with_capacity(WRITE_CHUNK + 4096),
        }
    }

    /// Writes one event.
    pub fn write_event(&mut self, event: &Event) -> Result<()> {
        encode_event(event, &mut self.buf)?;
        if self.buf.len() >= WRITE_CHUNK {
            self.write_buffer()?;
        }
        Ok(())
    }

    /// Writes every event of `events`.
    pub fn write_all<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) -> Result<()> {
        events
            .into_iter()
            .try_for_each(|event| self.write_event(event))
    }

    /// Writes the buffered events and flushes the output.
    pub fn flush(&mut self) -> Result<()> {
        self.write_buffer()?;
        if let Some(inner) = self.inner.as_mut() {
            inner.flush().map_err(Error::Write)?;
        }
        Ok(())
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.flush()?;
        Ok(self
            .inner
            .take()
            .expect("the output is only taken by finish"))
    }

    fn write_buffer(&mut self) -> Result<()> {
        if let Some(inner) = self.inner.as_mut() {
            if !self.buf.is_empty() {
                inner.write_all(&self.buf).map_err(Error::Write)?;
            }
        }
        self.buf.clear();
        Ok(())
    }
}

impl<W: Write> Drop for EventWriter<W> {
    fn drop(&mut self) {
        // Best effort, as BufWriter does; `finish` is the way to see errors.
        if let Some(inner) = self.inner.as_mut() {
            let _ = inner.write_all(&self.buf);
            let _ = inner.flush();
        }
    }
}

/// Creates (or truncates) the file at `path` and returns a writer to it.
pub fn create_file(path: impl AsRef<Path>) -> Result<EventWriter<File>> {
    let path = path.as_ref();
    let file = File::create(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(EventWriter::new(file))
}
