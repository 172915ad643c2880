//! Event files: JSON lines in the shape of the suite's source table.
//!
//! # Format
//!
//! UTF-8 text, one event per line, each line one JSON object terminated by
//! `\n`. The object has the columns of the suite's `nexmark` table (its DDL
//! in `nexmark-flink/src/main/resources/queries/ddl*.sql` and its
//! `RowDataEventDeserializer`): `event_type` and the three nested rows, of
//! which exactly the one named by `event_type` is an object and the other two
//! are `null`.
//!
//! ```text
//! {"event_type":0,
//!  "person":{"id":1000,"name":"Peter Shultz","emailAddress":"abc@xyz.com",
//!            "creditCard":"0123 4567 8901 2345","city":"Boise","state":"ID",
//!            "dateTime":"2015-07-15 00:00:00.000","extra":"..."},
//!  "auction":null,"bid":null}
//! {"event_type":1,"person":null,
//!  "auction":{"id":1000,"itemName":"...","description":"...","initialBid":1234,
//!             "reserve":5678,"dateTime":"2015-07-15 00:00:00.000",
//!             "expires":"2015-07-15 00:00:00.200","seller":1000,"category":12,
//!             "extra":"..."},
//!  "bid":null}
//! {"event_type":2,"person":null,"auction":null,
//!  "bid":{"auction":1000,"bidder":1001,"price":1500,"channel":"Google",
//!         "url":"https://www.nexmark.com/abc/de_f/gh/item.htm?query=1",
//!         "dateTime":"2015-07-15 00:00:00.000","extra":"..."}}
//! ```
//! (wrapped here for reading; in a file each event is on one line).
//!
//! - `event_type`: 0 person, 1 auction, 2 bid.
//! - Ids, prices, `category`: JSON integers (non-negative).
//! - `dateTime`, `expires`: strings `YYYY-MM-DD HH:MM:SS.sss`, UTC, years
//!   0000-9999 (see [`crate::timestamp`]).
//! - Strings: JSON strings; the writer escapes `"`, `\` and control
//!   characters and writes everything else as is.
//! - Keys are written in the order above. The reader accepts any key order,
//!   ignores unknown keys, treats an absent nested row like `null`, and skips
//!   blank lines (they still count for line numbers).
//!
//! The layout is the suite's table, so it carries no version field of its
//! own; a different layout gets a different reader.
//!
//! # Errors
//!
//! The reader's errors name the 1-based line and what is wrong: malformed
//! JSON (with the column), a missing or mistyped field, a bad timestamp (with
//! the field), an unknown `event_type`, or an `event_type` that does not match
//! the nested object.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::model::{Auction, Bid, Event, EventType, Person};
use crate::timestamp::{format_timestamp, parse_timestamp, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS};

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
            push_u64(out, p.id);
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
            push_u64(out, a.id);
            push_str_field(out, b",\"itemName\":", &a.item_name);
            push_str_field(out, b",\"description\":", &a.description);
            push_u64_field(out, b",\"initialBid\":", a.initial_bid);
            push_u64_field(out, b",\"reserve\":", a.reserve);
            push_time_field(out, b",\"dateTime\":", a.date_time)?;
            push_time_field(out, b",\"expires\":", a.expires)?;
            push_u64_field(out, b",\"seller\":", a.seller);
            push_u64_field(out, b",\"category\":", a.category);
            push_str_field(out, b",\"extra\":", &a.extra);
            out.extend_from_slice(b"},\"bid\":null}\n");
        }
        Event::Bid(b) => {
            out.extend_from_slice(b",\"person\":null,\"auction\":null,\"bid\":{\"auction\":");
            push_u64(out, b.auction);
            push_u64_field(out, b",\"bidder\":", b.bidder);
            push_u64_field(out, b",\"price\":", b.price);
            push_str_field(out, b",\"channel\":", &b.channel);
            push_str_field(out, b",\"url\":", &b.url);
            push_time_field(out, b",\"dateTime\":", b.date_time)?;
            push_str_field(out, b",\"extra\":", &b.extra);
            out.extend_from_slice(b"}}\n");
        }
    }
    Ok(())
}

fn push_u64_field(out: &mut Vec<u8>, key: &[u8], value: u64) {
    out.extend_from_slice(key);
    push_u64(out, value);
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

// ---------------------------------------------------------------- reading

/// Parses one line (without or with its line terminator) into an event;
/// errors carry `line_number`.
pub fn decode_event(line: &[u8], line_number: u64) -> Result<Event> {
    decode(line).map_err(|reason| Error::Json {
        line: line_number,
        reason,
    })
}

#[derive(Deserialize)]
struct RawEvent<'a> {
    event_type: i64,
    #[serde(default, borrow)]
    person: Option<RawPerson<'a>>,
    #[serde(default, borrow)]
    auction: Option<RawAuction<'a>>,
    #[serde(default, borrow)]
    bid: Option<RawBid<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPerson<'a> {
    id: u64,
    name: String,
    email_address: String,
    credit_card: String,
    city: String,
    state: String,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    extra: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAuction<'a> {
    id: u64,
    item_name: String,
    description: String,
    initial_bid: u64,
    reserve: u64,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    #[serde(borrow)]
    expires: Cow<'a, str>,
    seller: u64,
    category: u64,
    extra: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBid<'a> {
    auction: u64,
    bidder: u64,
    price: u64,
    channel: String,
    url: String,
    #[serde(borrow)]
    date_time: Cow<'a, str>,
    extra: String,
}

fn decode(line: &[u8]) -> Result<Event, String> {
    let raw: RawEvent<'_> = serde_json::from_slice(line).map_err(|e| describe_json_error(&e))?;
    let Some(kind) = u8::try_from(raw.event_type)
        .ok()
        .and_then(EventType::from_code)
    else {
        return Err(format!(
            "event_type {} is not 0 (person), 1 (auction) or 2 (bid)",
            raw.event_type
        ));
    };
    let present = [
        (EventType::Person, raw.person.is_some()),
        (EventType::Auction, raw.auction.is_some()),
        (EventType::Bid, raw.bid.is_some()),
    ];
    for (other, is_present) in present {
        if other == kind && !is_present {
            return Err(format!(
                "event_type {} ({}) but `{}` is null or absent",
                kind.code(),
                kind.name(),
                kind.name()
            ));
        }
        if other != kind && is_present {
            return Err(format!(
                "event_type {} ({}) but `{}` is not null",
                kind.code(),
                kind.name(),
                other.name()
            ));
        }
    }
    let time = |field: &str, text: &str| {
        parse_timestamp(text).map_err(|reason| format!("{}.{field}: {reason}", kind.name()))
    };
    let event = match (raw.person, raw.auction, raw.bid) {
        (Some(p), None, None) => Event::Person(Person {
            id: p.id,
            name: p.name,
            email_address: p.email_address,
            credit_card: p.credit_card,
            city: p.city,
            state: p.state,
            date_time: time("dateTime", &p.date_time)?,
            extra: p.extra,
        }),
        (None, Some(a), None) => Event::Auction(Auction {
            id: a.id,
            item_name: a.item_name,
            description: a.description,
            initial_bid: a.initial_bid,
            reserve: a.reserve,
            date_time: time("dateTime", &a.date_time)?,
            expires: time("expires", &a.expires)?,
            seller: a.seller,
            category: a.category,
            extra: a.extra,
        }),
        (None, None, Some(b)) => Event::Bid(Bid {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            channel: b.channel,
            url: b.url,
            date_time: time("dateTime", &b.date_time)?,
            extra: b.extra,
        }),
        _ => unreachable!("exactly the object of event_type is present, checked above"),
    };
    Ok(event)
}

/// serde_json's message without its "at line 1 column N" (the line is
/// always 1 here; the caller knows the real one), with the column kept.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&suffix).unwrap_or(&message);
    let what = match error.classify() {
        serde_json::error::Category::Data => "invalid event",
        _ => "malformed JSON",
    };
    format!("{what}: {message} (column {})", error.column())
}

/// Reads events from JSON lines, one per line, from any [`BufRead`].
///
/// Iterating yields `Result<Event>`; an error names its line and the reader
/// can go on with the next line.
pub struct EventReader<R: BufRead> {
    inner: R,
    line: Vec<u8>,
    line_number: u64,
}

impl<R: BufRead> EventReader<R> {
    /// A reader over `inner`.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            line: Vec::with_capacity(1024),
            line_number: 0,
        }
    }

    /// The next event, or `None` at the end of the input.
    pub fn read_event(&mut self) -> Result<Option<Event>> {
        loop {
            self.line.clear();
            self.line_number += 1;
            let read = self
                .inner
                .read_until(b'\n', &mut self.line)
                .map_err(|source| Error::Read {
                    line: self.line_number,
                    source,
                })?;
            if read == 0 {
                self.line_number -= 1;
                return Ok(None);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bid() -> Event {
        Event::Bid(Bid {
            auction: 1000,
            bidder: 1001,
            price: 1500,
            channel: "Google".into(),
            url: "https://www.nexmark.com/a/b/c/item.htm?query=1".into(),
            date_time: 1_436_918_400_123,
            extra: "xy\\z".into(),
        })
    }

    #[test]
    fn encoding_of_a_known_bid_is_pinned() {
        let mut out = Vec::new();
        encode_event(&bid(), &mut out).unwrap();
        let expected = concat!(
            r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,"#,
            r#""bidder":1001,"price":1500,"channel":"Google","#,
            r#""url":"https://www.nexmark.com/a/b/c/item.htm?query=1","#,
            r#""dateTime":"2015-07-15 00:00:00.123","extra":"xy\\z"}}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn encoding_of_a_known_person_and_auction_is_pinned() {
        let person = Event::Person(Person {
            id: 1000,
            name: "Peter Shultz".into(),
            email_address: "a\"b@c.com".into(),
            credit_card: "0001 0002 0003 0004".into(),
            city: "Boise".into(),
            state: "ID".into(),
            date_time: 0,
            extra: "\n\u{1}é".into(),
        });
        let auction = Event::Auction(Auction {
            id: 1001,
            item_name: "item".into(),
            description: "desc".into(),
            initial_bid: 100,
            reserve: 250,
            date_time: 1000,
            expires: 1500,
            seller: 1000,
            category: 12,
            extra: String::new(),
        });
        let mut out = Vec::new();
        encode_event(&person, &mut out).unwrap();
        encode_event(&auction, &mut out).unwrap();
        let expected = concat!(
            r#"{"event_type":0,"person":{"id":1000,"name":"Peter Shultz","#,
            r#""emailAddress":"a\"b@c.com","creditCard":"0001 0002 0003 0004","#,
            r#""city":"Boise","state":"ID","dateTime":"1970-01-01 00:00:00.000","#,
            r#""extra":"\n\u0001é"},"auction":null,"bid":null}"#,
            "\n",
            r#"{"event_type":1,"person":null,"auction":{"id":1001,"itemName":"item","#,
            r#""description":"desc","initialBid":100,"reserve":250,"#,
            r#""dateTime":"1970-01-01 00:00:01.000","expires":"1970-01-01 00:00:01.500","#,
            r#""seller":1000,"category":12,"extra":""},"bid":null}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn out_of_range_timestamps_are_refused_whole() {
        let mut event = bid();
        if let Event::Bid(b) = &mut event {
            b.date_time = i64::MAX;
        }
        let mut out = b"kept".to_vec();
        assert!(matches!(
            encode_event(&event, &mut out),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(out, b"kept");
    }

    #[test]
    fn reader_skips_blank_lines_and_counts_them() {
        let mut text = Vec::new();
        encode_event(&bid(), &mut text).unwrap();
        text.extend_from_slice(b"\n  \r\n");
        encode_event(&bid(), &mut text).unwrap();
        text.extend_from_slice(b"{bad\n");
        let mut reader = EventReader::new(&text[..]);
        assert_eq!(reader.read_event().unwrap(), Some(bid()));
        assert_eq!(reader.read_event().unwrap(), Some(bid()));
        assert_eq!(reader.line_number(), 4);
        match reader.read_event() {
            Err(Error::Json { line: 5, .. }) => {}
            other => panic!("expected an error on line 5, got {other:?}"),
        }
        assert!(reader.read_event().unwrap().is_none());
    }

    #[test]
    fn crlf_and_missing_final_newline_are_accepted() {
        let mut text = Vec::new();
        encode_event(&bid(), &mut text).unwrap();
        text.pop();
        text.extend_from_slice(b"\r\n");
        encode_event(&bid(), &mut text).unwrap();
        text.pop();
        let events: Vec<Event> = EventReader::new(&text[..]).map(Result::unwrap).collect();
        assert_eq!(events, vec![bid(), bid()]);
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ]{0,12}",
            any::<String>(),
            "[\"\\\\\n\r\t\u{0}-\u{1f}é😀]{0,6}",
        ]
    }

    fn time() -> impl Strategy<Value = i64> {
        crate::timestamp::MIN_TIMESTAMP_MS..=crate::timestamp::MAX_TIMESTAMP_MS
    }

    fn event() -> impl Strategy<Value = Event> {
        let person = (
            any::<u64>(),
            text(),
            text(),
            text(),
            text(),
            text(),
            time(),
            text(),
        )
            .prop_map(
                |(id, name, email_address, credit_card, city, state, date_time, extra)| {
                    Event::Person(Person {
                        id,
                        name,
                        email_address,
                        credit_card,
                        city,
                        state,
                        date_time,
                        extra,
                    })
                },
            );
        let auction = (
            (any::<u64>(), text(), text(), any::<u64>(), any::<u64>()),
            (time(), time(), any::<u64>(), any::<u64>(), text()),
        )
            .prop_map(
                |(
                    (id, item_name, description, initial_bid, reserve),
                    (date_time, expires, seller, category, extra),
                )| {
                    Event::Auction(Auction {
                        id,
                        item_name,
                        description,
                        initial_bid,
                        reserve,
                        date_time,
                        expires,
                        seller,
                        category,
                        extra,
                    })
                },
            );
        let bid = (
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            text(),
            text(),
            time(),
            text(),
        )
            .prop_map(|(auction, bidder, price, channel, url, date_time, extra)| {
                Event::Bid(Bid {
                    auction,
                    bidder,
                    price,
                    channel,
                    url,
                    date_time,
                    extra,
                })
            });
        prop_oneof![person, auction, bid]
    }

    proptest! {
        #[test]
        fn any_events_round_trip(events in proptest::collection::vec(event(), 0..20)) {
            let mut writer = EventWriter::new(Vec::new());
            writer.write_all(&events).unwrap();
            let bytes = writer.finish().unwrap();
            prop_assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), events.len());
            let read: Vec<Event> = EventReader::new(&bytes[..])
                .collect::<Result<_>>()
                .unwrap();
            prop_assert_eq!(read, events);
        }
    }
}
