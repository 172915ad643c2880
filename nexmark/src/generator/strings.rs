//! Random strings: names, descriptions, e-mail parts and the `extra` padding
//! (suite: `StringsGenerator`).
//!
//! Rules kept from the suite:
//! - `next_string(max)`: length `3 + uniform(0..max-3)`; each character is the
//!   "special" one (a space, or `_` in URLs) with probability 1/13, otherwise
//!   a letter `a..=z`; then leading and trailing spaces are trimmed, so the
//!   result may be shorter than drawn (even empty).
//! - `exact_string(len)`: exactly `len` characters, six per random 32-bit
//!   signed integer `r`, each `'a' + r % 26` followed by `r /= 26`. As in the
//!   suite, a negative `r` yields characters *below* `'a'` (`'H'..='a'`, among
//!   them `[`, `\`, `]`, `^`, `_` and backquote), so the padding is not only
//!   lowercase letters.
//! - `next_extra(current, average)`: padding that brings `current + len` to
//!   `average` on average: empty if `current > average`; otherwise with
//!   `rest = average - current` and `delta = round(rest / 5)`, a length
//!   uniform in `rest - delta .. rest + delta` (exactly `rest` when
//!   `delta == 0`), so the mean size is `average - 0.5`.

use super::rng::Rng;

/// Shortest string `next_string` draws (before trimming).
const MIN_STRING_LENGTH: usize = 3;

/// Longest `max_len` any caller passes (descriptions); sizes the stack buffer.
const MAX_STRING_LENGTH: usize = 100;

/// Appends a random string of `MIN_STRING_LENGTH..max_len` characters,
/// trimmed of spaces, with `special` at 1/13 of the positions.
pub(crate) fn push_string(rng: &mut Rng, max_len: usize, special: u8, out: &mut String) {
    debug_assert!((MIN_STRING_LENGTH + 1..=MAX_STRING_LENGTH).contains(&max_len));
    let len = MIN_STRING_LENGTH + rng.index(max_len - MIN_STRING_LENGTH);
    let mut buf = [0u8; MAX_STRING_LENGTH];
    for byte in &mut buf[..len] {
        *byte = if rng.index(13) == 0 {
            special
        } else {
            b'a' + rng.index(26) as u8
        };
    }
    out.push_str(ascii(buf[..len].trim_ascii()));
}

/// A random string as [`push_string`] draws it, with spaces as the special
/// character.
pub(crate) fn next_string(rng: &mut Rng, max_len: usize) -> String {
    let mut out = String::with_capacity(max_len);
    push_string(rng, max_len, b' ', &mut out);
    out
}

/// Fills `bytes` with characters drawn six per random `i32`: the base-26
/// digits of `rnd`, lowest first, each added to `'a'`, where digit `k` is
/// `(rnd / 26^k) % 26` with Java's truncating `/` and `%` (so a negative
/// `rnd` gives characters below `'a'`).
fn fill_exact(rng: &mut Rng, bytes: &mut [u8]) {
    let mut chunks = bytes.chunks_exact_mut(6);
    for six in &mut chunks {
        six.copy_from_slice(&draw_six(rng));
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let drawn = draw_six(rng);
        for (byte, &digit) in rest.iter_mut().zip(&drawn) {
            *byte = digit;
        }
    }
}

/// The six characters of one random `i32`.
#[inline]
fn draw_six(rng: &mut Rng) -> [u8; 6] {
    let rnd = rng.next_i32();
    // Digits come in pairs from base 676 = 26^2: pair k is
    // `(rnd / 676^k) % 676`, looked up in a table. Every division is by a
    // constant, and none waits for the one before.
    let [a, b] = digit_pair(rnd);
    let [c, d] = digit_pair(rnd / 676);
    let [e, f] = digit_pair(rnd / 456_976);
    [a, b, c, d, e, f]
}

/// The characters of the two lowest base-26 digits of `q` (truncating).
#[inline]
fn digit_pair(q: i32) -> [u8; 2] {
    DIGIT_PAIRS[(q % 676 + 675) as usize]
}

/// `DIGIT_PAIRS[r + 675]` = the characters `'a' + r % 26`, `'a' + r / 26`
/// for `r` in `-675..=675`.
const DIGIT_PAIRS: [[u8; 2]; 1351] = {
    let mut table = [[0u8; 2]; 1351];
    let mut i = 0;
    while i < table.len() {
        let r = i as i32 - 675;
        table[i] = [(b'a' as i32 + r % 26) as u8, (b'a' as i32 + r / 26) as u8];
        i += 1;
    }
    table
};

/// The bytes drawn above as text; they are ASCII by construction.
fn ascii(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("generated strings are ASCII")
}

/// The padding that brings an object of `current_size` bytes to
/// `average_size` bytes on average.
pub(crate) fn next_extra(rng: &mut Rng, current_size: usize, average_size: u32) -> String {
    let average_size = average_size as usize;
    if current_size > average_size {
        return String::new();
    }
    let rest = average_size - current_size;
    // Java's Math.round: floor(x + 0.5).
    let delta = (rest as f64 * 0.2 + 0.5).floor() as usize;
    let mut len = rest - delta;
    if delta > 0 {
        len += rng.index(2 * delta);
    }
    let mut bytes = vec![0u8; len];
    fill_exact(rng, &mut bytes);
    String::from_utf8(bytes).expect("generated strings are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generator::rng::Stream;

    #[test]
    fn next_string_is_trimmed_and_short() {
        let mut rng = Rng::new(3, Stream::Event, 0);
        for _ in 0..10_000 {
            let s = next_string(&mut rng, 20);
            assert!(s.len() < 20);
            assert_eq!(s.trim(), s);
            assert!(s.bytes().all(|b| b == b' ' || b.is_ascii_lowercase()));
        }
        let mut url_part = String::new();
        for _ in 0..1000 {
            url_part.clear();
            push_string(&mut rng, 5, b'_', &mut url_part);
            assert!((3..5).contains(&url_part.len()), "{url_part:?}");
            assert!(url_part
                .bytes()
                .all(|b| b == b'_' || b.is_ascii_lowercase()));
        }
    }

    #[test]
    fn exact_string_has_the_suites_alphabet() {
        let mut rng = Rng::new(4, Stream::Event, 0);
        let mut bytes = vec![0u8; 60_000];
        fill_exact(&mut rng, &mut bytes);
        let s = ascii(&bytes);
        assert!(s.bytes().all(|b| (b'H'..=b'z').contains(&b)));
        // About half of the six-character runs come from negative integers.
        let below_a = s.bytes().filter(|&b| b < b'a').count();
        assert!(below_a > 20_000, "{below_a}");
    }

    #[test]
    fn exact_strings_are_the_truncating_base_26_digits() {
        for index in 0..2_000 {
            let len = (index % 40) as usize;
            let mut bytes = vec![0u8; len];
            fill_exact(&mut Rng::new(6, Stream::Event, index), &mut bytes);
            // The suite's form: divide the same draws by 26 again and again.
            let mut reference = Rng::new(6, Stream::Event, index);
            let mut expected = Vec::new();
            let (mut rnd, mut left) = (0i32, 0);
            for _ in 0..len {
                if left == 0 {
                    rnd = reference.next_i32();
                    left = 6;
                }
                expected.push((i32::from(b'a') + rnd % 26) as u8);
                rnd /= 26;
                left -= 1;
            }
            assert_eq!(bytes, expected, "draw {index}");
        }
        for rnd in [0, -1, 1, 25, -25, 26, -26, i32::MAX, i32::MIN] {
            let mut serial = rnd;
            let pairs = [
                digit_pair(rnd),
                digit_pair(rnd / 676),
                digit_pair(rnd / 456_976),
            ];
            for k in 0..6 {
                let expected = (i32::from(b'a') + serial % 26) as u8;
                assert_eq!(pairs[k / 2][k % 2], expected, "{rnd} digit {k}");
                serial /= 26;
            }
        }
    }

    #[test]
    fn extra_sizes_average_to_the_target() {
        let mut rng = Rng::new(5, Stream::Event, 0);
        let rounds = 20_000;
        let total: usize = (0..rounds)
            .map(|_| next_extra(&mut rng, 32, 100).len())
            .sum();
        let mean = total as f64 / rounds as f64;
        // rest 68, delta 14: uniform in 54..82, mean 67.5.
        assert!((mean - 67.5).abs() < 0.5, "{mean}");
        assert_eq!(next_extra(&mut rng, 101, 100), "");
        assert_eq!(next_extra(&mut rng, 100, 100), "");
        assert_eq!(next_extra(&mut rng, 98, 100).len(), 2);
    }
}
