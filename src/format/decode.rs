//! The one decoding pipeline: the raw lines of one input in, [`AccessEvent`]s out. Every command
//! (`replay`, `archive`, `learn`, `watch`) decodes through a [`Decoder`]; nothing else parses.
//!
//! A decoder owns, for one input stream: recognising its format (`auto`), framing lines into
//! records (one line, or a multi-line pgaudit record), mapping fields (canonical JSON lines) or
//! reading the vendor's shape, deciding which events are reads ([`ReadActions`]), and the line
//! cap of the format ([`Decoder::line_cap`], which the source that splits lines applies).
//! What it decodes goes to a [`DecodeSink`], in line order: events, records that are no data
//! access, and what could not be decoded with why. Sources deliver only raw lines and their
//! numbers; a new input (a Kafka topic, an object store) is one new source feeding a decoder.

use super::envelope::{Envelope, EnvelopeChoice, Inner};
use super::jsonl::Canonical;
use super::jsonl::JsonLinesParser;
use super::vendor::{
    Item, NotAccess, RecordReader, RecordResult, VendorOptions, gathers_documents, opens_document,
    parse_record_line,
};
use super::{Format, ParseError};
use crate::event::{AccessEvent, PermissionChange, ReadActions};

/// One line of input, without its `\n`, as a source delivers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// A line longer than the cap; its bytes were skipped.
    TooLong,
}

/// Where a decoder puts what it decoded, in line order.
pub trait DecodeSink {
    /// An access event that started on line `line`; `read`: whether it is a read.
    fn event(&mut self, line: u64, event: &AccessEvent<'_>, read: bool);
    /// A permission change (a grant or revoke of a privilege or of role membership) that
    /// started on line `line`.
    fn permission(&mut self, line: u64, change: &PermissionChange);
    /// A well-formed record that is no data access (a management call, a non-audit line),
    /// and why.
    fn not_access(&mut self, line: u64, why: NotAccess);
    /// A record that could not be decoded, and why.
    fn malformed(&mut self, line: u64, error: ParseError);
    /// Something the user must be told about how the input from line `line` on is read.
    fn notice(&mut self, line: u64, message: &str) {
        let _ = (line, message);
    }
}

/// The longest line, unless configured (`[input] max_line_bytes`).
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// The longest CloudTrail document: its files as delivered are one JSON document
/// `{"Records":[…]}` of often many megabytes, on one line.
pub(crate) const CLOUDTRAIL_MAX_DOCUMENT_BYTES: usize = 512 << 20;

/// How long a line of one input may be: the configured cap for a record, and, when the input
/// is CloudTrail or `auto`, a much larger one for a line that is a CloudTrail document (told by
/// its first bytes, `{"Records"`). Every source that splits lines (files, stdin, followed files)
/// applies the same cap, so a document that `replay` reads, `watch` reads too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCap {
    /// The cap of a record line (`[input] max_line_bytes`).
    pub line: usize,
    /// The cap of a line that is a CloudTrail document (at least `line`).
    pub document: usize,
}

impl LineCap {
    /// The cap of an input of `format`, given the configured cap.
    pub fn new(format: Format, configured: usize) -> LineCap {
        match format {
            Format::Cloudtrail => LineCap {
                line: configured.max(CLOUDTRAIL_MAX_DOCUMENT_BYTES),
                document: configured.max(CLOUDTRAIL_MAX_DOCUMENT_BYTES),
            },
            Format::Auto => LineCap {
                line: configured,
                document: configured.max(CLOUDTRAIL_MAX_DOCUMENT_BYTES),
            },
            _ => LineCap {
                line: configured,
                document: configured,
            },
        }
    }

    /// Whether a line of `len` bytes that starts with `start` may be read.
    #[inline]
    pub fn allows(&self, len: usize, start: &[u8]) -> bool {
        len <= self.line || (len <= self.document && is_document(start))
    }

    /// The cap of the line that starts with `start`.
    pub fn of(&self, start: &[u8]) -> usize {
        if self.document > self.line && is_document(start) {
            self.document
        } else {
            self.line
        }
    }
}

/// Whether a line starting with `start` is a whole CloudTrail document (`{"Records": …`), or
/// CloudWatch Logs batches (`{"messageType": …`, which Firehose writes back to back on one line).
pub fn is_document(start: &[u8]) -> bool {
    start
        .trim_ascii_start()
        .strip_prefix(b"{")
        .map(<[u8]>::trim_ascii_start)
        .is_some_and(|rest| {
            rest.starts_with(b"\"Records\"") || rest.starts_with(b"\"messageType\"")
        })
}

/// Whether `line`, a last line without its newline, is a CloudTrail document complete in itself:
/// a followed file delivered whole ends so, and its writer will add nothing.
pub fn is_whole_document(line: &[u8]) -> bool {
    is_document(line)
        && line.trim_ascii_end().ends_with(b"}")
        && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok()
}

/// Decodes one input stream: build one per input (`Config::decoder`).
#[derive(Debug)]
pub struct Decoder {
    records: RecordReader,
    jsonl: JsonLinesParser,
    read_actions: ReadActions,
    cap: LineCap,
    /// Records completed by the last line (scratch, kept for its allocation).
    done: Vec<RecordResult>,
    /// The shipper's envelope around the records: `Undecided` until the first non-blank line.
    envelope: EnvelopeState,
    /// Records taken out of the last envelope line (scratch).
    inner: Vec<Inner>,
    /// The envelope was found and is still to be said (with the next line decoded).
    announce: bool,
}

#[derive(Debug)]
enum EnvelopeState {
    Undecided,
    None,
    Some(Envelope),
}

impl Decoder {
    /// A decoder for `format` (`Auto`: recognised from the first non-blank line).
    /// `max_line_bytes` is the configured cap; a format may raise it.
    pub fn new(
        format: Format,
        jsonl: &JsonLinesParser,
        vendor: &VendorOptions,
        read_actions: &ReadActions,
        max_line_bytes: usize,
    ) -> Result<Decoder, String> {
        Ok(Decoder {
            records: RecordReader::new(format, vendor)?,
            jsonl: jsonl.clone(),
            read_actions: read_actions.clone(),
            cap: LineCap::new(format, max_line_bytes),
            done: Vec::new(),
            envelope: match (vendor.envelope, &vendor.record_field) {
                (EnvelopeChoice::None, None) => EnvelopeState::None,
                _ => EnvelopeState::Undecided,
            },
            inner: Vec::new(),
            announce: false,
        })
    }

    /// How long a line of this input may be; longer ones come as [`Line::TooLong`].
    pub fn line_cap(&self) -> LineCap {
        self.cap
    }

    /// The input's format, once known (`Auto` until a non-blank line was seen).
    pub fn format(&self) -> Format {
        self.records.format()
    }

    /// Decodes line `line_no` into `out` (a multi-line record comes out when it is complete).
    #[inline]
    pub fn line(&mut self, line_no: u64, line: Line<'_>, out: &mut impl DecodeSink) {
        match &self.envelope {
            EnvelopeState::None => self.record_line(line_no, line, out),
            _ => self.enveloped(line_no, line, out),
        }
    }

    /// A line of an input whose envelope is not known yet, or is one: the records taken out
    /// are decoded as lines of their own, on the envelope's line number.
    #[cold]
    fn enveloped(&mut self, line_no: u64, line: Line<'_>, out: &mut impl DecodeSink) {
        let Line::Text(bytes) = line else {
            return out.malformed(line_no, self.too_long());
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.decide_envelope(bytes);
        let EnvelopeState::Some(envelope) = &self.envelope else {
            return self.record_line(line_no, line, out);
        };
        if std::mem::take(&mut self.announce) {
            let said = format!("records read out of their {} envelope", envelope.name());
            out.notice(line_no, &said);
        }
        let mut inner = std::mem::take(&mut self.inner);
        let records = &mut self.records;
        let ts = self.jsonl.ts_path();
        let mut time_field = |record: &[u8]| {
            records.recognise(record);
            super::envelope::time_field(records.format(), ts).map(str::to_string)
        };
        super::envelope::unwrap(envelope, bytes, &mut time_field, &mut inner);
        for record in inner.drain(..) {
            match record {
                Inner::Record(record) => self.record_line(line_no, Line::Text(&record), out),
                Inner::Control => out.not_access(line_no, NotAccess::ShipperControl),
                Inner::Malformed(error) => out.malformed(line_no, error),
            }
        }
        self.inner = inner;
    }

    /// Settles the envelope from `bytes`, the input's first non-blank line, if not yet done
    /// (an envelope found is said with the first line decoded).
    fn decide_envelope(&mut self, bytes: &[u8]) {
        if let EnvelopeState::Undecided = self.envelope {
            let options = self.records.options();
            let found = Envelope::of(options.envelope, options.record_field.as_deref(), bytes);
            self.envelope = match found {
                Some(envelope) => {
                    self.announce = true;
                    EnvelopeState::Some(envelope)
                }
                None => EnvelopeState::None,
            };
        }
    }

    /// Decodes line `line_no`, a record's line (no envelope around it).
    #[inline]
    fn record_line(&mut self, line_no: u64, line: Line<'_>, out: &mut impl DecodeSink) {
        if let Line::Text(bytes) = line {
            self.records.recognise(bytes);
        }
        match self.records.format() {
            Format::Jsonl | Format::Auto => self.canonical(line_no, line, out),
            _ => match line {
                Line::Text(bytes) => {
                    self.records.line(line_no, bytes, &mut self.done);
                    self.drain(out);
                }
                Line::TooLong => out.malformed(line_no, self.too_long()),
            },
        }
    }

    /// The input ended, or went quiet: completes a record still waiting for more lines.
    pub fn finish(&mut self, out: &mut impl DecodeSink) {
        self.records.flush(&mut self.done);
        self.drain(out);
    }

    /// Whether a record is waiting for more lines (event time must wait for it).
    pub fn has_pending(&self) -> bool {
        self.records.has_pending()
    }

    /// For decoding on several threads: recognises the format from `line`, then says whether
    /// each line of this input is a whole record that needs nothing from the lines around it
    /// (canonical JSON lines and the JSON vendor formats) and may be decoded by any decoder with
    /// [`Decoder::independent_line`]. `None`: decode it here, in order, with [`Decoder::line`].
    pub fn independent_format(&mut self, line: Line<'_>) -> Option<Format> {
        if let (EnvelopeState::Undecided, Line::Text(bytes)) = (&self.envelope, line)
            && !bytes.iter().all(u8::is_ascii_whitespace)
        {
            self.decide_envelope(bytes);
        }
        if let EnvelopeState::Some(_) = self.envelope {
            // Records in an envelope: decoded here, in order.
            return None;
        }
        if let Line::Text(bytes) = line {
            self.records.recognise(bytes);
        }
        match (self.records.format(), line) {
            (Format::Auto | Format::Jsonl, _) => Some(Format::Jsonl),
            // The first line of a pretty-printed document: it and the rest are framed here.
            (format, Line::Text(bytes)) if gathers_documents(format) && opens_document(bytes) => {
                None
            }
            _ => self.records.record_per_line(),
        }
    }

    /// Decodes a line of an input whose format `format` another decoder settled with
    /// [`Decoder::independent_format`].
    #[inline]
    pub fn independent_line(
        &mut self,
        format: Format,
        line_no: u64,
        line: Line<'_>,
        out: &mut impl DecodeSink,
    ) {
        match (format, line) {
            (Format::Jsonl, line) => self.canonical(line_no, line, out),
            (format, Line::Text(bytes)) => {
                parse_record_line(
                    format,
                    self.records.options(),
                    line_no,
                    bytes,
                    &mut self.done,
                );
                self.drain(out);
            }
            (_, Line::TooLong) => out.malformed(line_no, self.too_long()),
        }
    }

    #[inline]
    fn canonical(&mut self, line_no: u64, line: Line<'_>, out: &mut impl DecodeSink) {
        let parsed = match line {
            Line::Text(bytes) => self.jsonl.parse(bytes),
            Line::TooLong => Err(self.too_long()),
        };
        match parsed {
            Ok(Some(Canonical::Access(event))) => match printable_names(&event) {
                Ok(()) => {
                    let read = event.is_read_by(&mut self.read_actions);
                    out.event(line_no, &event, read);
                }
                Err(error) => out.malformed(line_no, error),
            },
            Ok(Some(Canonical::Permission(change))) => permission(line_no, &change, out),
            Ok(None) => {}
            Err(error) => out.malformed(line_no, error),
        }
    }

    fn too_long(&self) -> ParseError {
        ParseError::TooLong {
            max_line_bytes: self.cap.line,
        }
    }

    /// Hands the completed vendor records to `out`.
    fn drain(&mut self, out: &mut impl DecodeSink) {
        for (line, result) in self.done.drain(..) {
            match result {
                Ok(items) => {
                    for item in items {
                        match item {
                            Item::Event(event) => match printable_names(&event) {
                                Ok(()) => {
                                    let read = event.is_read_by(&mut self.read_actions);
                                    out.event(line, &event, read);
                                }
                                Err(error) => out.malformed(line, error),
                            },
                            Item::Permission(change) => permission(line, &change, out),
                            Item::NotAccess(why) => out.not_access(line, why),
                            Item::Notice(message) => out.notice(line, &message),
                            Item::Skipped(error) => out.malformed(line, error),
                        }
                    }
                }
                Err(error) => out.malformed(line, error),
            }
        }
    }
}

/// Hands a permission change on, unless a name in it is not printable.
fn permission(line: u64, change: &PermissionChange, out: &mut impl DecodeSink) {
    let names = [
        ("principal", change.actor.as_str()),
        ("table", change.object.as_str()),
        ("grantee", change.grantee.as_str()),
        ("privilege", change.privilege.as_str()),
    ];
    match printable(names) {
        Ok(()) => out.permission(line, change),
        Err(error) => out.malformed(line, error),
    }
}

/// Principal and table names are shown in alerts, pages and terminals: a control character
/// (`\u0000`, an escape sequence, a newline) in one is refused, whatever the format.
#[inline]
fn printable_names(event: &AccessEvent<'_>) -> Result<(), ParseError> {
    printable([("principal", &*event.principal), ("table", &*event.table)])
}

#[inline]
pub(super) fn printable<const N: usize>(
    names: [(&'static str, &str); N],
) -> Result<(), ParseError> {
    for (field, name) in names {
        if let Some(at) = first_control(name.as_bytes()) {
            return Err(ParseError::ControlCharacter {
                field,
                code: name.as_bytes()[at],
                at: name[..at].chars().count() + 1,
            });
        }
    }
    Ok(())
}

/// Repeated in every byte of a word, for the word-at-a-time searches.
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in some byte where `word` has a byte below `n` (n <= 0x80): the classic
/// "has a byte less than" test, which never misses one, and flags nothing below the first one
/// (bytes not below `n` borrow nothing, and a borrow only moves up).
#[inline]
pub(super) fn bytes_below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// High bit set in some byte where `word` has the byte `b`.
#[inline]
pub(super) fn bytes_equal(word: u64, b: u8) -> u64 {
    bytes_below(word ^ (ONES * u64::from(b)), 1)
}

/// The first byte of `bytes` that `flags` marks, eight bytes at a time. `flags` sets the high
/// bit of the bytes of a word that may match, exactly up to the first one that does: no flag
/// below it, and none at all in a word without one. [`bytes_below`] and [`bytes_equal`] (a
/// borrow only ever moves up a word, never down) and any `|` of them are such. So the lowest
/// flag is the answer; a tail is read as the last eight bytes, or, in fewer than eight, as a
/// word padded past its end whose flags there are cut off.
#[inline]
pub(super) fn first_byte_where(bytes: &[u8], flags: impl Fn(u64) -> u64) -> Option<usize> {
    let first = |mask: u64| (mask.trailing_zeros() / 8) as usize;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mask = flags(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        if mask != 0 {
            return Some(at + first(mask));
        }
        at += 8;
    }
    let tail = words.remainder();
    if tail.is_empty() {
        return None;
    }
    if let Some(last) = bytes.last_chunk::<8>() {
        // The last eight bytes: those before the tail hold no match (searched above), so they
        // carry no flag, and the lowest flag is the tail's first match.
        let mask = flags(u64::from_le_bytes(*last));
        return (mask != 0).then(|| bytes.len() - 8 + first(mask));
    }
    let padded = (tail.iter().enumerate()).fold(0u64, |w, (i, &b)| w | (u64::from(b) << (8 * i)));
    let mask = flags(padded) & ((1u64 << (8 * tail.len())) - 1);
    (mask != 0).then(|| first(mask))
}

/// The first control character (below 0x20, or DEL) of `bytes`. Every name of every event
/// goes through here.
#[inline]
fn first_control(bytes: &[u8]) -> Option<usize> {
    first_byte_where(bytes, |w| bytes_below(w, 0x20) | bytes_equal(w, 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::EpochUnit;

    proptest::proptest! {
        /// The word-at-a-time searches find what a byte-by-byte search finds, at any length
        /// (tails included), among bytes dense in what they look for.
        #[test]
        fn word_at_a_time_searches_are_byte_by_byte_searches(
            bytes in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![0u8, 0x1f, 0x20, b'"', b'\\', 0x7e, 0x7f, 0x80, 0xff]),
                    proptest::prelude::any::<u8>(),
                    proptest::sample::select(vec![b'a', b'z', b'.']),
                ],
                0..40,
            ),
        ) {
            let control = bytes.iter().position(|&b| b < 0x20 || b == 0x7f);
            proptest::prop_assert_eq!(first_control(&bytes), control);
            let special = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let found = first_byte_where(&bytes, |w| {
                bytes_equal(w, b'"') | bytes_equal(w, b'\\') | bytes_below(w, 0x20)
            });
            proptest::prop_assert_eq!(found, special);
        }
    }

    #[test]
    fn the_word_at_a_time_search_finds_every_control_character() {
        let mut name: Vec<u8> = "user00042@corp.example/warehouse.schema07.table123 é".into();
        assert_eq!(first_control(&name), None);
        for at in 0..name.len() {
            for control in [0x00, 0x1b, 0x1f, b'\n', 0x7f] {
                let saved = name[at];
                name[at] = control;
                let want = name.iter().position(|&b| b < 0x20 || b == 0x7f);
                assert_eq!(first_control(&name), want, "{at} {control}");
                name[at] = saved;
            }
        }
        for printable in [0x20u8, 0x7e, 0x80, 0xff] {
            assert_eq!(first_control(&[printable; 19]), None);
        }
    }

    /// What a decoder gave, as text, in order.
    #[derive(Default)]
    struct Collected(Vec<String>);

    impl DecodeSink for Collected {
        fn event(&mut self, line: u64, event: &AccessEvent<'_>, read: bool) {
            let kind = if read { "read" } else { "other" };
            let (principal, table) = (&event.principal, &event.table);
            self.0.push(format!("{line} {kind} {principal} {table}"));
        }
        fn permission(&mut self, line: u64, change: &PermissionChange) {
            let PermissionChange {
                action,
                object,
                grantee,
                privilege,
                ..
            } = change;
            let action = action.as_str();
            self.0
                .push(format!("{line} {action} {privilege} {object} {grantee}"));
        }
        fn not_access(&mut self, line: u64, _why: NotAccess) {
            self.0.push(format!("{line} not access"));
        }
        fn malformed(&mut self, line: u64, error: ParseError) {
            self.0.push(format!("{line} malformed: {}", error.kind()));
        }
    }

    fn decoder(format: Format, max_line_bytes: usize) -> Decoder {
        let jsonl = JsonLinesParser::new(&Default::default(), EpochUnit::Auto).unwrap();
        let vendor = VendorOptions::default();
        Decoder::new(
            format,
            &jsonl,
            &vendor,
            &ReadActions::default(),
            max_line_bytes,
        )
        .unwrap()
    }

    fn decode(decoder: &mut Decoder, lines: &[Line<'_>]) -> Vec<String> {
        let mut out = Collected::default();
        for (i, line) in lines.iter().enumerate() {
            decoder.line(i as u64 + 1, *line, &mut out);
        }
        decoder.finish(&mut out);
        out.0
    }

    #[test]
    fn control_characters_in_names_are_refused_in_every_format() {
        let canonical = [
            Line::Text(br#"{"ts":1,"principal":"a\u0000b","table":"t"}"#),
            Line::Text(br#"{"ts":1,"principal":"a","table":"t\u001b[2J"}"#),
            Line::Text(br#"{"ts":1,"principal":"a\tb","table":"t"}"#),
            Line::Text(r#"{"ts":1,"principal":"ünïcode","table":"t"}"#.as_bytes()),
        ];
        assert_eq!(
            decode(&mut decoder(Format::Jsonl, 1 << 20), &canonical),
            [
                "1 malformed: control_character",
                "2 malformed: control_character",
                "3 malformed: control_character",
                "4 read ünïcode t",
            ]
        );
        let gcp = br#"{"protoPayload":{"status":{},"authenticationInfo":{"principalEmail":"a\u0000@acme.example"},"serviceName":"bigquery.googleapis.com","methodName":"google.cloud.bigquery.v2.TableDataService.List","resourceName":"projects/acme/datasets/hr/tables/salaries","metadata":{"tableDataRead":{"reason":"JOB"}}},"timestamp":"2026-03-18T10:00:00Z","logName":"projects/acme/logs/cloudaudit.googleapis.com%2Fdata_access"}"#;
        let got = decode(&mut decoder(Format::GcpAudit, 1 << 20), &[Line::Text(gcp)]);
        assert_eq!(got, ["1 malformed: control_character"]);
        let error = printable_names(&AccessEvent {
            ts: 0,
            principal: "ok".into(),
            table: "t\u{7f}".into(),
            action: None,
            is_read: None,
            rows: None,
            bytes: None,
            columns: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "field `table` holds control character U+007F at character 2: names must be printable"
        );
    }

    #[test]
    fn canonical_lines_are_classified_by_their_action() {
        let lines = [
            Line::Text(br#"{"ts":1,"principal":"a","table":"t","action":"SELECT"}"#),
            Line::Text(b""),
            Line::Text(br#"{"ts":2,"principal":"b","table":"t","action":"INSERT"}"#),
            Line::Text(b"{"),
            Line::TooLong,
        ];
        assert_eq!(
            decode(&mut decoder(Format::Auto, 1 << 20), &lines),
            [
                "1 read a t",
                "3 other b t",
                "4 malformed: not_json",
                "5 malformed: too_long"
            ]
        );
    }

    #[test]
    fn a_vendor_format_is_recognised_and_multi_line_records_complete_at_the_end() {
        let lines = [
            Line::Text(b"2026-11-26 22:04:42.297 UTC [11179] alice@db LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"SELECT *"),
            Line::Text(b"\tFROM orders\",<not logged>"),
            Line::Text(b"2026-11-26 22:04:43.000 UTC [11179] alice@db LOG:  checkpoint starting"),
        ];
        let mut decoder = decoder(Format::Auto, 1 << 20);
        assert_eq!(
            decode(&mut decoder, &lines),
            ["1 read alice public.orders", "3 not access"]
        );
        assert_eq!(decoder.format(), Format::Pgaudit);
    }

    #[test]
    fn cloudtrail_raises_the_line_cap_in_every_command() {
        let document = br#" { "Records" : [ {"eventVersion": "1.08"} ] } "#;
        let record = br#"{"ts":1,"principal":"a","table":"t"}"#;
        let jsonl = decoder(Format::Jsonl, 1000).line_cap();
        assert!(!jsonl.allows(2000, document));
        let cloudtrail = decoder(Format::Cloudtrail, 1000).line_cap();
        assert!(cloudtrail.allows(CLOUDTRAIL_MAX_DOCUMENT_BYTES, record));
        // `auto` cannot know the format before the line is read: its start tells.
        let auto = decoder(Format::Auto, 1000).line_cap();
        assert!(auto.allows(CLOUDTRAIL_MAX_DOCUMENT_BYTES, document));
        assert!(!auto.allows(CLOUDTRAIL_MAX_DOCUMENT_BYTES + 1, document));
        assert!(!auto.allows(1001, record));
        assert_eq!(auto.of(record), 1000);
    }

    #[test]
    fn a_whole_document_is_told_from_one_still_being_written() {
        assert!(is_whole_document(br#"{"Records":[{"a":1},{"b":2}]}"#));
        assert!(is_whole_document(b"{\"Records\":[]}\r\n"));
        assert!(!is_whole_document(br#"{"Records":[{"a":1}"#));
        assert!(!is_whole_document(br#"{"Records":[{"a":1},{"b":2}]"#));
        assert!(!is_whole_document(
            br#"{"ts":1,"principal":"a","table":"t"}"#
        ));
    }

    #[test]
    fn independent_lines_decode_the_same_on_another_decoder() {
        let line = br#"{"eventVersion":"1.08","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventCategory":"Data","eventTime":"2026-03-18T10:00:00Z","userIdentity":{"arn":"arn:aws:iam::1:user/a"},"requestParameters":{"bucketName":"b","key":"k"}}"#;
        let mut reading = decoder(Format::Auto, 1 << 20);
        let format = reading.independent_format(Line::Text(line)).unwrap();
        assert_eq!(format, Format::Cloudtrail);
        let (mut here, mut there) = (Collected::default(), Collected::default());
        reading.line(1, Line::Text(line), &mut here);
        decoder(Format::Auto, 1 << 20).independent_line(format, 1, Line::Text(line), &mut there);
        assert_eq!(here.0, there.0);
        assert_eq!(here.0.len(), 1);
    }
}
