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

crate::codec::tagged_codec!(AuctionOrBid {
    0 => Auction(a: Auction),
    1 => Bid(b: Bid),
});

impl AuctionOrBid {
    pub fn auction_id(&self) -> i64 {
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

/// Per auction (q4, q6): `(its (dateTime, expires, tag) once seen, the
/// highest price of its bids placed while it was open, (time, price) of
/// bids that came before the auction)`. `tag` is the auction field a query
/// carries on (category, seller).
pub type AuctionMax = (Option<(i64, i64, i64)>, Option<i64>, Vec<(i64, i64)>);

/// What folding one input into an [`AuctionMax`] changed.
pub struct Folded {
    /// The input was the auction itself.
    pub auction_arrived: bool,
    /// An in-time bid raised the maximum: `(before, after)`.
    pub raised: Option<(Option<i64>, i64)>,
}

/// Folds an auction or a bid into the auction's state.
pub fn fold_max(
    state: &mut Option<AuctionMax>,
    input: AuctionOrBid,
    tag: fn(&Auction) -> i64,
) -> Folded {
    let (auction, max, waiting) = state.get_or_insert_with(|| (None, None, Vec::new()));
    let (auction_arrived, bids) = match input {
        AuctionOrBid::Auction(a) => {
            *auction = Some((a.date_time, a.expires, tag(&a)));
            (true, std::mem::take(waiting))
        }
        AuctionOrBid::Bid(b) => {
            if auction.is_none() {
                waiting.push((b.date_time, b.price));
                return Folded {
                    auction_arrived: false,
                    raised: None,
                };
            }
            (false, vec![(b.date_time, b.price)])
        }
    };
    let (start, expires, _) = auction.expect("the auction is known here");
    let best = bids
        .iter()
        .filter(|(t, _)| start <= *t && *t <= expires)
        .map(|&(_, p)| p)
        .max();
    let before = *max;
    let raised = match best {
        Some(p) if before.is_none_or(|m| p > m) => {
            *max = Some(p);
            Some((before, p))
        }
        _ => None,
    };
    Folded {
        auction_arrived,
        raised,
    }
}

/// Auctions and bids of the event stream keyed by auction id, with their
/// `dateTime` as event time.
pub fn auction_bids(events: DataStream<Event>, name: &str) -> KeyedStream<AuctionOrBid, i64> {
    events
        .flat_map(name, |e| match e {
            Event::Auction(a) => Some(AuctionOrBid::Auction(a)),
            Event::Bid(b) => Some(AuctionOrBid::Bid(b)),
            Event::Person(_) => None,
        })
        .with_timestamps(AuctionOrBid::date_time)
        .key_by(AuctionOrBid::auction_id)
}
