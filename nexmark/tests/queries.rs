//! Every Nexmark query on the engine against the reference evaluation in
//! `common::reference`, on the same few hundred thousand generated events:
//! insert-only results must be the same multiset of rows, updating results
//! the same final table.

mod common;

use common::{final_table, run_engine};

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use riverbed_compute::{Change, RowKind};
use riverbed_nexmark::queries::info;
use riverbed_nexmark::runner::EventSource;
use riverbed_nexmark::{Event, GeneratorConfig, Row};

/// Events per test run (`RIVERBED_NEXMARK_TEST_EVENTS` overrides).
fn event_count() -> u64 {
    std::env::var("RIVERBED_NEXMARK_TEST_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000)
}

fn source() -> &'static (EventSource, Vec<Event>) {
    static SOURCE: OnceLock<(EventSource, Vec<Event>)> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let n = event_count();
        let source = EventSource::generator(GeneratorConfig::default(), n).unwrap();
        let EventSource::Generator { generator, .. } = &source else {
            unreachable!()
        };
        let events = generator.events(0..n).collect();
        (source, events)
    })
}

fn side_input() -> HashMap<i64, String> {
    // Every third key, so the lookup join also drops bids.
    (0..10_000i64)
        .filter(|k| k % 3 != 1)
        .map(|k| (k, format!("v{k}")))
        .collect()
}

fn engine(query: &str, parallelism: usize) -> Vec<Change<Row>> {
    let run = run_engine(query, &source().0, parallelism, side_input());
    assert_eq!(run.report.events, event_count());
    run.changes
}

fn check(query: &str, parallelism: usize) {
    let side: BTreeMap<i64, String> = side_input().into_iter().collect();
    let expected = common::reference::evaluate(query, &source().1, &side).unwrap();
    let run = run_engine(query, &source().0, parallelism, side_input());
    assert_eq!(run.report.events, event_count());
    let changes = run.changes;
    let updating = info(query).unwrap().updating;
    // The report counts the changelog, and the final table of an updating one.
    assert_eq!(run.report.changelog_rows, changes.len() as u64);
    assert_eq!(
        run.report.final_rows,
        updating.then_some(expected.len() as u64),
        "{query}"
    );
    if !updating {
        assert!(
            changes.iter().all(|c| c.kind == RowKind::Insert),
            "{query} is insert-only"
        );
    }
    let got = final_table(&changes);
    assert!(
        !expected.is_empty(),
        "{query}: the reference has rows to compare"
    );
    if got != expected {
        let missing: Vec<_> = expected
            .iter()
            .filter(|r| !got.contains(r))
            .take(3)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|r| !expected.contains(r))
            .take(3)
            .collect();
        panic!(
            "{query} at parallelism {parallelism}: {} rows, reference {}; \
             missing e.g. {missing:?}; unexpected e.g. {extra:?}",
            got.len(),
            expected.len()
        );
    }
}

macro_rules! against_reference {
    ($($name:ident: $q:literal at $p:literal;)*) => {$(
        #[test]
        fn $name() {
            check($q, $p);
        }
    )*};
}

against_reference! {
    q0_matches_reference: "q0" at 2;
    q1_matches_reference: "q1" at 2;
    q2_matches_reference: "q2" at 3;
    q3_matches_reference: "q3" at 3;
    q4_matches_reference: "q4" at 3;
    q5_matches_reference: "q5" at 3;
    q6_matches_reference: "q6" at 3;
    q7_matches_reference: "q7" at 3;
    q8_matches_reference: "q8" at 3;
    q9_matches_reference: "q9" at 3;
    q10_matches_reference: "q10" at 2;
    q11_matches_reference: "q11" at 3;
    q13_matches_reference: "q13" at 2;
    q14_matches_reference: "q14" at 2;
    q15_matches_reference: "q15" at 3;
    q16_matches_reference: "q16" at 3;
    q17_matches_reference: "q17" at 3;
    q18_matches_reference: "q18" at 3;
    q19_matches_reference: "q19" at 3;
    q20_matches_reference: "q20" at 3;
    q21_matches_reference: "q21" at 2;
    q22_matches_reference: "q22" at 2;
    q23_matches_reference: "q23" at 3;
    q5_matches_reference_at_parallelism_1: "q5" at 1;
    q9_matches_reference_at_parallelism_4: "q9" at 4;
}

/// q12 windows by the wall clock, so its rows differ run to run; what must
/// hold is that every bid is counted exactly once, in its bidder's windows.
#[test]
fn q12_counts_every_bid_once() {
    let changes = engine("q12", 3);
    let mut got: BTreeMap<i64, i64> = BTreeMap::new();
    for c in &changes {
        assert_eq!(c.kind, RowKind::Insert);
        let (riverbed_nexmark::Value::Int(bidder), riverbed_nexmark::Value::Int(n)) =
            (&c.row.0[0], &c.row.0[1])
        else {
            panic!("unexpected row {:?}", c.row)
        };
        *got.entry(*bidder).or_default() += n;
    }
    let mut expected: BTreeMap<i64, i64> = BTreeMap::new();
    for e in &source().1 {
        if let Event::Bid(b) = e {
            *expected.entry(b.bidder).or_default() += 1;
        }
    }
    assert_eq!(got, expected);
}
