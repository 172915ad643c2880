//! How events live in operator state: the compute layer's [`Codec`] for
//! persons, auctions and bids (joins and winners keep them per key).
//! Fields in declaration order, each with its own codec; `seq` last.

use riverbed_compute::codec::Schema;
use riverbed_compute::Codec;

use crate::model::{Auction, Bid, Event, Person};

/// The codec of an enum of tuple variants: a tag byte, then the variant's
/// fields in order, each by its own codec. How the inputs of two-sided
/// operators (and events) cross an exchange.
macro_rules! tagged_codec {
    ($ty:ty { $($tag:literal => $var:ident($($f:ident: $ft:ty),+)),+ $(,)? }) => {
        impl riverbed_compute::Codec for $ty {
            fn encode(&self, out: &mut Vec<u8>) {
                match self {
                    $(Self::$var($($f),+) => {
                        out.push($tag);
                        $(riverbed_compute::Codec::encode($f, out);)+
                    })+
                }
            }

            fn decode(input: &mut &[u8]) -> Option<Self> {
                let (&tag, rest) = input.split_first()?;
                *input = rest;
                match tag {
                    $($tag => Some(Self::$var($(<$ft as riverbed_compute::Codec>::decode(input)?),+)),)+
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use tagged_codec;

// The suite's event type codes.
tagged_codec!(Event {
    0 => Person(p: Person),
    1 => Auction(a: Auction),
    2 => Bid(b: Bid),
});

impl Codec for Person {
    fn schema() -> Schema {
        use Schema::{Str, I64, U64};
        Schema::record(&[
            ("id", I64),
            ("name", Str),
            ("email_address", Str),
            ("credit_card", Str),
            ("city", Str),
            ("state", Str),
            ("date_time", I64),
            ("extra", Str),
            ("seq", U64),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.name.encode(out);
        self.email_address.encode(out);
        self.credit_card.encode(out);
        self.city.encode(out);
        self.state.encode(out);
        self.date_time.encode(out);
        self.extra.encode(out);
        self.seq.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(Person {
            id: i64::decode(input)?,
            name: String::decode(input)?,
            email_address: String::decode(input)?,
            credit_card: String::decode(input)?,
            city: String::decode(input)?,
            state: String::decode(input)?,
            date_time: i64::decode(input)?,
            extra: String::decode(input)?,
            seq: u64::decode(input)?,
        })
    }
}

impl Codec for Auction {
    fn schema() -> Schema {
        use Schema::{Str, I64, U64};
        Schema::record(&[
            ("id", I64),
            ("item_name", Str),
            ("description", Str),
            ("initial_bid", I64),
            ("reserve", I64),
            ("date_time", I64),
            ("expires", I64),
            ("seller", I64),
            ("category", I64),
            ("extra", Str),
            ("seq", U64),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.id.encode(out);
        self.item_name.encode(out);
        self.description.encode(out);
        self.initial_bid.encode(out);
        self.reserve.encode(out);
        self.date_time.encode(out);
        self.expires.encode(out);
        self.seller.encode(out);
        self.category.encode(out);
        self.extra.encode(out);
        self.seq.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(Auction {
            id: i64::decode(input)?,
            item_name: String::decode(input)?,
            description: String::decode(input)?,
            initial_bid: i64::decode(input)?,
            reserve: i64::decode(input)?,
            date_time: i64::decode(input)?,
            expires: i64::decode(input)?,
            seller: i64::decode(input)?,
            category: i64::decode(input)?,
            extra: String::decode(input)?,
            seq: u64::decode(input)?,
        })
    }
}

impl Codec for Bid {
    fn schema() -> Schema {
        use Schema::{Str, I64, U64};
        Schema::record(&[
            ("auction", I64),
            ("bidder", I64),
            ("price", I64),
            ("channel", Str),
            ("url", Str),
            ("date_time", I64),
            ("extra", Str),
            ("seq", U64),
        ])
    }

    fn encode(&self, out: &mut Vec<u8>) {
        self.auction.encode(out);
        self.bidder.encode(out);
        self.price.encode(out);
        self.channel.encode(out);
        self.url.encode(out);
        self.date_time.encode(out);
        self.extra.encode(out);
        self.seq.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(Bid {
            auction: i64::decode(input)?,
            bidder: i64::decode(input)?,
            price: i64::decode(input)?,
            channel: String::decode(input)?,
            url: String::decode(input)?,
            date_time: i64::decode(input)?,
            extra: String::decode(input)?,
            seq: u64::decode(input)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Event, Generator, GeneratorConfig};

    #[test]
    fn generated_events_round_trip() {
        let g = Generator::new(GeneratorConfig::default()).unwrap();
        for e in g.events(0..200) {
            // Whole, as it crosses an exchange; and a tag nothing wrote.
            assert_eq!(Event::from_bytes(&e.to_bytes()).as_ref(), Some(&e));
            let mut bad = e.to_bytes();
            bad[0] = 9;
            assert_eq!(Event::from_bytes(&bad), None);
            match e {
                Event::Person(p) => assert_eq!(Person::from_bytes(&p.to_bytes()), Some(p)),
                Event::Auction(a) => assert_eq!(Auction::from_bytes(&a.to_bytes()), Some(a)),
                Event::Bid(b) => assert_eq!(Bid::from_bytes(&b.to_bytes()), Some(b)),
            }
        }
    }
}
