//! q2, selection: `(auction, price)` of the bids on every 123rd auction.

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q2-bids").flat_map("q2-select", |b| {
        (b.auction % 123 == 0).then(|| insert(vec![Value::int(b.auction), Value::int(b.price)]))
    })
}
