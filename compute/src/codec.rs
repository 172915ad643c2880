//! How keys, accumulators and rows become state bytes.
//!
//! A small hand-written codec instead of a serialisation framework: state
//! values sit on the hot path of every batch, and the encoding of a key must
//! never change (it decides the key group, hence the owner). Integers are
//! big-endian with the sign bit flipped, so encoded keys sort like values.

use bytes::Bytes;
pub use riverbed_state_store::schema::Schema;

/// A type that can live in state. `decode` returns `None` on malformed input.
pub trait Codec: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    /// Decodes from the front of `input`, advancing it.
    fn decode(input: &mut &[u8]) -> Option<Self>;

    /// The layout `encode` writes, registered with a state table so that
    /// queries can read it without this code. Opaque unless told.
    fn schema() -> Schema {
        Schema::Opaque
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }

    fn from_bytes(mut b: &[u8]) -> Option<Self> {
        let v = Self::decode(&mut b)?;
        b.is_empty().then_some(v)
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (h, t) = input.split_at(n);
    *input = t;
    Some(h)
}

macro_rules! unsigned {
    ($($t:ty => $s:ident),*) => {$(
        impl Codec for $t {
            fn schema() -> Schema {
                Schema::$s
            }
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode(input: &mut &[u8]) -> Option<Self> {
                Some(<$t>::from_be_bytes(take(input, std::mem::size_of::<$t>())?.try_into().ok()?))
            }
        }
    )*};
}
unsigned!(u8 => U8, u16 => U16, u32 => U32, u64 => U64, u128 => U128);

macro_rules! signed {
    ($($t:ty => $u:ty, $s:ident),*) => {$(
        impl Codec for $t {
            fn schema() -> Schema {
                Schema::$s
            }
            fn encode(&self, out: &mut Vec<u8>) {
                ((*self as $u) ^ (1 << (<$u>::BITS - 1))).encode(out);
            }
            fn decode(input: &mut &[u8]) -> Option<Self> {
                Some((<$u>::decode(input)? ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
    )*};
}
signed!(i32 => u32, I32, i64 => u64, I64, i128 => u128, I128);

impl Codec for f64 {
    fn schema() -> Schema {
        Schema::F64
    }
    fn encode(&self, out: &mut Vec<u8>) {
        self.to_bits().encode(out);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(f64::from_bits(u64::decode(input)?))
    }
}

impl Codec for bool {
    fn schema() -> Schema {
        Schema::Bool
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        match u8::decode(input)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl Codec for () {
    fn schema() -> Schema {
        Schema::Unit
    }
    fn encode(&self, _out: &mut Vec<u8>) {}
    fn decode(_input: &mut &[u8]) -> Option<Self> {
        Some(())
    }
}

impl Codec for String {
    fn schema() -> Schema {
        Schema::Str
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = u32::decode(input)? as usize;
        String::from_utf8(take(input, n)?.to_vec()).ok()
    }
}

impl Codec for Bytes {
    fn schema() -> Schema {
        Schema::Bytes
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        out.extend_from_slice(self);
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = u32::decode(input)? as usize;
        Some(Bytes::copy_from_slice(take(input, n)?))
    }
}

impl<T: Codec> Codec for Option<T> {
    fn schema() -> Schema {
        Schema::opt(T::schema())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(0),
            Some(v) => {
                out.push(1);
                v.encode(out);
            }
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        match u8::decode(input)? {
            0 => Some(None),
            1 => Some(Some(T::decode(input)?)),
            _ => None,
        }
    }
}

impl<T: Codec> Codec for Vec<T> {
    fn schema() -> Schema {
        Schema::list(T::schema())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        self.iter().for_each(|v| v.encode(out));
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = u32::decode(input)? as usize;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(T::decode(input)?);
        }
        Some(v)
    }
}

impl<K: Codec + Ord, V: Codec> Codec for std::collections::BTreeMap<K, V> {
    fn schema() -> Schema {
        Schema::map(K::schema(), V::schema())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len() as u32).encode(out);
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }
    fn decode(input: &mut &[u8]) -> Option<Self> {
        let n = u32::decode(input)? as usize;
        let mut m = std::collections::BTreeMap::new();
        for _ in 0..n {
            let k = K::decode(input)?;
            m.insert(k, V::decode(input)?);
        }
        Some(m)
    }
}

macro_rules! tuple {
    ($($n:ident),*) => {
        impl<$($n: Codec),*> Codec for ($($n,)*) {
            fn schema() -> Schema {
                Schema::Tuple(vec![$($n::schema()),*])
            }
            #[allow(non_snake_case)]
            fn encode(&self, out: &mut Vec<u8>) {
                let ($($n,)*) = self;
                $($n.encode(out);)*
            }
            fn decode(input: &mut &[u8]) -> Option<Self> {
                Some(($($n::decode(input)?,)*))
            }
        }
    };
}
tuple!(A, B);
tuple!(A, B, C);
tuple!(A, B, C, D);
tuple!(A, B, C, D, E);

#[cfg(test)]
mod tests {
    use super::*;

    /// What crosses an exchange decodes to what was sent, and a truncated
    /// encoding to nothing.
    #[test]
    fn exchanged_types_round_trip() {
        use crate::operators::join::Side;
        use crate::{Change, RowKind, WindowResult};
        fn check<T: Codec + PartialEq + std::fmt::Debug>(v: T) {
            let b = v.to_bytes();
            assert_eq!(T::from_bytes(&b).as_ref(), Some(&v));
            assert_eq!(T::from_bytes(&b[..b.len() - 1]), None);
        }
        for kind in [
            RowKind::Insert,
            RowKind::UpdateBefore,
            RowKind::UpdateAfter,
            RowKind::Delete,
        ] {
            check(Change {
                kind,
                row: (7i64, "x".to_string()),
            });
        }
        check(WindowResult {
            key: 3u32,
            start: -10,
            end: 20,
            value: 99u64,
        });
        check(Side::<u32, String>::Left(4));
        check(Side::<u32, String>::Right("r".into()));
        assert_eq!(Side::<u32, u32>::from_bytes(&[5, 0, 0, 0, 1]), None);
    }

    #[test]
    fn round_trips_and_orders_signed_integers() {
        let vals = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let enc: Vec<Vec<u8>> = vals.iter().map(|v| v.to_bytes()).collect();
        assert!(enc.windows(2).all(|w| w[0] < w[1]));
        for (v, e) in vals.iter().zip(&enc) {
            assert_eq!(i64::from_bytes(e), Some(*v));
        }
        let t = (3u64, "x".to_string(), Some(-2i32), vec![1.5f64]);
        assert_eq!(
            <(u64, String, Option<i32>, Vec<f64>)>::from_bytes(&t.to_bytes()),
            Some(t)
        );
        assert_eq!(u64::from_bytes(&[1, 2]), None);
        assert_eq!(String::from_bytes(&[0, 0, 0, 9, b'a']), None);
    }

    #[test]
    fn schemas_describe_the_encoding() {
        type T = (
            i64,
            Option<String>,
            Vec<u32>,
            std::collections::BTreeMap<i32, bool>,
        );
        assert_eq!(
            T::schema().to_string(),
            "(i64,opt<str>,list<u32>,map<i32,bool>)"
        );
        // The store's reading of these bytes by that schema gives them back.
        let mut m = std::collections::BTreeMap::new();
        m.insert(-3, true);
        let v: T = (-9, Some("x".into()), vec![1, 2], m);
        let parsed = Schema::parse(&T::schema().to_string()).unwrap();
        assert_eq!(parsed, T::schema());
        assert_eq!(
            <(u8, f64, (), Bytes)>::schema().to_string(),
            "(u8,f64,unit,bytes)"
        );
        assert_eq!(T::from_bytes(&v.to_bytes()), Some(v));
    }
}
