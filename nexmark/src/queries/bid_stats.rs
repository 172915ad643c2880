//! The bidding statistics of q15 and q16: per group, bid counts per price
//! rank and distinct bidders and auctions per price rank.
//!
//! Distinct counts in two steps, as Flink's split distinct aggregation does,
//! so that no group keeps a set of every bidder it saw: each bid becomes two
//! probes keyed by `(group, dimension, id)` whose state is one byte of "seen
//! at rank r" flags; a probe emits +1 for every flag it sets first. A keyed
//! aggregate per group then sums those deltas.

use riverbed_compute::operators::process::{Context, KeyedProcessFunction};
use riverbed_compute::{Aggregate, Change, Codec, DataStream};

use super::common::price_rank;
use crate::model::Bid;

/// Slots of a delta / total: `[total_bids, rank1..3_bids, total_bidders,
/// rank1..3_bidders, total_auctions, rank1..3_auctions, max minute]`.
pub const SLOTS: usize = 13;
const MINUTE: usize = 12;

/// One bid seen from the bidder (`dim` 0) or auction (`dim` 1) side.
#[derive(Clone)]
struct Probe<G> {
    group: G,
    dim: u8,
    id: u64,
    rank: u8,
    minute: i64,
}

struct Flags;

impl<G: Send + 'static> KeyedProcessFunction<(G, u8, u64), Probe<G>, u8, (G, Vec<i64>)> for Flags {
    fn process(
        &mut self,
        _key: &(G, u8, u64),
        p: Probe<G>,
        seen: &mut Option<u8>,
        ctx: &mut Context<'_, (G, Vec<i64>)>,
    ) {
        let before = seen.unwrap_or(0);
        let after = before | 1 | (2 << p.rank);
        let mut delta = vec![0i64; SLOTS];
        let base = 4 + 4 * p.dim as usize;
        if before == 0 {
            delta[base] = 1;
        }
        if before & (2 << p.rank) == 0 {
            delta[base + 1 + p.rank as usize] = 1;
        }
        if p.dim == 0 {
            // The bidder probe also carries the bid itself.
            delta[0] = 1;
            delta[1 + p.rank as usize] = 1;
        }
        delta[MINUTE] = p.minute;
        *seen = Some(after);
        ctx.emit((p.group, delta));
    }
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
    bids.flat_map(&format!("{name}-probes"), move |b: Bid| {
        let (g, rank, m) = (group(&b), price_rank(b.price) as u8, minute(&b));
        [
            Probe {
                group: g.clone(),
                dim: 0,
                id: b.bidder,
                rank,
                minute: m,
            },
            Probe {
                group: g,
                dim: 1,
                id: b.auction,
                rank,
                minute: m,
            },
        ]
    })
    .key_by(|p: &Probe<G>| (p.group.clone(), p.dim, p.id))
    .process(&format!("{name}-distinct"), || Flags)
    .key_by(|d: &(G, Vec<i64>)| d.0.clone())
    .aggregate(&format!("{name}-totals"), || {
        Aggregate::new(
            || vec![0i64; SLOTS],
            |acc: &mut Vec<i64>, d: &(G, Vec<i64>)| {
                for (a, x) in acc[..MINUTE].iter_mut().zip(&d.1[..MINUTE]) {
                    *a += x;
                }
                acc[MINUTE] = acc[MINUTE].max(d.1[MINUTE]);
            },
            |acc: &Vec<i64>| acc.clone(),
        )
    })
}
