//! The parser of one event line: JSON (RFC 8259) restricted to what the
//! event format holds, written for speed and for errors that name the field.
//!
//! A general JSON library builds or visits every value through layers of
//! generic code; an event line has one shape, so this parser walks it
//! directly: keys are matched as bytes, strings without escapes are copied
//! once, integers are read with overflow checks straight into `i64`. Unknown
//! keys are skipped whatever their value (objects and arrays to a depth of
//! [`MAX_DEPTH`]); keys may come in any order; a repeated key is an error.
//!
//! Types are the suite's SQL types: ids, prices and `category` are `BIGINT`,
//! so a number with a fraction or an exponent, or one outside
//! `i64::MIN..=i64::MAX`, is refused with the field named, never rounded or
//! wrapped. `NULL` has no place in the event model and is refused for every
//! field but the two nested rows that the event's kind does not use.

use std::borrow::Cow;

use crate::model::{Auction, Bid, Event, EventType, Person};
use crate::timestamp::{parse_timestamp, TIMESTAMP_LEN};

/// Nesting depth up to which the values of unknown keys are skipped.
pub const MAX_DEPTH: usize = 64;

/// Parses `line` (one JSON object, with or without its line terminator)
/// into the event at place `seq` of its input. The error says what is wrong
/// and where, without the line number (the caller knows it).
pub fn parse_event(line: &[u8], seq: u64) -> Result<Event, String> {
    let text = std::str::from_utf8(line)
        .map_err(|e| format!("not UTF-8: invalid byte at column {}", e.valid_up_to() + 1))?;
    let mut p = Parser { s: text, i: 0 };
    let event = p.event(seq)?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.malformed("trailing characters after the event object"));
    }
    Ok(event)
}

/// The value a field holds, checked against the field's type.
enum Scalar<'a> {
    Int(i64),
    Str(Cow<'a, str>),
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.s.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn malformed(&self, what: &str) -> String {
        format!("malformed JSON: {what} (column {})", self.i + 1)
    }

    fn expect(&mut self, c: u8, what: &str) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else if self.peek().is_none() {
            Err(self.malformed(&format!("the line ends where {what} was expected")))
        } else {
            Err(self.malformed(&format!("expected {what}")))
        }
    }

    /// After a value in an object: `true` if another member follows.
    fn next_member(&mut self) -> Result<bool, String> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(true)
            }
            Some(b'}') => {
                self.i += 1;
                Ok(false)
            }
            None => Err(self.malformed("the line ends inside an object")),
            _ => Err(self.malformed("expected `,` or `}`")),
        }
    }

    /// Starts an object: `true` if it has a first member (the `{` is read).
    fn open_object(&mut self, what: &str) -> Result<bool, String> {
        self.expect(b'{', what)?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// A member's key and its `:`.
    fn key(&mut self) -> Result<Cow<'a, str>, String> {
        self.ws();
        match self.peek() {
            Some(b'"') => {}
            None => return Err(self.malformed("the line ends inside an object")),
            Some(_) => return Err(self.malformed("expected a key in double quotes")),
        }
        let key = self.string()?;
        // The writer puts `:` right after the key; anything else goes the
        // general way.
        if self.peek() == Some(b':') {
            self.i += 1;
        } else {
            self.expect(b':', "`:` after a key")?;
        }
        Ok(key)
    }

    /// The next member's key: its index in `names` (an object's fields in
    /// the writer's order), or `None` for a key not among them. The key the
    /// writer puts next, `names[*next]`, is tried first as one comparison.
    fn field(
        &mut self,
        names: &[&str],
        keys: &[(u128, u128)],
        next: &mut usize,
    ) -> Result<Option<usize>, String> {
        self.ws();
        if let Some(name) = names.get(*next) {
            let (b, n) = (&self.bytes()[self.i..], name.len());
            let hit = match b.get(..16) {
                // `"name":` fits in 16 bytes for every field: one masked
                // comparison of a 16-byte load.
                Some(head) => {
                    let (word, mask) = keys[*next];
                    let head = u128::from_le_bytes(head.try_into().expect("16 bytes"));
                    head & mask == word
                }
                None => {
                    b.len() > n + 2
                        && b[0] == b'"'
                        && &b[1..=n] == name.as_bytes()
                        && b[n + 1] == b'"'
                        && b[n + 2] == b':'
                }
            };
            if hit {
                self.i += n + 3;
                *next += 1;
                return Ok(Some(*next - 1));
            }
        }
        let key = self.key()?;
        let found = names.iter().position(|n| *n == key.as_ref());
        if let Some(k) = found {
            *next = k + 1;
        }
        Ok(found)
    }

    /// A string at the cursor (which is at its opening quote).
    fn string(&mut self) -> Result<Cow<'a, str>, String> {
        self.i += 1;
        let start = self.i;
        let bytes = self.bytes();
        let end = start
            + find_stop(&bytes[start..]).ok_or_else(|| self.malformed("unterminated string"))?;
        match bytes[end] {
            b'"' => {
                self.i = end + 1;
                return Ok(Cow::Borrowed(&self.s[start..end]));
            }
            b'\\' => {}
            _ => {
                self.i = end;
                return Err(self.malformed("control character in a string"));
            }
        }
        // Escapes: decode into an owned string from here on. Every escape
        // decodes to fewer bytes than it is written with, so the raw length
        // up to the closing quote bounds the decoded one: one scan for that
        // quote (skipping escaped bytes) sizes the string once, and the
        // decoding below never grows it.
        let mut j = end;
        let raw_end = loop {
            j += 2;
            match bytes.get(j..).and_then(find_stop) {
                Some(n) if bytes[j + n] == b'\\' => j += n,
                Some(n) => break j + n,
                None => break bytes.len(),
            }
        };
        let end = end - start;
        let mut out = String::with_capacity(raw_end - start);
        out.push_str(&self.s[start..start + end]);
        self.i = start + end;
        loop {
            let Some(c) = self.peek() else {
                return Err(self.malformed("unterminated string"));
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return Ok(Cow::Owned(out));
                }
                b'\\' => self.escape(&mut out)?,
                c if c < 0x20 => return Err(self.malformed("control character in a string")),
                _ => {
                    let run_end = find_stop(&bytes[self.i..]).map_or(bytes.len(), |n| self.i + n);
                    out.push_str(&self.s[self.i..run_end]);
                    self.i = run_end;
                }
            }
        }
    }

    /// One escape sequence at the cursor (at its backslash), appended.
    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = self.bytes().get(self.i + 1).copied();
        self.i += 2;
        let decoded = match c {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let first = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&first) {
                    // A high surrogate must be followed by `\u` and a low one.
                    if self.bytes().get(self.i..self.i + 2) != Some(b"\\u") {
                        return Err(self.malformed("unpaired surrogate in \\u escape"));
                    }
                    self.i += 2;
                    let second = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&second) {
                        return Err(self.malformed("unpaired surrogate in \\u escape"));
                    }
                    0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
                } else {
                    first
                };
                char::from_u32(code)
                    .ok_or_else(|| self.malformed("unpaired surrogate in \\u escape"))?
            }
            _ => {
                self.i -= 1;
                return Err(self.malformed("invalid escape in a string"));
            }
        };
        out.push(decoded);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes()
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.malformed("short \\u escape"))?;
        let mut v = 0u32;
        for &d in digits {
            let n = (d as char)
                .to_digit(16)
                .ok_or_else(|| self.malformed("invalid hex digit in \\u escape"))?;
            v = v * 16 + n;
        }
        self.i += 4;
        Ok(v)
    }

    /// A JSON number that must be an integer in `i64`. `field` names it.
    fn integer(&mut self, field: &str) -> Result<i64, String> {
        let bytes = self.bytes();
        let start = self.i;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let digits_start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let digits = &bytes[digits_start..self.i];
        if digits.is_empty() || (digits.len() > 1 && digits[0] == b'0') {
            self.i = start;
            return Err(self.malformed(&format!("{field}: invalid number")));
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            return Err(format!(
                "{field}: {} is not an integer; the field is BIGINT",
                &self.s[start..self.i]
            ));
        }
        if digits.len() <= 18 {
            // Fewer than 19 digits cannot overflow i64 either way.
            let v = digits
                .iter()
                .fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
            return Ok(if negative { -v } else { v });
        }
        // Accumulate negatively, so that i64::MIN is reachable.
        let mut v: i64 = 0;
        for &d in digits {
            v = match v
                .checked_mul(10)
                .and_then(|v| v.checked_sub(i64::from(d - b'0')))
            {
                Some(v) => v,
                None => return Err(out_of_range(field, &self.s[start..self.i])),
            };
        }
        if negative {
            Ok(v)
        } else {
            v.checked_neg()
                .ok_or_else(|| out_of_range(field, &self.s[start..self.i]))
        }
    }

    /// A value for a field of the event model: an integer or a string.
    fn scalar(&mut self, field: &str) -> Result<Scalar<'a>, String> {
        self.ws();
        match self.peek() {
            Some(b'"') => Ok(Scalar::Str(self.string()?)),
            Some(b'-' | b'0'..=b'9') => Ok(Scalar::Int(self.integer(field)?)),
            Some(b'n') if self.bytes()[self.i..].starts_with(b"null") => Err(format!(
                "{field} is null; the event model has no NULL for it"
            )),
            None => Err(self.malformed("the line ends where a value was expected")),
            _ => Err(format!(
                "{field}: expected a number or a string (column {})",
                self.i + 1
            )),
        }
    }

    fn int_field(&mut self, field: &str) -> Result<i64, String> {
        match self.scalar(field)? {
            Scalar::Int(v) => Ok(v),
            Scalar::Str(_) => Err(format!(
                "{field}: expected an integer (BIGINT), found a string"
            )),
        }
    }

    fn str_field(&mut self, field: &str) -> Result<Cow<'a, str>, String> {
        match self.scalar(field)? {
            Scalar::Str(s) => Ok(s),
            Scalar::Int(_) => Err(format!("{field}: expected a string, found a number")),
        }
    }

    fn time_field(&mut self, field: &str) -> Result<i64, String> {
        // The writer's form, a plain 23-byte string, is parsed in place;
        // anything else (escapes, a wrong length, a bad value) goes the
        // general way, which also words the error.
        self.ws();
        let b = &self.bytes()[self.i..];
        if b.len() > TIMESTAMP_LEN + 1 && b[0] == b'"' && b[TIMESTAMP_LEN + 1] == b'"' {
            if let Ok(ms) = parse_timestamp(&self.s[self.i + 1..self.i + 1 + TIMESTAMP_LEN]) {
                self.i += TIMESTAMP_LEN + 2;
                return Ok(ms);
            }
        }
        let text = self.str_field(field)?;
        parse_timestamp(&text).map_err(|reason| format!("{field}: {reason}"))
    }

    /// Skips any JSON value (for unknown keys).
    fn skip_value(&mut self, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(self.malformed(&format!("nested deeper than {MAX_DEPTH} levels")));
        }
        self.ws();
        match self.peek() {
            Some(b'"') => self.string().map(drop),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.peek() {
                    self.i += 1;
                }
                let n = &self.s[start..self.i];
                if n.parse::<f64>().is_err() {
                    self.i = start;
                    return Err(self.malformed("invalid number"));
                }
                Ok(())
            }
            Some(b'{') => {
                if self.open_object("`{`")? {
                    loop {
                        self.key()?;
                        self.skip_value(depth + 1)?;
                        if !self.next_member()? {
                            break;
                        }
                    }
                }
                Ok(())
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(self.malformed("expected `,` or `]`")),
                    }
                }
            }
            _ => {
                for word in ["null", "true", "false"] {
                    if self.bytes()[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(());
                    }
                }
                if self.peek().is_none() {
                    Err(self.malformed("the line ends where a value was expected"))
                } else {
                    Err(self.malformed("expected a value"))
                }
            }
        }
    }

    /// `null` at the cursor, or else the start of an object.
    fn null_or_object(&mut self) -> bool {
        self.ws();
        if self.bytes()[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    fn event(&mut self, seq: u64) -> Result<Event, String> {
        let mut event_type: Option<i64> = None;
        // Per nested row (person, auction, bid): whether its key was seen
        // and whether it held an object. The first object is built straight
        // into the event, which is not moved again until it is returned.
        let mut seen = [false; 3];
        let mut present = [false; 3];
        let mut row: Option<Event> = None;
        let mut next = 0;
        if self.open_object("`{` at the start of an event")? {
            loop {
                match self.field(&EVENT_FIELDS, &EVENT_KEYS, &mut next)? {
                    Some(0) => {
                        once(&event_type, "event_type")?;
                        event_type = Some(self.int_field("event_type")?);
                    }
                    Some(k) => {
                        let slot = k - 1;
                        if seen[slot] {
                            return Err(format!("duplicate field {}", EVENT_FIELDS[k]));
                        }
                        seen[slot] = true;
                        if !self.null_or_object() {
                            present[slot] = true;
                            let parsed = match slot {
                                0 => Event::Person(self.person(seq)?),
                                1 => Event::Auction(self.auction(seq)?),
                                _ => Event::Bid(self.bid(seq)?),
                            };
                            row.get_or_insert(parsed);
                        }
                    }
                    None => self.skip_value(1)?,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        let code = event_type.ok_or("missing field event_type")?;
        let Some(kind) = u8::try_from(code).ok().and_then(EventType::from_code) else {
            return Err(format!(
                "event_type {code} is not 0 (person), 1 (auction) or 2 (bid)"
            ));
        };
        let kinds = [EventType::Person, EventType::Auction, EventType::Bid];
        for (other, is_present) in kinds.into_iter().zip(present) {
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
        Ok(row.expect("exactly the object of event_type is present, checked above"))
    }

    fn person(&mut self, seq: u64) -> Result<Person, String> {
        let (mut id, mut date_time) = (None, None);
        let (mut name, mut email, mut card, mut city, mut state, mut extra) =
            (None, None, None, None, None, None);
        let mut next = 0;
        if self.open_object("`{` or null for person")? {
            loop {
                match self.field(&PERSON_FIELDS, &PERSON_KEYS, &mut next)? {
                    Some(0) => set(&mut id, "person.id", |f| self.int_field(f))?,
                    Some(1) => set(&mut name, "person.name", |f| self.owned(f))?,
                    Some(2) => set(&mut email, "person.emailAddress", |f| self.owned(f))?,
                    Some(3) => set(&mut card, "person.creditCard", |f| self.owned(f))?,
                    Some(4) => set(&mut city, "person.city", |f| self.owned(f))?,
                    Some(5) => set(&mut state, "person.state", |f| self.owned(f))?,
                    Some(6) => set(&mut date_time, "person.dateTime", |f| self.time_field(f))?,
                    Some(_) => set(&mut extra, "person.extra", |f| self.owned(f))?,
                    None => self.skip_value(2)?,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        Ok(Person {
            id: need(id, "person.id")?,
            name: need(name, "person.name")?,
            email_address: need(email, "person.emailAddress")?,
            credit_card: need(card, "person.creditCard")?,
            city: need(city, "person.city")?,
            state: need(state, "person.state")?,
            date_time: need(date_time, "person.dateTime")?,
            extra: need(extra, "person.extra")?,
            seq,
        })
    }

    fn auction(&mut self, seq: u64) -> Result<Auction, String> {
        let (mut id, mut initial_bid, mut reserve, mut seller, mut category) =
            (None, None, None, None, None);
        let (mut date_time, mut expires) = (None, None);
        let (mut item_name, mut description, mut extra) = (None, None, None);
        let mut next = 0;
        if self.open_object("`{` or null for auction")? {
            loop {
                match self.field(&AUCTION_FIELDS, &AUCTION_KEYS, &mut next)? {
                    Some(0) => set(&mut id, "auction.id", |f| self.int_field(f))?,
                    Some(1) => set(&mut item_name, "auction.itemName", |f| self.owned(f))?,
                    Some(2) => set(&mut description, "auction.description", |f| self.owned(f))?,
                    Some(3) => set(&mut initial_bid, "auction.initialBid", |f| {
                        self.int_field(f)
                    })?,
                    Some(4) => set(&mut reserve, "auction.reserve", |f| self.int_field(f))?,
                    Some(5) => set(&mut date_time, "auction.dateTime", |f| self.time_field(f))?,
                    Some(6) => set(&mut expires, "auction.expires", |f| self.time_field(f))?,
                    Some(7) => set(&mut seller, "auction.seller", |f| self.int_field(f))?,
                    Some(8) => set(&mut category, "auction.category", |f| self.int_field(f))?,
                    Some(_) => set(&mut extra, "auction.extra", |f| self.owned(f))?,
                    None => self.skip_value(2)?,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        Ok(Auction {
            id: need(id, "auction.id")?,
            item_name: need(item_name, "auction.itemName")?,
            description: need(description, "auction.description")?,
            initial_bid: need(initial_bid, "auction.initialBid")?,
            reserve: need(reserve, "auction.reserve")?,
            date_time: need(date_time, "auction.dateTime")?,
            expires: need(expires, "auction.expires")?,
            seller: need(seller, "auction.seller")?,
            category: need(category, "auction.category")?,
            extra: need(extra, "auction.extra")?,
            seq,
        })
    }

    fn bid(&mut self, seq: u64) -> Result<Bid, String> {
        let (mut auction, mut bidder, mut price, mut date_time) = (None, None, None, None);
        let (mut channel, mut url, mut extra) = (None, None, None);
        let mut next = 0;
        if self.open_object("`{` or null for bid")? {
            loop {
                match self.field(&BID_FIELDS, &BID_KEYS, &mut next)? {
                    Some(0) => set(&mut auction, "bid.auction", |f| self.int_field(f))?,
                    Some(1) => set(&mut bidder, "bid.bidder", |f| self.int_field(f))?,
                    Some(2) => set(&mut price, "bid.price", |f| self.int_field(f))?,
                    Some(3) => set(&mut channel, "bid.channel", |f| self.owned(f))?,
                    Some(4) => set(&mut url, "bid.url", |f| self.owned(f))?,
                    Some(5) => set(&mut date_time, "bid.dateTime", |f| self.time_field(f))?,
                    Some(_) => set(&mut extra, "bid.extra", |f| self.owned(f))?,
                    None => self.skip_value(2)?,
                }
                if !self.next_member()? {
                    break;
                }
            }
        }
        Ok(Bid {
            auction: need(auction, "bid.auction")?,
            bidder: need(bidder, "bid.bidder")?,
            price: need(price, "bid.price")?,
            channel: need(channel, "bid.channel")?,
            url: need(url, "bid.url")?,
            date_time: need(date_time, "bid.dateTime")?,
            extra: need(extra, "bid.extra")?,
            seq,
        })
    }

    fn owned(&mut self, field: &str) -> Result<String, String> {
        self.str_field(field).map(Cow::into_owned)
    }
}

fn out_of_range(field: &str, text: &str) -> String {
    format!(
        "{field}: {text} is outside BIGINT ({}..={})",
        i64::MIN,
        i64::MAX
    )
}

/// A byte that ends a run of plain string content.
fn is_stop(c: u8) -> bool {
    (c == b'"') | (c == b'\\') | (c < 0x20)
}

/// The first quote, backslash or control character in `b`. One pass in
/// 16-byte blocks: on x86_64 each block is tested with SSE2 (part of the
/// architecture's baseline, so no run-time check) and the mask of stop
/// bytes gives the first one's place directly; elsewhere the test is
/// written so that the compiler vectorises it, and only the block holding a
/// stop byte is searched byte by byte. The short tail goes byte by byte.
fn find_stop(b: &[u8]) -> Option<usize> {
    const BLOCK: usize = 16;
    let mut at = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8,
            _mm_or_si128, _mm_set1_epi8,
        };
        // SAFETY: SSE2 is in every x86_64 CPU; each load reads the 16
        // bytes at `at`, which lie inside `b` (at + 16 <= len), unaligned.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let control_max = _mm_set1_epi8(0x1f);
            while at + BLOCK <= b.len() {
                let v = _mm_loadu_si128(b.as_ptr().add(at) as *const __m128i);
                // c < 0x20 exactly when max(c, 0x1f) == 0x1f (unsigned).
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, control_max), control_max);
                let stops = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                    control,
                );
                let mask = _mm_movemask_epi8(stops) as u32;
                if mask != 0 {
                    return Some(at + mask.trailing_zeros() as usize);
                }
                at += BLOCK;
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    while at + BLOCK <= b.len() {
        let block = &b[at..at + BLOCK];
        if block.iter().fold(false, |any, &c| any | is_stop(c)) {
            return block.iter().position(|&c| is_stop(c)).map(|i| at + i);
        }
        at += BLOCK;
    }
    b[at..].iter().position(|&c| is_stop(c)).map(|i| at + i)
}

/// `"name":` as a little-endian 16-byte word and the mask of its bytes, for
/// the one-comparison key match in `Parser::field`. A name longer than 13
/// bytes would not fit: that fails the build, since the tables are consts.
const fn key_pattern(name: &str) -> (u128, u128) {
    let n = name.as_bytes();
    assert!(
        n.len() <= 13,
        "field name too long for a 16-byte key pattern"
    );
    let mut word = [0u8; 16];
    let mut mask = [0u8; 16];
    word[0] = b'"';
    let mut i = 0;
    while i < n.len() {
        word[i + 1] = n[i];
        i += 1;
    }
    word[n.len() + 1] = b'"';
    word[n.len() + 2] = b':';
    let mut m = 0;
    while m < n.len() + 3 {
        mask[m] = 0xff;
        m += 1;
    }
    (u128::from_le_bytes(word), u128::from_le_bytes(mask))
}

/// The key patterns of `names`, in their order.
const fn key_patterns<const N: usize>(names: [&str; N]) -> [(u128, u128); N] {
    let mut out = [(0, 0); N];
    let mut i = 0;
    while i < N {
        out[i] = key_pattern(names[i]);
        i += 1;
    }
    out
}

/// The fields of each nested row, in the order the writer puts them.
const PERSON_FIELDS: [&str; 8] = [
    "id",
    "name",
    "emailAddress",
    "creditCard",
    "city",
    "state",
    "dateTime",
    "extra",
];
const AUCTION_FIELDS: [&str; 10] = [
    "id",
    "itemName",
    "description",
    "initialBid",
    "reserve",
    "dateTime",
    "expires",
    "seller",
    "category",
    "extra",
];
const BID_FIELDS: [&str; 7] = [
    "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
];
const EVENT_FIELDS: [&str; 4] = ["event_type", "person", "auction", "bid"];
const PERSON_KEYS: [(u128, u128); 8] = key_patterns(PERSON_FIELDS);
const AUCTION_KEYS: [(u128, u128); 10] = key_patterns(AUCTION_FIELDS);
const BID_KEYS: [(u128, u128); 7] = key_patterns(BID_FIELDS);
const EVENT_KEYS: [(u128, u128); 4] = key_patterns(EVENT_FIELDS);

/// A top-level key seen for the second time is an error.
fn once<T>(slot: &Option<T>, field: &str) -> Result<(), String> {
    match slot {
        Some(_) => Err(format!("duplicate field {field}")),
        None => Ok(()),
    }
}

/// Fills `slot` with the value `read` parses, once.
fn set<T>(
    slot: &mut Option<T>,
    field: &str,
    read: impl FnOnce(&str) -> Result<T, String>,
) -> Result<(), String> {
    once(slot, field)?;
    *slot = Some(read(field)?);
    Ok(())
}

fn need<T>(slot: Option<T>, field: &str) -> Result<T, String> {
    slot.ok_or_else(|| format!("missing field {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The block scan finds the same first stop byte as a byte-by-byte
        /// one, wherever it falls relative to the 16-byte blocks.
        #[test]
        fn find_stop_is_the_first_stop_byte(
            bytes in proptest::collection::vec(
                prop_oneof![
                    8 => 0x20u8..=0xff,
                    1 => Just(b'"'),
                    1 => Just(b'\\'),
                    1 => 0u8..0x20,
                ],
                0..80,
            ),
            plain in 0usize..70,
        ) {
            // A run of plain bytes first, so that the stop moves across blocks.
            let mut b = vec![b'a'; plain];
            b.extend_from_slice(&bytes);
            let naive = b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
            prop_assert_eq!(find_stop(&b), naive);
        }
    }

    const BID: &str = r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1000,"bidder":1001,"price":1500,"channel":"Google","url":"https://x/y","dateTime":"2015-07-15 00:00:00.123","extra":"e"}}"#;

    fn bid_with_price(price: &str) -> String {
        BID.replace("\"price\":1500", &format!("\"price\":{price}"))
    }

    fn price_of(line: &str) -> Result<i64, String> {
        match parse_event(line.as_bytes(), 0)? {
            Event::Bid(b) => Ok(b.price),
            other => panic!("not a bid: {other:?}"),
        }
    }

    #[test]
    fn bigint_extremes_are_exact_and_beyond_is_refused_with_the_field() {
        for v in [0, 1, -1, 1 << 62, i64::MAX, i64::MIN, 10_i64.pow(16)] {
            assert_eq!(price_of(&bid_with_price(&v.to_string())), Ok(v));
        }
        for text in [
            "9223372036854775808",
            "-9223372036854775809",
            "1e16",
            "1.5",
            "99999999999999999999999",
        ] {
            let err = price_of(&bid_with_price(text)).unwrap_err();
            assert!(err.starts_with("bid.price: "), "{text}: {err}");
            assert!(err.contains(text), "{text}: {err}");
        }
        assert!(price_of(&bid_with_price("\"7\""))
            .unwrap_err()
            .contains("bid.price"));
        assert!(price_of(&bid_with_price("null"))
            .unwrap_err()
            .contains("bid.price is null"));
        assert!(price_of(&bid_with_price("-"))
            .unwrap_err()
            .contains("invalid number"));
        assert!(price_of(&bid_with_price("012"))
            .unwrap_err()
            .contains("invalid number"));
    }

    #[test]
    fn keys_in_any_order_unknown_keys_and_escapes() {
        let line = r#" { "bid" : {"extra":"a\"b\\c\u00e9\ud83d\ude00\n","dateTime":"2015-07-15 00:00:00.000","url":"u","channel":"c","price":5,"bidder":6,"auction":7,"zz":[1,{"q":[true,false,null]},-2.5e3]}, "event_type": 2, "other": {"x": "y"} } "#;
        let Event::Bid(b) = parse_event(line.as_bytes(), 42).unwrap() else {
            panic!()
        };
        assert_eq!((b.auction, b.bidder, b.price, b.seq), (7, 6, 5, 42));
        assert_eq!(b.extra, "a\"b\\c\u{e9}\u{1f600}\n");
    }

    #[test]
    fn malformed_lines_say_what_and_where() {
        let cases = [
            ("", "line ends"),
            ("{", "line ends"),
            (r#"{"event_type":2,"bid":{"auction":"#, "line ends"),
            (r#"{"event_type":2}"#, "`bid` is null or absent"),
            (r#"{"event_type":7,"bid":null}"#, "event_type 7"),
            (
                r#"{"event_type":2,"event_type":2}"#,
                "duplicate field event_type",
            ),
            (
                &BID.replace("\"bidder\":1001,", ""),
                "missing field bid.bidder",
            ),
            (
                &BID.replace("\"bidder\":1001", "\"bidder\":1001,\"bidder\":2"),
                "duplicate field bid.bidder",
            ),
            (
                &BID.replace("2015-07-15 00:00:00.123", "yesterday"),
                "bid.dateTime: bad timestamp",
            ),
            (
                &BID.replace("\"Google\"", "\"Goo\u{1}gle\""),
                "control character",
            ),
            (
                &BID.replace("\"Google\"", "\"Goo\\xgle\""),
                "invalid escape",
            ),
            (
                &BID.replace("\"Google\"", "\"\\ud800\""),
                "unpaired surrogate",
            ),
            (&format!("{BID} x"), "trailing characters"),
            (
                &BID.replace("\"person\":null", "\"person\":{\"id\":1}"),
                "missing field person.name",
            ),
        ];
        for (line, needle) in cases {
            let err = parse_event(line.as_bytes(), 0).unwrap_err();
            assert!(err.contains(needle), "{line}: {err}");
        }
        let err = parse_event(b"{\"event_type\":2,\"bid\":\xff}", 0).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let deep = format!(
            "{{\"event_type\":2,\"x\":{}{}}}",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert!(parse_event(deep.as_bytes(), 0)
            .unwrap_err()
            .contains("nested deeper"));
    }
}
