//! Prices in cents (suite: `PriceGenerator`).
//!
//! A price is `round(10^(6u) * 100)` for `u` uniform in `[0, 1)`: log-uniform
//! between one dollar and one million dollars, so most prices are small and a
//! few are very large. The result lies in `100..=100_000_000` cents (the upper
//! end only when `u` is within about 4e-10 of 1).

use super::rng::Rng;

/// Smallest price: 100 cents.
pub(crate) const MIN_PRICE: u64 = 100;
/// Largest possible price: 10^8 cents.
pub(crate) const MAX_PRICE: u64 = 100_000_000;

/// A random price in cents.
#[inline]
pub(crate) fn next_price(rng: &mut Rng) -> u64 {
    let exponent = rng.next_f64() * 6.0;
    // Java's Math.round: floor(x + 0.5).
    let price = (10f64.powf(exponent) * 100.0 + 0.5).floor() as u64;
    debug_assert!((MIN_PRICE..=MAX_PRICE).contains(&price));
    price
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    #[test]
    fn prices_are_log_uniform_in_bounds() {
        let mut rng = Rng::new(9, Stream::Event, 0);
        let mut below_10_dollars = 0;
        for _ in 0..60_000 {
            let price = next_price(&mut rng);
            assert!((MIN_PRICE..=MAX_PRICE).contains(&price), "{price}");
            if price < 1_000 {
                below_10_dollars += 1;
            }
        }
        // One decade out of six: a sixth of the prices are under $10.
        assert!(
            (9_000..11_000).contains(&below_10_dollars),
            "{below_10_dollars}"
        );
    }
}
