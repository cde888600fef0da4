//! A lean JSON reader for the typed fast paths of the vendor formats (`parse_fast` in
//! `cloudtrail`, `gcp`, `snowflake`, `databricks`): one pass over a line, the fields a format
//! reads taken as borrowed text, every other value checked and skipped without building
//! anything.
//!
//! It is never the authority. It answers `None` for anything it is not certain serde_json's
//! `Value` would read the same way, and the format's `Value` path then decides (errors
//! included): an escape or a control character in a string, a number with an exponent or over
//! [`MAX_NUMBER_LEN`] characters (serde_json refuses a number beyond `f64`'s range, `1e400`, and
//! skipping it unread would take a line the `Value` path rejects), nesting deeper than
//! [`MAX_DEPTH`] (serde_json stops at 128), a repeated key the format reads, a field of another
//! type than the format expects, anything after the object. Every line it takes is valid JSON
//! as a whole — its UTF-8 included — so it is what serde_json parses too. The differential fuzz
//! targets and `tests/it/properties.rs` check each format's fast path against its `Value` path.

use super::canonical::{skip_ws, string};

/// Nesting this deep or deeper is left to serde_json (whose limit is 128).
const MAX_DEPTH: u32 = 64;

/// A number longer than this is left to serde_json: a mantissa of at most 300 digits cannot
/// overflow `f64` (whose greatest finite value is about 1.8e308).
const MAX_NUMBER_LEN: usize = 300;

/// A position in a line being read.
pub(crate) struct Json<'a> {
    text: &'a str,
    at: usize,
    depth: u32,
}

impl<'a> Json<'a> {
    /// The line as one JSON value read by `read` (with [`Json::object`] for the formats
    /// here), then nothing but white space: `None` if it is not valid UTF-8 or `read` gives up.
    pub(crate) fn line<T>(
        line: &'a [u8],
        read: impl FnOnce(&mut Json<'a>) -> Option<T>,
    ) -> Option<T> {
        let text = simdutf8::basic::from_utf8(line).ok()?;
        let mut json = Json {
            text,
            at: 0,
            depth: 0,
        };
        let value = read(&mut json)?;
        json.ws();
        (json.at == text.len()).then_some(value)
    }

    fn ws(&mut self) {
        self.at = skip_ws(self.text.as_bytes(), self.at);
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.text.as_bytes().get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    /// Consumes `literal` if it comes next.
    fn literal(&mut self, literal: &[u8]) -> bool {
        let found = self.text.as_bytes()[self.at..].starts_with(literal);
        if found {
            self.at += literal.len();
        }
        found
    }

    /// An object: `members` is given each key and must read its value (with
    /// [`Json::skip`] for a key it does not use).
    pub(crate) fn object(
        &mut self,
        mut members: impl FnMut(&mut Json<'a>, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        self.nest()?;
        if self.peek()? == b'}' {
            self.at += 1;
        } else {
            loop {
                self.ws();
                let (key, next) = string(self.text, self.at)?;
                self.at = next;
                self.expect(b':')?;
                self.ws();
                members(self, key)?;
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    /// An array: `elements` must read each element.
    pub(crate) fn array(
        &mut self,
        mut elements: impl FnMut(&mut Json<'a>) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'[')?;
        self.nest()?;
        if self.peek()? == b']' {
            self.at += 1;
        } else {
            loop {
                self.ws();
                elements(self)?;
                match self.peek()? {
                    b',' => self.at += 1,
                    b']' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        Some(())
    }

    fn nest(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth < MAX_DEPTH).then_some(())
    }

    /// `null`: consumed, and `true`; anything else is left.
    pub(crate) fn null(&mut self) -> bool {
        self.ws();
        self.literal(b"null")
    }

    /// A string (`Some(Some(text))`) or `null` (`Some(None)`); `None` for anything else.
    pub(crate) fn text_or_null(&mut self) -> Option<Option<&'a str>> {
        if self.null() {
            return Some(None);
        }
        let (text, next) = string(self.text, self.at)?;
        self.at = next;
        Some(Some(text))
    }

    /// `true`, `false` or `null`; `None` for anything else.
    pub(crate) fn bool_or_null(&mut self) -> Option<Option<bool>> {
        if self.null() {
            Some(None)
        } else if self.literal(b"true") {
            Some(Some(true))
        } else if self.literal(b"false") {
            Some(Some(false))
        } else {
            None
        }
    }

    /// A non-negative integer of at most 18 digits, or `null`; `None` for anything else
    /// (serde_json's other readings of a number are the `Value` path's to make).
    pub(crate) fn count_or_null(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let bytes = &self.text.as_bytes()[self.at..];
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 18 || (digits > 1 && bytes[0] == b'0') {
            return None;
        }
        if matches!(bytes.get(digits), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = bytes[..digits]
            .iter()
            .fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        self.at += digits;
        Some(Some(value))
    }

    /// A whole non-negative number (`3462992` or `3462992.0`, as CloudTrail writes byte
    /// counts) of at most 15 digits (exact as a float too), or `null`; `None` for anything else
    /// (a fraction, an exponent, a sign: the `Value` path's to read).
    pub(crate) fn whole_or_null(&mut self) -> Option<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        let bytes = &self.text.as_bytes()[self.at..];
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 15 || (digits > 1 && bytes[0] == b'0') {
            return None;
        }
        let mut end = digits;
        if bytes.get(end) == Some(&b'.') {
            let zeros = bytes[end + 1..].iter().take_while(|b| **b == b'0').count();
            if zeros == 0 {
                return None;
            }
            end += 1 + zeros;
        }
        if matches!(bytes.get(end), Some(b) if b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E'))
        {
            return None;
        }
        let value = bytes[..digits]
            .iter()
            .fold(0i64, |n, b| n * 10 + i64::from(b - b'0'));
        self.at += end;
        Some(Some(value))
    }

    /// An object whose members named in `names` (at most 32) are each given to `member`, with
    /// the name, to read its value; other members are skipped. `None` if `member` gives up or a
    /// named member comes twice (the `Value` path takes the last: the line is left to it).
    pub(crate) fn named(
        &mut self,
        names: &[&'static str],
        mut member: impl FnMut(&mut Json<'a>, &'static str) -> Option<()>,
    ) -> Option<()> {
        debug_assert!(names.len() <= 32);
        let mut seen = 0u32;
        self.object(|json, key| {
            let Some(at) = names.iter().position(|name| *name == key) else {
                return json.skip();
            };
            let bit = 1 << at;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            member(json, names[at])
        })
    }

    /// [`Json::named`] of an object (`Some(true)`) or `null` (`Some(false)`).
    pub(crate) fn named_or_null(
        &mut self,
        names: &[&'static str],
        member: impl FnMut(&mut Json<'a>, &'static str) -> Option<()>,
    ) -> Option<bool> {
        if self.null() {
            return Some(false);
        }
        self.named(names, member).map(|()| true)
    }

    /// An object (`Some(true)`) or `null` (`Some(false)`) whose members named in `fields` are
    /// each a string or `null`, read into their place (see [`Json::named`]).
    pub(crate) fn text_members<const N: usize>(
        &mut self,
        mut fields: [(&'static str, &mut Option<&'a str>); N],
    ) -> Option<bool> {
        let names: [&'static str; N] = std::array::from_fn(|i| fields[i].0);
        self.named_or_null(&names, |json, name| {
            let field = fields.iter_mut().find(|(n, _)| *n == name)?;
            *field.1 = json.text_or_null()?;
            Some(())
        })
    }

    /// Whether the value is anything but `null` (as a look-up of a `Value` that finds it and
    /// tests `is_null` sees it); the value is checked and skipped.
    pub(crate) fn not_null(&mut self) -> Option<bool> {
        if self.null() {
            return Some(false);
        }
        self.skip().map(|()| true)
    }

    /// Any value, checked as serde_json would and skipped (see the module comment for what it
    /// leaves to serde_json).
    pub(crate) fn skip(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                let (_, next) = string(self.text, self.at)?;
                self.at = next;
                Some(())
            }
            b'{' => self.object(|json, _| json.skip()),
            b'[' => self.array(Json::skip),
            b't' => self.literal(b"true").then_some(()),
            b'f' => self.literal(b"false").then_some(()),
            b'n' => self.literal(b"null").then_some(()),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?`, JSON's grammar without the exponent.
    fn number(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut at = start + usize::from(bytes[start] == b'-');
        let digits = |from: usize| {
            bytes[from..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let integer = digits(at);
        if integer == 0 || (integer > 1 && bytes[at] == b'0') {
            return None;
        }
        at += integer;
        if bytes.get(at) == Some(&b'.') {
            let fraction = digits(at + 1);
            if fraction == 0 {
                return None;
            }
            at += 1 + fraction;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) || at - start > MAX_NUMBER_LEN {
            return None;
        }
        self.at = at;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the walker takes `line`, skipping every value.
    fn takes(line: &str) -> bool {
        Json::line(line.as_bytes(), |json| json.object(|json, _| json.skip())).is_some()
    }

    #[test]
    fn takes_only_what_serde_json_reads_the_same() {
        for line in [
            r#"{}"#,
            r#" { "a" : [1, -2.5, 0, 0.0, "x", true, false, null, {"b": []}] } "#,
            r#"{"a":{"b":{"c":[[]]}}}"#,
            "{\"a\":\"caf\u{e9}\"}",
        ] {
            assert!(takes(line), "{line}");
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok());
        }
        // Left to serde_json: some are errors there, some are read in ways not checked here.
        for line in [
            r#"{"a":1e400}"#,
            r#"{"a":1E2}"#,
            r#"{"a":01}"#,
            r#"{"a":-}"#,
            r#"{"a":1.}"#,
            r#"{"a":"\n"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{"a":1} x"#,
            r#"[1]"#,
            r#"1"#,
            r#"{"a" 1}"#,
            r#"{"a":[1,]}"#,
        ] {
            assert!(!takes(line), "{line}");
        }
        let long = format!(r#"{{"a":1{}}}"#, "0".repeat(400));
        assert!(!takes(&long));
        assert!(serde_json::from_str::<serde_json::Value>(&long).is_err());
        let deep = format!(r#"{{"a":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(!takes(&deep));
        assert!(!takes("{\"a\":\"\u{0}\"}"));
        assert!(
            Json::line(b"{\"a\":\"\xff\"}", |json| json
                .object(|json, _| json.skip()))
            .is_none()
        );
    }

    #[test]
    fn typed_fields_take_their_type_or_null_only() {
        type Fields<'a> = (Option<&'a str>, Option<bool>, Option<i64>);
        fn read(line: &str) -> Option<Fields<'_>> {
            Json::line(line.as_bytes(), |json| {
                let mut got = (None, None, None);
                json.named(&["s", "b", "n"], |json, key| {
                    match key {
                        "s" => got.0 = json.text_or_null()?,
                        "b" => got.1 = json.bool_or_null()?,
                        _ => got.2 = json.count_or_null()?,
                    }
                    Some(())
                })?;
                Some(got)
            })
        }
        assert_eq!(
            read(r#"{"s":"x","b":true,"n":12,"o":{}}"#),
            Some((Some("x"), Some(true), Some(12)))
        );
        assert_eq!(
            read(r#"{"s":null,"b":null,"n":null}"#),
            Some((None, None, None))
        );
        for line in [
            r#"{"s":1}"#,
            r#"{"b":"true"}"#,
            r#"{"n":-1}"#,
            r#"{"n":1.5}"#,
            r#"{"n":1e3}"#,
            r#"{"n":1234567890123456789}"#,
            r#"{"s":"x","s":"y"}"#,
        ] {
            assert_eq!(read(line), None, "{line}");
        }
    }
}
