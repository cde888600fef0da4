//! The gcp_audit parser: any bytes, line by line, give events, "not an access event" or a precise
//! error per record — never a panic (see exposure::format::vendor); and differentially, whenever
//! the typed fast path (`gcp::parse_fast`) takes a line, the parse through `serde_json::Value`
//! gives the same items.
#![no_main]
use exposure::format::Format;
use exposure::format::gcp;
use exposure::format::vendor::{RecordReader, VendorOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = RecordReader::new(Format::GcpAudit, &VendorOptions::default()).unwrap();
    let mut out = Vec::new();
    for (i, line) in data.split(|b| *b == b'\n').enumerate() {
        reader.line(i as u64 + 1, line, &mut out);
        out.clear();
        if let Some(fast) = gcp::parse_fast(line) {
            let entry: serde_json::Value =
                serde_json::from_slice(line).expect("the fast path took valid JSON");
            assert_eq!(Ok(fast), gcp::parse(&entry, Default::default()), "{:?}", String::from_utf8_lossy(line));
        }
    }
    reader.flush(&mut out);
});
