//! Query result rows: one typed value per output column of the suite's
//! sink table, in the suite's column order.
//!
//! Every query produces a changelog of [`Row`]s, so one sink, one file
//! writer and one test comparison serve all of them. The value types are
//! the SQL types the suite's sink tables use: `BIGINT` ([`Value::Int`]),
//! `VARCHAR` ([`Value::Str`]), `TIMESTAMP(3)` ([`Value::Time`], ms since the
//! epoch, UTC), `DECIMAL(23, 3)` ([`Value::Dec3`], in thousandths, so
//! `0.908 * price` is the exact integer `908 * price`), and `NULL`.

use std::fmt::Write as _;

use riverbed_compute::Codec;

use crate::timestamp::format_timestamp;

/// One value of a result row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Null,
    Int(i64),
    Str(String),
    /// A `TIMESTAMP(3)`: milliseconds since the Unix epoch, UTC.
    Time(i64),
    /// A `DECIMAL(_, 3)`: the value times 1000.
    Dec3(i64),
}

/// One result row, columns in the order of the query's sink table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Row(pub Vec<Value>);

impl Value {
    /// A `VARCHAR` value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// An unsigned id or price as `BIGINT` (the generator's values fit).
    pub fn int(v: u64) -> Value {
        Value::Int(v as i64)
    }

    /// Appends the value as a JSON value: numbers, strings, `null`;
    /// timestamps as `"YYYY-MM-DD HH:MM:SS.sss"`, decimals as `123.456`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Dec3(v) => write_dec3(*v, out),
            Value::Str(s) => write_json_str(s, out),
            Value::Time(ms) => {
                let mut b = Vec::with_capacity(23);
                if format_timestamp(*ms, &mut b) {
                    out.push('"');
                    out.push_str(std::str::from_utf8(&b).unwrap_or_default());
                    out.push('"');
                } else {
                    let _ = write!(out, "{ms}");
                }
            }
        }
    }
}

fn write_dec3(v: i64, out: &mut String) {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let _ = write!(out, "{sign}{}.{:03}", a / 1000, a % 1000);
}

fn write_json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Row {
    /// The row as one JSON object line (no newline), named by `columns`,
    /// with the changelog kind first as `"op"` (`+I`, `-U`, `+U`, `-D`, as
    /// Flink prints changelogs).
    pub fn to_json(&self, op: &str, columns: &[&str], out: &mut String) {
        out.push_str("{\"op\":\"");
        out.push_str(op);
        out.push('"');
        for (c, v) in columns.iter().zip(&self.0) {
            out.push_str(",\"");
            out.push_str(c);
            out.push_str("\":");
            v.write_json(out);
        }
        out.push('}');
    }
}

impl Codec for Value {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Int(v) => {
                out.push(1);
                v.encode(out);
            }
            Value::Str(s) => {
                out.push(2);
                s.encode(out);
            }
            Value::Time(v) => {
                out.push(3);
                v.encode(out);
            }
            Value::Dec3(v) => {
                out.push(4);
                v.encode(out);
            }
        }
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        *input = rest;
        Some(match tag {
            0 => Value::Null,
            1 => Value::Int(i64::decode(input)?),
            2 => Value::Str(String::decode(input)?),
            3 => Value::Time(i64::decode(input)?),
            4 => Value::Dec3(i64::decode(input)?),
            _ => return None,
        })
    }
}

impl Codec for Row {
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.encode(out);
    }

    fn decode(input: &mut &[u8]) -> Option<Self> {
        Some(Row(Vec::decode(input)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_name_columns_and_format_values() {
        let row = Row(vec![
            Value::Int(7),
            Value::Dec3(90_800),
            Value::str("a\"b"),
            Value::Time(1_436_918_400_123),
            Value::Null,
        ]);
        let mut s = String::new();
        row.to_json("+I", &["a", "p", "s", "t", "n"], &mut s);
        assert_eq!(
            s,
            r#"{"op":"+I","a":7,"p":90.800,"s":"a\"b","t":"2015-07-15 00:00:00.123","n":null}"#
        );
    }

    #[test]
    fn rows_round_trip_through_the_codec() {
        let row = Row(vec![
            Value::Int(-3),
            Value::str("x"),
            Value::Null,
            Value::Dec3(-1),
        ]);
        assert_eq!(Row::from_bytes(&row.to_bytes()), Some(row));
    }
}
