//! The Cloud Storage usage log parser: any bytes, line by line, give events, "not an access event"
//! or a precise error per line — never a panic (see exposure::format::vendor); each line read
//! by the reader gives what the line parsed on its own gives (the first byte picks the
//! `resource`, `anonymous` and `requester` options).
#![no_main]
use exposure::event::Anonymous;
use exposure::format::Format;
use exposure::format::cloudtrail::ResourceChoice;
use exposure::format::gcs_usage::Requester;
use exposure::format::vendor::{RecordReader, VendorOptions, parse_record_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = VendorOptions::default();
    let pick = data.first().copied().unwrap_or(0);
    options.gcs_usage.requester = [Requester::Address, Requester::Anonymous][usize::from(pick % 2)];
    options.cloudtrail.resource = [
        ResourceChoice::Dataset,
        ResourceChoice::Object,
        ResourceChoice::Bucket,
    ][usize::from(pick / 3 % 3)];
    options.cloudtrail.anonymous =
        [Anonymous::PerAddress, Anonymous::Shared][usize::from(pick / 9 % 2)];
    let mut reader = RecordReader::new(Format::GcsUsage, &options).unwrap();
    let mut out = Vec::new();
    let mut alone = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        let line_no = i as u64 + 1;
        reader.line(line_no, line, &mut out);
        parse_record_line(Format::GcsUsage, &options, line_no, line, &mut alone);
        assert_eq!(out, alone, "{:?}", String::from_utf8_lossy(line));
        out.clear();
        alone.clear();
    }
    reader.flush(&mut out);
    assert!(out.is_empty(), "a line is a whole record");
});
