//! Auctions with their bids, keyed by auction id: the input of the queries
//! that join bids to the auction they are for (q4, q6, q9, q20).

use riverbed_compute::{DataStream, KeyedStream};

use crate::model::{Auction, Bid, Event};

/// An auction or a bid, keyed by the auction's id.
#[derive(Clone)]
pub enum AuctionOrBid {
    Auction(Auction),
    Bid(Bid),
}

impl AuctionOrBid {
    pub fn auction_id(&self) -> u64 {
        match self {
            AuctionOrBid::Auction(a) => a.id,
            AuctionOrBid::Bid(b) => b.auction,
        }
    }

    pub fn date_time(&self) -> i64 {
        match self {
            AuctionOrBid::Auction(a) => a.date_time,
            AuctionOrBid::Bid(b) => b.date_time,
        }
    }
}

/// Whether `bid` counts for `auction`: `BETWEEN dateTime AND expires`,
/// both ends included.
pub fn in_time(auction: &Auction, bid_time: i64) -> bool {
    auction.date_time <= bid_time && bid_time <= auction.expires
}

/// Auctions and bids of the event stream keyed by auction id, with their
/// `dateTime` as event time.
pub fn auction_bids(events: DataStream<Event>, name: &str) -> KeyedStream<AuctionOrBid, u64> {
    events
        .flat_map(name, |e| match e {
            Event::Auction(a) => Some(AuctionOrBid::Auction(a)),
            Event::Bid(b) => Some(AuctionOrBid::Bid(b)),
            Event::Person(_) => None,
        })
        .with_timestamps(AuctionOrBid::date_time)
        .key_by(AuctionOrBid::auction_id)
}
