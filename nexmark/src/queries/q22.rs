//! q22, URL directories: the third to fifth `/`-separated fields of each
//! bid's URL (`SPLIT_INDEX`, counting from 0; NULL past the end).

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q22-bids").map("q22-split", |b| {
        let mut parts = b.url.split('/').skip(3);
        let mut next = || parts.next().map_or(Value::Null, Value::str);
        let (d1, d2, d3) = (next(), next(), next());
        insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::int(b.price),
            Value::Str(b.channel),
            d1,
            d2,
            d3,
        ])
    })
}
