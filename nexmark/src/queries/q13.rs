//! q13, bounded side input join: each bid looks up `auction % 10000` in a
//! side table loaded from a file before the job starts (the suite's
//! `side_input` CSV table, a lookup join); bids without a match are dropped.

use std::collections::HashMap;
use std::sync::Arc;

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>, side: Arc<HashMap<i64, String>>) -> Built {
    bids(events, "q13-bids").flat_map("q13-lookup", move |b| {
        let value = side.get(&(b.auction % 10_000))?.clone();
        Some(insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::int(b.price),
            Value::Time(b.date_time),
            Value::Str(value),
        ]))
    })
}
