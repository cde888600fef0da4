//! The canonical JSON-lines parser: any bytes give an event or a precise error, never a panic.
#![no_main]
use exposure::format::jsonl::{FieldPaths, JsonLinesParser};
use exposure::time::EpochUnit;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parser = JsonLinesParser::new(&FieldPaths::default(), EpochUnit::Auto).unwrap();
    for line in data.split(|b| *b == b'\n') {
        let _ = parser.parse(line);
    }
});
