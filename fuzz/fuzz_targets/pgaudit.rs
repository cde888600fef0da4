//! The pgaudit parser: any bytes, line by line, give events, "not an access event" or a precise
//! error per record — never a panic (see exposure::format::vendor).
#![no_main]
use exposure::format::Format;
use exposure::format::vendor::{RecordReader, VendorOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = RecordReader::new(Format::Pgaudit, &VendorOptions::default()).unwrap();
    let mut out = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        reader.line(i as u64 + 1, line, &mut out);
        out.clear();
    }
    reader.flush(&mut out);
});
