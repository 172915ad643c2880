//! Nexmark on Riverbed: the event generator and the event-file format.
//! Queries and the benchmark runner build on these.
//!
//! Nexmark models an online auction site with three event kinds: people
//! registering ([`Person`]), people opening auctions ([`Auction`]) and
//! people bidding ([`Bid`]). This crate reproduces the generator of the
//! Nexmark suite that Flink uses (`nexmark/nexmark`, module `nexmark-flink`)
//! with its defaults: the same mix of events, the same id, price, string and
//! timing rules, the same source-table shape for files.
//!
//! The one deliberate difference: event number `n` is a pure function of the
//! configuration (including its seed) and `n`, so any range of the stream
//! can be regenerated in any order on any thread (see [`generator`]).
//!
//! ```
//! use riverbed_nexmark::{Event, Generator, GeneratorConfig};
//!
//! let generator = Generator::new(GeneratorConfig::default())?;
//! // Event 0 is the first person, 1..=3 are auctions, 4..=49 bids.
//! let Event::Person(person) = generator.event(0) else { unreachable!() };
//! assert_eq!(person.id, 1000);
//! // Two parallel source subtasks share the first 100 events by stride.
//! let even: Vec<Event> = generator.split(0, 2, 0..100)?.collect();
//! assert_eq!(even[1], generator.event(2));
//!
//! // Events as JSON lines in the suite's table shape, and back: an event's
//! // place in a file (`seq`) is its line, so the first 100 events read back
//! // as they were generated.
//! let first: Vec<Event> = generator.events(0..100).collect();
//! let mut writer = riverbed_nexmark::EventWriter::new(Vec::new());
//! writer.write_all(&first)?;
//! let bytes = writer.finish()?;
//! let read: Vec<Event> = riverbed_nexmark::EventReader::new(&bytes[..])
//!     .collect::<Result<_, _>>()?;
//! assert_eq!(read, first);
//! assert_eq!(read[2].seq(), 2);
//! # Ok::<(), riverbed_nexmark::Error>(())
//! ```
//!
//! Modules: [`config`] (settings and timing rules), [`model`] (the events),
//! [`generator`] (the rules that make them), [`json`] (event files),
//! [`timestamp`] (the text form of timestamps), [`source`] (the generator
//! and event files as replayable sources), [`error`].

pub mod codec;
pub mod config;
pub mod error;
pub mod generator;
pub mod json;
pub mod model;
pub mod queries;
pub mod row;
pub mod runner;
pub mod source;
pub mod timestamp;

pub use config::{
    GeneratorConfig, DEFAULT_BASE_TIME_MS, FIRST_AUCTION_ID, FIRST_CATEGORY_ID, FIRST_PERSON_ID,
};
pub use error::{Error, Result};
pub use generator::{Events, Generator};
pub use json::{EventReader, EventWriter};
pub use model::{Auction, Bid, Event, EventType, Person};
pub use row::{Row, Value};
