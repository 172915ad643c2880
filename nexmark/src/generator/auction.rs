//! Auctions, and the auction-id rules shared with bids (suite:
//! `AuctionGenerator`).
//!
//! Id rules:
//! - `last_base0_auction_id(id)`: the newest auction id (counted from 0) at
//!   event id `id`. In each epoch of `total_proportion` events the auctions
//!   follow the people; an auction gets the next id, a bid sees the last
//!   auction of its epoch, a person the last auction of the previous epoch
//!   (-1 before the first auction).
//! - `next_base0_auction_id(id)`: an auction chosen for a non-hot bid: uniform
//!   over `max(last - num_in_flight_auctions, 0) ..= last` plus
//!   `AUCTION_ID_LEAD` (10) ids not yet created.
//!
//! An auction has: `id = FIRST_AUCTION_ID + last_base0_auction_id`; `seller`
//! the hot seller with probability `1 - 1/hot_sellers_ratio` (the first person
//! of the current block of `HOT_SELLER_RATIO` (100) people), otherwise
//! `next_base0_person_id`, plus `FIRST_PERSON_ID`; `category`
//! `FIRST_CATEGORY_ID + uniform(0..NUM_CATEGORIES)` (10..15); `initial_bid` a
//! price; `expires = date_time + auction length`; `item_name`
//! `next_string(20)`; `description` `next_string(100)`; `reserve =
//! initial_bid + price`; `extra` pads `8 + len(item_name, description) + 40`
//! to `avg_auction_byte_size`.
//!
//! Auction length (`nextAuctionLengthMs`): let `k = num_in_flight_auctions *
//! total_proportion / auction_proportion` be the number of events in which
//! `num_in_flight_auctions` more auctions are created and `horizon` the event
//! time from this event to event `id + k`; the length is
//! `1 + uniform(0..max(2 * horizon, 1))` ms, so on average about
//! `num_in_flight_auctions` auctions are open at once. At the defaults
//! `k = 1666` events, `horizon = 166` ms, lengths are 1..=332 ms.

use super::person::{last_base0_person_id, next_base0_person_id};
use super::price::next_price;
use super::rng::Rng;
use super::strings::{next_extra, next_string};
use crate::config::{GeneratorConfig, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID};
use crate::model::Auction;

/// Number of categories; kept small so that the queries find matches.
pub(crate) const NUM_CATEGORIES: u64 = 5;

/// Number of auction ids beyond the newest that a bid may refer to.
pub(crate) const AUCTION_ID_LEAD: u64 = 10;

/// The hot seller is the first person of each block of this many people.
pub(crate) const HOT_SELLER_RATIO: u64 = 100;

/// The newest auction id (base 0) at `event_id`; the new auction's own id if
/// `event_id` is an auction; -1 before the first auction.
pub(crate) fn last_base0_auction_id(config: &GeneratorConfig, event_id: u64) -> i64 {
    let people = u64::from(config.person_proportion);
    let auctions = u64::from(config.auction_proportion);
    let mut epoch = (event_id / config.total_proportion()) as i64;
    let mut offset = event_id % config.total_proportion();
    if offset < people {
        // A person: the last auction was in the previous epoch.
        epoch -= 1;
        offset = auctions - 1;
    } else if offset >= people + auctions {
        // A bid: the last auction of this epoch.
        offset = auctions - 1;
    } else {
        offset -= people;
    }
    epoch * auctions as i64 + offset as i64
}

/// An auction id (base 0) among the in-flight auctions plus the lead.
pub(crate) fn next_base0_auction_id(config: &GeneratorConfig, rng: &mut Rng, event_id: u64) -> u64 {
    let max = last_base0_auction_id(config, event_id).max(0) as u64;
    let min = max.saturating_sub(u64::from(config.num_in_flight_auctions));
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

/// The auction of event `event_id`, opened at `timestamp` (the timestamp of
/// `event_id`).
pub(crate) fn next_auction(
    config: &GeneratorConfig,
    rng: &mut Rng,
    event_id: u64,
    timestamp: i64,
    seq: u64,
) -> Auction {
    let id = last_base0_auction_id(config, event_id) + FIRST_AUCTION_ID;

    let seller = if rng.below(u64::from(config.hot_sellers_ratio)) > 0 {
        (last_base0_person_id(config, event_id) / HOT_SELLER_RATIO) * HOT_SELLER_RATIO
    } else {
        next_base0_person_id(config, rng, event_id)
    } as i64
        + FIRST_PERSON_ID;

    let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES) as i64;
    let initial_bid = next_price(rng);
    let expires = timestamp + next_auction_length_ms(config, rng, event_id, timestamp);
    let item_name = next_string(rng, 20);
    let description = next_string(rng, 100);
    let reserve = initial_bid + next_price(rng);
    let current_size = 8 + item_name.len() + description.len() + 8 + 8 + 8 + 8 + 8;
    let extra = next_extra(rng, current_size, config.avg_auction_byte_size);
    // Ids count events and prices are at most twice MAX_PRICE: all fit BIGINT.
    Auction {
        id,
        item_name,
        description,
        initial_bid: initial_bid as i64,
        reserve: reserve as i64,
        date_time: timestamp,
        expires,
        seller,
        category,
        extra,
        seq,
    }
}

/// A random auction length in ms, averaging the time in which
/// `num_in_flight_auctions` more auctions are created.
fn next_auction_length_ms(
    config: &GeneratorConfig,
    rng: &mut Rng,
    event_id: u64,
    timestamp: i64,
) -> i64 {
    let events_for_auctions = u64::from(config.num_in_flight_auctions) * config.total_proportion()
        / u64::from(config.auction_proportion);
    let future_auction = config.timestamp_for_event(event_id + events_for_auctions);
    let horizon_ms = future_auction - timestamp;
    1 + rng.below(horizon_ms.saturating_mul(2).max(1) as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    #[test]
    fn last_auction_id_follows_the_epochs() {
        let config = GeneratorConfig::default();
        // Epoch 0: person 0, auctions 1..=3, bids 4..=49.
        assert_eq!(last_base0_auction_id(&config, 0), -1);
        assert_eq!(last_base0_auction_id(&config, 1), 0);
        assert_eq!(last_base0_auction_id(&config, 3), 2);
        assert_eq!(last_base0_auction_id(&config, 4), 2);
        assert_eq!(last_base0_auction_id(&config, 49), 2);
        assert_eq!(last_base0_auction_id(&config, 50), 2);
        assert_eq!(last_base0_auction_id(&config, 51), 3);
        assert_eq!(last_base0_auction_id(&config, 99), 5);
    }

    #[test]
    fn chosen_auctions_are_in_flight_or_lead() {
        let config = GeneratorConfig::default();
        let mut rng = Rng::new(0, Stream::Event, 0);
        for event_id in (4..2_000_000).step_by(1009) {
            let last = last_base0_auction_id(&config, event_id) as u64;
            let chosen = next_base0_auction_id(&config, &mut rng, event_id);
            assert!(chosen <= last + AUCTION_ID_LEAD);
            assert!(chosen + u64::from(config.num_in_flight_auctions) >= last);
        }
    }

    #[test]
    fn auction_lengths_stay_within_twice_the_horizon() {
        let config = GeneratorConfig::default();
        let mut rng = Rng::new(0, Stream::Event, 0);
        let mut total = 0;
        let rounds = 10_000;
        for _ in 0..rounds {
            let timestamp = config.timestamp_for_event(1_000_001);
            let length = next_auction_length_ms(&config, &mut rng, 1_000_001, timestamp);
            // 1666 events at 100 us: horizon 166 ms from event 1_000_001.
            assert!((1..=332).contains(&length), "{length}");
            total += length;
        }
        let mean = total as f64 / rounds as f64;
        assert!((mean - 166.5).abs() < 5.0, "{mean}");
    }
}
