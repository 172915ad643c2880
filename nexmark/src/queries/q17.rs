//! q17, auction statistics: an updating aggregate per `(auction, day)`:
//! bid counts per price rank, min, max, average and sum of prices.

use super::common::{bids, change, day_number, format_day, price_rank};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};
use riverbed_compute::{Aggregate, DataStream};

/// `[count, rank1, rank2, rank3, min, max, sum]`.
type Acc = (u64, u64, u64, u64, u64, u64, u64);

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q17-bids")
        .key_by(|b: &Bid| (b.auction, day_number(b.date_time)))
        .aggregate("q17-stats", || {
            Aggregate::new(
                || vec![0u64, 0, 0, 0, u64::MAX, 0, 0],
                |acc: &mut Vec<u64>, b: &Bid| {
                    acc[0] += 1;
                    acc[1 + price_rank(b.price)] += 1;
                    acc[4] = acc[4].min(b.price);
                    acc[5] = acc[5].max(b.price);
                    acc[6] += b.price;
                },
                |acc: &Vec<u64>| -> Acc {
                    (acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6])
                },
            )
        })
        .map("q17-rows", |c| {
            let ((auction, day), (n, r1, r2, r3, min, max, sum)) = c.row;
            let row = Row(vec![
                Value::int(auction),
                Value::Str(format_day(day)),
                Value::int(n),
                Value::int(r1),
                Value::int(r2),
                Value::int(r3),
                Value::int(min),
                Value::int(max),
                Value::int(sum / n),
                Value::int(sum),
            ]);
            change(c.kind, row)
        })
}
