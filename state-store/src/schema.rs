//! Schemas: how a table's keys and values are laid out, so that the store
//! can read what it holds for a query without the job's code.
//!
//! A job registers a table with the schema of its key and of its value
//! (the compute layer derives them from its codecs). Queries use the key's
//! schema to encode the key a user types, and the value's to print what
//! the store holds; a table without one prints hex.
//!
//! # Text form (what the catalog stores)
//!
//! ```text
//! schema := "u8" | "u16" | "u32" | "u64" | "u128" | "i32" | "i64" | "i128"
//!         | "f64" | "bool" | "unit" | "str" | "bytes"
//!         | "opt<" schema ">" | "list<" schema ">" | "map<" schema "," schema ">"
//!         | "(" schema ("," schema)+ ")"                       tuple
//!         | "{" name ":" schema ("," name ":" schema)* "}"      struct
//!         | "enum{" name [":" schema] ("," name [":" schema])* "}"
//!         | "?"                                                opaque
//! name   := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! # Byte layout (the compute layer's `Codec`)
//!
//! - unsigned integers big-endian; signed ones big-endian with the sign bit
//!   flipped (so that bytes sort as numbers); `f64` its bits as a `u64`;
//!   `bool` one byte 0 or 1; `unit` nothing;
//! - `str`, `bytes`, `list` and `map`: a `u32` count, then the bytes or
//!   items (a map's items are key then value);
//! - `opt`: a byte 0 (none) or 1 then the value;
//! - tuples and structs: their fields in order;
//! - `enum`: a byte, the variant's position, then its payload if it has one;
//! - opaque: the rest of the bytes, whatever they are.

use std::fmt;

use crate::error::{Error, Result};

/// The layout of a key or value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schema {
    U8,
    U16,
    U32,
    U64,
    U128,
    I32,
    I64,
    I128,
    F64,
    Bool,
    Unit,
    Str,
    Bytes,
    Opt(Box<Schema>),
    List(Box<Schema>),
    Map(Box<Schema>, Box<Schema>),
    Tuple(Vec<Schema>),
    Struct(Vec<(String, Schema)>),
    Enum(Vec<(String, Option<Schema>)>),
    Opaque,
}

/// Deepest nesting a schema text may have: the parser recurses.
const MAX_DEPTH: usize = 32;
/// Longest schema text accepted.
pub const MAX_SCHEMA_BYTES: usize = 4096;

const SCALARS: [(&str, Schema); 13] = [
    ("u8", Schema::U8),
    ("u16", Schema::U16),
    ("u32", Schema::U32),
    ("u64", Schema::U64),
    ("u128", Schema::U128),
    ("i32", Schema::I32),
    ("i64", Schema::I64),
    ("i128", Schema::I128),
    ("f64", Schema::F64),
    ("bool", Schema::Bool),
    ("unit", Schema::Unit),
    ("str", Schema::Str),
    ("bytes", Schema::Bytes),
];

impl Schema {
    pub fn opt(s: Schema) -> Schema {
        Schema::Opt(Box::new(s))
    }

    pub fn list(s: Schema) -> Schema {
        Schema::List(Box::new(s))
    }

    pub fn map(k: Schema, v: Schema) -> Schema {
        Schema::Map(Box::new(k), Box::new(v))
    }

    /// A struct from `(field, schema)` pairs in their byte order.
    pub fn record(fields: &[(&str, Schema)]) -> Schema {
        Schema::Struct(
            fields
                .iter()
                .map(|(n, s)| (n.to_string(), s.clone()))
                .collect(),
        )
    }

    /// Whether anything of it is opaque: such a schema decodes only partly.
    pub fn is_opaque(&self) -> bool {
        match self {
            Schema::Opaque => true,
            Schema::Opt(s) | Schema::List(s) => s.is_opaque(),
            Schema::Map(k, v) => k.is_opaque() || v.is_opaque(),
            Schema::Tuple(v) => v.iter().any(Schema::is_opaque),
            Schema::Struct(v) => v.iter().any(|(_, s)| s.is_opaque()),
            Schema::Enum(v) => v
                .iter()
                .any(|(_, s)| s.as_ref().is_some_and(Schema::is_opaque)),
            _ => false,
        }
    }

    /// Parses the text form; the error says where it stopped.
    pub fn parse(text: &str) -> Result<Schema> {
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(Error::InvalidArgument(format!(
                "schema is {} bytes, over the limit of {MAX_SCHEMA_BYTES}",
                text.len()
            )));
        }
        let mut p = Parser { text, at: 0 };
        let s = p.schema(0)?;
        if p.at != text.len() {
            return Err(p.error("trailing characters"));
        }
        Ok(s)
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((n, _)) = SCALARS.iter().find(|(_, s)| s == self) {
            return f.write_str(n);
        }
        let list = |f: &mut fmt::Formatter<'_>, items: &mut dyn Iterator<Item = String>| {
            let v: Vec<String> = items.collect();
            f.write_str(&v.join(","))
        };
        match self {
            Schema::Opt(s) => write!(f, "opt<{s}>"),
            Schema::List(s) => write!(f, "list<{s}>"),
            Schema::Map(k, v) => write!(f, "map<{k},{v}>"),
            Schema::Tuple(v) => {
                f.write_str("(")?;
                list(f, &mut v.iter().map(|s| s.to_string()))?;
                f.write_str(")")
            }
            Schema::Struct(v) => {
                f.write_str("{")?;
                list(f, &mut v.iter().map(|(n, s)| format!("{n}:{s}")))?;
                f.write_str("}")
            }
            Schema::Enum(v) => {
                f.write_str("enum{")?;
                list(
                    f,
                    &mut v.iter().map(|(n, s)| match s {
                        Some(s) => format!("{n}:{s}"),
                        None => n.clone(),
                    }),
                )?;
                f.write_str("}")
            }
            Schema::Opaque => f.write_str("?"),
            _ => unreachable!("scalars are printed above"),
        }
    }
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn error(&self, why: &str) -> Error {
        Error::InvalidArgument(format!(
            "schema {:?}: {why} at character {}",
            self.text, self.at
        ))
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, s: &str) -> Result<()> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {s:?}")))
        }
    }

    fn name(&mut self) -> Result<String> {
        let r = self.rest();
        let n = r
            .char_indices()
            .take_while(|(i, c)| {
                c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())
            })
            .count();
        if n == 0 {
            return Err(self.error("expected a name"));
        }
        let name = r[..n].to_string();
        self.at += n;
        Ok(name)
    }

    fn schema(&mut self, depth: usize) -> Result<Schema> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let d = depth + 1;
        if self.eat("?") {
            return Ok(Schema::Opaque);
        }
        if self.eat("opt<") {
            let s = self.schema(d)?;
            self.expect(">")?;
            return Ok(Schema::opt(s));
        }
        if self.eat("list<") {
            let s = self.schema(d)?;
            self.expect(">")?;
            return Ok(Schema::list(s));
        }
        if self.eat("map<") {
            let k = self.schema(d)?;
            self.expect(",")?;
            let v = self.schema(d)?;
            self.expect(">")?;
            return Ok(Schema::map(k, v));
        }
        if self.eat("(") {
            let mut items = vec![self.schema(d)?];
            while self.eat(",") {
                items.push(self.schema(d)?);
            }
            self.expect(")")?;
            if items.len() < 2 {
                return Err(self.error("a tuple has at least two fields"));
            }
            return Ok(Schema::Tuple(items));
        }
        if self.eat("enum{") {
            let mut variants = Vec::new();
            loop {
                let n = self.name()?;
                let s = if self.eat(":") {
                    Some(self.schema(d)?)
                } else {
                    None
                };
                variants.push((n, s));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("}")?;
            if variants.len() > 256 {
                return Err(self.error("an enum has at most 256 variants"));
            }
            return Ok(Schema::Enum(variants));
        }
        if self.eat("{") {
            let mut fields = Vec::new();
            loop {
                let n = self.name()?;
                self.expect(":")?;
                fields.push((n, self.schema(d)?));
                if !self.eat(",") {
                    break;
                }
            }
            self.expect("}")?;
            return Ok(Schema::Struct(fields));
        }
        let word = self.name().map_err(|_| self.error("expected a schema"))?;
        SCALARS
            .iter()
            .find(|(n, _)| *n == word)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| {
                self.at -= word.len();
                self.error(&format!("unknown type {word:?}"))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let s = Schema::Tuple(vec![
            Schema::opt(Schema::record(&[
                ("id", Schema::I64),
                ("name", Schema::Str),
                ("tags", Schema::list(Schema::Bytes)),
            ])),
            Schema::I64,
            Schema::map(Schema::U32, Schema::Opaque),
            Schema::Enum(vec![
                ("null".into(), None),
                ("int".into(), Some(Schema::I64)),
            ]),
        ]);
        let text = s.to_string();
        assert_eq!(
            text,
            "(opt<{id:i64,name:str,tags:list<bytes>}>,i64,map<u32,?>,enum{null,int:i64})"
        );
        assert_eq!(Schema::parse(&text).unwrap(), s);
        assert!(s.is_opaque());
        assert!(!Schema::I64.is_opaque());
    }

    #[test]
    fn bad_text_says_where() {
        for (text, why) in [
            ("", "expected a schema at character 0"),
            ("i65", "unknown type \"i65\" at character 0"),
            ("list<i64", "expected \">\" at character 8"),
            ("(i64)", "at least two fields"),
            ("i64 ", "trailing characters at character 3"),
            ("{1a:i64}", "expected a name at character 1"),
        ] {
            let e = Schema::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text:?}: {e}");
        }
        let deep = "list<".repeat(40) + "i64" + &">".repeat(40);
        assert!(Schema::parse(&deep)
            .unwrap_err()
            .to_string()
            .contains("nested too deeply"));
    }
}
