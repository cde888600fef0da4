//! The canonical JSON-lines parser: any bytes give an event or a precise error, never a panic;
//! and differentially, the canonical byte scanner (src/format/canonical.rs) never disagrees
//! with serde_json alone — the same event or the same error for every line.
#![no_main]
use exposure::format::jsonl::{FieldPaths, JsonLinesParser};
use exposure::time::EpochUnit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parser = JsonLinesParser::new(&FieldPaths::default(), EpochUnit::Auto).unwrap();
    for line in data.split(|b| *b == b'\n') {
        let fast = parser.parse(line);
        let serde = parser.parse_with_serde(line);
        assert_eq!(fast, serde, "{:?}", String::from_utf8_lossy(line));
    }
});
