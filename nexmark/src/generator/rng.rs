//! The seeded random source of the generator: SplitMix64, one instance per
//! event.
//!
//! The suite draws every event from one shared, unseeded `java.util.Random`,
//! so an event depends on every event before it and no run repeats. Here each
//! event gets its own generator seeded from `(config seed, event id)`: event
//! `n` can be produced alone, in any order, on any thread, and always comes
//! out the same. SplitMix64 is tiny (one `u64` of state), fast, and passes
//! BigCrush; seeding through its bijective finaliser keeps the per-event
//! streams distinct.

/// Weyl increment of SplitMix64 (2^64 / golden ratio).
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// Independent uses of the seed, so that e.g. channel URLs and event `k` do
/// not draw the same numbers.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    /// The draws of one event, indexed by event id.
    Event = 0,
    /// The URL of one ordinary channel, indexed by channel number.
    ChannelUrl = 1,
    /// The URL of one hot channel, indexed by hot channel number.
    HotUrl = 2,
}

/// The SplitMix64 finaliser: a bijection on `u64` with good avalanche.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 generator.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: u64,
}

impl Rng {
    /// The generator for item `index` of `stream` under `seed`. Distinct
    /// indexes give distinct starting states (the finaliser is a bijection).
    pub(crate) fn new(seed: u64, stream: Stream, index: u64) -> Self {
        let base = mix64(seed ^ mix64((stream as u64).wrapping_mul(GOLDEN_GAMMA)));
        Self {
            state: base ^ mix64(index),
        }
    }

    /// 64 uniformly random bits.
    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A number in `0..bound` (`bound > 0`), by multiply-shift: the bias is
    /// below `bound / 2^64`, far under anything a benchmark could observe.
    #[inline]
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// An index in `0..len` (`len > 0`).
    #[inline]
    pub(crate) fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// A uniformly random `i32` over its whole range, negative values
    /// included (Java's `Random.nextInt()`).
    #[inline]
    pub(crate) fn next_i32(&mut self) -> i32 {
        (self.next_u64() >> 32) as u32 as i32
    }

    /// A uniformly random double in `[0, 1)` with 53 random bits (Java's
    /// `nextDouble()`).
    #[inline]
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_same_draws() {
        let mut a = Rng::new(7, Stream::Event, 1234);
        let mut b = Rng::new(7, Stream::Event, 1234);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        let mut c = Rng::new(7, Stream::Event, 1235);
        let mut d = Rng::new(8, Stream::Event, 1234);
        let mut e = Rng::new(7, Stream::ChannelUrl, 1234);
        let first = Rng::new(7, Stream::Event, 1234).next_u64();
        assert_ne!(first, c.next_u64());
        assert_ne!(first, d.next_u64());
        assert_ne!(first, e.next_u64());
    }

    #[test]
    fn ranges_hold() {
        let mut rng = Rng::new(1, Stream::Event, 0);
        let mut seen = [0u32; 13];
        let mut negative = 0;
        for _ in 0..100_000 {
            seen[rng.index(13)] += 1;
            let x = rng.next_f64();
            assert!((0.0..1.0).contains(&x));
            if rng.next_i32() < 0 {
                negative += 1;
            }
        }
        // Roughly uniform: each bucket near 100_000 / 13 = 7692.
        assert!(
            seen.iter().all(|&count| (7000..8400).contains(&count)),
            "{seen:?}"
        );
        assert!((45_000..55_000).contains(&negative));
    }
}
