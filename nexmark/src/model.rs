//! The three Nexmark event kinds and the event that carries one of them.
//!
//! Field names follow the suite's `model/{Person,Auction,Bid}.java` (in Rust
//! case: `emailAddress` is `email_address`). Ids, prices and categories are
//! `i64`, exactly the suite's `BIGINT` (the generator's are never negative,
//! an event file's may be); timestamps are `i64` milliseconds since the Unix
//! epoch (the suite's `TIMESTAMP(3)`); strings are owned `String`s so that an
//! event moves between threads without shared reference counts.
//!
//! Each event also carries `seq`, its place in the input: the generator's
//! event number, or the event's 0-based line in an event file (several
//! files count on from one to the next). It is not a column of the suite and
//! is not written to files. Where Flink keeps one of several rows that tie on
//! what a query orders by, it keeps the one that arrived first or last;
//! `seq` is that arrival order, made deterministic under parallel sources.

/// A person who may sell items or bid on them (suite: `Person`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Person {
    /// Person id, from [`FIRST_PERSON_ID`](crate::FIRST_PERSON_ID) upwards.
    pub id: i64,
    /// First and last name, e.g. `"Peter Shultz"`.
    pub name: String,
    /// E-mail address, e.g. `"abc@xyz.com"`.
    pub email_address: String,
    /// Credit card number: four groups of four digits separated by spaces.
    pub credit_card: String,
    /// US city.
    pub city: String,
    /// US state code.
    pub state: String,
    /// When the person registered (ms since the Unix epoch).
    pub date_time: i64,
    /// Padding that brings the person to its configured average size.
    pub extra: String,
    /// Place in the input (see the module docs).
    pub seq: u64,
}

/// An item put up for auction by a person (suite: `Auction`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Auction {
    /// Auction id, from [`FIRST_AUCTION_ID`](crate::FIRST_AUCTION_ID) upwards.
    pub id: i64,
    /// Name of the item.
    pub item_name: String,
    /// Description of the item.
    pub description: String,
    /// Starting price, in cents.
    pub initial_bid: i64,
    /// Reserve price, in cents; above `initial_bid` in generated events.
    pub reserve: i64,
    /// When the auction opened (ms since the Unix epoch).
    pub date_time: i64,
    /// When the auction closes (ms since the Unix epoch); after `date_time`
    /// in generated events.
    pub expires: i64,
    /// Person id of the seller.
    pub seller: i64,
    /// Category id, in `FIRST_CATEGORY_ID..FIRST_CATEGORY_ID + 5` in
    /// generated events.
    pub category: i64,
    /// Padding that brings the auction to its configured average size.
    pub extra: String,
    /// Place in the input (see the module docs).
    pub seq: u64,
}

/// A bid on an auction (suite: `Bid`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bid {
    /// Auction id the bid is for.
    pub auction: i64,
    /// Person id of the bidder.
    pub bidder: i64,
    /// Offered price, in cents.
    pub price: i64,
    /// Channel the bid came through, e.g. `"Google"` or `"channel-4711"`.
    pub channel: String,
    /// URL the bid came from.
    pub url: String,
    /// When the bid was placed (ms since the Unix epoch).
    pub date_time: i64,
    /// Padding that brings the bid to its configured average size.
    pub extra: String,
    /// Place in the input (see the module docs).
    pub seq: u64,
}

/// Kind of an event, with the suite's `event_type` codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventType {
    /// A new person, code 0.
    Person = 0,
    /// A new auction, code 1.
    Auction = 1,
    /// A bid, code 2.
    Bid = 2,
}

impl EventType {
    /// The suite's `event_type` code: 0 person, 1 auction, 2 bid.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The kind with the given code, if it is one.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Person),
            1 => Some(Self::Auction),
            2 => Some(Self::Bid),
            _ => None,
        }
    }

    /// Name of the nested object carrying this kind in the source table
    /// (`"person"`, `"auction"`, `"bid"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Person => "person",
            Self::Auction => "auction",
            Self::Bid => "bid",
        }
    }
}

/// One Nexmark event: a person, an auction or a bid.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The kind of this event (`event_type() as u8` is the suite's code).
    pub fn event_type(&self) -> EventType {
        match self {
            Event::Person(_) => EventType::Person,
            Event::Auction(_) => EventType::Auction,
            Event::Bid(_) => EventType::Bid,
        }
    }

    /// Place in the input (see the module docs).
    pub fn seq(&self) -> u64 {
        match self {
            Event::Person(p) => p.seq,
            Event::Auction(a) => a.seq,
            Event::Bid(b) => b.seq,
        }
    }

    /// The event-time timestamp (the nested `date_time`), in ms since the
    /// Unix epoch.
    pub fn timestamp(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_codes_are_the_suites() {
        assert_eq!(EventType::Person as u8, 0);
        assert_eq!(EventType::Auction.code(), 1);
        assert_eq!(EventType::Bid.code(), 2);
        for code in 0..3 {
            assert_eq!(EventType::from_code(code).unwrap().code(), code);
        }
        assert_eq!(EventType::from_code(3), None);
    }
}
