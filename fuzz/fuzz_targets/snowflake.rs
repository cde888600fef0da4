//! The snowflake parser: any bytes, line by line, give events, "not an access event" or a precise
//! error per record — never a panic (see exposure::format::vendor); and differentially, the typed
//! fast path (`snowflake::parse_fast`) never disagrees with the parse through `serde_json::Value`
//! alone, with `objects` base or direct (the first byte picks).
#![no_main]
use exposure::format::Format;
use exposure::format::snowflake::Objects;
use exposure::format::vendor::{
    RecordReader, VendorOptions, parse_json_record_as_value, parse_record_line,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut options = VendorOptions::default();
    if data.first().is_some_and(|b| b % 2 == 1) {
        options.snowflake.objects = Objects::Direct;
    }
    let mut reader = RecordReader::new(Format::Snowflake, &options).unwrap();
    let mut out = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        reader.line(i as u64 + 1, line, &mut out);
        out.clear();
        if !line.iter().all(u8::is_ascii_whitespace) {
            parse_record_line(Format::Snowflake, &options, 1, line, &mut out);
            let (_, fast) = out.pop().expect("a record");
            let value = parse_json_record_as_value(Format::Snowflake, &options, line);
            assert_eq!(fast, value, "{:?}", String::from_utf8_lossy(line));
        }
    }
    reader.flush(&mut out);
});
