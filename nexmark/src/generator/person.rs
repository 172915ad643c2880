//! People, and the person-id rules shared by auctions and bids (suite:
//! `PersonGenerator`).
//!
//! Id rules:
//! - `last_base0_person_id(id)`: the newest person id (counted from 0) at
//!   event id `id`. Event ids run in epochs of `total_proportion` events, the
//!   first `person_proportion` of each epoch being people; an event that is a
//!   person gets the next id, any other event sees the last person of its
//!   epoch: `epoch * person_proportion + min(offset, person_proportion - 1)`.
//! - `next_base0_person_id(id)`: a person chosen for a non-hot seller or
//!   bidder: uniform over the newest `min(people so far, num_active_people)`
//!   people plus `PERSON_ID_LEAD` (10) ids not yet created, so a few auctions
//!   and bids refer to a person who appears a little later.
//!
//! A person has: `id = FIRST_PERSON_ID + last_base0_person_id`; `name` = one
//! of 11 first names, a space, one of 9 last names; `email_address` =
//! `next_string(7) @ next_string(5) .com`; `credit_card` = four groups of four
//! zero-padded digits separated by spaces; `city` one of 10 and `state` one of
//! 6 (western US, kept few so that the queries find matches); `extra` pads
//! `8 + len(name, email, card, city, state)` to `avg_person_byte_size`.

use super::rng::Rng;
use super::strings::{next_extra, push_string};
use crate::config::{GeneratorConfig, FIRST_PERSON_ID};
use crate::model::Person;

/// Number of person ids beyond the newest that may be referred to.
pub(crate) const PERSON_ID_LEAD: u64 = 10;

const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];

const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];

const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];

/// The newest person id (base 0) at `event_id`; the new person's own id if
/// `event_id` is a person.
pub(crate) fn last_base0_person_id(config: &GeneratorConfig, event_id: u64) -> u64 {
    let people = u64::from(config.person_proportion);
    let epoch = event_id / config.total_proportion();
    let offset = (event_id % config.total_proportion()).min(people - 1);
    epoch * people + offset
}

/// A person id (base 0) among the active people plus the lead.
pub(crate) fn next_base0_person_id(config: &GeneratorConfig, rng: &mut Rng, event_id: u64) -> u64 {
    let num_people = last_base0_person_id(config, event_id) + 1;
    let active = num_people.min(u64::from(config.num_active_people));
    num_people - active + rng.below(active + PERSON_ID_LEAD)
}

/// The person of event `event_id`, registered at `timestamp`.
pub(crate) fn next_person(
    config: &GeneratorConfig,
    rng: &mut Rng,
    event_id: u64,
    timestamp: i64,
    seq: u64,
) -> Person {
    let id = last_base0_person_id(config, event_id) as i64 + FIRST_PERSON_ID;

    let first = FIRST_NAMES[rng.index(FIRST_NAMES.len())];
    let last = LAST_NAMES[rng.index(LAST_NAMES.len())];
    let mut name = String::with_capacity(first.len() + 1 + last.len());
    name.push_str(first);
    name.push(' ');
    name.push_str(last);

    let mut email_address = String::with_capacity(7 + 1 + 5 + 4);
    push_string(rng, 7, b' ', &mut email_address);
    email_address.push('@');
    push_string(rng, 5, b' ', &mut email_address);
    email_address.push_str(".com");

    let credit_card = next_credit_card(rng);
    let city = US_CITIES[rng.index(US_CITIES.len())].to_owned();
    let state = US_STATES[rng.index(US_STATES.len())].to_owned();

    let current_size =
        8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
    let extra = next_extra(rng, current_size, config.avg_person_byte_size);
    Person {
        id,
        name,
        email_address,
        credit_card,
        city,
        state,
        date_time: timestamp,
        extra,
        seq,
    }
}

/// Four groups of four zero-padded digits, separated by spaces.
fn next_credit_card(rng: &mut Rng) -> String {
    let mut card = String::with_capacity(19);
    for group in 0..4 {
        if group > 0 {
            card.push(' ');
        }
        let mut value = rng.below(10_000) as u16;
        let mut digits = [b'0'; 4];
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (value % 10) as u8;
            value /= 10;
        }
        for digit in digits {
            card.push(char::from(digit));
        }
    }
    card
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    #[test]
    fn last_person_id_steps_once_per_epoch() {
        let config = GeneratorConfig::default();
        assert_eq!(last_base0_person_id(&config, 0), 0);
        assert_eq!(last_base0_person_id(&config, 49), 0);
        assert_eq!(last_base0_person_id(&config, 50), 1);
        assert_eq!(last_base0_person_id(&config, 120), 2);
        let two = GeneratorConfig {
            person_proportion: 2,
            ..GeneratorConfig::default()
        };
        // Epochs of 51: events 0 and 1 are people 0 and 1.
        assert_eq!(last_base0_person_id(&two, 1), 1);
        assert_eq!(last_base0_person_id(&two, 30), 1);
        assert_eq!(last_base0_person_id(&two, 51), 2);
    }

    #[test]
    fn chosen_people_are_active_or_lead() {
        let config = GeneratorConfig::default();
        let mut rng = Rng::new(0, Stream::Event, 0);
        for event_id in (0..2_000_000).step_by(997) {
            let last = last_base0_person_id(&config, event_id);
            let chosen = next_base0_person_id(&config, &mut rng, event_id);
            assert!(chosen <= last + PERSON_ID_LEAD);
            assert!(chosen + u64::from(config.num_active_people) > last);
        }
    }

    #[test]
    fn person_fields_have_the_suites_shape() {
        let config = GeneratorConfig::default();
        let mut rng = Rng::new(0, Stream::Event, 0);
        for event_id in 0..200 {
            let person = next_person(&config, &mut rng, event_id * 50, 77, 0);
            assert_eq!(person.id, FIRST_PERSON_ID + event_id as i64);
            let (first, last) = person.name.split_once(' ').unwrap();
            assert!(FIRST_NAMES.contains(&first) && LAST_NAMES.contains(&last));
            assert!(person.email_address.ends_with(".com"));
            assert!(person.email_address.contains('@'));
            assert_eq!(person.credit_card.len(), 19);
            assert!(person
                .credit_card
                .split(' ')
                .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_digit())));
            assert!(US_CITIES.contains(&person.city.as_str()));
            assert!(US_STATES.contains(&person.state.as_str()));
            assert_eq!(person.date_time, 77);
        }
    }
}
