//! q3, local item suggestion: sellers in Oregon, Idaho or California and
//! their auctions in category 10 (a regular inner join on `seller = id`).
//!
//! Keyed by person id over both (filtered) inputs: the key keeps the
//! matching person, and the auction ids that came before the person did, so
//! each pair is emitted exactly once whatever the arrival order.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::DataStream;

use super::common::insert;
use super::Built;
use crate::model::Event;
use crate::row::Value;

#[derive(Clone)]
enum Input {
    /// A person: id, and `(name, city, state)` when in one of the states.
    Person(i64, Option<(String, String, String)>),
    /// An auction in category 10: seller, auction id.
    Auction(i64, i64),
}

crate::codec::tagged_codec!(Input {
    0 => Person(id: i64, place: Option<(String, String, String)>),
    1 => Auction(seller: i64, id: i64),
});

/// `(the person once seen: (name, city, state) if in one of the states;
/// auction ids waiting for the person)`. A person outside the states
/// drops the waiting auctions and every later one.
type Seen = (Option<Option<(String, String, String)>>, Vec<i64>);

type Out = (String, String, String, i64);

struct Suggest;

impl KeyedProcessFunction<i64, Input, Seen, Out> for Suggest {
    fn process(
        &mut self,
        _id: &i64,
        input: Input,
        state: &mut Option<Seen>,
        ctx: &mut Context<'_, Out>,
    ) {
        let (person, waiting) = state.get_or_insert_with(|| (None, Vec::new()));
        match input {
            Input::Person(_, matching) => {
                let waiting = std::mem::take(waiting);
                if let Some((name, city, st)) = &matching {
                    for a in waiting {
                        ctx.emit((name.clone(), city.clone(), st.clone(), a));
                    }
                }
                *person = Some(matching);
            }
            Input::Auction(_, a) => match person {
                Some(Some((name, city, st))) => {
                    ctx.emit((name.clone(), city.clone(), st.clone(), a))
                }
                Some(None) => {}
                None => waiting.push(a),
            },
        }
    }
}

pub fn build(events: DataStream<Event>) -> Built {
    events
        .flat_map("q3-inputs", |e| match e {
            Event::Person(p) => {
                let matching = matches!(p.state.as_str(), "OR" | "ID" | "CA")
                    .then(|| (p.name, p.city, p.state));
                Some(Input::Person(p.id, matching))
            }
            Event::Auction(a) if a.category == 10 => Some(Input::Auction(a.seller, a.id)),
            _ => None,
        })
        .key_by(|i: &Input| match i {
            Input::Person(id, ..) | Input::Auction(id, _) => *id,
        })
        .process("q3-join", || Suggest)
        .map("q3-rows", |(name, city, state, id)| {
            insert(vec![
                Value::Str(name),
                Value::Str(city),
                Value::Str(state),
                Value::int(id),
            ])
        })
}
