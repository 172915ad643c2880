//! q11, user sessions: bids per bidder in session windows with a 10 s gap.

use super::common::{bids, insert};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::Value;
use riverbed_compute::{Aggregate, DataStream};

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q11-bids")
        .map("q11-project", |b: Bid| (b.bidder, b.date_time))
        .with_timestamps(|r: &(i64, i64)| r.1)
        .key_by(|r: &(i64, i64)| r.0)
        .session_window("q11-sessions", 10_000, Aggregate::count, |a, b| *a += *b)
        .map("q11-rows", |w| {
            insert(vec![
                Value::int(w.key),
                Value::count(w.value),
                Value::Time(w.start),
                Value::Time(w.end),
            ])
        })
}
