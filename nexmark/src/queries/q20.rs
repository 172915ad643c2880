//! q20, bids with their auction, for auctions in category 10 (a regular
//! inner join on `bid.auction = auction.id`).
//!
//! Keyed by auction id: the key keeps the auction (or only the fact that it
//! is not in category 10) and the bids that came before it; bids are
//! emitted with their auction and never stored once the auction is known.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::auction_bids::{auction_bids, AuctionOrBid};
use super::common::{insert, push_auction};
use super::Built;
use crate::model::{Auction, Bid, Event};
use crate::row::Value;

/// `(auction once seen: Some if in category 10; bids waiting for it)`.
type Seen = (Option<Option<Auction>>, Vec<Bid>);

struct Expand;

impl KeyedProcessFunction<i64, AuctionOrBid, Seen, (Bid, Auction)> for Expand {
    fn process(
        &mut self,
        _id: &i64,
        input: AuctionOrBid,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, (Bid, Auction)>,
    ) {
        let (auction, waiting) = state.get_or_insert_with(|| (None, Vec::new()));
        match input {
            AuctionOrBid::Auction(a) => {
                let waiting = std::mem::take(waiting);
                let a = (a.category == 10).then_some(a);
                if let Some(a) = &a {
                    for b in waiting {
                        ctx.emit((b, a.clone()));
                    }
                }
                *auction = Some(a);
            }
            AuctionOrBid::Bid(b) => match auction {
                Some(Some(a)) => ctx.emit((b, a.clone())),
                Some(None) => {}
                None => waiting.push(b),
            },
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    auction_bids(events, "q20-inputs")
        .process("q20-join", || Expand)
        .map("q20-rows", |(b, a)| {
            let mut row = vec![
                Value::int(b.auction),
                Value::int(b.bidder),
                Value::int(b.price),
                Value::Str(b.channel),
                Value::Str(b.url),
                Value::Time(b.date_time),
                Value::Str(b.extra),
            ];
            push_auction(&mut row, a);
            insert(row)
        })
}
