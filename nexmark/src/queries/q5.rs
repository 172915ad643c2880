//! q5, hot items: per hopping window (10 s, sliding by 2 s) the auctions
//! with the most bids.
//!
//! Two keyed steps: a window count per auction, then per window (keyed by
//! its start) the running maximum and the auctions at it. The counts of a
//! window all arrive when the watermark passes its end, so a timer at the
//! window's last millisecond emits the winners once they are all in.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Aggregate, DataStream, WindowResult, Windows};

use super::common::{bids, insert};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::Value;

/// Per window: `(max count, auctions with it, window end)`.
type Best = (u64, Vec<i64>, i64);

struct Winners;

impl KeyedProcessFunction<i64, WindowResult<i64, u64>, Best, (i64, u64)> for Winners {
    fn process(
        &mut self,
        _start: &i64,
        w: WindowResult<i64, u64>,
        best: &mut Option<Best>,
        ctx: &mut Context<'_, (i64, u64)>,
    ) {
        match best {
            Some((max, auctions, _)) => {
                if w.value == *max {
                    auctions.push(w.key);
                } else if w.value > *max {
                    *max = w.value;
                    *auctions = vec![w.key];
                }
            }
            None => {
                *best = Some((w.value, vec![w.key], w.end));
                ctx.register_timer(w.end - 1);
            }
        }
    }

    fn on_timer(
        &mut self,
        _start: &i64,
        _time: i64,
        best: &mut Option<Best>,
        ctx: &mut Context<'_, (i64, u64)>,
    ) {
        if let Some((max, auctions, _)) = best.take() {
            for a in auctions {
                ctx.emit((a, max));
            }
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q5-bids")
        // Only the auction and time travel on: no strings through the
        // exchange or the window.
        .map("q5-project", |b: Bid| (b.auction, b.date_time))
        .with_timestamps(|r: &(i64, i64)| r.1)
        .key_by(|r: &(i64, i64)| r.0)
        .window(
            "q5-counts",
            Windows::hopping(10_000, 2_000),
            Aggregate::count,
        )
        .with_timestamps(|w: &WindowResult<i64, u64>| w.end - 1)
        .key_by(|w: &WindowResult<i64, u64>| w.start)
        .process("q5-max", || Winners)
        .map("q5-rows", |(a, n)| {
            insert(vec![Value::int(a), Value::count(n)])
        })
}
