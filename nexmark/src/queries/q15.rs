//! q15, bidding statistics per day: bid counts and distinct bidders and
//! auctions, per price rank (see `bid_stats`).

use super::bid_stats::{stats, SLOTS};
use super::common::{bids, change, day_number, format_day};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    stats(
        bids(events, "q15-bids"),
        "q15",
        |b: &Bid| day_number(b.date_time),
        |_| 0,
    )
    .map("q15-rows", |c| {
        let (day, totals) = c.row;
        let mut row = vec![Value::Str(format_day(day))];
        row.extend(totals[..SLOTS - 1].iter().map(|&v| Value::Int(v)));
        change(c.kind, Row(row))
    })
}
