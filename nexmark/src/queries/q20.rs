//! q20, bids with their auction, for auctions in category 10 (a regular
//! inner join on `bid.auction = auction.id`).
//!
//! Keyed by auction id: the key keeps the auction (or only the fact that it
//! is not in category 10) as its value and the bids that came before it as
//! its list (one store entry per bid); bids are emitted with their auction
//! and never stored once the auction is known.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::auction_bids::{auction_bids, AuctionOrBid};
use super::common::{insert, push_auction};
use super::Built;
use crate::model::{Auction, Bid, Event};
use crate::row::Value;

/// The auction once seen: `Some` if in category 10. Bids waiting for it
/// are the key's list.
type Seen = Option<Auction>;

struct Expand;

impl KeyedProcessFunction<i64, AuctionOrBid, Seen, (Bid, Auction), Bid> for Expand {
    fn process(
        &mut self,
        _id: &i64,
        input: AuctionOrBid,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, (Bid, Auction), Bid>,
    ) {
        match input {
            AuctionOrBid::Auction(a) => {
                *state = Some((a.category == 10).then_some(a));
                ctx.drain_list();
            }
            AuctionOrBid::Bid(b) => match state {
                Some(Some(a)) => ctx.emit((b, a.clone())),
                Some(None) => {}
                None => ctx.add_to_list(b),
            },
        }
    }

    fn on_list(
        &mut self,
        _id: &i64,
        waiting: Vec<Bid>,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, (Bid, Auction), Bid>,
    ) {
        if let Some(Some(a)) = state {
            for b in waiting {
                ctx.emit((b, a.clone()));
            }
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
