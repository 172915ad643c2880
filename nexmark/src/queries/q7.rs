//! q7, highest bid: the bids priced at the maximum of a 10 s tumbling
//! window, where the join condition `dateTime BETWEEN window_end - 10 s AND
//! window_end` is inclusive at both ends: a bid exactly at a window's end
//! is compared with that window's maximum too (and with its own window's).
//!
//! One keyed step per window end: the window's running maximum and the
//! bids that may still equal it (those priced at least at the running
//! maximum); a timer at the window end, when every bid up to it is in,
//! emits the ones at the maximum.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::common::{bid5, bids, insert};
use super::Built;
use crate::model::{Bid, Event};

const SIZE: i64 = 10_000;

/// Per window end: `(max price of the window's own bids, candidates)`.
type Candidates = (Option<i64>, Vec<Bid>);

struct HighestBid;

impl KeyedProcessFunction<i64, (i64, Bid), Candidates, Bid> for HighestBid {
    fn process(
        &mut self,
        end: &i64,
        (_, bid): (i64, Bid),
        state: &mut Option<Candidates>,
        ctx: &mut Context<'_, Bid>,
    ) {
        let (max, candidates) = state.get_or_insert_with(|| {
            ctx.register_timer(*end);
            (None, Vec::new())
        });
        if bid.date_time < *end && max.is_none_or(|m| bid.price > m) {
            *max = Some(bid.price);
            candidates.retain(|c| c.price >= bid.price);
        }
        if max.is_none_or(|m| bid.price >= m) {
            candidates.push(bid);
        }
    }

    fn on_timer(
        &mut self,
        _end: &i64,
        _time: i64,
        state: &mut Option<Candidates>,
        ctx: &mut Context<'_, Bid>,
    ) {
        if let Some((Some(max), candidates)) = state.take() {
            for c in candidates.into_iter().filter(|c| c.price == max) {
                ctx.emit(c);
            }
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q7-bids")
        .flat_map("q7-window-ends", |b: Bid| {
            let end = b.date_time.div_euclid(SIZE) * SIZE + SIZE;
            let at_end = (b.date_time.rem_euclid(SIZE) == 0).then(|| (b.date_time, b.clone()));
            std::iter::once((end, b)).chain(at_end)
        })
        .with_timestamps(|(_, b): &(i64, Bid)| b.date_time)
        .key_by(|(end, _): &(i64, Bid)| *end)
        .process("q7-max", || HighestBid)
        .map("q7-rows", |b| insert(bid5(b)))
}
