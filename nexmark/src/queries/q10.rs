//! q10, log to file system: every bid with its `dt` (`yyyy-MM-dd`) and `hm`
//! (`HH:mm`) partition columns. The runner writes the rows into CSV files
//! partitioned by `dt` and `hm` (see `runner::sink`), as the suite's
//! filesystem sink does.

use super::common::{bids, day_number, format_day, format_minute, insert, minute_of_day};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q10-bids").map("q10-partition", |b| {
        let dt = format_day(day_number(b.date_time));
        let hm = format_minute(minute_of_day(b.date_time));
        insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::int(b.price),
            Value::Time(b.date_time),
            Value::Str(b.extra),
            Value::Str(dt),
            Value::Str(hm),
        ])
    })
}
