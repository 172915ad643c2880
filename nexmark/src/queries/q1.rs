//! q1, currency conversion: every bid with its price in euros,
//! `0.908 * price` as an exact `DECIMAL(_, 3)` (`908 * price` thousandths).

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q1-bids").map("q1-convert", |b| {
        insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::euros(b.price),
            Value::Time(b.date_time),
            Value::Str(b.extra),
        ])
    })
}
