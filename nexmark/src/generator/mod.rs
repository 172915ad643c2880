//! The Nexmark event generator: a pure function from (config, event number)
//! to an event, faithful to the generator of the suite Flink uses
//! (`nexmark/nexmark`, module `nexmark-flink`, package `generator`).
//!
//! # How event number `n` becomes an event
//!
//! 1. Its **event id** is `n` shuffled within its out-of-order group
//!    ([`GeneratorConfig::event_id`]; the id is `n` at the default group
//!    size 1). Ids are the suite's "event ids"; `first_event_id` is 0.
//! 2. Its **timestamp** is the timestamp of its id
//!    ([`GeneratorConfig::timestamp_for_event`]): `base_time + id / 10` ms at
//!    the default 10 000 events/s.
//! 3. Its **kind** is decided by `id % total_proportion`: below
//!    `person_proportion` a person, below `person + auction` proportions an
//!    auction, otherwise a bid. At the defaults, of every 50 ids, offset 0 is
//!    a person, 1..=3 are auctions and 4..=49 are bids.
//! 4. Its **fields** follow the suite's rules, one file per kind:
//!    `person.rs` (`PersonGenerator`), `auction.rs` (`AuctionGenerator`),
//!    `bid.rs` and `channel.rs` (`BidGenerator`), `price.rs`
//!    (`PriceGenerator`), `strings.rs` (`StringsGenerator`). Each file's
//!    header lists the rules it keeps.
//!
//! # Determinism (the one deliberate difference from the suite)
//!
//! The suite draws from one unseeded `java.util.Random` shared by all events.
//! Here each event draws from its own SplitMix64 seeded by
//! `(config.seed, event id)` (`rng.rs`), so event `n` depends only on
//! `(config, n)`: any range can be regenerated, in any order, on any thread.
//! The distributions are the suite's; the individual draws are not (no seed of
//! the suite could be matched anyway).
//!
//! # Parallel sources
//!
//! [`Generator::split`] gives subtask `i` of `p` the event numbers `n` with
//! `n % p == i` (a stride, not contiguous chunks), so all subtasks advance
//! through event time together and their union is exactly the sequential
//! stream. (The suite's `GeneratorConfig.split` instead hands each subtask a
//! contiguous block of ids on its own timeline; the union of ours is simpler
//! to check and keeps the watermarks of the subtasks aligned.)

mod auction;
mod bid;
mod channel;
mod person;
mod price;
mod rng;
mod strings;

use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::Arc;

use self::channel::Channels;
use self::rng::{Rng, Stream};
use crate::config::GeneratorConfig;
use crate::error::{Error, Result};
use crate::model::{Event, EventType};

/// Produces Nexmark events by event number. Cheap to clone (the channel table
/// is shared); `Send + Sync`, so one generator can serve many threads.
#[derive(Clone, Debug)]
pub struct Generator {
    config: GeneratorConfig,
    channels: Arc<Channels>,
}

impl Generator {
    /// A generator for `config`, after [`GeneratorConfig::validate`]. Draws
    /// the 10 004 channel URLs of the seed once (about a millisecond).
    pub fn new(config: GeneratorConfig) -> Result<Self> {
        config.validate()?;
        let channels = Arc::new(Channels::new(config.seed));
        Ok(Self { config, channels })
    }

    /// The configuration this generator was built with.
    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// The event id of event number `n` (see the module docs).
    pub fn event_id(&self, n: u64) -> u64 {
        self.config.event_id(n)
    }

    /// The kind of event number `n`, without generating it.
    pub fn event_type(&self, n: u64) -> EventType {
        self.kind_of_id(self.config.event_id(n))
    }

    /// The timestamp of event number `n` (ms since the Unix epoch).
    pub fn timestamp(&self, n: u64) -> i64 {
        self.config.timestamp_for_event(self.config.event_id(n))
    }

    /// A watermark valid after event number `n`: no event numbered `n` or
    /// later has an earlier timestamp. Equals [`timestamp`](Self::timestamp)
    /// when events are in order (group size 1).
    pub fn watermark(&self, n: u64) -> i64 {
        let first_of_group = self.config.watermark_event_number(n);
        self.config.timestamp_for_event(first_of_group)
    }

    /// Event number `n`.
    pub fn event(&self, n: u64) -> Event {
        let config = &self.config;
        let id = config.event_id(n);
        let timestamp = config.timestamp_for_event(id);
        let mut rng = Rng::new(config.seed, Stream::Event, id);
        match self.kind_of_id(id) {
            EventType::Person => {
                Event::Person(person::next_person(config, &mut rng, id, timestamp, n))
            }
            EventType::Auction => {
                Event::Auction(auction::next_auction(config, &mut rng, id, timestamp, n))
            }
            EventType::Bid => Event::Bid(bid::next_bid(
                config,
                &self.channels,
                &mut rng,
                id,
                timestamp,
                n,
            )),
        }
    }

    /// The events numbered `range`, in order.
    pub fn events(&self, range: Range<u64>) -> Events {
        Events {
            generator: self.clone(),
            next: range.start,
            end: range.end.max(range.start),
            step: 1,
        }
    }

    /// The share of `range` of parallel source subtask `subtask` out of
    /// `parallelism`: every event number `n` in `range` with
    /// `n % parallelism == subtask`, in order. The shares of subtasks
    /// `0..parallelism` partition `range`.
    pub fn split(&self, subtask: u64, parallelism: u64, range: Range<u64>) -> Result<Events> {
        if parallelism == 0 || subtask >= parallelism {
            return Err(Error::InvalidArgument(format!(
                "split: subtask {subtask} must be below parallelism {parallelism}, \
                 and parallelism at least 1"
            )));
        }
        // First n >= range.start with n % parallelism == subtask.
        let residue = range.start % parallelism;
        let behind = if subtask >= residue {
            subtask - residue
        } else {
            subtask + (parallelism - residue)
        };
        let end = range.end.max(range.start);
        let next = range.start.checked_add(behind).unwrap_or(end).min(end);
        Ok(Events {
            generator: self.clone(),
            next,
            end,
            step: parallelism,
        })
    }

    fn kind_of_id(&self, id: u64) -> EventType {
        let offset = id % self.config.total_proportion();
        let people = u64::from(self.config.person_proportion);
        if offset < people {
            EventType::Person
        } else if offset < people + u64::from(self.config.auction_proportion) {
            EventType::Auction
        } else {
            EventType::Bid
        }
    }
}

/// An iterator over a set of event numbers (a range, or a subtask's stride of
/// one), yielding the events. Owns a clone of its [`Generator`], so it can be
/// moved to another thread.
#[derive(Clone, Debug)]
pub struct Events {
    generator: Generator,
    /// Next event number to yield; `next >= end` when done.
    next: u64,
    end: u64,
    step: u64,
}

impl Events {
    /// The number of the event the next call yields, if any: the position to
    /// record in a checkpoint and resume from.
    pub fn next_event_number(&self) -> Option<u64> {
        (self.next < self.end).then_some(self.next)
    }

    /// Events left to yield.
    pub fn remaining(&self) -> u64 {
        if self.next >= self.end {
            0
        } else {
            (self.end - self.next - 1) / self.step + 1
        }
    }

    /// Clears `out` and fills it with up to `max` next events; returns how
    /// many (0 once exhausted). Reusing `out` keeps the batch allocation.
    pub fn next_batch(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        out.clear();
        let count = self.remaining().min(max as u64) as usize;
        out.reserve(count);
        for _ in 0..count {
            out.push(self.generator.event(self.next));
            self.advance();
        }
        count
    }

    fn advance(&mut self) {
        self.next = self.next.checked_add(self.step).unwrap_or(self.end);
    }
}

impl Iterator for Events {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let n = self.next_event_number()?;
        self.advance();
        Some(self.generator.event(n))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match usize::try_from(self.remaining()) {
            Ok(left) => (left, Some(left)),
            Err(_) => (usize::MAX, None),
        }
    }
}

impl FusedIterator for Events {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_rejects_bad_arguments() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        assert!(generator.split(0, 0, 0..10).is_err());
        assert!(generator.split(3, 3, 0..10).is_err());
    }

    #[test]
    fn split_starts_at_the_right_residue() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let share = generator.split(1, 4, 10..20).unwrap();
        assert_eq!(share.next_event_number(), Some(13));
        assert_eq!(share.remaining(), 2); // 13, 17
        let empty = generator.split(3, 4, 16..19).unwrap();
        assert_eq!(empty.remaining(), 0);
        assert_eq!(empty.next_event_number(), None);
        // u64::MAX - 3 is even: 0 of 2 takes MAX - 3 and MAX - 1.
        let top = generator.split(0, 2, u64::MAX - 3..u64::MAX).unwrap();
        assert_eq!(top.remaining(), 2);
        assert_eq!(top.count(), 2);
    }

    #[test]
    fn batches_cover_the_range() {
        let generator = Generator::new(GeneratorConfig::default()).unwrap();
        let mut events = generator.events(100..305);
        let mut batch = Vec::new();
        let mut total = 0;
        while events.next_batch(&mut batch, 64) > 0 {
            total += batch.len();
        }
        assert_eq!(total, 205);
        assert_eq!(batch.len(), 0);
    }
}
