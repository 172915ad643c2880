//! Every Nexmark query on the compute layer, q0 to q23.
//!
//! The spec of each query is the suite's SQL (`nexmark/nexmark`, module
//! `nexmark-flink`, `queries/qN.sql`); where it and the older Beam-style
//! description differ, the SQL wins. Each query turns the event stream into
//! a changelog of [`Row`]s whose columns are those of the suite's sink table
//! (listed in [`QUERIES`]). For insert-only queries every change is an
//! insert; for updating ones the *final table* (insert / update-after add a
//! row, update-before / delete remove one) is what Flink SQL's sink would
//! hold at the end of the input.
//!
//! # The contract of each query (what the tests compare)
//! Timestamps are event `dateTime`s (ms, UTC). Windows are aligned to the
//! epoch, `[start, end)`. Bounded input ends with a final watermark, so every
//! window with data fires. `AVG` over `BIGINT` is `BIGINT`: the sum divided
//! by the count, truncated toward zero (Flink's `AVG` on integers).
//! `DATE_FORMAT(t, 'yyyy-MM-dd')` and `'HH:mm'` and `HOUR(t)` are UTC.
//!
//! Numbers are the SQL types: `BIGINT` is `i64`, products with `0.908` are
//! exact `DECIMAL(23, 3)`, `SUM`s are exact (where Flink's `BIGINT` sum would
//! wrap, the true value is printed) and `AVG`s come from exact sums.
//!
//! Ties: where the SQL keeps one of several rows that tie on its `ORDER BY`
//! (q9, q18, q19), Flink decides by arrival order. Here arrival order is the
//! *event order*, each event's `seq` (its number in the generator, its line
//! in the event files), carried with the record, so the tie goes the way it
//! would in Flink reading the input in order, at any parallelism. The other
//! queries keep every tied row (q5, q7) or order by unique keys (q6).
//!
//! - **q0** pass-through: every bid as `(auction, bidder, price, dateTime, extra)`.
//! - **q1** currency: every bid as `(auction, bidder, price * 0.908 [Dec3], dateTime, extra)`.
//! - **q2** selection: `(auction, price)` of bids with `auction % 123 == 0`.
//! - **q3** local item suggestion: inner join of auctions with `category == 10`
//!   and persons with `state` in `OR`, `ID`, `CA` on `seller == id`:
//!   `(name, city, state, auction id)`, one row per matching pair.
//! - **q4** average price per category: for each auction, `final` = the max
//!   price of its bids with `auction.dateTime <= bid.dateTime <= auction.expires`
//!   (auctions without such bids have no row); result
//!   `(category, AVG(final))` over the auctions of each category.
//! - **q5** hot items: hopping windows of 10 s sliding by 2 s over bids; per
//!   window the bid count of each auction; rows `(auction, num)` for every
//!   window and every auction whose count equals the window's maximum count.
//! - **q6** average selling price by seller (Flink cannot run the SQL; this
//!   is our reading of it): an auction *closes* when event time passes its
//!   `expires`; its winning price is the max price of its bids with
//!   `dateTime <= bid.dateTime <= expires`; auctions without such bids are
//!   skipped. Per seller, closed auctions in order of `(expires, id)`; each
//!   adds the row `(seller, AVG of the winning prices of this auction and the
//!   seller's up to 10 previously closed ones)` (`ROWS BETWEEN 10 PRECEDING
//!   AND CURRENT ROW`: up to 11 auctions). `seller` is `BIGINT` here.
//! - **q7** highest bid: tumbling 10 s windows, `maxprice` per window over
//!   the bids in it; rows: every bid `(auction, bidder, price, dateTime,
//!   extra)` and window with `price == maxprice` and
//!   `window_end - 10 s <= dateTime <= window_end` (both ends inclusive, so a
//!   bid exactly at a window end can also match the window before).
//! - **q8** monitor new users: tumbling 10 s windows; rows
//!   `(person id, name, window_start)` for each person whose registration
//!   falls in a window in which the same id (as seller) opened at least one
//!   auction; one row per person and window.
//! - **q9** winning bids: per auction, among its bids with
//!   `auction.dateTime <= bid.dateTime <= auction.expires`, the one with the
//!   highest price, then the earliest `dateTime`, then the earliest in event
//!   order (Flink's top-1 keeps the first row of a tie); row:
//!   `(id, itemName, description, initialBid, reserve, dateTime, expires,
//!   seller, category, extra, auction, bidder, price, bid dateTime, bid extra)`.
//! - **q10** log to file system: every bid as `(auction, bidder, price,
//!   dateTime, extra, dt = 'yyyy-MM-dd', hm = 'HH:mm')`, also written to
//!   CSV files partitioned by `dt` and `hm`.
//! - **q11** user sessions: per bidder, session windows with a 10 s gap over
//!   bid `dateTime`; rows `(bidder, bid count, session start = first bid
//!   time, session end = last bid time + 10 s)`. As in Flink, whose session
//!   windows merge when they overlap *or touch*, a bid exactly 10 s after
//!   the previous one (`t2 == t1 + 10_000`) still joins its session.
//! - **q12** processing-time windows: per bidder, tumbling 10 s windows of
//!   processing time; rows `(bidder, count, window start, window end)`.
//!   Depends on the wall clock: tests check that the counts of each bidder
//!   sum to its number of bids.
//! - **q13** bounded side input join: the side input is a file of
//!   `key,value` lines; every bid whose `auction % 10000` is a key gives
//!   `(auction, bidder, price, dateTime, value)`.
//! - **q14** calculation: bids with `1_000_000 < 0.908 * price < 50_000_000`
//!   as `(auction, bidder, 0.908 * price [Dec3], bidTimeType, dateTime,
//!   extra, c_counts)` where `bidTimeType` is `dayTime` for hours 8..=18,
//!   `nightTime` for hours <= 6 or >= 20, else `otherTime`, and `c_counts`
//!   the number of `'c'` characters in `extra`.
//! - **q15** bidding statistics per day: group by `day`; columns `(day,
//!   total_bids, rank1_bids, rank2_bids, rank3_bids, total_bidders,
//!   rank1_bidders, rank2_bidders, rank3_bidders, total_auctions,
//!   rank1_auctions, rank2_auctions, rank3_auctions)` with rank 1 =
//!   `price < 10_000`, rank 2 = `10_000 <= price < 1_000_000`, rank 3 =
//!   `price >= 1_000_000`; `*_bids` count bids, `*_bidders` / `*_auctions`
//!   count distinct bidder / auction ids among those bids.
//! - **q16** channel statistics: like q15 grouped by `(channel, day)` with
//!   columns `(channel, day, minute = max 'HH:mm' of the group, the twelve
//!   counts of q15)`.
//! - **q17** auction statistics: group by `(auction, day)`: `(auction, day,
//!   total_bids, rank1_bids, rank2_bids, rank3_bids, min_price, max_price,
//!   avg_price, sum_price)`.
//! - **q18** last bid: per `(bidder, auction)`, the bid with the latest
//!   `dateTime`, of equal ones the latest in event order (Flink's keep-last
//!   deduplication replaces on an equal time), as `(auction, bidder, price,
//!   channel, url, dateTime, extra)`.
//! - **q19** top 10 prices per auction: per auction the 10 bids with the
//!   highest price, equal prices in event order (Flink's top-N ranks a tie
//!   by arrival: the earlier first, the later falls out first), as
//!   `(auction, bidder, price, channel, url, dateTime, extra, rank_number
//!   1..=10)`.
//! - **q20** bids with their auction, category 10: inner join on
//!   `bid.auction == auction.id` with `category == 10`: `(auction, bidder,
//!   price, channel, url, bid dateTime, bid extra, itemName, description,
//!   initialBid, reserve, auction dateTime, expires, seller, category,
//!   auction extra)`.
//! - **q21** channel id: bids where `REGEXP_EXTRACT(url,
//!   '(&|^)channel_id=([^&]*)', 2)` is not null or `lower(channel)` is one of
//!   apple / google / facebook / baidu: `(auction, bidder, price, channel,
//!   channel_id)` with `'0'`..`'3'` for those four, else the extracted text.
//! - **q22** URL directories: every bid as `(auction, bidder, price,
//!   channel, dir1, dir2, dir3)`: fields 3, 4, 5 (from 0) of `url` split on
//!   `'/'`, empty fields kept, `NULL` past the last field.
//! - **q23** bids of people who also sell: `bid JOIN person ON id = bidder
//!   JOIN auction ON seller = bidder`: one row per (bid, auction of the
//!   bidder as seller) when the bidder is a known person: `(bidder, price,
//!   channel, url, bid extra, person id, name, emailAddress, creditCard,
//!   city, state, person extra, itemName, description, initialBid, reserve,
//!   auction dateTime, expires, seller, category, auction extra)`.

use std::collections::HashMap;
use std::sync::Arc;

use riverbed_compute::{Change, DataStream};

use crate::error::{Error, Result};
use crate::model::Event;
pub use crate::row::{Row, Value};

mod auction_bids;
mod bid_stats;
mod common;
pub mod q0;
pub mod q1;
pub mod q10;
pub mod q11;
pub mod q12;
pub mod q13;
pub mod q14;
pub mod q15;
pub mod q16;
pub mod q17;
pub mod q18;
pub mod q19;
pub mod q2;
pub mod q20;
pub mod q21;
pub mod q22;
pub mod q23;
pub mod q3;
pub mod q4;
pub mod q5;
pub mod q6;
pub mod q7;
pub mod q8;
pub mod q9;

/// What a query's job ends in: its result changelog.
pub type Built = DataStream<Change<Row>>;

/// Inputs of a query besides the event stream.
#[derive(Clone, Default)]
pub struct QueryContext {
    /// q13's side input: `key -> value`.
    pub side_input: Arc<HashMap<i64, String>>,
}

/// Adds query `name` to the job reading `events`.
pub fn build(name: &str, events: DataStream<Event>, ctx: &QueryContext) -> Result<Built> {
    Ok(match name {
        "q0" => q0::build(events),
        "q1" => q1::build(events),
        "q2" => q2::build(events),
        "q3" => q3::build(events),
        "q4" => q4::build(events),
        "q5" => q5::build(events),
        "q6" => q6::build(events),
        "q7" => q7::build(events),
        "q8" => q8::build(events),
        "q9" => q9::build(events),
        "q10" => q10::build(events),
        "q11" => q11::build(events),
        "q12" => q12::build(events),
        "q13" => q13::build(events, ctx.side_input.clone()),
        "q14" => q14::build(events),
        "q15" => q15::build(events),
        "q16" => q16::build(events),
        "q17" => q17::build(events),
        "q18" => q18::build(events),
        "q19" => q19::build(events),
        "q20" => q20::build(events),
        "q21" => q21::build(events),
        "q22" => q22::build(events),
        "q23" => q23::build(events),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown query {other:?}: expected q0 to q23 or all"
            )))
        }
    })
}

/// Which goal family a query belongs to (the throughput goals).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Stateless,
    WindowAggregate,
    Join,
    Other,
}

/// A query's name, title and sink columns.
#[derive(Clone, Copy, Debug)]
pub struct QueryInfo {
    pub name: &'static str,
    pub title: &'static str,
    pub columns: &'static [&'static str],
    /// Whether the result is an updating changelog (else insert-only).
    pub updating: bool,
    pub family: Family,
}

const BID5: &[&str] = &["auction", "bidder", "price", "dateTime", "extra"];

macro_rules! counts_after {
    ($($c:literal),*) => {
        &[$($c,)* "total_bids", "rank1_bids", "rank2_bids", "rank3_bids", "total_bidders",
          "rank1_bidders", "rank2_bidders", "rank3_bidders", "total_auctions",
          "rank1_auctions", "rank2_auctions", "rank3_auctions"]
    };
}

/// Every query, in order.
pub const QUERIES: &[QueryInfo] = &[
    QueryInfo {
        name: "q0",
        title: "pass-through",
        columns: BID5,
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q1",
        title: "currency conversion",
        columns: &["auction", "bidder", "price", "dateTime", "extra"],
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q2",
        title: "selection",
        columns: &["auction", "price"],
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q3",
        title: "local item suggestion",
        columns: &["name", "city", "state", "id"],
        updating: false,
        family: Family::Join,
    },
    QueryInfo {
        name: "q4",
        title: "average price for a category",
        columns: &["id", "final"],
        updating: true,
        family: Family::Other,
    },
    QueryInfo {
        name: "q5",
        title: "hot items",
        columns: &["auction", "num"],
        updating: false,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q6",
        title: "average selling price by seller",
        columns: &["seller", "avg_price"],
        updating: false,
        family: Family::Other,
    },
    QueryInfo {
        name: "q7",
        title: "highest bid",
        columns: BID5,
        updating: false,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q8",
        title: "monitor new users",
        columns: &["id", "name", "stime"],
        updating: false,
        family: Family::Join,
    },
    QueryInfo {
        name: "q9",
        title: "winning bids",
        columns: &[
            "id",
            "itemName",
            "description",
            "initialBid",
            "reserve",
            "dateTime",
            "expires",
            "seller",
            "category",
            "extra",
            "auction",
            "bidder",
            "price",
            "bid_dateTime",
            "bid_extra",
        ],
        updating: true,
        family: Family::Join,
    },
    QueryInfo {
        name: "q10",
        title: "log to file system",
        columns: &[
            "auction", "bidder", "price", "dateTime", "extra", "dt", "hm",
        ],
        updating: false,
        family: Family::Other,
    },
    QueryInfo {
        name: "q11",
        title: "user sessions",
        columns: &["bidder", "bid_count", "starttime", "endtime"],
        updating: false,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q12",
        title: "processing time windows",
        columns: &["bidder", "bid_count", "starttime", "endtime"],
        updating: false,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q13",
        title: "bounded side input join",
        columns: &["auction", "bidder", "price", "dateTime", "value"],
        updating: false,
        family: Family::Other,
    },
    QueryInfo {
        name: "q14",
        title: "calculation",
        columns: &[
            "auction",
            "bidder",
            "price",
            "bidTimeType",
            "dateTime",
            "extra",
            "c_counts",
        ],
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q15",
        title: "bidding statistics report",
        columns: counts_after!("day"),
        updating: true,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q16",
        title: "channel statistics report",
        columns: counts_after!("channel", "day", "minute"),
        updating: true,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q17",
        title: "auction statistics report",
        columns: &[
            "auction",
            "day",
            "total_bids",
            "rank1_bids",
            "rank2_bids",
            "rank3_bids",
            "min_price",
            "max_price",
            "avg_price",
            "sum_price",
        ],
        updating: true,
        family: Family::WindowAggregate,
    },
    QueryInfo {
        name: "q18",
        title: "find last bid",
        columns: &[
            "auction", "bidder", "price", "channel", "url", "dateTime", "extra",
        ],
        updating: true,
        family: Family::Other,
    },
    QueryInfo {
        name: "q19",
        title: "auction top-10 price",
        columns: &[
            "auction",
            "bidder",
            "price",
            "channel",
            "url",
            "dateTime",
            "extra",
            "rank_number",
        ],
        updating: true,
        family: Family::Other,
    },
    QueryInfo {
        name: "q20",
        title: "expand bid with auction",
        columns: &[
            "auction",
            "bidder",
            "price",
            "channel",
            "url",
            "bid_dateTime",
            "bid_extra",
            "itemName",
            "description",
            "initialBid",
            "reserve",
            "auction_dateTime",
            "expires",
            "seller",
            "category",
            "auction_extra",
        ],
        updating: false,
        family: Family::Join,
    },
    QueryInfo {
        name: "q21",
        title: "add channel id",
        columns: &["auction", "bidder", "price", "channel", "channel_id"],
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q22",
        title: "get URL directories",
        columns: &[
            "auction", "bidder", "price", "channel", "dir1", "dir2", "dir3",
        ],
        updating: false,
        family: Family::Stateless,
    },
    QueryInfo {
        name: "q23",
        title: "expand bid with person and auction",
        columns: &[
            "bidder",
            "price",
            "channel",
            "url",
            "bid_extra",
            "person_id",
            "name",
            "emailAddress",
            "creditCard",
            "city",
            "state",
            "person_extra",
            "itemName",
            "description",
            "initialBid",
            "reserve",
            "auction_dateTime",
            "expires",
            "seller",
            "category",
            "auction_extra",
        ],
        updating: false,
        family: Family::Other,
    },
];

/// The query called `name` (`q0`..`q23`).
pub fn info(name: &str) -> Option<&'static QueryInfo> {
    QUERIES.iter().find(|q| q.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_query_is_listed_once_in_order() {
        let names: Vec<&str> = QUERIES.iter().map(|q| q.name).collect();
        let expected: Vec<String> = (0..=23).map(|i| format!("q{i}")).collect();
        assert_eq!(names, expected);
        assert_eq!(info("q16").unwrap().columns.len(), 15);
    }
}
