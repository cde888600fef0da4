//! Shipper envelopes (CloudWatch Logs subscription batches, Splunk HEC, Logstash, a named
//! `record_field`) around each vendor format, through the whole decoding pipeline: any bytes,
//! line by line, give events, "not an access event" or a precise error per line — never a panic
//! (the first byte picks the envelope and the inner format; the rest is the input).
#![no_main]
use exposure::config::{Config, DetectOverrides};
use exposure::event::{AccessEvent, PermissionChange};
use exposure::format::envelope::EnvelopeChoice;
use exposure::format::vendor::NotAccess;
use exposure::format::{DecodeSink, Format, Line, ParseError};
use libfuzzer_sys::fuzz_target;

/// Counts what the decoder hands on; a malformed report must say where.
#[derive(Default)]
struct Counted(u64);

impl DecodeSink for Counted {
    fn event(&mut self, _line: u64, _event: &AccessEvent<'_>, _read: bool) {
        self.0 += 1;
    }
    fn permission(&mut self, _line: u64, _change: &PermissionChange) {
        self.0 += 1;
    }
    fn not_access(&mut self, _line: u64, _why: NotAccess) {
        self.0 += 1;
    }
    fn malformed(&mut self, line: u64, error: ParseError) {
        assert!(line >= 1, "a malformed record names its line");
        let _ = error.to_string();
        self.0 += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    let envelopes = [
        EnvelopeChoice::Auto,
        EnvelopeChoice::Cloudwatch,
        EnvelopeChoice::SplunkHec,
        EnvelopeChoice::Logstash,
    ];
    let formats = [
        Format::Auto,
        Format::Cloudtrail,
        Format::Jsonl,
        Format::S3Access,
        Format::GcsUsage,
    ];
    let format = formats[usize::from(pick / 8) % formats.len()];
    let Ok(mut config) = Config::load(None, &DetectOverrides::default(), Some(format)) else {
        return;
    };
    match pick % 8 {
        n @ 0..=3 => config.input.vendor.envelope = envelopes[usize::from(n)],
        _ => config.input.vendor.record_field = Some("log".to_string()),
    }
    let mut decoder = config.decoder();
    let mut sink = Counted::default();
    for (i, line) in input.split(|b| *b == b'\n').enumerate() {
        decoder.line(i as u64 + 1, Line::Text(line), &mut sink);
    }
    decoder.finish(&mut sink);
});
