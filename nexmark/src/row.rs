//! Query result rows: one typed value per output column of the suite's
//! sink table, in the suite's column order.
//!
//! Every query produces a changelog of [`Row`]s, so one sink, one file
//! writer and one test comparison serve all of them. The value types are
//! the SQL types the suite's sink tables use: `BIGINT` ([`Value::Int`]),
//! `VARCHAR` ([`Value::Str`]), `TIMESTAMP(3)` ([`Value::Time`], ms since the
//! epoch, UTC), `DECIMAL(23, 3)` ([`Value::Dec3`], in thousandths, so
//! `0.908 * price` is the exact integer `908 * price`, which can pass `i64`
//! and is kept in an `i128`), and `NULL`.
//!
//! Sums of `BIGINT` can pass `i64` too; they are kept exactly
//! ([`Value::Sum`]) and printed as the integer they are, where Flink's
//! `BIGINT` sum would wrap around. `AVG` of `BIGINT` values is computed from
//! the exact sum and always fits `BIGINT`.

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
    Dec3(i128),
    /// An exact sum of `BIGINT` values (printed as an integer).
    Sum(i128),
}

/// One result row, columns in the order of the query's sink table.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Row(pub Vec<Value>);

impl Value {
    /// A `VARCHAR` value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A `BIGINT`.
    pub fn int(v: i64) -> Value {
        Value::Int(v)
    }

    /// A count of events as `BIGINT` (a count never passes `i64`).
    pub fn count(n: u64) -> Value {
        Value::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// `0.908 * v` as the suite's `DECIMAL(23, 3)`, exactly.
    pub fn euros(v: i64) -> Value {
        Value::Dec3(908 * i128::from(v))
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
            Value::Sum(v) => {
                let _ = write!(out, "{v}");
            }
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

fn write_dec3(v: i128, out: &mut String) {
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
    /// Tags in the order `encode` writes them.
    fn schema() -> riverbed_compute::codec::Schema {
        use riverbed_compute::codec::Schema;
        Schema::Enum(vec![
            ("null".into(), None),
            ("int".into(), Some(Schema::I64)),
            ("str".into(), Some(Schema::Str)),
            ("time".into(), Some(Schema::I64)),
            ("dec3".into(), Some(Schema::I128)),
            ("sum".into(), Some(Schema::I128)),
        ])
    }

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
            Value::Sum(v) => {
                out.push(5);
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
            4 => Value::Dec3(i128::decode(input)?),
            5 => Value::Sum(i128::decode(input)?),
            _ => return None,
        })
    }
}

impl Codec for Row {
    fn schema() -> riverbed_compute::codec::Schema {
        riverbed_compute::codec::Schema::list(Value::schema())
    }

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
    fn extreme_decimals_and_sums_print_exactly() {
        let mut s = String::new();
        Value::euros(i64::MAX).write_json(&mut s);
        assert_eq!(s, "8374821809464136432.756");
        s.clear();
        Value::euros(i64::MIN).write_json(&mut s);
        assert_eq!(s, "-8374821809464136433.664");
        s.clear();
        Value::Sum(i128::from(i64::MAX) * 3).write_json(&mut s);
        assert_eq!(s, "27670116110564327421");
        s.clear();
        Value::euros(1).write_json(&mut s);
        assert_eq!(s, "0.908");
    }

    #[test]
    fn rows_round_trip_through_the_codec() {
        let row = Row(vec![
            Value::Int(-3),
            Value::str("x"),
            Value::Null,
            Value::Dec3(-1),
            Value::Dec3(i128::from(i64::MAX) * 908),
            Value::Sum(i128::MIN),
        ]);
        assert_eq!(Row::from_bytes(&row.to_bytes()), Some(row));
    }
}
