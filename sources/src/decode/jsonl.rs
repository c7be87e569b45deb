//! JSON lines: the fast byte scanner for flat objects and the general path
//! on `serde_json` (nested paths, escapes, anything unusual).

use std::borrow::Cow;

use serde_json::{Number, Value as Json};

#[cfg(test)]
use super::FieldMapping;
use super::{Fields, Scalar, Slot};

/// The mapped fields of a JSON line, as paths.
#[derive(Clone, Debug)]
pub(super) struct JsonFields {
    /// Every mapped field as its path segments.
    paths: Vec<(Slot, Vec<String>)>,
    /// Whether every path is a single top-level name (the flat scanner's
    /// case; nested paths take the nested scanner).
    flat: bool,
}

/// How deep the fast path follows nested values before it leaves the line
/// to the general path.
const MAX_DEPTH: usize = 32;

impl JsonFields {
    #[cfg(test)]
    pub(super) fn new(mapping: &FieldMapping) -> Self {
        let config = super::DecodeConfig {
            fields: mapping.clone(),
            ..Default::default()
        };
        JsonFields::of(&super::mapped(&config))
    }

    /// The fields `slots` names.
    pub(super) fn of(slots: &[(Slot, &str)]) -> Self {
        let paths: Vec<(Slot, Vec<String>)> = slots
            .iter()
            .map(|(slot, name)| (*slot, split_path(name)))
            .collect();
        let flat = paths.iter().all(|(_, path)| path.len() == 1);
        JsonFields { paths, flat }
    }

    /// The fast path: an object whose strings hold no escapes, whose mapped
    /// fields are scalars, and whose other values may be anything (skipped
    /// without being built). `None` hands the line to the general path.
    pub(super) fn fast<'a>(&self, text: &'a str) -> Option<Fields<'a>> {
        let mut scan = Scanner {
            bytes: text.as_bytes(),
            text,
            pos: 0,
        };
        let mut fields = Fields::default();
        scan.skip_ws();
        if self.flat {
            self.flat_object(&mut scan, &mut fields)?;
        } else {
            if self.paths.len() > 64 {
                return None;
            }
            let all = u64::MAX >> (64 - self.paths.len());
            self.nested_object(&mut scan, 0, all, &mut fields)?;
        }
        scan.skip_ws();
        (scan.pos == scan.bytes.len()).then_some(fields)
    }

    /// An object read for top-level names only.
    #[inline]
    fn flat_object<'a>(&self, scan: &mut Scanner<'a>, fields: &mut Fields<'a>) -> Option<()> {
        scan.expect(b'{')?;
        scan.skip_ws();
        if scan.peek() == Some(b'}') {
            scan.pos += 1;
            return Some(());
        }
        loop {
            let name = scan.string()?;
            scan.skip_ws();
            scan.expect(b':')?;
            scan.skip_ws();
            if let Some(b'{' | b'[') = scan.peek() {
                // A nested value no field maps to is skipped; one a field
                // maps to is not a scalar: the general path says so.
                if self
                    .paths
                    .iter()
                    .any(|(_, p)| p.first().map(String::as_str) == Some(name))
                {
                    return None;
                }
                scan.skip_value(0)?;
            } else {
                let value = scan.value()?;
                // Later duplicates win, as in `serde_json::Value`.
                for (slot, path) in &self.paths {
                    if path.first().map(String::as_str) == Some(name) {
                        fields.set(*slot, value.clone());
                    }
                }
            }
            scan.skip_ws();
            match scan.next()? {
                b',' => scan.skip_ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An object at `depth` of the paths in `candidates` (a bit per path,
    /// those whose first `depth` segments led here): scalars of the paths
    /// ending here are set, objects on the way to longer paths are entered,
    /// everything else is skipped. Where `serde_json::Value` would keep only
    /// the later of two duplicate names that lead into objects, this leaves
    /// the line to the general path.
    fn nested_object<'a>(
        &self,
        scan: &mut Scanner<'a>,
        depth: usize,
        candidates: u64,
        fields: &mut Fields<'a>,
    ) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        scan.expect(b'{')?;
        scan.skip_ws();
        if scan.peek() == Some(b'}') {
            scan.pos += 1;
            return Some(());
        }
        let mut entered: u64 = 0;
        loop {
            let name = scan.string()?;
            scan.skip_ws();
            scan.expect(b':')?;
            scan.skip_ws();
            let (mut leaf, mut deeper) = (0u64, 0u64);
            for (i, (_, path)) in self.paths.iter().enumerate() {
                if candidates & (1 << i) != 0 && path.get(depth).map(String::as_str) == Some(name) {
                    if path.len() == depth + 1 {
                        leaf |= 1 << i;
                    } else {
                        deeper |= 1 << i;
                    }
                }
            }
            if entered & deeper != 0 {
                return None;
            }
            match scan.peek()? {
                b'{' if leaf == 0 && deeper != 0 => {
                    entered |= deeper;
                    self.nested_object(scan, depth + 1, deeper, fields)?;
                }
                b'{' | b'[' if leaf != 0 => return None,
                b'{' | b'[' => scan.skip_value(depth)?,
                _ => {
                    let value = scan.value()?;
                    for (i, (slot, _)) in self.paths.iter().enumerate() {
                        if leaf & (1 << i) != 0 {
                            fields.set(*slot, value.clone());
                        }
                    }
                }
            }
            scan.skip_ws();
            match scan.next()? {
                b',' => scan.skip_ws(),
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// The general path: parse with `serde_json`, then follow each path.
    pub(super) fn general<'a>(&self, text: &str) -> Result<Fields<'a>, String> {
        let json: Json = serde_json::from_str(text).map_err(|e| format!("invalid json: {e}"))?;
        if !json.is_object() {
            return Err(format!(
                "invalid json: expected an object, found {}",
                json_kind(&json)
            ));
        }
        let mut fields = Fields::default();
        for (slot, path) in &self.paths {
            let mut found = Some(&json);
            for segment in path {
                found = found
                    .and_then(|v| v.as_object())
                    .and_then(|o| o.get(segment));
            }
            if let Some(found) = found {
                fields.set(*slot, scalar_of(found));
            }
        }
        Ok(fields)
    }
}

fn split_path(name: &str) -> Vec<String> {
    name.split('.').map(str::to_owned).collect()
}

fn json_kind(json: &Json) -> &'static str {
    match json {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

fn scalar_of(json: &Json) -> Scalar<'static> {
    match json {
        Json::String(s) => Scalar::Str(Cow::Owned(s.clone())),
        Json::Number(n) => number_scalar(n),
        other => Scalar::Other(json_kind(other)),
    }
}

fn number_scalar(n: &Number) -> Scalar<'static> {
    if let Some(i) = n.as_i64() {
        Scalar::Int(i)
    } else if let Some(u) = n.as_u64() {
        Scalar::UInt(u)
    } else {
        Scalar::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A cursor over a line that is already known to be UTF-8.
struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// A string without escapes or control characters, without its quotes.
    fn string(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        let start = self.pos;
        let close = start + memchr::memchr(b'"', self.bytes.get(start..)?)?;
        let content = self.bytes.get(start..close)?;
        // A branch-free check the compiler can vectorize; an escaped quote
        // shows up here as its backslash.
        let irregular = content
            .iter()
            .fold(false, |bad, &b| bad | (b < 0x20) | (b == b'\\'));
        if irregular {
            return None;
        }
        self.pos = close + 1;
        self.text.get(start..close)
    }

    // Inlined into the flat scanner, the hot loop of every JSON job.
    #[inline(always)]
    fn value(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Scalar::Str(Cow::Borrowed(s))),
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.literal("true", "boolean"),
            b'f' => self.literal("false", "boolean"),
            b'n' => self.literal("null", "null"),
            _ => None,
        }
    }

    /// Skips one value of any kind (objects and arrays whole), checking it
    /// as the general path would; `None` when it is invalid, holds an
    /// escape, or nests deeper than [`MAX_DEPTH`].
    fn skip_value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'{' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    match self.next()? {
                        b',' => self.skip_ws(),
                        b'}' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b'[' => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    self.skip_ws();
                    match self.next()? {
                        b',' => self.skip_ws(),
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => self.value().map(drop),
        }
    }

    fn literal(&mut self, word: &str, kind: &'static str) -> Option<Scalar<'a>> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word.as_bytes()).then(|| {
            self.pos = end;
            Scalar::Other(kind)
        })
    }

    #[inline(always)]
    fn number(&mut self) -> Option<Scalar<'a>> {
        let start = self.pos;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.peek() {
            self.pos += 1;
        }
        let digits = self.bytes.get(start..self.pos)?;
        if let Some(i) = simple_int(digits) {
            return Some(Scalar::Int(i));
        }
        self.general_number(start)
    }

    /// Anything but a short plain integer is left to serde_json, so both
    /// paths read every number the same way.
    #[cold]
    #[inline(never)]
    fn general_number(&self, start: usize) -> Option<Scalar<'a>> {
        let text = self.text.get(start..self.pos)?;
        serde_json::from_str::<Number>(text)
            .ok()
            .map(|n| number_scalar(&n))
    }
}

/// `-?[1-9][0-9]{0,17}` or `0`: integers that cannot overflow `i64`.
fn simple_int(digits: &[u8]) -> Option<i64> {
    let (negative, body) = match digits.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, digits),
    };
    match body {
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] if body.len() <= 18 => {}
        _ => return None,
    }
    let mut n: i64 = 0;
    for &b in body {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + i64::from(b - b'0');
    }
    Some(if negative { -n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_ints() {
        assert_eq!(simple_int(b"0"), Some(0));
        assert_eq!(simple_int(b"-12"), Some(-12));
        assert_eq!(simple_int(b"-0"), None);
        assert_eq!(simple_int(b"012"), None);
        assert_eq!(simple_int(b"1.5"), None);
        assert_eq!(
            simple_int(b"999999999999999999"),
            Some(999_999_999_999_999_999)
        );
        assert_eq!(simple_int(b"9999999999999999999"), None);
        assert_eq!(simple_int(b"-"), None);
    }

    #[test]
    fn fast_reads_flat_objects() {
        let fields = JsonFields::new(&FieldMapping::default());
        let found = fields
            .fast(r#" {"key":"a", "ts" : 5,"x":null,"value":-1.5e1} "#)
            .unwrap();
        let mut found = found;
        assert_eq!(found.take(Slot::Key), Some(Scalar::Str(Cow::Borrowed("a"))));
        assert_eq!(found.take(Slot::Time), Some(Scalar::Int(5)));
        assert_eq!(found.take(Slot::Value), Some(Scalar::Float(-15.0)));
        assert!(fields.fast(r#"{"key":"a\"b"}"#).is_none());
        assert!(fields.fast(r#"{"key":[1]}"#).is_none());
        assert!(fields.fast(r#"{"key":1}x"#).is_none());
        assert!(fields.fast(r#"{"key":1,}"#).is_none());
    }
}
