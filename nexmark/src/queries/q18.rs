//! q18, last bid: per `(bidder, auction)` the bid with the latest
//! `dateTime` (`ROW_NUMBER() OVER (... ORDER BY dateTime DESC) <= 1`), as an
//! updating result. Flink runs it as keep-last deduplication on the row
//! time, which replaces the kept row by one with an equal `dateTime` that
//! arrives later; here "later" is the event order (`seq`), so the result
//! is Flink's for the input's order, whatever the parallelism.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Change, DataStream, RowKind};

use super::common::{bids, change};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};

/// Whether `a` replaces `b`: a later `dateTime`, or the same one later in
/// the input.
pub fn later(a: &Bid, b: &Bid) -> bool {
    (a.date_time, a.seq) > (b.date_time, b.seq)
}

pub(crate) fn bid_row(b: &Bid) -> Vec<Value> {
    vec![
        Value::int(b.auction),
        Value::int(b.bidder),
        Value::int(b.price),
        Value::Str(b.channel.clone()),
        Value::Str(b.url.clone()),
        Value::Time(b.date_time),
        Value::Str(b.extra.clone()),
    ]
}

struct LastBid;

impl KeyedProcessFunction<(i64, i64), Bid, Bid, Change<Row>> for LastBid {
    fn process(
        &mut self,
        _key: &(i64, i64),
        bid: Bid,
        last: &mut Option<Bid>,
        ctx: &mut Context<'_, Change<Row>>,
    ) {
        match last {
            Some(old) if !later(&bid, old) => {}
            Some(old) => {
                ctx.emit(change(RowKind::UpdateBefore, Row(bid_row(old))));
                ctx.emit(change(RowKind::UpdateAfter, Row(bid_row(&bid))));
                *old = bid;
            }
            None => {
                ctx.emit(change(RowKind::Insert, Row(bid_row(&bid))));
                *last = Some(bid);
            }
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q18-bids")
        .key_by(|b: &Bid| (b.bidder, b.auction))
        .process("q18-last", || LastBid)
}
