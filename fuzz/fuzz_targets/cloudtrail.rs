//! The cloudtrail parser: any bytes, line by line, give events, "not an access event" or a precise
//! error per record — never a panic (see exposure::format::vendor); and differentially, the typed
//! fast path (`cloudtrail::parse_fast`) never disagrees with the parse through
//! `serde_json::Value` alone, whichever `principal`, `resource` and `anonymous` options apply
//! (the first byte picks them).
#![no_main]
use exposure::event::Anonymous;
use exposure::format::Format;
use exposure::format::cloudtrail::{PrincipalChoice, ResourceChoice};
use exposure::format::vendor::{
    RecordReader, VendorOptions, parse_json_record_as_value, parse_record_line,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = VendorOptions::default();
    let pick = data.first().copied().unwrap_or(0);
    options.cloudtrail.principal = [
        PrincipalChoice::Session,
        PrincipalChoice::Role,
        PrincipalChoice::Arn,
    ][usize::from(pick % 3)];
    options.cloudtrail.resource = [
        ResourceChoice::Dataset,
        ResourceChoice::Object,
        ResourceChoice::Bucket,
        ResourceChoice::Arn,
    ][usize::from(pick / 3 % 4)];
    options.cloudtrail.anonymous =
        [Anonymous::PerAddress, Anonymous::Shared][usize::from(pick / 12 % 2)];
    let mut reader = RecordReader::new(Format::Cloudtrail, &options).unwrap();
    let mut out = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        reader.line(i as u64 + 1, line, &mut out);
        out.clear();
        if !line.iter().all(u8::is_ascii_whitespace) {
            parse_record_line(Format::Cloudtrail, &options, 1, line, &mut out);
            let (_, fast) = out.pop().expect("a record");
            let value = parse_json_record_as_value(Format::Cloudtrail, &options, line);
            assert_eq!(fast, value, "{:?}", String::from_utf8_lossy(line));
        }
    }
    reader.flush(&mut out);
});
