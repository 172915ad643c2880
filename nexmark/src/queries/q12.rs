//! q12, processing-time windows: bids per bidder in tumbling 10 s windows of
//! the runtime clock (the wall clock in a run, a manual clock in tests).

use super::common::{bids, insert};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::Value;
use riverbed_compute::{Aggregate, DataStream, Windows};

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q12-bids")
        .map("q12-project", |b: Bid| (b.bidder, b.date_time))
        .with_timestamps(|r: &(i64, i64)| r.1)
        .key_by(|r: &(i64, i64)| r.0)
        .window_processing_time("q12-windows", Windows::tumbling(10_000), Aggregate::count)
        .map("q12-rows", |w| {
            insert(vec![
                Value::int(w.key),
                Value::count(w.value),
                Value::Time(w.start),
                Value::Time(w.end),
            ])
        })
}
