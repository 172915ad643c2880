//! q14, calculation: bids priced between 1 M and 50 M euro-cents (after
//! `* 0.908`), with a day/night class of their hour and the number of `c`s
//! in `extra` (the suite's `count_char` function).

use super::common::{bids, insert};
use super::Built;
use crate::model::Event;
use crate::row::Value;
use riverbed_compute::DataStream;

/// `bidTimeType` of an hour of the day (UTC).
pub fn time_type(hour: i64) -> &'static str {
    if (8..=18).contains(&hour) {
        "dayTime"
    } else if hour <= 6 || hour >= 20 {
        "nightTime"
    } else {
        "otherTime"
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    bids(events, "q14-bids").flat_map("q14-calc", |b| {
        // 0.908 * price in thousandths (exact, in i128), compared with the
        // bounds * 1000.
        let euros = 908 * i128::from(b.price);
        if euros <= 1_000_000_000 || euros >= 50_000_000_000 {
            return None;
        }
        let hour = b.date_time.rem_euclid(86_400_000) / 3_600_000;
        let c_counts = b.extra.bytes().filter(|&c| c == b'c').count() as i64;
        Some(insert(vec![
            Value::int(b.auction),
            Value::int(b.bidder),
            Value::Dec3(euros),
            Value::str(time_type(hour)),
            Value::Time(b.date_time),
            Value::Str(b.extra),
            Value::Int(c_counts),
        ]))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn hours_seven_and_nineteen_are_other_time() {
        assert_eq!(super::time_type(7), "otherTime");
        assert_eq!(super::time_type(19), "otherTime");
        assert_eq!(super::time_type(8), "dayTime");
        assert_eq!(super::time_type(6), "nightTime");
        assert_eq!(super::time_type(20), "nightTime");
    }
}
