//! LEB128 variable-length integers, used by the SST and manifest encodings.
//! Decoding never panics on short or overlong input: it returns `None` and
//! the caller turns that into a `Corrupted` error naming the file and offset.

use bytes::BufMut;

pub fn put_uvarint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Reads a varint from the front of `input`, advancing it.
#[inline]
pub fn get_uvarint(input: &mut &[u8]) -> Option<u64> {
    let mut v: u64 = 0;
    for (i, &b) in input.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *input = &input[i + 1..];
            return Some(v);
        }
    }
    None
}

/// Takes `n` bytes from the front of `input`.
#[inline]
pub fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Some(head)
}

/// A length-prefixed byte string.
pub fn put_bytes(buf: &mut impl BufMut, bytes: &[u8]) {
    put_uvarint(buf, bytes.len() as u64);
    buf.put_slice(bytes);
}

pub fn get_bytes<'a>(input: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::try_from(get_uvarint(input)?).ok()?;
    take(input, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_truncation() {
        for v in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_uvarint(&mut buf, v);
            let mut s = &buf[..];
            assert_eq!(get_uvarint(&mut s), Some(v));
            assert!(s.is_empty());
            let mut short = &buf[..buf.len() - 1];
            assert_eq!(get_uvarint(&mut short), None);
        }
        assert_eq!(
            &{
                let mut b = Vec::new();
                put_uvarint(&mut b, 300);
                b
            }[..],
            &[0xac, 0x02]
        );
    }
}
