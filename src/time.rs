//! Event time: the `Ts` type (microseconds since the Unix epoch, UTC), parsing of the timestamp
//! shapes that access logs use (local times and their zones in [`zone`]), human durations
//! (`30s`, `15m`, `2h`, `7d`), and the RFC 3339 rendering used in alerts. Owns no clock: nothing
//! here reads the wall time.

pub mod zone;

use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt;

/// A point in event time: microseconds since 1970-01-01T00:00:00Z.
pub type Ts = i64;

/// A span of event time in microseconds.
pub type Micros = i64;

pub const MICROS_PER_SEC: i64 = 1_000_000;

/// How integer (and float) epoch timestamps are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EpochUnit {
    /// Guess from the magnitude: below 10^11 seconds, below 10^14 milliseconds, below 10^17
    /// microseconds, otherwise nanoseconds. Unambiguous for every date from 1973 to 5138.
    #[default]
    Auto,
    S,
    Ms,
    Us,
    Ns,
}

impl EpochUnit {
    fn resolve(self, magnitude: f64) -> EpochUnit {
        match self {
            EpochUnit::Auto => {
                let m = magnitude.abs();
                if m < 1e11 {
                    EpochUnit::S
                } else if m < 1e14 {
                    EpochUnit::Ms
                } else if m < 1e17 {
                    EpochUnit::Us
                } else {
                    EpochUnit::Ns
                }
            }
            unit => unit,
        }
    }
}

/// How much of a value from the input a message shows.
pub const EXCERPT_CHARS: usize = 40;

/// A value from the input as a message shows it: quoted, escaped (quotes, backslashes, control
/// and other non-printing characters as `\n`, `\u{1b}`…), at most [`EXCERPT_CHARS`]
/// characters and then `…` with the whole length. A warning must neither carry a token whole
/// into a log nor let the input write escape sequences to an operator's terminal.
pub fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(EXCERPT_CHARS * 2) + 2);
    out.push('"');
    out.push_str(&clip(text, EXCERPT_CHARS));
    out.push('"');
    out
}

/// `text` escaped like [`excerpt`] and cut after `max` characters (`…(N bytes)` says how long
/// it was), unquoted: for messages of other libraries that may hold input.
pub fn clip(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == max {
            out.push_str(&format!("…({} bytes)", text.len()));
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TsError {
    #[error(
        "bad timestamp {0}: expected RFC 3339 (e.g. 2026-03-18T14:02:11.512Z) or epoch seconds/milliseconds"
    )]
    Unparsable(String),
    #[error("timestamp {0} is out of range")]
    OutOfRange(String),
    #[error(
        "time zone {0} is not known (an abbreviation such as CET, an IANA name such as Europe/Paris, or an offset such as +02)"
    )]
    UnknownZone(String),
    #[error(
        "time zone abbreviation {abbreviation} means {meanings}: declare the server's zone ([input.pgaudit] log_timezone)"
    )]
    AmbiguousZone {
        abbreviation: String,
        meanings: String,
    },
    #[error(
        "local time {time} does not exist in {zone} (the hour skipped when summer time starts)"
    )]
    NoSuchLocalTime { time: String, zone: String },
}

/// Converts an integer epoch value in `unit` to `Ts`.
pub fn ts_from_epoch_int(value: i64, unit: EpochUnit) -> Result<Ts, TsError> {
    let out = match unit.resolve(value as f64) {
        EpochUnit::S => value.checked_mul(MICROS_PER_SEC),
        EpochUnit::Ms => value.checked_mul(1_000),
        EpochUnit::Us => Some(value),
        EpochUnit::Ns | EpochUnit::Auto => Some(value.div_euclid(1_000)),
    };
    out.filter(|ts| in_range(*ts))
        .ok_or_else(|| TsError::OutOfRange(value.to_string()))
}

/// Converts a fractional epoch value (e.g. `1773842531.512`) in `unit` to `Ts`.
pub fn ts_from_epoch_float(value: f64, unit: EpochUnit) -> Result<Ts, TsError> {
    if !value.is_finite() {
        return Err(TsError::OutOfRange(value.to_string()));
    }
    let scale = match unit.resolve(value) {
        EpochUnit::S => 1e6,
        EpochUnit::Ms => 1e3,
        EpochUnit::Us => 1.0,
        EpochUnit::Ns | EpochUnit::Auto => 1e-3,
    };
    let micros = (value * scale).round();
    if micros.abs() >= 9.0e18 || !in_range(micros as i64) {
        return Err(TsError::OutOfRange(value.to_string()));
    }
    Ok(micros as i64)
}

/// Parses a timestamp string: RFC 3339 with any offset, or a string of epoch digits.
pub fn parse_ts_str(text: &str, unit: EpochUnit) -> Result<Ts, TsError> {
    // Trimming only when an end may be white space: `trim` costs as much as the checks below.
    let bytes = text.as_bytes();
    let trimmed = if bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
    {
        text
    } else {
        text.trim()
    };
    // The common shape (UTC, `Z`) through humantime's strict RFC 3339 parser, several times
    // faster than chrono's general one; every other shape through chrono.
    if trimmed.ends_with('Z')
        && let Some(ts) = parse_utc_z(trimmed)
    {
        return Ok(ts);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(trimmed) {
        let ts = dt.timestamp_micros();
        return if in_range(ts) {
            Ok(ts)
        } else {
            Err(TsError::OutOfRange(excerpt(text)))
        };
    }
    if !trimmed.is_empty()
        && trimmed
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
        && let Ok(v) = trimmed.parse::<i64>()
    {
        return ts_from_epoch_int(v, unit);
    }
    Err(TsError::Unparsable(excerpt(text)))
}

/// An RFC 3339 time in UTC (`...Z`) through humantime; `None` if it is not one or out of range.
#[inline]
fn parse_utc_z(text: &str) -> Option<Ts> {
    let time = humantime::parse_rfc3339(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    // Seconds since 1970 of a year up to 9999 fit an i64 of microseconds.
    let ts = i64::try_from(since.as_secs())
        .ok()?
        .checked_mul(MICROS_PER_SEC)?
        .checked_add(i64::from(since.subsec_micros()))?;
    in_range(ts).then_some(ts)
}

/// Years 1000..=9999 only: keeps every `Ts` printable as RFC 3339 and every sum of a `Ts` and a
/// configured duration far from overflow.
pub(crate) fn in_range(ts: Ts) -> bool {
    const MIN: Ts = -30_610_224_000 * MICROS_PER_SEC; // 1000-01-01
    const MAX: Ts = 253_402_300_799 * MICROS_PER_SEC; // 9999-12-31T23:59:59
    (MIN..=MAX).contains(&ts)
}

/// Renders `ts` as RFC 3339 UTC with millisecond precision, e.g. `2026-03-18T14:02:11.512Z`.
pub fn format_ts(ts: Ts) -> String {
    match DateTime::<Utc>::from_timestamp_micros(ts) {
        Some(dt) => dt.to_rfc3339_opts(SecondsFormat::Millis, true),
        None => ts.to_string(),
    }
}

/// A configured duration, such as `30s`, `15m`, `2h`, `7d` or `1h30m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Micros);

impl Span {
    pub fn from_secs(secs: i64) -> Span {
        Span(secs * MICROS_PER_SEC)
    }

    pub fn micros(self) -> Micros {
        self.0
    }

    pub fn to_std(self) -> std::time::Duration {
        std::time::Duration::from_micros(self.0.max(0) as u64)
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// `7d`, `1h30m`, `250ms`: days, hours, minutes, seconds, milliseconds and microseconds, each
/// only if not zero; `0s` for nothing. Parses back to the same span.
impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0.max(0);
        if rest == 0 {
            return f.write_str("0s");
        }
        for (unit, micros) in [
            ("d", 86_400 * MICROS_PER_SEC),
            ("h", 3_600 * MICROS_PER_SEC),
            ("m", 60 * MICROS_PER_SEC),
            ("s", MICROS_PER_SEC),
            ("ms", 1_000),
            ("us", 1),
        ] {
            if rest >= micros {
                write!(f, "{}{unit}", rest / micros)?;
                rest %= micros;
            }
        }
        Ok(())
    }
}

/// Units that have no one meaning: `M` (months to humantime, minutes to many people) and the
/// calendar units, whose length varies.
const AMBIGUOUS_UNITS: &[(&str, &str)] = &[
    (
        "M",
        "`M` could be minutes or months: write `m` for minutes, `d` for days",
    ),
    (
        "month",
        "months have no fixed length: write days (e.g. 30d)",
    ),
    (
        "months",
        "months have no fixed length: write days (e.g. 30d)",
    ),
    ("y", "years have no fixed length: write days (e.g. 365d)"),
    ("year", "years have no fixed length: write days (e.g. 365d)"),
    (
        "years",
        "years have no fixed length: write days (e.g. 365d)",
    ),
];

impl std::str::FromStr for Span {
    type Err = String;

    /// A duration such as `30s`, `15m`, `2h`, `7d`, `1h30m` or `0`. Units: `us`, `ms`, `s`,
    /// `m`/`min`, `h`, `d`, `w` (and their long names); `M`, months and years are refused as
    /// ambiguous.
    fn from_str(text: &str) -> Result<Span, String> {
        let text = text.trim();
        if text == "0" {
            return Ok(Span(0));
        }
        for unit in text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|u| !u.is_empty())
        {
            if let Some((_, why)) = AMBIGUOUS_UNITS.iter().find(|(u, _)| *u == unit) {
                return Err(format!("bad duration {text:?}: {why}"));
            }
        }
        let d = humantime::parse_duration(text).map_err(|e| {
            format!("bad duration {text:?} ({e}); use e.g. 30s, 15m, 2h, 7d or 1h30m")
        })?;
        let micros = i64::try_from(d.as_micros())
            .ok()
            .filter(|m| *m <= 100 * 366 * 86_400 * MICROS_PER_SEC)
            .ok_or_else(|| format!("duration {text:?} is too long (at most 100 years)"))?;
        Ok(Span(micros))
    }
}

impl<'de> serde::Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Span, D::Error> {
        let text = String::deserialize(de)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

/// Which events to use: `--since` and `--until` (any input: JSON lines, vendor logs, Parquet).
/// `--from` is not a filter of events: everything before it is still learned from (see
/// `DetectorSettings::report_from` in the detection core).
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeFilter {
    /// Events before it are not used (nor read, where a folder or row group shows it).
    pub since: Option<Ts>,
    pub until: Option<Ts>,
}

impl TimeFilter {
    #[inline]
    pub fn keeps(&self, ts: Ts) -> bool {
        self.since.is_none_or(|s| ts >= s) && self.until.is_none_or(|u| ts < u)
    }

    /// Whether a span from `min` to `max` (inclusive; unknown bounds are open) can hold a
    /// kept time.
    pub fn overlaps(&self, min: Option<Ts>, max: Option<Ts>) -> bool {
        let after_since = match (self.since, max) {
            (Some(s), Some(max)) => max >= s,
            _ => true,
        };
        let before_until = match (self.until, min) {
            (Some(u), Some(min)) => min < u,
            _ => true,
        };
        after_since && before_until
    }

    /// Whether a day folder (`dt=2026-03-16`, the day starting at `day_start`) can hold a kept
    /// time. Exports are often partitioned by when records were delivered, not by when they
    /// happened: a day's folder is taken to hold events of the day before and after it too.
    pub fn may_hold_day(&self, day_start: Ts) -> bool {
        const DAY: Micros = 86_400 * MICROS_PER_SEC;
        self.overlaps(Some(day_start - DAY), Some(day_start + 2 * DAY - 1))
    }

    /// The day a path's `dt=YYYY-MM-DD` (or `date=`) component names, when it has one, and
    /// whether that day can hold a kept time (`true` for a path with no day).
    pub fn may_hold_path(&self, path: &str) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        path.split(['/', '\\'])
            .filter_map(|c| c.strip_prefix("dt=").or_else(|| c.strip_prefix("date=")))
            .filter_map(|d| chrono::NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok())
            .map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc()
                    .timestamp_micros()
            })
            .all(|day| self.may_hold_day(day))
    }
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    fn at(text: &str) -> Ts {
        parse_cli_time(text).unwrap()
    }

    #[test]
    fn since_and_until_bound_events_spans_and_day_folders() {
        let filter = TimeFilter {
            since: Some(at("2026-03-10")),
            until: Some(at("2026-03-20")),
        };
        assert!(!filter.keeps(at("2026-03-09T23:59:59Z")));
        assert!(filter.keeps(at("2026-03-10")));
        assert!(!filter.keeps(at("2026-03-20")));
        assert!(!filter.overlaps(Some(at("2026-03-01")), Some(at("2026-03-09"))));
        assert!(filter.overlaps(Some(at("2026-03-01")), Some(at("2026-03-10"))));
        assert!(filter.overlaps(None, None));
        // A day folder may hold the day before and after it.
        assert!(!filter.may_hold_path("s3://b/archive/dt=2026-03-08/part-00000.parquet"));
        assert!(filter.may_hold_path("archive/dt=2026-03-09/part-00000.parquet"));
        assert!(filter.may_hold_path("logs/date=2026-03-20/x.jsonl"));
        assert!(!filter.may_hold_path("logs/date=2026-03-21/x.jsonl"));
        assert!(filter.may_hold_path("logs/dt=today/x.jsonl"));
        assert!(TimeFilter::default().may_hold_path("dt=1999-01-01/x"));
    }
}

/// A time given on the command line (`--from`, `--until`): RFC 3339, a date and time without an
/// offset (UTC; `T` or a space between them), a bare date (its midnight, UTC), or an epoch number.
pub fn parse_cli_time(text: &str) -> Result<Ts, String> {
    use chrono::{NaiveDate, NaiveDateTime};
    let text = text.trim();
    // `2026-03-16 14:00:00Z` is RFC 3339 with a `T` for the space.
    let spaced = text.replacen(' ', "T", 1);
    if let Ok(ts) = parse_ts_str(&spaced, EpochUnit::Auto) {
        return Ok(ts);
    }
    let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(&spaced, f).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        });
    match naive.map(|n| n.and_utc().timestamp_micros()) {
        Some(ts) if in_range(ts) => Ok(ts),
        _ => Err(format!(
            "`{text}`: expected a date (2026-03-16), a date and time (2026-03-16T14:00:00Z; \
             without an offset it is UTC) or an epoch number"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_from_the_input_are_shown_escaped_and_cut() {
        assert_eq!(excerpt("2026-13-01"), "\"2026-13-01\"");
        assert_eq!(excerpt("a\"b\u{1b}[31m\n"), "\"a\\\"b\\u{1b}[31m\\n\"");
        let token = format!("eyJ{}", "x".repeat(500));
        let shown = excerpt(&token);
        assert_eq!(shown, format!("\"eyJ{}…(503 bytes)\"", "x".repeat(37)));
        let error = parse_ts_str(&token, EpochUnit::Auto)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("…(503 bytes)") && error.len() < 200,
            "{error}"
        );
    }

    #[test]
    fn spans_refuse_ambiguous_units_and_print_as_they_parse() {
        for bad in ["30M", "1month", "2 months", "1y", "3years", "1h30M"] {
            let error = bad.parse::<Span>().unwrap_err();
            assert!(error.contains("bad duration"), "{bad}: {error}");
        }
        for (text, shown) in [
            ("30m", "30m"),
            ("30min", "30m"),
            ("7d", "7d"),
            ("2w", "14d"),
            ("90d", "90d"),
            ("1h30m", "1h30m"),
            ("1s500ms", "1s500ms"),
            ("250ms", "250ms"),
            ("0", "0s"),
        ] {
            let span: Span = text.parse().unwrap();
            assert_eq!(span.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Span>(), Ok(span), "{shown} parses back");
        }
    }

    #[test]
    fn command_line_times_take_dates_and_times_without_an_offset_as_utc() {
        let midnight = parse_ts_str("2026-03-16T00:00:00Z", EpochUnit::Auto).unwrap();
        let two_pm = parse_ts_str("2026-03-16T14:00:00Z", EpochUnit::Auto).unwrap();
        for (text, ts) in [
            ("2026-03-16", midnight),
            ("2026-03-16T14:00:00Z", two_pm),
            ("2026-03-16 14:00:00Z", two_pm),
            ("2026-03-16 14:00:00", two_pm),
            ("2026-03-16T14:00", two_pm),
            ("2026-03-16T16:00:00+02:00", two_pm),
            (" 2026-03-16 ", midnight),
        ] {
            assert_eq!(parse_cli_time(text), Ok(ts), "{text}");
        }
        for bad in ["2026-02-30", "16/03/2026", "yesterday", ""] {
            assert!(parse_cli_time(bad).is_err(), "{bad}");
        }
    }

    const T: Ts = 1_773_842_531_512_000; // 2026-03-18T14:02:11.512Z

    #[test]
    fn rfc3339_with_any_offset_normalises_to_utc() {
        for text in [
            "2026-03-18T14:02:11.512Z",
            "2026-03-18T16:02:11.512+02:00",
            "2026-03-18T09:02:11.512-05:00",
            "2026-03-18t14:02:11.512z",
        ] {
            assert_eq!(parse_ts_str(text, EpochUnit::Auto), Ok(T), "{text}");
        }
        assert_eq!(format_ts(T), "2026-03-18T14:02:11.512Z");
    }

    #[test]
    fn the_fast_path_agrees_with_chrono() {
        for text in [
            "2026-03-18T14:02:11Z",
            "2026-03-18T14:02:11.5Z",
            "2026-03-18T14:02:11.123456Z",
            "2026-03-18T14:02:11.123456789Z",
            "1970-01-01T00:00:00Z",
            "2000-02-29T23:59:59.999Z",
        ] {
            let chrono = DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_micros();
            assert_eq!(parse_ts_str(text, EpochUnit::Auto), Ok(chrono), "{text}");
        }
        assert_eq!(
            parse_ts_str("1969-12-31T23:59:59.5Z", EpochUnit::Auto),
            Ok(-500_000)
        );
    }

    #[test]
    fn epoch_units_are_guessed_from_magnitude() {
        let secs = 1_773_842_531_i64;
        assert_eq!(
            ts_from_epoch_int(secs, EpochUnit::Auto),
            Ok(secs * MICROS_PER_SEC)
        );
        assert_eq!(ts_from_epoch_int(secs * 1000 + 512, EpochUnit::Auto), Ok(T));
        assert_eq!(ts_from_epoch_int(T, EpochUnit::Auto), Ok(T));
        assert_eq!(ts_from_epoch_int(T * 1000, EpochUnit::Auto), Ok(T));
        assert_eq!(
            ts_from_epoch_float(1_773_842_531.512, EpochUnit::Auto),
            Ok(T)
        );
        assert_eq!(parse_ts_str("1773842531512", EpochUnit::Auto), Ok(T));
        assert!(ts_from_epoch_int(1_773_842_531_512_000, EpochUnit::S).is_err());
    }

    #[test]
    fn garbage_and_out_of_range_are_errors() {
        assert!(matches!(
            parse_ts_str("yesterday", EpochUnit::Auto),
            Err(TsError::Unparsable(_))
        ));
        assert!(parse_ts_str("2026-13-40T00:00:00Z", EpochUnit::Auto).is_err());
        assert!(ts_from_epoch_float(f64::NAN, EpochUnit::Auto).is_err());
        assert!(ts_from_epoch_int(i64::MAX, EpochUnit::Ns).is_ok());
        assert!(ts_from_epoch_int(i64::MAX / 2, EpochUnit::S).is_err());
    }

    #[test]
    fn spans_parse_human_durations() {
        assert_eq!("30s".parse::<Span>(), Ok(Span::from_secs(30)));
        assert_eq!("15m".parse::<Span>(), Ok(Span::from_secs(900)));
        assert_eq!("2h".parse::<Span>(), Ok(Span::from_secs(7200)));
        assert_eq!("7d".parse::<Span>(), Ok(Span::from_secs(7 * 86_400)));
        assert_eq!("1h30m".parse::<Span>(), Ok(Span::from_secs(5400)));
        assert_eq!("0".parse::<Span>(), Ok(Span(0)));
        assert!("soon".parse::<Span>().is_err());
        assert!("-5m".parse::<Span>().is_err());
    }
}
