//! q6, average selling price by seller: when an auction closes, the average
//! winning price of the seller's last closed auctions (this one and up to
//! 10 before it: `ROWS BETWEEN 10 PRECEDING AND CURRENT ROW`).
//!
//! Flink cannot run the suite's SQL (its OVER window does not take the
//! retractions of the winner query); this is our reading, stated in the
//! module docs of `queries`: an auction closes when event time passes its
//! `expires`, and a seller's auctions count in order of `(expires, id)`.
//! Step one keeps each auction's best valid price and emits it at close
//! (an event-time timer at `expires`); step two, keyed by seller, orders
//! the closes of each watermark step by a timer and keeps the last 11
//! prices.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::auction_bids::{auction_bids, fold_max, AuctionMax, AuctionOrBid};
use super::common::insert;
use super::Built;
use crate::model::Event;
use crate::row::Value;

/// Auctions averaged per row: the current one and 10 preceding.
const WINDOW: usize = 11;

/// A closed auction: `(seller, expires, id, winning price)`.
type Closed = (i64, i64, i64, i64);

struct CloseAuction;

impl KeyedProcessFunction<i64, AuctionOrBid, AuctionMax, Closed> for CloseAuction {
    fn process(
        &mut self,
        _id: &i64,
        input: AuctionOrBid,
        state: &mut Option<AuctionMax>,
        ctx: &mut Context<'_, Closed>,
    ) {
        if fold_max(state, input, |a| a.seller).auction_arrived {
            let expires = state.as_ref().and_then(|s| s.0).expect("just arrived").1;
            ctx.register_timer(expires);
        }
    }

    fn on_timer(
        &mut self,
        id: &i64,
        _time: i64,
        state: &mut Option<AuctionMax>,
        ctx: &mut Context<'_, Closed>,
    ) {
        if let Some((Some((_, expires, seller)), max, _)) = state {
            if let Some(p) = max.take() {
                ctx.emit((*seller, *expires, *id, p));
            }
        }
    }
}

/// `(closed auctions not yet averaged, the last WINDOW winning prices)`.
type Recent = (Vec<(i64, i64, i64)>, Vec<i64>);

struct SellerAverage;

impl KeyedProcessFunction<i64, Closed, Recent, (i64, i64)> for SellerAverage {
    fn process(
        &mut self,
        _seller: &i64,
        (_, expires, id, price): Closed,
        state: &mut Option<Recent>,
        ctx: &mut Context<'_, (i64, i64)>,
    ) {
        let (pending, _) = state.get_or_insert_with(|| (Vec::new(), Vec::new()));
        pending.push((expires, id, price));
        ctx.register_timer(expires);
    }

    fn on_timer(
        &mut self,
        seller: &i64,
        time: i64,
        state: &mut Option<Recent>,
        ctx: &mut Context<'_, (i64, i64)>,
    ) {
        let Some((pending, recent)) = state else {
            return;
        };
        pending.sort_unstable();
        let due = pending.partition_point(|&(e, _, _)| e <= time);
        for (_, _, price) in pending.drain(..due) {
            if recent.len() == WINDOW {
                recent.remove(0);
            }
            recent.push(price);
            // Exact: 11 prices can pass i64; their average cannot.
            let sum: i128 = recent.iter().map(|&p| i128::from(p)).sum();
            let avg = (sum / recent.len() as i128) as i64;
            ctx.emit((*seller, avg));
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    auction_bids(events, "q6-inputs")
        .process("q6-close", || CloseAuction)
        .key_by(|c: &Closed| c.0)
        .process("q6-seller-avg", || SellerAverage)
        .map("q6-rows", |(seller, avg)| {
            insert(vec![Value::int(seller), Value::int(avg)])
        })
}
