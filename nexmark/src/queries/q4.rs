//! q4, average price per category: the average over a category's auctions
//! of each auction's highest bid placed while it was open.
//!
//! Two keyed steps, as Flink's plan has: per auction the running maximum
//! (an updating `(category, max)` changelog), then per category the sum and
//! count of those maxima, applying retractions.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Change, DataStream, RowKind};

use super::auction_bids::{auction_bids, AuctionOrBid};
use super::common::change;
use super::Built;
use crate::model::Event;
use crate::row::{Row, Value};

/// `(auction's (dateTime, expires, category) once seen, max valid price,
/// (time, price) of bids waiting for the auction)`.
type Max = (Option<(i64, i64, u64)>, Option<u64>, Vec<(i64, u64)>);

struct AuctionMax;

impl KeyedProcessFunction<u64, AuctionOrBid, Max, Change<(u64, u64)>> for AuctionMax {
    fn process(
        &mut self,
        _id: &u64,
        input: AuctionOrBid,
        state: &mut Option<Max>,
        ctx: &mut Context<'_, Change<(u64, u64)>>,
    ) {
        let (auction, max, waiting) = state.get_or_insert_with(|| (None, None, Vec::new()));
        let bids = match input {
            AuctionOrBid::Auction(a) => {
                *auction = Some((a.date_time, a.expires, a.category));
                std::mem::take(waiting)
            }
            AuctionOrBid::Bid(b) => {
                if auction.is_none() {
                    waiting.push((b.date_time, b.price));
                    return;
                }
                vec![(b.date_time, b.price)]
            }
        };
        let (start, expires, category) = auction.expect("the auction is known here");
        let best = bids
            .iter()
            .filter(|(t, _)| start <= *t && *t <= expires)
            .map(|&(_, p)| p)
            .max();
        match (best, *max) {
            (Some(p), None) => {
                ctx.emit(Change {
                    kind: RowKind::Insert,
                    row: (category, p),
                });
                *max = Some(p);
            }
            (Some(p), Some(old)) if p > old => {
                ctx.emit(Change {
                    kind: RowKind::UpdateBefore,
                    row: (category, old),
                });
                ctx.emit(Change {
                    kind: RowKind::UpdateAfter,
                    row: (category, p),
                });
                *max = Some(p);
            }
            _ => {}
        }
    }
}

struct CategoryAverage;

fn avg_row(category: u64, sum: i64, count: i64) -> Row {
    Row(vec![Value::int(category), Value::Int(sum / count)])
}

impl KeyedProcessFunction<u64, Change<(u64, u64)>, (i64, i64), Change<Row>> for CategoryAverage {
    fn process(
        &mut self,
        category: &u64,
        c: Change<(u64, u64)>,
        state: &mut Option<(i64, i64)>,
        ctx: &mut Context<'_, Change<Row>>,
    ) {
        let (sum, count) = state.unwrap_or((0, 0));
        let price = c.row.1 as i64;
        let (new_sum, new_count) = match c.kind {
            RowKind::Insert | RowKind::UpdateAfter => (sum + price, count + 1),
            RowKind::UpdateBefore | RowKind::Delete => (sum - price, count - 1),
        };
        match (count, new_count) {
            (0, 0) => {}
            (0, _) => ctx.emit(change(
                RowKind::Insert,
                avg_row(*category, new_sum, new_count),
            )),
            (_, 0) => ctx.emit(change(RowKind::Delete, avg_row(*category, sum, count))),
            _ if sum / count != new_sum / new_count => {
                ctx.emit(change(
                    RowKind::UpdateBefore,
                    avg_row(*category, sum, count),
                ));
                ctx.emit(change(
                    RowKind::UpdateAfter,
                    avg_row(*category, new_sum, new_count),
                ));
            }
            _ => {}
        }
        *state = (new_count != 0).then_some((new_sum, new_count));
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    auction_bids(events, "q4-inputs")
        .process("q4-auction-max", || AuctionMax)
        .key_by(|c: &Change<(u64, u64)>| c.row.0)
        .process("q4-category-avg", || CategoryAverage)
}
