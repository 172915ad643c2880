//! q16, channel statistics: q15's counts per `(channel, day)`, with the
//! latest `HH:mm` of the group.

use super::bid_stats::{stats, SLOTS};
use super::common::{bids, change, day_number, format_day, format_minute, minute_of_day};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    stats(
        bids(events, "q16-bids"),
        "q16",
        |b: &Bid| (b.channel.clone(), day_number(b.date_time)),
        |b: &Bid| minute_of_day(b.date_time),
    )
    .map("q16-rows", |c| {
        let ((channel, day), totals) = c.row;
        let mut row = vec![
            Value::Str(channel),
            Value::Str(format_day(day)),
            Value::Str(format_minute(totals[SLOTS - 1])),
        ];
        row.extend(totals[..SLOTS - 1].iter().map(|&v| Value::Int(v)));
        change(c.kind, Row(row))
    })
}
