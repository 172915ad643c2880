//! Bids (suite: `BidGenerator`).
//!
//! A bid has:
//! - `auction`: with probability `1 - 1/hot_auction_ratio` the hot auction,
//!   the first auction of the current block of `HOT_AUCTION_RATIO` (100)
//!   auctions; otherwise `next_base0_auction_id`; plus `FIRST_AUCTION_ID`;
//! - `bidder`: with probability `1 - 1/hot_bidders_ratio` the hot bidder, the
//!   *second* person of the current block of `HOT_BIDDER_RATIO` (100) people
//!   (so that hot bidders and hot sellers differ); otherwise
//!   `next_base0_person_id`; plus `FIRST_PERSON_ID`;
//! - `price`: a price;
//! - `channel`, `url`: with probability 1/2 (`HOT_CHANNELS_RATIO` 2) one of the
//!   4 hot channels, otherwise one of the 10 000 ordinary ones, uniformly;
//! - `extra`: pads `32` bytes (four 8-byte fields; the channel and URL are not
//!   counted, as in the suite) to `avg_bid_byte_size`.

use super::auction::{last_base0_auction_id, next_base0_auction_id};
use super::channel::{channel_name, Channels, CHANNELS_NUMBER, HOT_CHANNELS};
use super::person::{last_base0_person_id, next_base0_person_id};
use super::price::next_price;
use super::rng::Rng;
use super::strings::next_extra;
use crate::config::{GeneratorConfig, FIRST_AUCTION_ID, FIRST_PERSON_ID};
use crate::model::Bid;

/// The hot auction is the first of each block of this many auctions.
pub(crate) const HOT_AUCTION_RATIO: u64 = 100;

/// The hot bidder is the second of each block of this many people.
pub(crate) const HOT_BIDDER_RATIO: u64 = 100;

/// A bid comes through a hot channel with probability `1 - 1/this`.
const HOT_CHANNELS_RATIO: u64 = 2;

/// The bid of event `event_id`, placed at `timestamp`, at place `seq` of
/// the stream.
pub(crate) fn next_bid(
    config: &GeneratorConfig,
    channels: &Channels,
    rng: &mut Rng,
    event_id: u64,
    timestamp: i64,
    seq: u64,
) -> Bid {
    let auction = if rng.below(u64::from(config.hot_auction_ratio)) > 0 {
        let last = last_base0_auction_id(config, event_id).max(0) as u64;
        (last / HOT_AUCTION_RATIO) * HOT_AUCTION_RATIO
    } else {
        next_base0_auction_id(config, rng, event_id)
    } as i64
        + FIRST_AUCTION_ID;

    let bidder = if rng.below(u64::from(config.hot_bidders_ratio)) > 0 {
        (last_base0_person_id(config, event_id) / HOT_BIDDER_RATIO) * HOT_BIDDER_RATIO + 1
    } else {
        next_base0_person_id(config, rng, event_id)
    } as i64
        + FIRST_PERSON_ID;

    let price = next_price(rng);

    let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
        let (name, url) = channels.hot(rng.index(HOT_CHANNELS.len()));
        (name.to_owned(), url)
    } else {
        let c = rng.below(CHANNELS_NUMBER);
        (channel_name(c), channels.url(c as usize))
    };

    let extra = next_extra(rng, 8 + 8 + 8 + 8, config.avg_bid_byte_size);
    // Ids count events and prices are at most MAX_PRICE: all fit BIGINT.
    Bid {
        auction,
        bidder,
        price: price as i64,
        channel,
        url: url.to_owned(),
        date_time: timestamp,
        extra,
        seq,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    #[test]
    fn hot_auction_and_bidder_dominate() {
        let config = GeneratorConfig::default();
        let channels = Channels::new(0);
        let event_id = 1_000_010; // a bid: offset 10 of its epoch
        let hot_auction = (last_base0_auction_id(&config, event_id) / 100) * 100 + 1000;
        let hot_bidder = (last_base0_person_id(&config, event_id) as i64 / 100) * 100 + 1 + 1000;
        let (mut auctions, mut bidders, mut hot_channels) = (0, 0, 0);
        let rounds = 20_000;
        for i in 0..rounds {
            let mut rng = Rng::new(0, Stream::Event, i);
            let bid = next_bid(&config, &channels, &mut rng, event_id, 5, 9);
            auctions += usize::from(bid.auction == hot_auction);
            bidders += usize::from(bid.bidder == hot_bidder);
            hot_channels += usize::from(HOT_CHANNELS.contains(&bid.channel.as_str()));
            assert_eq!((bid.date_time, bid.seq), (5, 9));
        }
        // Hot with probability 1/2 (auction) and 3/4 (bidder), plus the rare
        // non-hot draw that lands on the same id.
        assert!((9_700..10_700).contains(&auctions), "{auctions}");
        assert!((14_700..15_500).contains(&bidders), "{bidders}");
        assert!((9_700..10_300).contains(&hot_channels), "{hot_channels}");
    }
}
