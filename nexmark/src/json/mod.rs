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
//! - Ids, prices, `category`: JSON integers in `BIGINT`
//!   (`-9223372036854775808..=9223372036854775807`); a fraction, an exponent
//!   or a value outside that range is an error naming the field.
//! - `dateTime`, `expires`: strings `YYYY-MM-DD HH:MM:SS.sss`, UTC, years
//!   0000-9999 (see [`crate::timestamp`]).
//! - Strings: JSON strings; the writer escapes `"`, `\` and control
//!   characters and writes everything else as is.
//! - Keys are written in the order above. The reader accepts any key order,
//!   ignores unknown keys, treats an absent nested row like `null`, and skips
//!   blank lines (they still count for line numbers).
//! - A line holds at most [`DEFAULT_MAX_LINE_BYTES`] (16 MiB) unless the
//!   reader is given another limit; a longer one is an error naming its line,
//!   found without reading more of it than the limit.
//!
//! The layout is the suite's table, so it carries no version field of its
//! own; a different layout gets a different reader.
//!
//! # Errors
//!
//! The reader's errors name the 1-based line and what is wrong: malformed
//! JSON (with the column), a missing, repeated or mistyped field, a number
//! outside `BIGINT`, a bad timestamp (with the field), an unknown
//! `event_type`, an `event_type` that does not match the nested object, or a
//! line over the limit.
//!
//! Modules: [`write`] (the writer), [`parse`] (one line into an event),
//! [`read`] (a sequential reader of lines).

pub mod parse;
pub mod read;
pub mod write;

pub use read::{decode_event, open_file, EventReader, DEFAULT_MAX_LINE_BYTES};
pub(crate) use write::push_u64;
pub use write::{create_file, encode_event, EventWriter};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use crate::model::{Auction, Bid, Event, Person};
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
            seq: 0,
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
            seq: 0,
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
            seq: 1,
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
        let mut fourth = bid();
        if let Event::Bid(b) = &mut fourth {
            b.seq = 3;
        }
        assert_eq!(reader.read_event().unwrap(), Some(fourth));
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
        let mut second = bid();
        if let Event::Bid(b) = &mut second {
            b.seq = 1;
        }
        assert_eq!(events, vec![bid(), second]);
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
            any::<i64>(),
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
                        seq: 0,
                    })
                },
            );
        let auction = (
            (any::<i64>(), text(), text(), any::<i64>(), any::<i64>()),
            (time(), time(), any::<i64>(), any::<i64>(), text()),
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
                        seq: 0,
                    })
                },
            );
        let bid = (
            any::<i64>(),
            any::<i64>(),
            any::<i64>(),
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
                    seq: 0,
                })
            });
        prop_oneof![person, auction, bid]
    }

    #[test]
    fn a_line_over_the_limit_fails_naming_it_without_reading_on() {
        let mut text = Vec::new();
        encode_event(&bid(), &mut text).unwrap();
        let first = text.len() - 1;
        text.extend(std::iter::repeat_n(b'x', 10_000));
        text.push(b'\n');
        encode_event(&bid(), &mut text).unwrap();
        // Exactly the limit passes the length check (and fails parsing).
        let mut reader = EventReader::new(&text[..]).with_max_line_bytes(first);
        assert!(reader.read_event().unwrap().is_some());
        match reader.read_event() {
            Err(Error::Json {
                line: 2, reason, ..
            }) => {
                assert!(reason.contains("longer than"), "{reason}")
            }
            other => panic!("expected line 2 too long, got {other:?}"),
        }
        // Endless input without newlines: an error once the limit is passed.
        let endless = std::io::BufReader::new(std::io::repeat(0));
        let mut reader = EventReader::new(endless).with_max_line_bytes(1 << 20);
        assert!(matches!(
            reader.read_event(),
            Err(Error::Json { line: 1, .. })
        ));
        assert!(reader.read_event().unwrap().is_none());
    }

    proptest! {
        #[test]
        fn any_events_round_trip(mut events in proptest::collection::vec(event(), 0..20)) {
            // The reader numbers events by their line.
            for (i, e) in events.iter_mut().enumerate() {
                match e {
                    Event::Person(p) => p.seq = i as u64,
                    Event::Auction(a) => a.seq = i as u64,
                    Event::Bid(b) => b.seq = i as u64,
                }
            }
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
