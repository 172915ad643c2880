//! Reference evaluation of the Nexmark queries q0..q23: small plain-Rust
//! functions over a slice of events that the engine's results are compared
//! against.
//!
//! Written from the contract in `nexmark/src/queries/mod.rs` ("The contract
//! of each query") and the suite's SQL, never from the engine code, so that
//! the two are independent. Each query is one function returning the rows of
//! its final table in any order; [`evaluate`] sorts them. Joins index one
//! side by key and loop over the other; windows are assigned by arithmetic;
//! top-N and deduplication pick with an explicit sort key. Nothing relies on
//! the stream order of the events.
//!
//! Where the contract leaves a choice open, the choice is written at the
//! query, taking what Flink SQL does with the suite's SQL.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use riverbed_nexmark::{Auction, Bid, Event, Person, Row, Value};

const SECOND: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;

/// The final table of `query` over `events` (insert-only queries: every output row;
/// updating queries: the rows the final table holds), sorted.
///
/// `None` only for q12, whose windows are in processing time. `side_input` is
/// q13's `key,value` file as a map. Panics on a name that is not `q0`..`q23`.
pub fn evaluate(
    query: &str,
    events: &[Event],
    side_input: &BTreeMap<i64, String>,
) -> Option<Vec<Row>> {
    let mut rows = match query {
        "q0" => q0(events),
        "q1" => q1(events),
        "q2" => q2(events),
        "q3" => q3(events),
        "q4" => q4(events),
        "q5" => q5(events),
        "q6" => q6(events),
        "q7" => q7(events),
        "q8" => q8(events),
        "q9" => q9(events),
        "q10" => q10(events),
        "q11" => q11(events),
        "q12" => return None,
        "q13" => q13(events, side_input),
        "q14" => q14(events),
        "q15" => q15(events),
        "q16" => q16(events),
        "q17" => q17(events),
        "q18" => q18(events),
        "q19" => q19(events),
        "q20" => q20(events),
        "q21" => q21(events),
        "q22" => q22(events),
        "q23" => q23(events),
        other => panic!("no reference for query {other:?}: expected q0..q23"),
    };
    rows.sort();
    Some(rows)
}

// ---------------------------------------------------------------------------
// The queries
// ---------------------------------------------------------------------------

/// q0 pass-through: every bid as `(auction, bidder, price, dateTime, extra)`.
fn q0(events: &[Event]) -> Vec<Row> {
    bids(events).map(|b| Row(bid5(b))).collect()
}

/// q1 currency conversion: every bid with `price` as `0.908 * price` (DECIMAL, 3 places).
fn q1(events: &[Event]) -> Vec<Row> {
    bids(events)
        .map(|b| {
            Row(vec![
                int(b.auction),
                int(b.bidder),
                Value::Dec3(euro_thousandths(b.price)),
                time(b.date_time),
                text(&b.extra),
            ])
        })
        .collect()
}

/// q2 selection: `(auction, price)` of the bids with `auction % 123 == 0`.
fn q2(events: &[Event]) -> Vec<Row> {
    bids(events)
        .filter(|b| b.auction % 123 == 0)
        .map(|b| Row(vec![int(b.auction), int(b.price)]))
        .collect()
}

/// q3 local item suggestion: category-10 auctions joined with their OR/ID/CA sellers.
fn q3(events: &[Event]) -> Vec<Row> {
    let sellers = group_by(
        persons(events).filter(|p| ["OR", "ID", "CA"].contains(&p.state.as_str())),
        |p| p.id,
    );
    let mut rows = Vec::new();
    for a in auctions(events).filter(|a| a.category == 10) {
        for p in sellers.get(&a.seller).into_iter().flatten() {
            rows.push(Row(vec![
                text(&p.name),
                text(&p.city),
                text(&p.state),
                int(a.id),
            ]));
        }
    }
    rows
}

/// q4 average price per category: `(category, AVG(final))`, `final` an auction's max in-time bid.
///
/// The inner query groups by `(A.id, A.category)` as the SQL does (the same
/// as by id while auction ids are unique).
fn q4(events: &[Event]) -> Vec<Row> {
    let bids_of = group_by(bids(events), |b| b.auction);
    let mut finals: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for a in auctions(events) {
        if let Some(price) = winning_price(a, &bids_of) {
            let best = finals.entry((a.id, a.category)).or_insert(price);
            *best = (*best).max(price);
        }
    }
    let mut per_category: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for ((_, category), price) in finals {
        per_category.entry(category).or_default().push(price);
    }
    per_category
        .into_iter()
        .map(|(category, prices)| Row(vec![int(category), average(&prices)]))
        .collect()
}

/// q5 hot items: per 10 s window sliding by 2 s, `(auction, num)` of each auction at the max count.
fn q5(events: &[Event]) -> Vec<Row> {
    const SIZE: i64 = 10 * SECOND;
    const SLIDE: i64 = 2 * SECOND;
    // (window start, auction) -> number of bids.
    let mut counts: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for b in bids(events) {
        // The windows [start, start + SIZE) holding the bid: the last one
        // starts at or before it, each earlier one SLIDE before that.
        let last = align(b.date_time, SLIDE);
        for start in (last - SIZE + SLIDE..=last).step_by(SLIDE as usize) {
            debug_assert!(start <= b.date_time && b.date_time < start + SIZE);
            *counts.entry((start, b.auction)).or_default() += 1;
        }
    }
    let mut max_of_window: BTreeMap<i64, i64> = BTreeMap::new();
    for (&(start, _), &num) in &counts {
        let max = max_of_window.entry(start).or_default();
        *max = (*max).max(num);
    }
    counts
        .iter()
        .filter(|((start, _), num)| **num == max_of_window[start])
        .map(|(&(_, auction), &num)| Row(vec![int(auction), Value::Int(num)]))
        .collect()
}

/// q6 average selling price: per closed auction, AVG of its and <= 10 earlier winning prices.
///
/// Bounded input ends with a final watermark, so every auction closes by the
/// end: all auctions with an in-time bid count, whether or not the stream's
/// time ever passed their `expires`.
fn q6(events: &[Event]) -> Vec<Row> {
    let bids_of = group_by(bids(events), |b| b.auction);
    // seller -> closed auctions as (expires, id, winning price); sorted, in
    // the order they close.
    let mut closed: BTreeMap<i64, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for a in auctions(events) {
        if let Some(price) = winning_price(a, &bids_of) {
            closed
                .entry(a.seller)
                .or_default()
                .push((a.expires, a.id, price));
        }
    }
    let mut rows = Vec::new();
    for (seller, mut sold) in closed {
        sold.sort();
        let prices: Vec<i64> = sold.iter().map(|&(_, _, price)| price).collect();
        for i in 0..prices.len() {
            let window = &prices[i.saturating_sub(10)..=i];
            rows.push(Row(vec![int(seller), average(window)]));
        }
    }
    rows
}

/// q7 highest bid: every bid at the max price of a 10 s window whose `[end - 10 s, end]` holds it.
fn q7(events: &[Event]) -> Vec<Row> {
    const SIZE: i64 = 10 * SECOND;
    // Window end -> max price of the bids in [end - SIZE, end).
    let mut max_of_window: BTreeMap<i64, i64> = BTreeMap::new();
    for b in bids(events) {
        let max = max_of_window
            .entry(align(b.date_time, SIZE) + SIZE)
            .or_default();
        *max = (*max).max(b.price);
    }
    let mut rows = Vec::new();
    for b in bids(events) {
        // end - SIZE <= dateTime <= end  <=>  dateTime <= end <= dateTime + SIZE;
        // a bid exactly at an end can match that window and its own.
        for (_, &max) in max_of_window.range(b.date_time..=b.date_time + SIZE) {
            if b.price == max {
                rows.push(Row(bid5(b)));
            }
        }
    }
    rows
}

/// q8 monitor new users: `(id, name, window start)` of people who register and sell in a window.
///
/// One row per `(id, name, window)`: both sides are grouped as in the SQL, so
/// several registrations or auctions of one id in a window give one row.
fn q8(events: &[Event]) -> Vec<Row> {
    const SIZE: i64 = 10 * SECOND;
    let registered: BTreeSet<(i64, &str, i64)> = persons(events)
        .map(|p| (p.id, p.name.as_str(), align(p.date_time, SIZE)))
        .collect();
    let selling: BTreeSet<(i64, i64)> = auctions(events)
        .map(|a| (a.seller, align(a.date_time, SIZE)))
        .collect();
    registered
        .into_iter()
        .filter(|&(id, _, start)| selling.contains(&(id, start)))
        .map(|(id, name, start)| Row(vec![int(id), text(name), time(start)]))
        .collect()
}

/// q9 winning bids: per auction id, the in-time bid with the highest price, earliest, first.
///
/// Auction events sharing an id: the first in stream order keeps a winner.
fn q9(events: &[Event]) -> Vec<Row> {
    let bids_of = group_by(bids(events), |b| b.auction);
    let mut winners: BTreeMap<i64, (&Auction, &Bid)> = BTreeMap::new();
    for a in auctions(events) {
        for b in bids_of.get(&a.id).into_iter().flatten() {
            if !in_time(a, b) {
                continue;
            }
            let better = match winners.get(&a.id) {
                None => true,
                Some((_, best)) => winning_order(b) < winning_order(best),
            };
            if better {
                winners.insert(a.id, (a, b));
            }
        }
    }
    winners
        .into_values()
        .map(|(a, b)| {
            Row(vec![
                int(a.id),
                text(&a.item_name),
                text(&a.description),
                int(a.initial_bid),
                int(a.reserve),
                time(a.date_time),
                time(a.expires),
                int(a.seller),
                int(a.category),
                text(&a.extra),
                int(b.auction),
                int(b.bidder),
                int(b.price),
                time(b.date_time),
                text(&b.extra),
            ])
        })
        .collect()
}

/// q10 log to file system: every bid with `dt = 'yyyy-MM-dd'` and `hm = 'HH:mm'` (UTC).
fn q10(events: &[Event]) -> Vec<Row> {
    bids(events)
        .map(|b| {
            let mut row = bid5(b);
            row.push(text(&day(b.date_time)));
            row.push(text(&hour_minute(b.date_time)));
            Row(row)
        })
        .collect()
}

/// q11 user sessions: per bidder, `(bidder, count, first time, last time + 10 s)` of each session.
///
/// Choice (pinned by the self-test): bids exactly 10 s apart are in ONE
/// session. Flink gives each row the window `[t, t + gap)` and merges two
/// windows when `TimeWindow.intersects` holds, which is
/// `start <= other.end && end >= other.start` (flink-table-runtime
/// `operators/window/TimeWindow.java`, used by the legacy `SESSION` group
/// window of the suite's SQL): windows that only touch merge too. So a bid
/// joins the session when `t <= last + gap`.
fn q11(events: &[Event]) -> Vec<Row> {
    const GAP: i64 = 10 * SECOND;
    let mut times: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for b in bids(events) {
        times.entry(b.bidder).or_default().push(b.date_time);
    }
    let mut rows = Vec::new();
    for (bidder, mut times) in times {
        times.sort();
        // Sessions as (first, last, count), in time order.
        let mut sessions: Vec<(i64, i64, i64)> = Vec::new();
        for t in times {
            match sessions.last_mut() {
                Some((_, last, count)) if t <= *last + GAP => {
                    *last = t;
                    *count += 1;
                }
                _ => sessions.push((t, t, 1)),
            }
        }
        for (first, last, count) in sessions {
            rows.push(Row(vec![
                int(bidder),
                Value::Int(count),
                time(first),
                time(last + GAP),
            ]));
        }
    }
    rows
}

/// q13 bounded side input join: bids whose `auction % 10000` is a side-input key, with its value.
fn q13(events: &[Event], side_input: &BTreeMap<i64, String>) -> Vec<Row> {
    bids(events)
        .filter_map(|b| {
            let value = side_input.get(&(b.auction % 10_000))?;
            Some(Row(vec![
                int(b.auction),
                int(b.bidder),
                int(b.price),
                time(b.date_time),
                text(value),
            ]))
        })
        .collect()
}

/// q14 calculation: bids with `1_000_000 < 0.908 * price < 50_000_000`, time class, `'c'` count.
fn q14(events: &[Event]) -> Vec<Row> {
    bids(events)
        .filter(|b| {
            let euros = euro_thousandths(b.price);
            1_000_000_000 < euros && euros < 50_000_000_000
        })
        .map(|b| {
            let hour = b.date_time.rem_euclid(MS_PER_DAY) / 3_600_000;
            let class = if (8..=18).contains(&hour) {
                "dayTime"
            } else if hour <= 6 || hour >= 20 {
                "nightTime"
            } else {
                "otherTime"
            };
            let c_counts = b.extra.chars().filter(|&c| c == 'c').count();
            Row(vec![
                int(b.auction),
                int(b.bidder),
                Value::Dec3(euro_thousandths(b.price)),
                text(class),
                time(b.date_time),
                text(&b.extra),
                Value::Int(c_counts as i64),
            ])
        })
        .collect()
}

/// q15 bidding statistics per day: the twelve counts of [`PriceRanks`] per `'yyyy-MM-dd'`.
fn q15(events: &[Event]) -> Vec<Row> {
    let mut groups: BTreeMap<String, PriceRanks> = BTreeMap::new();
    for b in bids(events) {
        groups.entry(day(b.date_time)).or_default().add(b);
    }
    groups
        .into_iter()
        .map(|(day, stats)| {
            let mut row = vec![text(&day)];
            row.extend(stats.counts());
            Row(row)
        })
        .collect()
}

/// q16 channel statistics: per `(channel, day)`, the max `'HH:mm'` and the twelve counts of q15.
fn q16(events: &[Event]) -> Vec<Row> {
    let mut groups: BTreeMap<(&str, String), (String, PriceRanks)> = BTreeMap::new();
    for b in bids(events) {
        let (minute, stats) = groups
            .entry((b.channel.as_str(), day(b.date_time)))
            .or_default();
        // 'HH:mm' strings order as the times do.
        let hm = hour_minute(b.date_time);
        if hm > *minute {
            *minute = hm;
        }
        stats.add(b);
    }
    groups
        .into_iter()
        .map(|((channel, day), (minute, stats))| {
            let mut row = vec![text(channel), text(&day), text(&minute)];
            row.extend(stats.counts());
            Row(row)
        })
        .collect()
}

/// q17 auction statistics: per `(auction, day)`, bid counts by rank and min/max/avg/sum of price
/// (the sum exact, past `i64` if need be).
fn q17(events: &[Event]) -> Vec<Row> {
    let mut groups: BTreeMap<(i64, String), Vec<i64>> = BTreeMap::new();
    for b in bids(events) {
        groups
            .entry((b.auction, day(b.date_time)))
            .or_default()
            .push(b.price);
    }
    groups
        .into_iter()
        .map(|((auction, day), prices)| {
            let in_rank = |rank| prices.iter().filter(|&&p| price_rank(p) == rank).count();
            Row(vec![
                int(auction),
                text(&day),
                Value::Int(prices.len() as i64),
                Value::Int(in_rank(1) as i64),
                Value::Int(in_rank(2) as i64),
                Value::Int(in_rank(3) as i64),
                int(*prices.iter().min().expect("a group has a bid")),
                int(*prices.iter().max().expect("a group has a bid")),
                average(&prices),
                Value::Sum(prices.iter().map(|&p| i128::from(p)).sum()),
            ])
        })
        .collect()
}

/// q18 last bid: per `(bidder, auction)`, the latest; of equal times the later event.
fn q18(events: &[Event]) -> Vec<Row> {
    let mut latest: BTreeMap<(i64, i64), &Bid> = BTreeMap::new();
    for b in bids(events) {
        let key = (b.bidder, b.auction);
        match latest.get(&key) {
            Some(kept) if latest_order(kept) >= latest_order(b) => {}
            _ => {
                latest.insert(key, b);
            }
        }
    }
    latest.into_values().map(|b| Row(bid7(b))).collect()
}

/// Ascending sort key putting the kept bid of q18 last: latest `dateTime`,
/// then latest in the input.
fn latest_order(b: &Bid) -> (i64, u64) {
    (b.date_time, b.seq)
}

/// q19 top 10 prices per auction: highest price, equal prices in input order; rank 1..=10.
fn q19(events: &[Event]) -> Vec<Row> {
    let mut rows = Vec::new();
    for (_, mut of_auction) in group_by(bids(events), |b| b.auction) {
        of_auction.sort_by_key(|&b| (Reverse(b.price), b.seq));
        for (rank, b) in of_auction.into_iter().take(10).enumerate() {
            let mut row = bid7(b);
            row.push(Value::Int(rank as i64 + 1));
            rows.push(Row(row));
        }
    }
    rows
}

/// q20 bids with their auction: join on `bid.auction == auction.id`, auctions of category 10.
fn q20(events: &[Event]) -> Vec<Row> {
    let category_10 = group_by(auctions(events).filter(|a| a.category == 10), |a| a.id);
    let mut rows = Vec::new();
    for b in bids(events) {
        for a in category_10.get(&b.auction).into_iter().flatten() {
            rows.push(Row(vec![
                int(b.auction),
                int(b.bidder),
                int(b.price),
                text(&b.channel),
                text(&b.url),
                time(b.date_time),
                text(&b.extra),
                text(&a.item_name),
                text(&a.description),
                int(a.initial_bid),
                int(a.reserve),
                time(a.date_time),
                time(a.expires),
                int(a.seller),
                int(a.category),
                text(&a.extra),
            ]));
        }
    }
    rows
}

/// q21 channel id: bids of the four named channels (`'0'`..`'3'`) or with a URL `channel_id=`.
///
/// `lower(channel)` is taken as Unicode lower case (`str::to_lowercase`);
/// the four names are ASCII, so only exotic letters could tell Java's and
/// Rust's lower case apart.
fn q21(events: &[Event]) -> Vec<Row> {
    bids(events)
        .filter_map(|b| {
            let channel_id = match b.channel.to_lowercase().as_str() {
                "apple" => "0".to_string(),
                "google" => "1".to_string(),
                "facebook" => "2".to_string(),
                "baidu" => "3".to_string(),
                _ => url_channel_id(&b.url)?.to_string(),
            };
            Some(Row(vec![
                int(b.auction),
                int(b.bidder),
                int(b.price),
                text(&b.channel),
                text(&channel_id),
            ]))
        })
        .collect()
}

/// q22 URL directories: fields 3, 4, 5 of `url` split on `'/'` (empty kept, NULL past the end).
fn q22(events: &[Event]) -> Vec<Row> {
    bids(events)
        .map(|b| {
            let fields: Vec<&str> = b.url.split('/').collect();
            let field = |i: usize| fields.get(i).map_or(Value::Null, |f| text(f));
            Row(vec![
                int(b.auction),
                int(b.bidder),
                int(b.price),
                text(&b.channel),
                field(3),
                field(4),
                field(5),
            ])
        })
        .collect()
}

/// q23 bids of people who also sell: a row per (bid, person of that id, auction of the bidder).
///
/// The SQL's three-way inner join: a bidder who is no known person gives no
/// row, and a bidder with `n` auctions gives `n` rows per bid.
fn q23(events: &[Event]) -> Vec<Row> {
    let people = group_by(persons(events), |p| p.id);
    let sold = group_by(auctions(events), |a| a.seller);
    let mut rows = Vec::new();
    for b in bids(events) {
        for p in people.get(&b.bidder).into_iter().flatten() {
            for a in sold.get(&b.bidder).into_iter().flatten() {
                rows.push(Row(vec![
                    int(b.bidder),
                    int(b.price),
                    text(&b.channel),
                    text(&b.url),
                    text(&b.extra),
                    int(p.id),
                    text(&p.name),
                    text(&p.email_address),
                    text(&p.credit_card),
                    text(&p.city),
                    text(&p.state),
                    text(&p.extra),
                    text(&a.item_name),
                    text(&a.description),
                    int(a.initial_bid),
                    int(a.reserve),
                    time(a.date_time),
                    time(a.expires),
                    int(a.seller),
                    int(a.category),
                    text(&a.extra),
                ]));
            }
        }
    }
    rows
}

// ---------------------------------------------------------------------------
// Rules shared by several queries
// ---------------------------------------------------------------------------

/// Whether a bid counts for an auction in q4, q6 and q9:
/// `auction.dateTime <= bid.dateTime <= auction.expires` (SQL `BETWEEN`, both ends in).
fn in_time(a: &Auction, b: &Bid) -> bool {
    b.auction == a.id && a.date_time <= b.date_time && b.date_time <= a.expires
}

/// The max price of the in-time bids of `a`, if it has any (q4, q6).
fn winning_price(a: &Auction, bids_of: &BTreeMap<i64, Vec<&Bid>>) -> Option<i64> {
    bids_of
        .get(&a.id)?
        .iter()
        .filter(|b| in_time(a, b))
        .map(|b| b.price)
        .max()
}

/// Ascending sort key putting the winning bid of q9 first: highest price,
/// then earliest `dateTime`, then earliest in the input.
fn winning_order(b: &Bid) -> (Reverse<i64>, i64, u64) {
    (Reverse(b.price), b.date_time, b.seq)
}

/// The value of the first match of `(&|^)channel_id=([^&]*)` in `url`, group 2
/// (Flink's `REGEXP_EXTRACT`: Java `Matcher.find`, leftmost match). `^` is the
/// start of the whole text; the value runs to the next `&` and may be empty.
fn url_channel_id(url: &str) -> Option<&str> {
    const KEY: &str = "channel_id=";
    let start = if url.starts_with(KEY) {
        KEY.len()
    } else {
        url.find("&channel_id=")? + 1 + KEY.len()
    };
    let rest = &url[start..];
    Some(rest.split('&').next().unwrap_or(rest))
}

/// q15-q17 price ranks: 1 below 10_000, 2 from 10_000 below 1_000_000, 3 from 1_000_000.
fn price_rank(price: i64) -> usize {
    match price {
        0..=9_999 => 1,
        10_000..=999_999 => 2,
        _ => 3,
    }
}

/// The bids, distinct bidders and distinct auctions of a q15/q16 group, in
/// total (index 0) and per price rank (indexes 1..=3).
#[derive(Default)]
struct PriceRanks {
    bids: [i64; 4],
    bidders: [BTreeSet<i64>; 4],
    auctions: [BTreeSet<i64>; 4],
}

impl PriceRanks {
    fn add(&mut self, b: &Bid) {
        for i in [0, price_rank(b.price)] {
            self.bids[i] += 1;
            self.bidders[i].insert(b.bidder);
            self.auctions[i].insert(b.auction);
        }
    }

    /// `total_bids, rank1_bids, .., rank3_auctions` in the sink's order.
    fn counts(&self) -> Vec<Value> {
        let bids = self.bids.iter().map(|&n| Value::Int(n));
        let bidders = self.bidders.iter().map(|s| Value::Int(s.len() as i64));
        let auctions = self.auctions.iter().map(|s| Value::Int(s.len() as i64));
        bids.chain(bidders).chain(auctions).collect()
    }
}

// ---------------------------------------------------------------------------
// Events, values, time
// ---------------------------------------------------------------------------

fn bids(events: &[Event]) -> impl Iterator<Item = &Bid> + '_ {
    events.iter().filter_map(|e| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

fn auctions(events: &[Event]) -> impl Iterator<Item = &Auction> + '_ {
    events.iter().filter_map(|e| match e {
        Event::Auction(a) => Some(a),
        _ => None,
    })
}

fn persons(events: &[Event]) -> impl Iterator<Item = &Person> + '_ {
    events.iter().filter_map(|e| match e {
        Event::Person(p) => Some(p),
        _ => None,
    })
}

/// The items grouped by `key`, each group in the items' order.
fn group_by<'a, T>(
    items: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> i64,
) -> BTreeMap<i64, Vec<&'a T>> {
    let mut groups: BTreeMap<i64, Vec<&T>> = BTreeMap::new();
    for item in items {
        groups.entry(key(item)).or_default().push(item);
    }
    groups
}

/// `(auction, bidder, price, dateTime, extra)` of a bid (q0, q7, q10).
fn bid5(b: &Bid) -> Vec<Value> {
    vec![
        int(b.auction),
        int(b.bidder),
        int(b.price),
        time(b.date_time),
        text(&b.extra),
    ]
}

/// `(auction, bidder, price, channel, url, dateTime, extra)` of a bid (q18, q19).
fn bid7(b: &Bid) -> Vec<Value> {
    vec![
        int(b.auction),
        int(b.bidder),
        int(b.price),
        text(&b.channel),
        text(&b.url),
        time(b.date_time),
        text(&b.extra),
    ]
}

fn int(v: i64) -> Value {
    Value::Int(v)
}

fn text(s: &str) -> Value {
    Value::Str(s.to_string())
}

fn time(ms: i64) -> Value {
    Value::Time(ms)
}

/// `0.908 * price` in thousandths: `908 * price`, exactly (q1, q14).
fn euro_thousandths(price: i64) -> i128 {
    i128::from(price) * 908
}

/// `AVG` of `BIGINT`s: the exact sum divided by the count, truncated toward zero.
fn average(values: &[i64]) -> Value {
    let sum: i128 = values.iter().map(|&v| i128::from(v)).sum();
    let avg = sum / values.len() as i128;
    Value::Int(i64::try_from(avg).expect("an average of i64 values fits in i64"))
}

/// The start of the `size`-wide window, aligned to the epoch, holding `t`.
fn align(t: i64, size: i64) -> i64 {
    t.div_euclid(size) * size
}

/// `DATE_FORMAT(t, 'yyyy-MM-dd')` in UTC.
fn day(ms: i64) -> String {
    let (year, month, day) = civil_date(ms.div_euclid(MS_PER_DAY));
    format!("{year:04}-{month:02}-{day:02}")
}

/// `DATE_FORMAT(t, 'HH:mm')` in UTC.
fn hour_minute(ms: i64) -> String {
    let in_day = ms.rem_euclid(MS_PER_DAY);
    format!("{:02}:{:02}", in_day / 3_600_000, in_day / 60_000 % 60)
}

/// (year, month, day) of the day `days` after 1970-01-01, found by walking
/// whole years and then whole months: slow, but plainly right.
fn civil_date(days: i64) -> (i64, i64, i64) {
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let year_len = |y: i64| if leap(y) { 366 } else { 365 };
    let (mut year, mut rest) = (1970, days);
    while rest < 0 {
        year -= 1;
        rest += year_len(year);
    }
    while rest >= year_len(year) {
        rest -= year_len(year);
        year += 1;
    }
    let february = if leap(year) { 29 } else { 28 };
    let month_lens = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut month = 1;
    for len in month_lens {
        if rest < len {
            break;
        }
        rest -= len;
        month += 1;
    }
    (year, month, rest + 1)
}
