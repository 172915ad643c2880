//! q23, bids of people who also sell: `bid JOIN person ON id = bidder JOIN
//! auction ON seller = bidder`, one row per bid and auction of its bidder.
//!
//! All three inputs meet keyed by person id. A regular three-way join
//! keeps everything it has seen: the person, the person's auctions and
//! bids; each arrival is matched against what the other sides hold.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::common::{insert, push_auction};
use super::Built;
use crate::model::{Auction, Bid, Event, Person};
use crate::row::Value;

/// `(person, auctions sold, bids placed)` of one person id.
type Seen = (Option<Person>, Vec<Auction>, Vec<Bid>);

type Out = (Bid, Person, Auction);

struct ThreeWay;

impl KeyedProcessFunction<i64, Event, Seen, Out> for ThreeWay {
    fn process(
        &mut self,
        _id: &i64,
        e: Event,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, Out>,
    ) {
        let (person, auctions, bids) = state.get_or_insert_with(|| (None, Vec::new(), Vec::new()));
        match e {
            Event::Person(p) => {
                for b in bids.iter() {
                    for a in auctions.iter() {
                        ctx.emit((b.clone(), p.clone(), a.clone()));
                    }
                }
                *person = Some(p);
            }
            Event::Auction(a) => {
                if let Some(p) = person {
                    for b in bids.iter() {
                        ctx.emit((b.clone(), p.clone(), a.clone()));
                    }
                }
                auctions.push(a);
            }
            Event::Bid(b) => {
                if let Some(p) = person {
                    for a in auctions.iter() {
                        ctx.emit((b.clone(), p.clone(), a.clone()));
                    }
                }
                bids.push(b);
            }
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    events
        .key_by(|e: &Event| match e {
            Event::Person(p) => p.id,
            Event::Auction(a) => a.seller,
            Event::Bid(b) => b.bidder,
        })
        .process("q23-join", || ThreeWay)
        .map("q23-rows", |(b, p, a)| {
            let mut row = vec![
                Value::int(b.bidder),
                Value::int(b.price),
                Value::Str(b.channel),
                Value::Str(b.url),
                Value::Str(b.extra),
                Value::int(p.id),
                Value::Str(p.name),
                Value::Str(p.email_address),
                Value::Str(p.credit_card),
                Value::Str(p.city),
                Value::Str(p.state),
                Value::Str(p.extra),
            ];
            push_auction(&mut row, a);
            insert(row)
        })
}
