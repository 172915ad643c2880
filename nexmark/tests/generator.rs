//! Behaviour of the generator and the event files across modules: the
//! properties of the suite's generator that must not drift, determinism, and
//! the JSON round trip.

use std::collections::{BTreeMap, HashSet};

use riverbed_nexmark::json::encode_event;
use riverbed_nexmark::{
    Error, Event, EventReader, EventType, EventWriter, Generator, GeneratorConfig,
    FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID,
};

fn default_generator() -> Generator {
    Generator::new(GeneratorConfig::default()).unwrap()
}

#[test]
fn event_kinds_follow_the_proportions() {
    let generator = default_generator();
    let mut counts = BTreeMap::new();
    for n in 0..50_000u64 {
        let expected = match n % 50 {
            0 => EventType::Person,
            1..=3 => EventType::Auction,
            _ => EventType::Bid,
        };
        assert_eq!(generator.event_type(n), expected, "event {n}");
        if n < 5_000 {
            assert_eq!(generator.event(n).event_type(), expected, "event {n}");
        }
        *counts.entry(expected).or_insert(0) += 1;
    }
    assert_eq!(counts[&EventType::Person], 1_000);
    assert_eq!(counts[&EventType::Auction], 3_000);
    assert_eq!(counts[&EventType::Bid], 46_000);
}

#[test]
fn first_ids_are_the_suites() {
    let generator = default_generator();
    let Event::Person(first_person) = generator.event(0) else {
        panic!("event 0 is a person")
    };
    assert_eq!(first_person.id, FIRST_PERSON_ID);
    assert_eq!(FIRST_PERSON_ID, 1000);
    let auction_ids: Vec<i64> = (1..=3)
        .map(|n| match generator.event(n) {
            Event::Auction(a) => a.id,
            other => panic!("event {n} is an auction, got {other:?}"),
        })
        .collect();
    assert_eq!(auction_ids, [1000, 1001, 1002]);
    assert_eq!(FIRST_AUCTION_ID, 1000);
    let Event::Person(second_person) = generator.event(50) else {
        panic!("event 50 is a person")
    };
    assert_eq!(second_person.id, 1001);
    let Event::Auction(fourth_auction) = generator.event(51) else {
        panic!("event 51 is an auction")
    };
    assert_eq!(fourth_auction.id, 1003);
}

/// Walks the stream in order and checks every reference against what exists
/// so far: ids are dense, and references stay within the active windows plus
/// the leads of the suite (10 people, 10 auctions).
#[test]
fn ids_and_references_stay_in_their_windows() {
    let generator = default_generator();
    let config = generator.config().clone();
    let active_people = i64::from(config.num_active_people);
    let in_flight = i64::from(config.num_in_flight_auctions);
    let (mut people, mut auctions) = (0i64, 0i64);
    for event in generator.events(0..300_000) {
        // The newest ids so far (events 0 and 1 create the first of each).
        let newest_person = FIRST_PERSON_ID + people.max(1) - 1;
        let newest_auction = FIRST_AUCTION_ID + auctions.max(1) - 1;
        match event {
            Event::Person(p) => {
                assert_eq!(p.id, FIRST_PERSON_ID + people);
                people += 1;
            }
            Event::Auction(a) => {
                assert_eq!(a.id, FIRST_AUCTION_ID + auctions);
                auctions += 1;
                assert!(a.seller <= newest_person + 10, "{a:?}");
                assert!(a.seller + active_people > newest_person, "{a:?}");
                assert!((FIRST_CATEGORY_ID..FIRST_CATEGORY_ID + 5).contains(&a.category));
                assert!((100..=100_000_000).contains(&a.initial_bid), "{a:?}");
                assert!(
                    a.reserve > a.initial_bid && a.reserve <= 200_000_000,
                    "{a:?}"
                );
                assert!(a.expires > a.date_time, "{a:?}");
                // Twice the 166 ms horizon of 100 in-flight auctions.
                assert!(a.expires - a.date_time <= 332, "{a:?}");
            }
            Event::Bid(b) => {
                assert!(b.auction <= newest_auction + 10, "{b:?}");
                assert!(b.auction + in_flight >= newest_auction, "{b:?}");
                assert!(b.auction >= FIRST_AUCTION_ID);
                assert!(b.bidder <= newest_person + 10, "{b:?}");
                assert!(b.bidder + active_people > newest_person, "{b:?}");
                assert!(b.bidder >= FIRST_PERSON_ID);
                assert!((100..=100_000_000).contains(&b.price), "{b:?}");
            }
        }
    }
    assert_eq!((people, auctions), (6_000, 18_000));
}

#[test]
fn bids_come_through_channels_with_fixed_urls() {
    let generator = default_generator();
    let mut url_of = BTreeMap::new();
    let mut hot = 0;
    let mut bids = 0;
    for event in generator.events(0..100_000) {
        let Event::Bid(b) = event else { continue };
        bids += 1;
        if ["Google", "Facebook", "Baidu", "Apple"].contains(&b.channel.as_str()) {
            hot += 1;
        } else {
            let number: u64 = b.channel.strip_prefix("channel-").unwrap().parse().unwrap();
            assert!(number < 10_000);
        }
        assert!(b.url.starts_with("https://www.nexmark.com/"), "{}", b.url);
        assert!(b.url.contains("/item.htm?query=1"), "{}", b.url);
        let previous = url_of.insert(b.channel.clone(), b.url.clone());
        assert!(previous.is_none_or(|url| url == b.url), "{}", b.channel);
    }
    let share = f64::from(hot) / f64::from(bids);
    assert!((share - 0.5).abs() < 0.01, "{share}");
}

#[test]
fn timestamps_follow_the_rate() {
    let generator = default_generator();
    let base = generator.config().base_time_ms;
    assert_eq!(base, 1_436_918_400_000); // 2015-07-15 00:00:00 UTC
    for n in (0..1_000_000u64).step_by(7_919).chain([1, 9, 10, 11]) {
        let expected = base + (n / 10) as i64;
        assert_eq!(generator.timestamp(n), expected, "event {n}");
        assert_eq!(generator.watermark(n), expected, "event {n}");
        assert_eq!(generator.event(n).timestamp(), expected, "event {n}");
    }
    let fast = Generator::new(GeneratorConfig {
        first_event_rate: 1_000_000,
        ..GeneratorConfig::default()
    })
    .unwrap();
    assert_eq!(fast.event(12_345).timestamp(), base + 12);
}

#[test]
fn out_of_order_groups_shuffle_within_the_group() {
    let generator = Generator::new(GeneratorConfig {
        out_of_order_group_size: 100,
        ..GeneratorConfig::default()
    })
    .unwrap();
    let events: Vec<Event> = generator.events(0..10_000).collect();
    let ids: HashSet<u64> = (0..10_000).map(|n| generator.event_id(n)).collect();
    assert_eq!(ids.len(), 10_000);
    assert!(ids.iter().all(|&id| id < 10_000));
    let mut out_of_order = 0;
    for (n, event) in events.iter().enumerate() {
        let n = n as u64;
        // The kind and the timestamp follow the id, not the position.
        assert_eq!(event.event_type(), generator.event_type(n));
        assert_eq!(
            event.timestamp(),
            generator
                .config()
                .timestamp_for_event(generator.event_id(n))
        );
        // The watermark after n never passes a later event.
        let watermark = generator.watermark(n);
        assert!(events[n as usize..]
            .iter()
            .take(300)
            .all(|e| e.timestamp() >= watermark));
        if n > 0 && event.timestamp() < events[n as usize - 1].timestamp() {
            out_of_order += 1;
        }
    }
    assert!(out_of_order > 1_000, "{out_of_order}");
}

#[test]
fn extra_sizes_average_to_the_configured_sizes() {
    let generator = default_generator();
    let config = generator.config().clone();
    let mut sums = [0f64; 3];
    let mut counts = [0f64; 3];
    for event in generator.events(0..200_000) {
        // The suite's own size accounting: 8 bytes per number.
        let (kind, size) = match &event {
            Event::Person(p) => (
                0,
                8 + p.name.len()
                    + p.email_address.len()
                    + p.credit_card.len()
                    + p.city.len()
                    + p.state.len()
                    + p.extra.len(),
            ),
            Event::Auction(a) => (
                1,
                8 + a.item_name.len() + a.description.len() + 40 + a.extra.len(),
            ),
            Event::Bid(b) => (2, 32 + b.extra.len()),
        };
        sums[kind] += size as f64;
        counts[kind] += 1.0;
    }
    let targets = [
        config.avg_person_byte_size,
        config.avg_auction_byte_size,
        config.avg_bid_byte_size,
    ];
    for kind in 0..3 {
        let mean = sums[kind] / counts[kind];
        let target = f64::from(targets[kind]);
        assert!(
            (mean - target).abs() < 2.0,
            "kind {kind}: mean {mean}, target {target}"
        );
    }
}

#[test]
fn events_depend_only_on_config_and_number() {
    let a = default_generator();
    let b = default_generator();
    for n in (0..100_000u64).step_by(37) {
        assert_eq!(a.event(n), b.event(n), "event {n}");
    }
    let from_iterator: Vec<Event> = a.events(5_000..5_200).collect();
    for (k, event) in from_iterator.iter().enumerate() {
        assert_eq!(*event, a.event(5_000 + k as u64));
    }
    // Backwards, and from another thread, gives the same events.
    let backwards: Vec<Event> = (5_000..5_200).rev().map(|n| b.event(n)).collect();
    assert!(backwards.iter().rev().eq(from_iterator.iter()));
    let moved = a.events(5_000..5_200);
    let threaded = std::thread::spawn(move || moved.collect::<Vec<_>>())
        .join()
        .unwrap();
    assert_eq!(threaded, from_iterator);

    let other_seed = Generator::new(GeneratorConfig {
        seed: 1,
        ..GeneratorConfig::default()
    })
    .unwrap();
    let differing = (0..100)
        .filter(|&n| other_seed.event(n) != a.event(n))
        .count();
    assert_eq!(differing, 100);
}

#[test]
fn split_covers_every_event_once() {
    let generator = default_generator();
    let range = 1_003..4_321;
    for parallelism in [1u64, 2, 3, 7] {
        let mut seen = BTreeMap::new();
        for subtask in 0..parallelism {
            let mut share = generator
                .split(subtask, parallelism, range.clone())
                .unwrap();
            let expected_len = share.remaining();
            let mut len = 0;
            while let Some(n) = share.next_event_number() {
                assert_eq!(n % parallelism, subtask);
                let event = share.next().unwrap();
                assert_eq!(event, generator.event(n));
                assert!(seen.insert(n, subtask).is_none(), "event {n} twice");
                len += 1;
            }
            assert_eq!(len, expected_len);
        }
        let numbers: Vec<u64> = seen.into_keys().collect();
        assert_eq!(
            numbers,
            range.clone().collect::<Vec<_>>(),
            "parallelism {parallelism}"
        );
    }
}

#[test]
fn generated_events_round_trip_through_json() {
    let generator = default_generator();
    let events: Vec<Event> = generator.events(0..20_000).collect();
    let mut writer = EventWriter::new(Vec::new());
    writer.write_all(&events).unwrap();
    let bytes = writer.finish().unwrap();
    let text = std::str::from_utf8(&bytes).unwrap();
    assert_eq!(text.lines().count(), events.len());
    assert!(text.starts_with(r#"{"event_type":0,"person":{"id":1000,"name":""#));
    assert!(text.contains(r#""dateTime":"2015-07-15 00:00:00.000""#));
    let read: Vec<Event> = EventReader::new(&bytes[..])
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(read, events);

    let dir = std::env::temp_dir().join(format!("riverbed-nexmark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("events.jsonl");
    let mut file = riverbed_nexmark::json::create_file(&path).unwrap();
    file.write_all(&events[..500]).unwrap();
    file.finish().unwrap();
    let from_file: Vec<Event> = riverbed_nexmark::json::open_file(&path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_file, events[..500]);
    std::fs::remove_dir_all(&dir).unwrap();
    match riverbed_nexmark::json::open_file(dir.join("missing.jsonl")) {
        Err(Error::Io { path, .. }) => assert!(path.ends_with("missing.jsonl")),
        other => panic!(
            "expected an I/O error naming the file, got {:?}",
            other.err()
        ),
    }
}

/// Replaces line `bad_line` (1-based) of a good file by `bad` and expects the
/// reader to fail on exactly that line with a reason containing `reason`.
fn assert_error_on_line(bad: &[u8], reason: &str) {
    let generator = default_generator();
    let bad_line = 4;
    let mut bytes = Vec::new();
    for n in 0..6u64 {
        if n + 1 == bad_line {
            bytes.extend_from_slice(bad);
            bytes.push(b'\n');
        } else {
            encode_event(&generator.event(n), &mut bytes).unwrap();
        }
    }
    let mut reader = EventReader::new(&bytes[..]);
    for _ in 1..bad_line {
        reader.read_event().unwrap().unwrap();
    }
    match reader.read_event() {
        Err(Error::Json {
            line, reason: got, ..
        }) => {
            assert_eq!(line, bad_line, "{got}");
            assert!(got.contains(reason), "expected {reason:?} in {got:?}");
            let message = Error::Json {
                file: None,
                line,
                reason: got,
            }
            .to_string();
            assert!(message.contains("line 4"), "{message}");
        }
        other => panic!(
            "expected a JSON error for {:?}, got {other:?}",
            String::from_utf8_lossy(bad)
        ),
    }
    // The reader goes on with the next lines.
    assert_eq!(reader.count(), 2);
}

#[test]
fn reader_errors_name_the_line_and_the_fault() {
    let good_bid = {
        let mut line = Vec::new();
        encode_event(&default_generator().event(4), &mut line).unwrap();
        line.pop();
        String::from_utf8(line).unwrap()
    };
    assert!(good_bid.contains(r#""price":"#));
    let without_price = {
        let start = good_bid.find(r#""price":"#).unwrap();
        let end = start + good_bid[start..].find(',').unwrap() + 1;
        format!("{}{}", &good_bid[..start], &good_bid[end..])
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"{\"event_type\":2,".to_vec(), "malformed JSON"),
        (b"not json".to_vec(), "malformed JSON"),
        (without_price.into_bytes(), "missing field bid.price"),
        (
            good_bid
                .replacen("2015-07-15", "2015-13-15", 1)
                .into_bytes(),
            "bid.dateTime: bad timestamp",
        ),
        (
            good_bid
                .replacen("\"event_type\":2", "\"event_type\":1", 1)
                .into_bytes(),
            "event_type 1 (auction) but `auction` is null",
        ),
        (
            good_bid
                .replacen("\"event_type\":2", "\"event_type\":7", 1)
                .into_bytes(),
            "event_type 7 is not",
        ),
        (
            good_bid
                .replacen("\"person\":null", "\"person\":{}", 1)
                .into_bytes(),
            "missing field person.id",
        ),
        (
            good_bid
                .replacen("\"price\":", "\"price\":\"x\",\"p\":", 1)
                .into_bytes(),
            "bid.price: expected an integer (BIGINT), found a string",
        ),
        (
            good_bid
                .replacen("\"extra\":\"", "\"extra\":\"\u{0}", 1)
                .into_bytes(),
            "control character",
        ),
        (
            b"{\"event_type\":2,\"bid\":null} \xff".to_vec(),
            "not UTF-8",
        ),
        (b"[]".to_vec(), "malformed JSON: expected `{`"),
    ];
    for (bad, reason) in cases {
        assert_error_on_line(&bad, reason);
    }
}
