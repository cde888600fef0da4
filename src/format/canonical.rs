//! The fast path of the canonical JSON-lines shape: a byte scanner for a flat object of the
//! default field names whose values are plain strings and integers —
//! `{"ts":"2026-03-16T14:02:11.512Z","principal":"…","table":"…","action":"SELECT","rows":12}` —
//! in any key order, with JSON white space anywhere, and other keys with such values skipped.
//!
//! It is never the authority: on anything it is not certain of — an escape, a control
//! character, a nested value, `null`, `true`, a fraction or an exponent, a leading zero, a
//! number out of range, a duplicate key, a permission-change field, a blank name, a timestamp
//! of another shape — it answers `None` and serde_json decides (`jsonl.rs`, the general pass),
//! errors included. The differential fuzz target (`fuzz/fuzz_targets/jsonl.rs`) and the
//! property test (`tests/it/properties.rs`) check that both give the same answer for any line.

use crate::event::AccessEvent;
use crate::time::{MICROS_PER_SEC, Ts};
use std::borrow::Cow;

/// One scanned value.
#[derive(Clone, Copy)]
enum Scalar<'a> {
    Str(&'a str),
    Int(i64),
}

/// Reads `line` (valid UTF-8, trimmed of nothing) as a canonical access event; `None` for
/// anything it does not take.
pub fn access(text: &str) -> Option<AccessEvent<'_>> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    at = skip_ws(bytes, at + 1);
    // Seen fields, by bit: ts, principal, table, action, rows, bytes.
    let mut seen = 0u8;
    let (mut ts, mut principal, mut table, mut action) = (None, None, None, None);
    let (mut rows, mut count_bytes) = (None, None);
    if bytes.get(at) == Some(&b'}') {
        at += 1;
    } else {
        loop {
            let (key, next) = string(text, at)?;
            at = skip_ws(bytes, next);
            if bytes.get(at) != Some(&b':') {
                return None;
            }
            at = skip_ws(bytes, at + 1);
            let (value, next) = scalar(text, at)?;
            at = skip_ws(bytes, next);
            let bit = match key {
                "ts" => 1,
                "principal" => 2,
                "table" => 4,
                "action" => 8,
                "rows" => 16,
                "bytes" => 32,
                // A permission change, read by the general pass.
                "grantee" | "privilege" | "statement" => return None,
                _ => 0,
            };
            if bit != 0 {
                if seen & bit != 0 {
                    return None;
                }
                seen |= bit;
                match (bit, value) {
                    (1, v) => ts = Some(v),
                    (2, Scalar::Str(s)) => principal = Some(s),
                    (4, Scalar::Str(s)) => table = Some(s),
                    (8, Scalar::Str(s)) => action = Some(s),
                    (16, v) => rows = Some(v),
                    (32, v) => count_bytes = Some(v),
                    _ => return None,
                }
            }
            match bytes.get(at) {
                Some(b',') => at = skip_ws(bytes, at + 1),
                Some(b'}') => {
                    at += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if skip_ws(bytes, at) != bytes.len() {
        return None;
    }
    let ts = match ts? {
        Scalar::Str(s) => rfc3339_utc(s)?,
        // Epoch numbers have units to guess: the general pass.
        Scalar::Int(_) => return None,
    };
    // As the general pass reads them: a negative count is dropped.
    let count = |v: Option<Scalar<'_>>| match v {
        Some(Scalar::Int(n)) if n >= 0 => Some(n),
        _ => None,
    };
    // A count given as text is the general pass's to read.
    if matches!(rows, Some(Scalar::Str(_))) || matches!(count_bytes, Some(Scalar::Str(_))) {
        return None;
    }
    Some(AccessEvent {
        ts,
        principal: Cow::Borrowed(named(principal)?),
        table: Cow::Borrowed(named(table)?),
        action: action.map(Cow::Borrowed),
        is_read: None,
        rows: count(rows),
        bytes: count(count_bytes),
        columns: Vec::new(),
    })
}

/// A principal or table name as the general pass takes it: present and not blank.
fn named(name: Option<&str>) -> Option<&str> {
    name.filter(|s| !super::jsonl::is_blank(s))
}

#[inline]
pub(super) fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
        at += 1;
    }
    at
}

/// A string without escapes or control characters starting at `at` (its opening quote):
/// its text and the position after its closing quote.
#[inline]
pub(super) fn string(text: &str, at: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    if bytes.get(at) != Some(&b'"') {
        return None;
    }
    let start = at + 1;
    let end = start + special(&bytes[start..])?;
    if bytes[end] != b'"' {
        return None;
    }
    // Quotes are ASCII: both ends are character boundaries.
    Some((&text[start..end], end + 1))
}

/// The first quote, backslash or control character of `bytes`, eight bytes at a time.
#[inline]
fn special(bytes: &[u8]) -> Option<usize> {
    use super::decode::{bytes_below, bytes_equal, first_byte_where};
    first_byte_where(bytes, |w| {
        bytes_equal(w, b'"') | bytes_equal(w, b'\\') | bytes_below(w, 0x20)
    })
}

/// A string or an integer (JSON's grammar: no leading zero, no fraction, no exponent) that
/// fits an i64.
#[inline]
fn scalar(text: &str, at: usize) -> Option<(Scalar<'_>, usize)> {
    let bytes = text.as_bytes();
    match bytes.get(at)? {
        b'"' => string(text, at).map(|(s, next)| (Scalar::Str(s), next)),
        b'-' | b'0'..=b'9' => {
            let negative = bytes[at] == b'-';
            let digits_start = at + usize::from(negative);
            let digits = bytes[digits_start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 || digits > 18 || (digits > 1 && bytes[digits_start] == b'0') {
                return None;
            }
            let end = digits_start + digits;
            if matches!(bytes.get(end), Some(b'.' | b'e' | b'E')) {
                return None;
            }
            let mut value: i64 = 0;
            for &b in &bytes[digits_start..end] {
                value = value * 10 + i64::from(b - b'0');
            }
            // serde_json reads `-0` as a float.
            if negative && value == 0 {
                return None;
            }
            Some((Scalar::Int(if negative { -value } else { value }), end))
        }
        _ => None,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (the fraction 1 to 9 digits, cut to microseconds), years
/// 1000 to 9999, every field in range; `None` for any other shape (the general pass reads
/// them, through the same parser as ever).
pub fn rfc3339_utc(s: &str) -> Option<Ts> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || *b.last()? != b'Z' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    let micros = match b.len() - 20 {
        0 => 0,
        n if (2..=10).contains(&n) && b[19] == b'.' => {
            let digits = &b[20..b.len() - 1];
            let mut v = 0i64;
            for (i, &c) in digits.iter().enumerate() {
                if !c.is_ascii_digit() {
                    return None;
                }
                if i < 6 {
                    v = v * 10 + i64::from(c - b'0');
                }
            }
            v * 10i64.pow(6u32.saturating_sub(digits.len() as u32))
        }
        _ => return None,
    };
    if b.len() == 20 && b[19] != b'Z' {
        return None;
    }
    if !(1000..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let ts = (days * 86_400 + hour * 3_600 + minute * 60 + second) * MICROS_PER_SEC + micros;
    crate::time::in_range(ts).then_some(ts)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{EpochUnit, parse_ts_str};

    #[test]
    fn the_word_at_a_time_search_finds_what_the_byte_search_finds() {
        let mut text: Vec<u8> =
            b"abcdefghijklmnopqrstuvwxyz0123456789\xc3\xa9\x7f\x80\xff".to_vec();
        for at in 0..text.len() {
            for special_byte in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                let saved = text[at];
                text[at] = special_byte;
                let want = text
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\' || b < 0x20);
                assert_eq!(special(&text), want, "{at} {special_byte}");
                text[at] = saved;
            }
        }
        assert_eq!(special(&text), None);
    }

    #[test]
    fn times_agree_with_the_general_parser() {
        for s in [
            "2026-03-16T14:02:11.512Z",
            "2026-03-16T14:02:11Z",
            "2026-03-16T14:02:11.5Z",
            "2026-03-16T14:02:11.123456789Z",
            "2024-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "1000-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "1969-12-31T23:59:59.999Z",
        ] {
            assert_eq!(rfc3339_utc(s), parse_ts_str(s, EpochUnit::Auto).ok(), "{s}");
        }
        for s in [
            "2025-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-03-16T24:00:00Z",
            "2026-03-16T14:02:60Z",
            "2026-03-16T14:02:11.Z",
            "2026-03-16T14:02:11.1234567890Z",
            "2026-03-16 14:02:11Z",
            "2026-03-16T14:02:11+00:00",
            "0999-12-31T23:59:59Z",
        ] {
            assert_eq!(rfc3339_utc(s), None, "{s}");
        }
    }

    #[test]
    fn canonical_lines_are_taken_and_unusual_ones_left_to_serde() {
        let e = access(
            r#" {"table":"t","ts":"2026-03-16T14:02:11.512Z" , "principal":"p","x":-3,"rows":12} "#,
        )
        .unwrap();
        assert_eq!(
            (&*e.table, &*e.principal, e.rows, e.action),
            ("t", "p", Some(12), None)
        );
        for line in [
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p\u0041","table":"t"}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","table":"u"}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","action":null}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","rows":1.5}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","rows":012}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","x":{}}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":" ","table":"t"}"#,
            r#"{"ts":1773669731512,"principal":"p","table":"t"}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t","grantee":"g"}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t"} x"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p","table":"t",}"#,
            r#"{"ts":"2026-03-16T14:02:11Z","principal":"p"}"#,
        ] {
            assert!(access(line).is_none(), "{line}");
        }
    }
}
