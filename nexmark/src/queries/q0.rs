//! q0, pass-through: every bid, unchanged. Measures the source, the
//! exchange-free pipeline and the sink.

use super::common::{bid5, bids, insert};
use super::Built;
use crate::model::Event;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q0-bids").map("q0-project", |b| insert(bid5(b)))
}
