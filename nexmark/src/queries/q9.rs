//! q9, winning bids: for each auction, its best bid among those placed
//! while it was open (`ORDER BY price DESC, dateTime ASC`, first row), as
//! an updating result. Flink's top-1 keeps the first of rows that tie on
//! both and drops the later ones; here "first" is the event order (`seq`),
//! so the result is Flink's for the input's order, whatever the
//! parallelism.
//!
//! Keyed by auction id: the key keeps the auction and its best bid so far as
//! its value, and the bids that arrived before the auction did as its list
//! (one store entry per bid). A better bid retracts the previous winner's
//! row.

use std::cmp::Reverse;

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Change, DataStream, RowKind};

use super::auction_bids::{auction_bids, in_time, AuctionOrBid};
use super::common::{change, push_auction};
use super::Built;
use crate::model::{Auction, Bid, Event};
use crate::row::{Row, Value};

/// `(auction once seen, best bid)`; bids waiting for the auction are the
/// key's list.
type Winner = (Option<Auction>, Option<Bid>);

/// Whether `a` beats `b`: a higher price, an earlier `dateTime`, an earlier
/// place in the input.
pub fn better(a: &Bid, b: &Bid) -> bool {
    (Reverse(a.price), a.date_time, a.seq) < (Reverse(b.price), b.date_time, b.seq)
}

fn row(a: &Auction, b: &Bid) -> Row {
    let mut row = vec![Value::int(a.id)];
    push_auction(&mut row, a.clone());
    row.extend([
        Value::int(b.auction),
        Value::int(b.bidder),
        Value::int(b.price),
        Value::Time(b.date_time),
        Value::Str(b.extra.clone()),
    ]);
    Row(row)
}

struct WinningBid;

/// Makes the best in-time bid of `candidates` the winner if it beats the
/// current one, retracting the old winner's row.
fn consider(
    state: &mut Option<Winner>,
    candidates: Vec<Bid>,
    ctx: &mut Context<'_, Change<Row>, Bid>,
) {
    let Some((Some(a), best)) = state else {
        return;
    };
    let mut winner: Option<Bid> = None;
    for b in candidates {
        let beats_best = best.as_ref().is_none_or(|w| better(&b, w));
        let beats_winner = winner.as_ref().is_none_or(|w| better(&b, w));
        if in_time(a, b.date_time) && beats_best && beats_winner {
            winner = Some(b);
        }
    }
    if let Some(w) = winner {
        match best.replace(w) {
            Some(old) => {
                ctx.emit(change(RowKind::UpdateBefore, row(a, &old)));
                ctx.emit(change(
                    RowKind::UpdateAfter,
                    row(a, best.as_ref().expect("set")),
                ));
            }
            None => ctx.emit(change(RowKind::Insert, row(a, best.as_ref().expect("set")))),
        }
    }
}

impl KeyedProcessFunction<i64, AuctionOrBid, Winner, Change<Row>, Bid> for WinningBid {
    fn process(
        &mut self,
        _id: &i64,
        input: AuctionOrBid,
        state: &mut Option<Winner>,
        ctx: &mut Context<'_, Change<Row>, Bid>,
    ) {
        match input {
            AuctionOrBid::Auction(a) => {
                state.get_or_insert((None, None)).0 = Some(a);
                ctx.drain_list();
            }
            AuctionOrBid::Bid(b) => {
                if state.as_ref().is_none_or(|s| s.0.is_none()) {
                    ctx.add_to_list(b);
                } else {
                    consider(state, vec![b], ctx);
                }
            }
        }
    }

    fn on_list(
        &mut self,
        _id: &i64,
        waiting: Vec<Bid>,
        state: &mut Option<Winner>,
        ctx: &mut Context<'_, Change<Row>, Bid>,
    ) {
        consider(state, waiting, ctx);
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    auction_bids(events, "q9-inputs").process("q9-winners", || WinningBid)
}
