//! q8, monitor new users: persons who opened an auction in the same 10 s
//! tumbling window in which they registered.
//!
//! Keyed by person id over both inputs: a person registers once, so the key
//! remembers the person's window (or, before the person arrives, the windows
//! of their auctions) and emits the single row as soon as both sides meet.
//! The row is final when emitted, like Flink's window join output.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::common::insert;
use super::Built;
use crate::model::Event;
use crate::row::Value;

const SIZE: i64 = 10_000;

#[derive(Clone)]
enum Input {
    /// A person: id, name, window start.
    Person(i64, String, i64),
    /// An auction: seller, window start.
    Auction(i64, i64),
}

crate::codec::tagged_codec!(Input {
    0 => Person(id: i64, name: String, start: i64),
    1 => Auction(seller: i64, start: i64),
});

/// `(person's (name, window start) once known, auction windows seen before
/// the person, emitted)`.
type Seen = (Option<(String, i64)>, Vec<i64>, bool);

struct NewUsers;

impl KeyedProcessFunction<i64, Input, Seen, (i64, String, i64)> for NewUsers {
    fn process(
        &mut self,
        id: &i64,
        input: Input,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, (i64, String, i64)>,
    ) {
        let (person, windows, emitted) = state.get_or_insert_with(|| (None, Vec::new(), false));
        if *emitted {
            return;
        }
        match input {
            Input::Person(_, name, start) => {
                if windows.contains(&start) {
                    ctx.emit((*id, name.clone(), start));
                    *emitted = true;
                }
                windows.clear();
                *person = Some((name, start));
            }
            Input::Auction(_, start) => match person {
                Some((name, s)) if *s == start => {
                    ctx.emit((*id, name.clone(), start));
                    *emitted = true;
                }
                Some(_) => {}
                None => {
                    if !windows.contains(&start) {
                        windows.push(start);
                    }
                }
            },
        }
    }
}

fn window_start(t: i64) -> i64 {
    t.div_euclid(SIZE) * SIZE
}

pub fn build(events: DataStream<Event>) -> Built {
    events
        .flat_map("q8-inputs", |e| match e {
            Event::Person(p) => Some(Input::Person(p.id, p.name, window_start(p.date_time))),
            Event::Auction(a) => Some(Input::Auction(a.seller, window_start(a.date_time))),
            Event::Bid(_) => None,
        })
        .key_by(|i: &Input| match i {
            Input::Person(id, ..) | Input::Auction(id, _) => *id,
        })
        .process("q8-join", || NewUsers)
        .map("q8-rows", |(id, name, start)| {
            insert(vec![Value::int(id), Value::Str(name), Value::Time(start)])
        })
}
