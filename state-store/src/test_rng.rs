//! The unit tests' random numbers: a xorshift64 generator, small and
//! seeded so that a failing input can be reproduced from its seed.

/// xorshift64 (shifts 13, 7, 17); the seed must not be zero.
pub struct XorShift(pub u64);

impl XorShift {
    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        let x = &mut self.0;
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }
}
