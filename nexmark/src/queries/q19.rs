//! q19, top 10 prices per auction: `ROW_NUMBER() OVER (PARTITION BY auction
//! ORDER BY price DESC) <= 10`, an updating result with the rank. Flink's
//! append-only top-N ranks rows with equal prices in arrival order (a later
//! one goes after, and is the first to fall out); here arrival order is the
//! event order (`seq`), so the result is Flink's for the input's order,
//! whatever the parallelism.

use std::cmp::Reverse;

use riverbed_compute::{Change, DataStream};

use super::common::{bids, change};
use super::q18::bid_row;
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q19-bids")
        .key_by(|b: &Bid| b.auction)
        .top_n("q19-top10", 10, |b: &Bid| (b.price, Reverse(b.seq)))
        .map("q19-rows", |c: Change<(i64, u32, Bid)>| {
            let (_, rank, bid) = c.row;
            let mut row = bid_row(&bid);
            row.push(Value::Int(i64::from(rank)));
            change(c.kind, Row(row))
        })
}
