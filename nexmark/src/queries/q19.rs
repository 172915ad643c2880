//! q19, top 10 prices per auction: `ROW_NUMBER() OVER (PARTITION BY auction
//! ORDER BY price DESC) <= 10`, an updating result with the rank. Equal
//! prices go to the earlier bid, then the smaller `(bidder, channel, url,
//! extra)`, so that the result does not depend on arrival order.

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
        .top_n("q19-top10", 10, |b: &Bid| {
            (
                b.price,
                Reverse(b.date_time),
                Reverse(b.bidder),
                Reverse(b.channel.clone()),
                Reverse(b.url.clone()),
                Reverse(b.extra.clone()),
            )
        })
        .map("q19-rows", |c: Change<(u64, u32, Bid)>| {
            let (_, rank, bid) = c.row;
            let mut row = bid_row(&bid);
            row.push(Value::Int(i64::from(rank)));
            change(c.kind, Row(row))
        })
}
