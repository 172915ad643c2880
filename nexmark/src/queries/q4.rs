//! q4, average price per category: the average over a category's auctions
//! of each auction's highest bid placed while it was open.
//!
//! Two keyed steps, as Flink's plan has: per auction the running maximum
//! (an updating `(category, max)` changelog), then per category the sum and
//! count of those maxima, applying retractions.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Change, DataStream, RowKind};

use super::auction_bids::{auction_bids, fold_max, AuctionMax, AuctionOrBid};
use super::common::change;
use super::Built;
use crate::model::Event;
use crate::row::{Row, Value};

struct MaxPerAuction;

impl KeyedProcessFunction<i64, AuctionOrBid, AuctionMax, Change<(i64, i64)>> for MaxPerAuction {
    fn process(
        &mut self,
        _id: &i64,
        input: AuctionOrBid,
        state: &mut Option<AuctionMax>,
        ctx: &mut Context<'_, Change<(i64, i64)>>,
    ) {
        let Some((before, p)) = fold_max(state, input, |a| a.category).raised else {
            return;
        };
        let category = state
            .as_ref()
            .and_then(|s| s.0)
            .expect("the auction is known")
            .2;
        match before {
            None => ctx.emit(Change {
                kind: RowKind::Insert,
                row: (category, p),
            }),
            Some(old) => {
                ctx.emit(Change {
                    kind: RowKind::UpdateBefore,
                    row: (category, old),
                });
                ctx.emit(Change {
                    kind: RowKind::UpdateAfter,
                    row: (category, p),
                });
            }
        }
    }
}

struct CategoryAverage;

/// `AVG(final)`: the exact sum over the count, truncated toward zero like
/// Flink's `AVG` of `BIGINT`; an average of `BIGINT` values fits `BIGINT`.
fn avg_row(category: i64, sum: i128, count: i64) -> Row {
    Row(vec![Value::int(category), Value::Int(avg(sum, count))])
}

fn avg(sum: i128, count: i64) -> i64 {
    (sum / i128::from(count)) as i64
}

/// Per category: the exact sum of the auctions' maxima, and their count.
impl KeyedProcessFunction<i64, Change<(i64, i64)>, (i128, i64), Change<Row>> for CategoryAverage {
    fn process(
        &mut self,
        category: &i64,
        c: Change<(i64, i64)>,
        state: &mut Option<(i128, i64)>,
        ctx: &mut Context<'_, Change<Row>>,
    ) {
        let (sum, count) = state.unwrap_or((0, 0));
        let price = i128::from(c.row.1);
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
            _ if avg(sum, count) != avg(new_sum, new_count) => {
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
        .process("q4-auction-max", || MaxPerAuction)
        .key_by(|c: &Change<(i64, i64)>| c.row.0)
        .process("q4-category-avg", || CategoryAverage)
}
