//! q17, auction statistics: an updating aggregate per `(auction, day)`:
//! bid counts per price rank, min, max, average and sum of prices. The sum
//! is exact (`i128`) and printed as the integer it is; the average, from the
//! exact sum, always fits `BIGINT`.

use super::common::{bids, change, day_number, format_day, price_rank};
use super::Built;
use crate::model::{Bid, Event};
use crate::row::{Row, Value};
use riverbed_compute::{Aggregate, DataStream};

/// `([count, rank1, rank2, rank3, min, max], sum)`.
type Acc = (Vec<i64>, i128);

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q17-bids")
        .key_by(|b: &Bid| (b.auction, day_number(b.date_time)))
        .aggregate("q17-stats", || {
            Aggregate::new(
                || (vec![0i64, 0, 0, 0, i64::MAX, i64::MIN], 0i128),
                |(acc, sum): &mut Acc, b: &Bid| {
                    acc[0] += 1;
                    acc[1 + price_rank(b.price)] += 1;
                    acc[4] = acc[4].min(b.price);
                    acc[5] = acc[5].max(b.price);
                    *sum += i128::from(b.price);
                },
                |acc: &Acc| -> Acc { acc.clone() },
            )
        })
        .map("q17-rows", |c| {
            let ((auction, day), (acc, sum)) = c.row;
            let n = acc[0];
            let row = Row(vec![
                Value::int(auction),
                Value::Str(format_day(day)),
                Value::int(n),
                Value::int(acc[1]),
                Value::int(acc[2]),
                Value::int(acc[3]),
                Value::int(acc[4]),
                Value::int(acc[5]),
                Value::int((sum / i128::from(n)) as i64),
                Value::Sum(sum),
            ]);
            change(c.kind, row)
        })
}
