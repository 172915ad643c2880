//! Pieces several queries share: taking one event kind out of the stream,
//! the suite's price ranks, UTC date formats and row constructors.

use riverbed_compute::{Change, DataStream, RowKind};

use crate::model::{Auction, Bid, Event};
use crate::row::{Row, Value};

/// The bids of the event stream, with their `dateTime` as event time.
pub fn bids(events: DataStream<Event>, name: &str) -> DataStream<Bid> {
    events
        .flat_map(name, |e| match e {
            Event::Bid(b) => Some(b),
            _ => None,
        })
        .with_timestamps(|b: &Bid| b.date_time)
}

/// An insert of `row`.
pub fn insert(row: Vec<Value>) -> Change<Row> {
    Change {
        kind: RowKind::Insert,
        row: Row(row),
    }
}

/// `row` with changelog kind `kind`.
pub fn change(kind: RowKind, row: Row) -> Change<Row> {
    Change { kind, row }
}

/// The suite's price rank of q15–q17: 1 below 10 000, 2 below 1 000 000,
/// else 3 (as index 0, 1, 2).
pub fn price_rank(price: i64) -> usize {
    if price < 10_000 {
        0
    } else if price < 1_000_000 {
        1
    } else {
        2
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since the epoch of `ms` (UTC).
pub fn day_number(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

/// `DATE_FORMAT(t, 'yyyy-MM-dd')` of a day number (UTC).
pub use crate::timestamp::format_date as format_day;

/// Minutes since midnight of `ms` (UTC).
pub fn minute_of_day(ms: i64) -> i64 {
    ms.rem_euclid(MS_PER_DAY) / 60_000
}

/// `DATE_FORMAT(t, 'HH:mm')` of a minute of the day.
pub fn format_minute(minute: i64) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The five bid columns of q0 and q7.
pub fn bid5(b: Bid) -> Vec<Value> {
    vec![
        Value::int(b.auction),
        Value::int(b.bidder),
        Value::int(b.price),
        Value::Time(b.date_time),
        Value::Str(b.extra),
    ]
}

/// The auction columns after its id, as q9, q20 and q23 select them:
/// `itemName, description, initialBid, reserve, dateTime, expires, seller,
/// category, extra`, appended to `row`.
pub fn push_auction(row: &mut Vec<Value>, a: Auction) {
    row.extend([
        Value::Str(a.item_name),
        Value::Str(a.description),
        Value::int(a.initial_bid),
        Value::int(a.reserve),
        Value::Time(a.date_time),
        Value::Time(a.expires),
        Value::int(a.seller),
        Value::int(a.category),
        Value::Str(a.extra),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_minutes_are_utc() {
        // 2015-07-15 00:00:00 UTC, the generator's default base time.
        let base = 1_436_918_400_000;
        assert_eq!(format_day(day_number(base)), "2015-07-15");
        assert_eq!(format_day(day_number(base - 1)), "2015-07-14");
        assert_eq!(format_day(0), "1970-01-01");
        assert_eq!(format_day(day_number(951_782_400_000)), "2000-02-29");
        let t = base + (13 * 60 + 7) * 60_000 + 59_999;
        assert_eq!(format_minute(minute_of_day(t)), "13:07");
    }

    #[test]
    fn price_ranks_split_at_the_suite_bounds() {
        assert_eq!(price_rank(9_999), 0);
        assert_eq!(price_rank(10_000), 1);
        assert_eq!(price_rank(999_999), 1);
        assert_eq!(price_rank(1_000_000), 2);
    }
}
