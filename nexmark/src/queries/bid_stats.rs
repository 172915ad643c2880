//! The bidding statistics of q15 and q16: per group, bid counts per price
//! rank and distinct bidders and auctions per price rank.
//!
//! One keyed aggregate per group whose accumulator holds the counts and,
//! for each bidder and each auction of the group, one byte of "seen at price
//! rank r" flags (a map per group, the way Flink keeps a map state per
//! distinct aggregate). The aggregate folds a batch per group and emits its
//! updating result in mini-batches.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use riverbed_compute::{Aggregate, Change, Codec, DataStream};

use super::common::price_rank;
use crate::model::Bid;

/// Slots of the totals: `[total_bids, rank1..3_bids, total_bidders,
/// rank1..3_bidders, total_auctions, rank1..3_auctions, max minute]`.
pub const SLOTS: usize = 13;
const MINUTE: usize = 12;

/// Per group: `(totals, bidder flags, auction flags)`; in the flags bit 0 =
/// seen, bit 1 + r = seen at price rank r.
type Acc = (Vec<i64>, FlagMap, FlagMap);

/// Flags per id. A hash map: a hot group holds hundreds of thousands of
/// ids, and a tree walk per bid cost more than the rest of the query.
#[derive(Clone, Default)]
pub struct FlagMap(HashMap<i64, u8, BuildHasherDefault<IdHasher>>);

/// Ids are small integers: one multiply spreads them over the table.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

/// Encoding: `count u64 | (id i64, flags u8)*` in ascending id order, so
/// equal maps encode equally.
impl Codec for FlagMap {
    fn encode(&self, out: &mut Vec<u8>) {
        let mut entries: Vec<(i64, u8)> = self.0.iter().map(|(&k, &v)| (k, v)).collect();
        entries.sort_unstable();
        out.reserve(8 + entries.len() * 9);
        (entries.len() as u64).encode(out);
        for (k, v) in entries {
            k.encode(out);
            v.encode(out);
        }
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = u64::decode(input)?;
        let mut map = HashMap::with_capacity_and_hasher(
            usize::try_from(n).ok()?.min(input.len() / 9),
            BuildHasherDefault::default(),
        );
        for _ in 0..n {
            map.insert(i64::decode(input)?, u8::decode(input)?);
        }
        Some(FlagMap(map))
    }
}

/// Folds one bid into a group's accumulator.
fn add(acc: &mut Acc, b: &Bid, minute: i64) {
    let (totals, bidders, auctions) = acc;
    let rank = price_rank(b.price);
    totals[0] += 1;
    totals[1 + rank] += 1;
    for (base, flags) in [
        (4, bidders.0.entry(b.bidder)),
        (8, auctions.0.entry(b.auction)),
    ] {
        let f = flags.or_insert(0);
        if *f == 0 {
            totals[base] += 1;
        }
        if *f & (2 << rank) == 0 {
            totals[base + 1 + rank] += 1;
        }
        *f |= 1 | (2 << rank);
    }
    totals[MINUTE] = totals[MINUTE].max(minute);
}

/// The totals per group as an updating `(group, totals)` changelog.
pub fn stats<G>(
    bids: DataStream<Bid>,
    name: &str,
    group: impl Fn(&Bid) -> G + Clone + Send + Sync + 'static,
    minute: impl Fn(&Bid) -> i64 + Clone + Send + Sync + 'static,
) -> DataStream<Change<(G, Vec<i64>)>>
where
    G: Codec + Clone + Send + Sync + 'static,
{
    bids.key_by(group)
        .aggregate(&format!("{name}-stats"), move || {
            let minute = minute.clone();
            Aggregate::new(
                || (vec![0i64; SLOTS], FlagMap::default(), FlagMap::default()),
                move |acc: &mut Acc, b: &Bid| add(acc, b, minute(b)),
                |acc: &Acc| acc.0.clone(),
            )
        })
}
