//! Keys and values as JSON, read and written by their schema (layouts in
//! `schema.rs`): what a query prints, and the key a user types.
//!
//! - Integers that fit 64 bits are JSON numbers, wider ones strings;
//!   `f64` a number (`null` for NaN and infinities); `bytes` a hex string.
//! - Options are the value or `null`; lists and tuples arrays; structs
//!   objects; maps arrays of `[key, value]` pairs (keys need not be
//!   strings); an enum variant `{"name": payload}`, or `"name"` without one.
//! - Opaque bytes are a hex string.
//!
//! A key is typed as JSON too, except that a string key may be typed bare
//! (`--key alice` as well as `--key '"alice"'`) and bytes as hex.

use serde_json::{Map, Number, Value};

use crate::schema::Schema;

/// Most JSON nodes one decoding makes: a value is printed, not streamed.
const MAX_NODES: usize = 1 << 20;

/// Bytes as lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{s:?} is not hex (two digits a byte)"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digits"))
        .collect())
}

/// `bytes` read whole by `schema`; the error says where it stopped.
pub fn decode(schema: &Schema, bytes: &[u8]) -> Result<Value, String> {
    let mut input = bytes;
    let mut nodes = 0;
    let v = walk(schema, &mut input, &mut nodes).ok_or_else(|| {
        format!(
            "bytes do not match {schema} at byte {}",
            bytes.len() - input.len()
        )
    })?;
    if !input.is_empty() {
        return Err(format!("{} bytes left over after {schema}", input.len()));
    }
    Ok(v)
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if input.len() < n {
        return None;
    }
    let (h, t) = input.split_at(n);
    *input = t;
    Some(h)
}

fn be<const N: usize>(input: &mut &[u8]) -> Option<[u8; N]> {
    take(input, N)?.try_into().ok()
}

fn wide(v: i128) -> Value {
    match i64::try_from(v) {
        Ok(v) => Value::from(v),
        Err(_) => match u64::try_from(v) {
            Ok(v) => Value::from(v),
            Err(_) => Value::String(v.to_string()),
        },
    }
}

fn walk(schema: &Schema, input: &mut &[u8], nodes: &mut usize) -> Option<Value> {
    *nodes += 1;
    if *nodes > MAX_NODES {
        return None;
    }
    const S32: u32 = 1 << 31;
    const S64: u64 = 1 << 63;
    const S128: u128 = 1 << 127;
    Some(match schema {
        Schema::U8 => Value::from(take(input, 1)?[0]),
        Schema::U16 => Value::from(u16::from_be_bytes(be(input)?)),
        Schema::U32 => Value::from(u32::from_be_bytes(be(input)?)),
        Schema::U64 => Value::from(u64::from_be_bytes(be(input)?)),
        Schema::U128 => {
            let v = u128::from_be_bytes(be(input)?);
            match u64::try_from(v) {
                Ok(v) => Value::from(v),
                Err(_) => Value::String(v.to_string()),
            }
        }
        Schema::I32 => Value::from((u32::from_be_bytes(be(input)?) ^ S32) as i32),
        Schema::I64 => Value::from((u64::from_be_bytes(be(input)?) ^ S64) as i64),
        Schema::I128 => wide((u128::from_be_bytes(be(input)?) ^ S128) as i128),
        Schema::F64 => Number::from_f64(f64::from_bits(u64::from_be_bytes(be(input)?)))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Schema::Bool => match take(input, 1)?[0] {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return None,
        },
        Schema::Unit => Value::Null,
        Schema::Str => {
            let n = u32::from_be_bytes(be(input)?) as usize;
            Value::String(std::str::from_utf8(take(input, n)?).ok()?.to_string())
        }
        Schema::Bytes => {
            let n = u32::from_be_bytes(be(input)?) as usize;
            Value::String(hex(take(input, n)?))
        }
        Schema::Opt(s) => match take(input, 1)?[0] {
            0 => Value::Null,
            1 => walk(s, input, nodes)?,
            _ => return None,
        },
        Schema::List(s) => {
            let n = u32::from_be_bytes(be(input)?) as usize;
            let mut v = Vec::new();
            for _ in 0..n {
                v.push(walk(s, input, nodes)?);
            }
            Value::Array(v)
        }
        Schema::Map(k, s) => {
            let n = u32::from_be_bytes(be(input)?) as usize;
            let mut v = Vec::new();
            for _ in 0..n {
                let key = walk(k, input, nodes)?;
                v.push(Value::Array(vec![key, walk(s, input, nodes)?]));
            }
            Value::Array(v)
        }
        Schema::Tuple(items) => Value::Array(
            items
                .iter()
                .map(|s| walk(s, input, nodes))
                .collect::<Option<_>>()?,
        ),
        Schema::Struct(fields) => {
            let mut m = Map::new();
            for (name, s) in fields {
                m.insert(name.clone(), walk(s, input, nodes)?);
            }
            Value::Object(m)
        }
        Schema::Enum(variants) => {
            let (name, payload) = variants.get(usize::from(take(input, 1)?[0]))?;
            match payload {
                None => Value::String(name.clone()),
                Some(s) => {
                    let mut m = Map::new();
                    m.insert(name.clone(), walk(s, input, nodes)?);
                    Value::Object(m)
                }
            }
        }
        Schema::Opaque => {
            let rest = std::mem::take(input);
            Value::String(hex(rest))
        }
    })
}

/// The bytes of the key a user typed as `text`, by the key's schema.
pub fn encode_key(schema: &Schema, text: &str) -> Result<Vec<u8>, String> {
    let value = match schema {
        // Bare text for the common cases; JSON if it parses as such.
        Schema::Str => serde_json::from_str::<String>(text)
            .map(Value::String)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        Schema::Bytes => Value::String(text.to_string()),
        _ => serde_json::from_str(text)
            .map_err(|e| format!("key {text:?} is not JSON for {schema}: {e}"))?,
    };
    let mut out = Vec::new();
    put(schema, &value, &mut out).map_err(|why| format!("key {text:?} for {schema}: {why}"))?;
    Ok(out)
}

fn int(v: &Value) -> Result<i128, String> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("{n} is not an integer")),
        Value::String(s) => s
            .parse::<i128>()
            .map_err(|_| format!("{s:?} is not an integer")),
        other => Err(format!("expected an integer, got {other}")),
    }
}

fn ranged<T: TryFrom<i128>>(v: &Value, name: &str) -> Result<T, String> {
    let i = int(v)?;
    T::try_from(i).map_err(|_| format!("{i} is out of range for {name}"))
}

fn put(schema: &Schema, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    const S32: u32 = 1 << 31;
    const S64: u64 = 1 << 63;
    const S128: u128 = 1 << 127;
    let count = |n: usize, out: &mut Vec<u8>| -> Result<(), String> {
        let n = u32::try_from(n).map_err(|_| "too many items".to_string())?;
        out.extend_from_slice(&n.to_be_bytes());
        Ok(())
    };
    let array = |v: &Value| match v {
        Value::Array(a) => Ok(a.clone()),
        other => Err(format!("expected an array, got {other}")),
    };
    match schema {
        Schema::U8 => out.push(ranged::<u8>(v, "u8")?),
        Schema::U16 => out.extend_from_slice(&ranged::<u16>(v, "u16")?.to_be_bytes()),
        Schema::U32 => out.extend_from_slice(&ranged::<u32>(v, "u32")?.to_be_bytes()),
        Schema::U64 => out.extend_from_slice(&ranged::<u64>(v, "u64")?.to_be_bytes()),
        Schema::U128 => {
            let n = match v {
                Value::String(s) => s
                    .parse::<u128>()
                    .map_err(|_| format!("{s:?} is not a u128"))?,
                other => ranged::<u128>(other, "u128")?,
            };
            out.extend_from_slice(&n.to_be_bytes())
        }
        Schema::I32 => {
            out.extend_from_slice(&((ranged::<i32>(v, "i32")? as u32) ^ S32).to_be_bytes())
        }
        Schema::I64 => {
            out.extend_from_slice(&((ranged::<i64>(v, "i64")? as u64) ^ S64).to_be_bytes())
        }
        Schema::I128 => out.extend_from_slice(&((int(v)? as u128) ^ S128).to_be_bytes()),
        Schema::F64 => {
            let f = v
                .as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))?;
            out.extend_from_slice(&f.to_bits().to_be_bytes())
        }
        Schema::Bool => out.push(u8::from(
            v.as_bool()
                .ok_or_else(|| format!("expected true or false, got {v}"))?,
        )),
        Schema::Unit => {}
        Schema::Str => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected a string, got {v}"))?;
            count(s.len(), out)?;
            out.extend_from_slice(s.as_bytes());
        }
        Schema::Bytes => {
            let s = v.as_str().ok_or_else(|| format!("expected hex, got {v}"))?;
            let b = unhex(s)?;
            count(b.len(), out)?;
            out.extend_from_slice(&b);
        }
        Schema::Opt(s) => match v {
            Value::Null => out.push(0),
            v => {
                out.push(1);
                put(s, v, out)?;
            }
        },
        Schema::List(s) => {
            let a = array(v)?;
            count(a.len(), out)?;
            for x in &a {
                put(s, x, out)?;
            }
        }
        Schema::Map(k, s) => {
            let a = array(v)?;
            count(a.len(), out)?;
            for pair in &a {
                match pair.as_array().map(|p| &p[..]) {
                    Some([key, val]) => {
                        put(k, key, out)?;
                        put(s, val, out)?;
                    }
                    _ => return Err(format!("a map item is [key, value], got {pair}")),
                }
            }
        }
        Schema::Tuple(items) => {
            let a = array(v)?;
            if a.len() != items.len() {
                return Err(format!("expected {} fields, got {}", items.len(), a.len()));
            }
            for (s, x) in items.iter().zip(&a) {
                put(s, x, out)?;
            }
        }
        Schema::Struct(fields) => {
            let m = v
                .as_object()
                .ok_or_else(|| format!("expected an object, got {v}"))?;
            for (name, s) in fields {
                let x = m
                    .get(name)
                    .ok_or_else(|| format!("field {name:?} is missing"))?;
                put(s, x, out)?;
            }
        }
        Schema::Enum(variants) => {
            let (name, payload) = match v {
                Value::String(s) => (s.as_str(), None),
                Value::Object(m) if m.len() == 1 => {
                    let (k, x) = m.iter().next().expect("one field");
                    (k.as_str(), Some(x))
                }
                other => return Err(format!("expected a variant, got {other}")),
            };
            let i = variants
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| format!("no variant {name:?}"))?;
            out.push(i as u8);
            match (&variants[i].1, payload) {
                (None, None) => {}
                (Some(s), Some(x)) => put(s, x, out)?,
                (None, Some(_)) => return Err(format!("variant {name:?} has no payload")),
                (Some(_), None) => return Err(format!("variant {name:?} needs a payload")),
            }
        }
        Schema::Opaque => {
            return Err("the schema is opaque here: give the key's bytes as hex".into())
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row_schema() -> Schema {
        Schema::record(&[
            ("id", Schema::I64),
            ("name", Schema::Str),
            ("big", Schema::I128),
            ("score", Schema::F64),
            ("tags", Schema::list(Schema::opt(Schema::U32))),
            ("raw", Schema::Bytes),
            ("m", Schema::map(Schema::I32, Schema::Bool)),
            (
                "v",
                Schema::Enum(vec![
                    ("null".into(), None),
                    ("int".into(), Some(Schema::I64)),
                ]),
            ),
        ])
    }

    #[test]
    fn a_value_goes_to_json_and_back_to_the_same_bytes() {
        let s = row_schema();
        let text = r#"{"id":-7,"name":"a\"b","big":"-170141183460469231731687303715884105728","score":1.5,"tags":[3,null],"raw":"00ff","m":[[-1,true],[2,false]],"v":{"int":9}}"#;
        let v: Value = serde_json::from_str(text).unwrap();
        let mut bytes = Vec::new();
        put(&s, &v, &mut bytes).unwrap();
        assert_eq!(decode(&s, &bytes).unwrap(), v);
        // The codec's layout: -7 as an i64 is 0x7fff_ffff_ffff_fff9.
        assert_eq!(
            &bytes[..8],
            &[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf9]
        );
        // Truncated or padded bytes are errors that say where.
        assert!(decode(&s, &bytes[..bytes.len() - 1])
            .unwrap_err()
            .contains("do not match"));
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&s, &long).unwrap_err().contains("1 bytes left over"));
    }

    #[test]
    fn keys_are_typed_bare_or_as_json() {
        assert_eq!(
            encode_key(&Schema::I64, "1234").unwrap(),
            (1234u64 ^ (1 << 63)).to_be_bytes()
        );
        assert_eq!(
            encode_key(&Schema::Str, "alice").unwrap(),
            b"\0\0\0\x05alice"
        );
        assert_eq!(
            encode_key(&Schema::Str, "\"alice\"").unwrap(),
            b"\0\0\0\x05alice"
        );
        let t = Schema::Tuple(vec![Schema::I64, Schema::Str]);
        let k = encode_key(&t, r#"[5, "x"]"#).unwrap();
        assert_eq!(decode(&t, &k).unwrap(), serde_json::json!([5, "x"]));
        for (schema, text, why) in [
            (Schema::I64, "12x", "is not JSON"),
            (Schema::U8, "300", "out of range for u8"),
            (t.clone(), "[1]", "expected 2 fields"),
            (Schema::Opaque, "\"00\"", "opaque"),
        ] {
            let e = encode_key(&schema, text).unwrap_err();
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn hostile_bytes_neither_panic_nor_run_away() {
        // A list claiming four billion empty items stops at the node limit.
        let s = Schema::list(Schema::Unit);
        assert!(decode(&s, &[0xff, 0xff, 0xff, 0xff]).is_err());
        let s = row_schema();
        let mut rng = crate::test_rng::XorShift(1);
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let _ = decode(&s, &bytes);
        }
    }
}
