//! q23, bids of people who also sell: `bid JOIN person ON id = bidder JOIN
//! auction ON seller = bidder`, one row per bid and auction of its bidder.
//!
//! All three inputs meet keyed by person id. A regular three-way join
//! keeps everything it has seen: the person, the person's auctions and
//! bids; each arrival is matched against what the other sides hold.
//!
//! The person sits in the key's value; the auctions and the bids are
//! entries of two maps, keyed by the event's place in the input, so a busy
//! bidder's bids need not fit in memory and a new bid writes one entry.
//! The value counts each side, so a side that is still empty is never read.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::common::{insert, push_auction};
use super::Built;
use crate::model::{Auction, Bid, Event, Person};
use crate::row::Value;

/// `(person, auctions sold, bids placed)` of one person id.
type Seen = (Option<Person>, u32, u32);

/// The key's maps: its auctions and its bids (as events), by `seq`.
const AUCTIONS: u8 = 0;
const BIDS: u8 = 1;

type Out = (Bid, Person, Auction);

struct ThreeWay;

/// The map entries that are auctions.
fn auctions(entries: &[(Vec<u8>, Event)]) -> impl Iterator<Item = &Auction> {
    entries.iter().filter_map(|(_, e)| match e {
        Event::Auction(a) => Some(a),
        _ => None,
    })
}

/// The map entries that are bids.
fn bids(entries: &[(Vec<u8>, Event)]) -> impl Iterator<Item = &Bid> {
    entries.iter().filter_map(|(_, e)| match e {
        Event::Bid(b) => Some(b),
        _ => None,
    })
}

impl KeyedProcessFunction<i64, Event, Seen, Out, (), Event> for ThreeWay {
    fn process(
        &mut self,
        _id: &i64,
        e: Event,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, Out, (), Event>,
    ) {
        let (person, sold, placed) = state.get_or_insert_with(|| (None, 0, 0));
        match e {
            Event::Person(p) => {
                if *sold > 0 && *placed > 0 {
                    let p = p.clone();
                    ctx.read_map(BIDS, move |placed, ctx| {
                        ctx.read_map(AUCTIONS, move |sold, ctx| {
                            for b in bids(&placed) {
                                for a in auctions(&sold) {
                                    ctx.emit((b.clone(), p.clone(), a.clone()));
                                }
                            }
                        })
                    });
                }
                *person = Some(p);
            }
            Event::Auction(a) => {
                if let (Some(p), true) = (person.as_ref(), *placed > 0) {
                    let (p, a) = (p.clone(), a.clone());
                    ctx.visit_map(BIDS, move |_, e, ctx| {
                        if let Event::Bid(b) = e {
                            ctx.emit((b.clone(), p.clone(), a.clone()));
                        }
                    });
                }
                *sold = sold.saturating_add(1);
                ctx.put_in_map(AUCTIONS, &a.seq.to_be_bytes(), Event::Auction(a));
            }
            Event::Bid(b) => {
                if let (Some(p), true) = (person.as_ref(), *sold > 0) {
                    let (p, b) = (p.clone(), b.clone());
                    ctx.visit_map(AUCTIONS, move |_, e, ctx| {
                        if let Event::Auction(a) = e {
                            ctx.emit((b.clone(), p.clone(), a.clone()));
                        }
                    });
                }
                *placed = placed.saturating_add(1);
                ctx.put_in_map(BIDS, &b.seq.to_be_bytes(), Event::Bid(b));
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
