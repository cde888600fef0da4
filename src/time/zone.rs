//! Local times and the zones they are written in, resolved with the IANA time zone database
//! (chrono-tz): what a server writes when its log time zone is not UTC — PostgreSQL's `%m` with
//! `log_timezone = 'Europe/Paris'` writes `2026-03-18 15:02:11.512 CET` in winter and `… CEST` in
//! summer. A zone written after a time may be:
//!
//! - `UTC`, `GMT`, `UT` or `Z`;
//! - a numeric offset: `+02`, `-0330`, `+05:30`;
//! - an IANA name: `Europe/Paris`;
//! - an abbreviation: `CET`, `CEST`, `EST`, `JST`. Read against the declared zone first (so
//!   that `IST` of a server in `Asia/Kolkata` is +05:30, and the hour repeated when summer time
//!   ends is told apart by `CEST`/`CET`); else against every zone of the database, which must all
//!   agree on its offset — `IST` alone (India, Ireland, Israel) is an error that asks for the
//!   zone to be declared.
//!
//! A time written with no zone is in the declared zone (UTC unless declared). The hour that does
//! not exist when summer time starts is an error; the hour repeated when it ends, without an
//! abbreviation to tell, is taken as its first occurrence.

use super::{Ts, TsError};
use chrono::{FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone};
use chrono_tz::{OffsetName, Tz};
use std::cell::RefCell;
use std::collections::HashMap;

/// The zone that times written without one are in (UTC unless declared), and against which
/// abbreviations are read first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalZone(Option<Tz>);

impl LocalZone {
    pub const UTC: LocalZone = LocalZone(None);

    /// The zone named `name` in the IANA database (`Europe/Paris`, `CET`, `America/New_York`;
    /// case does not matter), as PostgreSQL's `log_timezone` names it.
    pub fn named(name: &str) -> Result<LocalZone, String> {
        let name = name.trim();
        if is_utc(name) || name.eq_ignore_ascii_case("Etc/UTC") {
            return Ok(LocalZone::UTC);
        }
        Tz::from_str_insensitive(name)
            .map(|tz| LocalZone(Some(tz)))
            .map_err(|_| {
                format!(
                    "{name:?} is not a time zone of the IANA database (e.g. \"Europe/Paris\", \
                     \"America/New_York\", \"UTC\")"
                )
            })
    }

    /// The instant of local time `naive` written with the zone `written` (`None`: none written).
    pub fn resolve(&self, naive: NaiveDateTime, written: Option<&str>) -> Result<Ts, TsError> {
        let offset = match written.map(str::trim).filter(|w| !w.is_empty()) {
            None => self.offset_of_local(naive)?,
            Some(w) if is_utc(w) => FixedOffset::east_opt(0).expect("zero"),
            Some(w) if w.starts_with(['+', '-']) => {
                numeric_offset(w).ok_or_else(|| TsError::UnknownZone(super::excerpt(w)))?
            }
            Some(w) if w.contains('/') => {
                let tz = Tz::from_str_insensitive(w)
                    .map_err(|_| TsError::UnknownZone(super::excerpt(w)))?;
                LocalZone(Some(tz)).offset_of_local(naive)?
            }
            Some(abbreviation) => self.abbreviation_offset(naive, abbreviation)?,
        };
        let utc = naive - chrono::Duration::seconds(i64::from(offset.local_minus_utc()));
        Ok(utc.and_utc().timestamp_micros())
    }

    /// The offset of local time `naive` in this zone.
    fn offset_of_local(&self, naive: NaiveDateTime) -> Result<FixedOffset, TsError> {
        let Some(tz) = self.0 else {
            return Ok(FixedOffset::east_opt(0).expect("zero"));
        };
        match tz.offset_from_local_datetime(&naive) {
            LocalResult::Single(offset) | LocalResult::Ambiguous(offset, _) => Ok(offset.fix()),
            LocalResult::None => Err(TsError::NoSuchLocalTime {
                time: naive.to_string(),
                zone: tz.name().to_string(),
            }),
        }
    }

    /// The offset `abbreviation` stands for at local time `naive`.
    fn abbreviation_offset(
        &self,
        naive: NaiveDateTime,
        abbreviation: &str,
    ) -> Result<FixedOffset, TsError> {
        if let Some(tz) = self.0
            && let Some(offset) = offsets_at(tz, naive)
                .find(|(_, name)| name.eq_ignore_ascii_case(abbreviation))
                .map(|(offset, _)| offset)
        {
            return Ok(offset);
        }
        anywhere(naive, abbreviation)
    }
}

/// The offsets zone `tz` has at local time `naive` (two in the repeated hour), with their
/// abbreviations.
fn offsets_at(tz: Tz, naive: NaiveDateTime) -> impl Iterator<Item = (FixedOffset, String)> {
    let (first, second) = match tz.offset_from_local_datetime(&naive) {
        LocalResult::Single(offset) => (Some(offset), None),
        LocalResult::Ambiguous(earlier, later) => (Some(earlier), Some(later)),
        LocalResult::None => (None, None),
    };
    first
        .into_iter()
        .chain(second)
        .filter_map(|offset| Some((offset.fix(), offset.abbreviation()?.to_string())))
}

thread_local! {
    /// What abbreviations stood for, by year: looking one up reads every zone of the database.
    static ABBREVIATIONS: RefCell<HashMap<(String, i32), Result<FixedOffset, TsError>>> =
        RefCell::new(HashMap::new());
}

/// The offset `abbreviation` stands for in every zone that uses it at `naive`, if they agree.
fn anywhere(naive: NaiveDateTime, abbreviation: &str) -> Result<FixedOffset, TsError> {
    use chrono::Datelike;
    let key = (abbreviation.to_ascii_uppercase(), naive.year());
    if let Some(known) = ABBREVIATIONS.with(|cache| cache.borrow().get(&key).cloned()) {
        return known;
    }
    let mut found: Vec<(FixedOffset, &'static str)> = Vec::new();
    for tz in chrono_tz::TZ_VARIANTS {
        for (offset, name) in offsets_at(tz, naive) {
            if name.eq_ignore_ascii_case(abbreviation)
                && !found.iter().any(|(known, _)| *known == offset)
            {
                found.push((offset, tz.name()));
            }
        }
    }
    let resolved = match found.as_slice() {
        [] => Err(TsError::UnknownZone(super::excerpt(abbreviation))),
        [(offset, _)] => Ok(*offset),
        several => Err(TsError::AmbiguousZone {
            abbreviation: abbreviation.to_string(),
            meanings: several
                .iter()
                .map(|(offset, zone)| format!("{offset} in {zone}"))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    };
    ABBREVIATIONS.with(|cache| cache.borrow_mut().insert(key, resolved.clone()));
    resolved
}

fn is_utc(written: &str) -> bool {
    ["UTC", "GMT", "UT", "Z"]
        .iter()
        .any(|utc| utc.eq_ignore_ascii_case(written))
}

/// `+02`, `-0330`, `+05:30`, `+2`.
fn numeric_offset(written: &str) -> Option<FixedOffset> {
    let (sign, digits) = match written.split_at(1) {
        ("+", rest) => (1, rest),
        ("-", rest) => (-1, rest),
        _ => return None,
    };
    let digits: String = digits.chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = if digits.len() <= 2 {
        (digits.parse::<i32>().ok()?, 0)
    } else {
        let split = digits.len() - 2;
        (
            digits[..split].parse::<i32>().ok()?,
            digits[split..].parse::<i32>().ok()?,
        )
    };
    if hours > 15 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// A local time `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`), then optionally a zone after a space
/// or directly (`+02`): the instant it is, given the declared zone `zone`.
pub fn parse_local_time(text: &str, zone: &LocalZone) -> Result<Ts, TsError> {
    let text = text.trim();
    let unparsable = || TsError::Unparsable(super::excerpt(text));
    let (naive, rest) = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_and_remainder(text, format).ok())
        .ok_or_else(unparsable)?;
    let rest = rest.trim();
    let ts = zone.resolve(naive, (!rest.is_empty()).then_some(rest))?;
    if super::in_range(ts) {
        Ok(ts)
    } else {
        Err(TsError::OutOfRange(super::excerpt(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, zone: &str) -> Result<String, TsError> {
        let zone = LocalZone::named(zone).unwrap();
        parse_local_time(text, &zone).map(super::super::format_ts)
    }

    #[test]
    fn abbreviations_and_offsets_are_read_with_the_iana_database() {
        let utc = |t| at(t, "UTC").unwrap();
        assert_eq!(
            utc("2026-01-10 15:02:11.512 CET"),
            "2026-01-10T14:02:11.512Z"
        );
        assert_eq!(
            utc("2026-07-10 15:02:11.512 CEST"),
            "2026-07-10T13:02:11.512Z"
        );
        assert_eq!(utc("2026-07-10 09:00:00 EDT"), "2026-07-10T13:00:00.000Z");
        assert_eq!(utc("2026-07-10 22:00:00 JST"), "2026-07-10T13:00:00.000Z");
        assert_eq!(utc("2026-07-10 16:00:00 +03"), "2026-07-10T13:00:00.000Z");
        assert_eq!(utc("2026-07-10 18:30:00+05:30"), "2026-07-10T13:00:00.000Z");
        assert_eq!(utc("2026-07-10 09:30:00 -0330"), "2026-07-10T13:00:00.000Z");
        assert_eq!(
            utc("2026-07-10 15:00:00 Europe/Paris"),
            "2026-07-10T13:00:00.000Z"
        );
        assert_eq!(utc("2026-07-10 13:00:00"), "2026-07-10T13:00:00.000Z");
    }

    #[test]
    fn an_ambiguous_abbreviation_needs_the_declared_zone() {
        let err = at("2026-07-10 18:30:00 IST", "UTC")
            .unwrap_err()
            .to_string();
        assert!(err.contains("IST") && err.contains("+05:30"), "{err}");
        assert_eq!(
            at("2026-07-10 18:30:00 IST", "Asia/Kolkata").unwrap(),
            "2026-07-10T13:00:00.000Z"
        );
        assert_eq!(
            at("2026-07-10 14:00:00 IST", "Europe/Dublin").unwrap(),
            "2026-07-10T13:00:00.000Z"
        );
        assert!(matches!(
            at("2026-07-10 13:00:00 XYZT", "UTC"),
            Err(TsError::UnknownZone(_))
        ));
    }

    #[test]
    fn times_without_a_zone_are_in_the_declared_one_and_summer_time_is_exact() {
        assert_eq!(
            at("2026-07-10 15:00:00", "Europe/Paris").unwrap(),
            "2026-07-10T13:00:00.000Z"
        );
        // The hour repeated on 2026-10-25 in Paris: the abbreviation tells which.
        let paris = |t| at(t, "Europe/Paris").unwrap();
        assert_eq!(
            paris("2026-10-25 02:30:00 CEST"),
            "2026-10-25T00:30:00.000Z"
        );
        assert_eq!(paris("2026-10-25 02:30:00 CET"), "2026-10-25T01:30:00.000Z");
        assert_eq!(paris("2026-10-25 02:30:00"), "2026-10-25T00:30:00.000Z");
        // The hour skipped on 2026-03-29 does not exist.
        assert!(matches!(
            at("2026-03-29 02:30:00", "Europe/Paris"),
            Err(TsError::NoSuchLocalTime { .. })
        ));
    }

    #[test]
    fn zone_names_are_checked() {
        assert!(LocalZone::named("europe/paris").is_ok());
        assert!(LocalZone::named("CET").is_ok());
        assert_eq!(LocalZone::named("utc"), Ok(LocalZone::UTC));
        let err = LocalZone::named("Mars/Olympus").unwrap_err();
        assert!(err.contains("Mars/Olympus"), "{err}");
    }
}
