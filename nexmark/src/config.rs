//! Generator settings: the Nexmark suite's parameters with its defaults, and
//! the values derived from them (event timing, id numbering).
//!
//! The defaults are those of the suite Flink uses (`nexmark/nexmark`, module
//! `nexmark-flink`, class `NexmarkConfiguration`), so a run with
//! `GeneratorConfig::default()` produces the stream the published Flink
//! numbers were measured on, up to the random draws (see the crate docs).
//!
//! The derived rules follow the suite's `GeneratorConfig`:
//! - the inter-event delay is `1_000_000 / first_event_rate` microseconds;
//! - the timestamp of event number `k` is
//!   `base_time + trunc(k * inter_event_delay_us) / 1000` milliseconds
//!   (`timestampForEvent`): at 10 000 events/s event `k` is at
//!   `base_time + k / 10` ms;
//! - the event id of event number `n` is `n` moved within its group of
//!   `out_of_order_group_size` events to `group_start + (n * 953) % group_size`
//!   (`nextAdjustedEventNumber`); with the default group size 1 the id is `n`.
//!   The id decides the event's kind and the ids it carries, and the event is
//!   stamped with the timestamp of its id, so a group size above 1 produces
//!   events out of timestamp order within each group;
//! - the watermark after event number `n` is the timestamp of the first event
//!   number of its group (`nextEventNumberForWatermark`): no event at or after
//!   `n` has an earlier timestamp.
//!
//! Parameters of the suite that only steer its Flink source (rate shapes,
//! wall-clock pacing, number of events, extended-bid mode, occasional delays)
//! are not here: pacing and counting belong to the runner.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// First person id; person ids count up from here (suite: `FIRST_PERSON_ID`).
pub const FIRST_PERSON_ID: i64 = 1000;
/// First auction id; auction ids count up from here (suite: `FIRST_AUCTION_ID`).
pub const FIRST_AUCTION_ID: i64 = 1000;
/// First category id; categories are `FIRST_CATEGORY_ID..FIRST_CATEGORY_ID + 5`
/// (suite: `FIRST_CATEGORY_ID`).
pub const FIRST_CATEGORY_ID: i64 = 10;

/// Default [`GeneratorConfig::base_time_ms`]: 2015-07-15 00:00:00.000 UTC in
/// milliseconds since the Unix epoch. The suite takes the wall clock at start
/// (`System.currentTimeMillis()`); a fixed instant makes runs reproducible.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;

/// The multiplier the suite uses to shuffle event numbers within an
/// out-of-order group. It is prime, so the shuffle is a permutation of every
/// group whose size is not a multiple of it.
const OUT_OF_ORDER_MULTIPLIER: u64 = 953;

/// Settings of the Nexmark event generator.
///
/// Every default is the suite's (`NexmarkConfiguration`) unless said
/// otherwise. Loadable from TOML or JSON (`serde`, missing fields take their
/// default, unknown fields are rejected). Call [`validate`](Self::validate)
/// (or build a [`Generator`](crate::Generator), which does) before use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Seed of all random draws. Default 0. Not in the suite, whose draws are
    /// unseeded; event number `n` depends only on (this config, `n`).
    pub seed: u64,
    /// Timestamp of event number 0, in milliseconds since the Unix epoch.
    /// Default [`DEFAULT_BASE_TIME_MS`] (2015-07-15 00:00:00 UTC) instead of
    /// the suite's wall clock, so that runs are reproducible.
    pub base_time_ms: i64,
    /// Event rate in events per second of event time. Default 10 000
    /// (`firstEventRate`). The rate only spaces timestamps; how fast events
    /// are produced is up to the caller.
    pub first_event_rate: u64,
    /// People per `total_proportion` events. Default 1 (`personProportion`).
    pub person_proportion: u32,
    /// Auctions per `total_proportion` events. Default 3 (`auctionProportion`).
    pub auction_proportion: u32,
    /// Bids per `total_proportion` events. Default 46 (`bidProportion`).
    pub bid_proportion: u32,
    /// Average size of a person in bytes, reached by padding `extra`.
    /// Default 200 (`avgPersonByteSize`).
    pub avg_person_byte_size: u32,
    /// Average size of an auction in bytes, reached by padding `extra`.
    /// Default 500 (`avgAuctionByteSize`).
    pub avg_auction_byte_size: u32,
    /// Average size of a bid in bytes, reached by padding `extra`.
    /// Default 100 (`avgBidByteSize`).
    pub avg_bid_byte_size: u32,
    /// A bid is for the current hot auction with probability
    /// `1 - 1/hot_auction_ratio`. Default 2 (`hotAuctionRatio`).
    pub hot_auction_ratio: u32,
    /// An auction is by the current hot seller with probability
    /// `1 - 1/hot_sellers_ratio`. Default 4 (`hotSellersRatio`).
    pub hot_sellers_ratio: u32,
    /// A bid is by the current hot bidder with probability
    /// `1 - 1/hot_bidders_ratio`. Default 4 (`hotBiddersRatio`).
    pub hot_bidders_ratio: u32,
    /// Number of most recent auctions a non-hot bid may be for (plus a lead
    /// of 10 not yet created), and the horizon of auction lengths.
    /// Default 100 (`numInFlightAuctions`).
    pub num_in_flight_auctions: u32,
    /// Number of most recent people a non-hot seller or bidder is drawn from
    /// (plus a lead of 10 not yet created). Default 1000 (`numActivePeople`).
    pub num_active_people: u32,
    /// Size of the groups within which event ids (and so timestamps) are
    /// shuffled; 1 keeps events in timestamp order. Default 1
    /// (`outOfOrderGroupSize`).
    pub out_of_order_group_size: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            first_event_rate: 10_000,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            avg_person_byte_size: 200,
            avg_auction_byte_size: 500,
            avg_bid_byte_size: 100,
            hot_auction_ratio: 2,
            hot_sellers_ratio: 4,
            hot_bidders_ratio: 4,
            num_in_flight_auctions: 100,
            num_active_people: 1000,
            out_of_order_group_size: 1,
        }
    }
}

impl GeneratorConfig {
    /// Checks every rule the generator relies on; the error names the field.
    pub fn validate(&self) -> Result<()> {
        fn invalid(message: String) -> Result<()> {
            Err(Error::InvalidConfig(message))
        }
        if self.first_event_rate == 0 {
            return invalid("first_event_rate must be at least 1 event per second".into());
        }
        // The id rules step back to "the last person/auction of this epoch",
        // which needs at least one of each per epoch.
        if self.person_proportion == 0 {
            return invalid("person_proportion must be at least 1".into());
        }
        if self.auction_proportion == 0 {
            return invalid("auction_proportion must be at least 1".into());
        }
        for (name, value) in [
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_sellers_ratio", self.hot_sellers_ratio),
            ("hot_bidders_ratio", self.hot_bidders_ratio),
        ] {
            if value == 0 {
                return invalid(format!("{name} must be at least 1"));
            }
        }
        let group = self.out_of_order_group_size;
        if group == 0 {
            return invalid("out_of_order_group_size must be at least 1".into());
        }
        // A multiple of the shuffle multiplier would give two events the same
        // id; the suite does not check this, we refuse it.
        if group.is_multiple_of(OUT_OF_ORDER_MULTIPLIER) {
            return invalid(format!(
                "out_of_order_group_size {group} is a multiple of {OUT_OF_ORDER_MULTIPLIER}, \
                 which would repeat event ids"
            ));
        }
        Ok(())
    }

    /// Events per epoch: `person + auction + bid` proportions (50 by default).
    pub fn total_proportion(&self) -> u64 {
        u64::from(self.person_proportion)
            + u64::from(self.auction_proportion)
            + u64::from(self.bid_proportion)
    }

    /// Event-time delay between consecutive event numbers, in microseconds
    /// (`interEventDelayUs`): 100.0 at the default 10 000 events/s.
    pub fn inter_event_delay_us(&self) -> f64 {
        1_000_000.0 / self.first_event_rate as f64
    }

    /// The event id of event number `n`: `n` shuffled within its out-of-order
    /// group (`nextAdjustedEventNumber`). Equal to `n` for group size 1.
    pub fn event_id(&self, n: u64) -> u64 {
        let group = self.out_of_order_group_size;
        if group == 1 {
            return n;
        }
        // (n * 953) % group, computed without overflow.
        let offset = ((u128::from(n % group) * u128::from(OUT_OF_ORDER_MULTIPLIER))
            % u128::from(group)) as u64;
        (n / group) * group + offset
    }

    /// The first event number of `n`'s out-of-order group
    /// (`nextEventNumberForWatermark`).
    pub fn watermark_event_number(&self, n: u64) -> u64 {
        let group = self.out_of_order_group_size;
        (n / group) * group
    }

    /// Event-time timestamp, in milliseconds since the Unix epoch, of event
    /// number (or id) `k` (`timestampForEvent`).
    pub fn timestamp_for_event(&self, k: u64) -> i64 {
        let delay_us = (k as f64 * self.inter_event_delay_us()) as i64;
        self.base_time_ms + delay_us / 1000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_suites() {
        let config = GeneratorConfig::default();
        assert_eq!(config.total_proportion(), 50);
        assert_eq!(config.inter_event_delay_us(), 100.0);
        assert_eq!(config.base_time_ms, 1_436_918_400_000);
        config.validate().unwrap();
    }

    #[test]
    fn timestamps_follow_the_rate() {
        let config = GeneratorConfig::default();
        for k in [0u64, 1, 9, 10, 11, 12_345, 10_000_000] {
            assert_eq!(
                config.timestamp_for_event(k),
                config.base_time_ms + (k / 10) as i64
            );
        }
        let slow = GeneratorConfig {
            first_event_rate: 3,
            ..GeneratorConfig::default()
        };
        // 333_333.33 us apart, truncated to whole ms after the product (the
        // product for event 3 rounds to exactly 1_000_000 us in f64).
        let offsets: Vec<i64> = (1..=5)
            .map(|k| slow.timestamp_for_event(k) - slow.base_time_ms)
            .collect();
        assert_eq!(offsets, [333, 666, 1000, 1333, 1666]);
    }

    #[test]
    fn out_of_order_groups_permute_ids() {
        let config = GeneratorConfig {
            out_of_order_group_size: 10,
            ..GeneratorConfig::default()
        };
        let mut ids: Vec<u64> = (20..30).map(|n| config.event_id(n)).collect();
        // 953 % 10 == 3: the group is visited as 20, 23, 26, 29, 22, ...
        assert_eq!(&ids[..4], &[20, 23, 26, 29]);
        ids.sort_unstable();
        assert_eq!(ids, (20..30).collect::<Vec<_>>());
        assert_eq!(config.watermark_event_number(27), 20);
        assert_eq!(GeneratorConfig::default().event_id(12_345), 12_345);
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            GeneratorConfig {
                first_event_rate: 0,
                ..Default::default()
            },
            GeneratorConfig {
                person_proportion: 0,
                ..Default::default()
            },
            GeneratorConfig {
                auction_proportion: 0,
                ..Default::default()
            },
            GeneratorConfig {
                hot_bidders_ratio: 0,
                ..Default::default()
            },
            GeneratorConfig {
                out_of_order_group_size: 0,
                ..Default::default()
            },
            GeneratorConfig {
                out_of_order_group_size: 1906,
                ..Default::default()
            },
        ];
        let fields = [
            "first_event_rate",
            "person_proportion",
            "auction_proportion",
            "hot_bidders_ratio",
            "out_of_order_group_size",
            "out_of_order_group_size",
        ];
        for (config, field) in cases.iter().zip(fields) {
            let message = config.validate().unwrap_err().to_string();
            assert!(message.contains(field), "{message} should name {field}");
        }
    }
}
