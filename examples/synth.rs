//! Writes a synthetic access log (see `benches/synth.rs`) to stdout, for whole-binary
//! measurements: `cargo run --release --example synth -- EVENTS [TABLES [PRINCIPALS
//! [READERS_PER_TABLE [GRANTS]]]] > FILE`, defaults 1000000 200 20000 1000 0 (GRANTS: incidents,
//! each a grant to PUBLIC on a schema, anyone reading it, and its revoke two hours later).

#[path = "../benches/synth/mod.rs"]
mod synth;

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut shape = synth::Shape::new(events);
    if let Some(tables) = args.next().and_then(|a| a.parse().ok()) {
        shape.tables = tables;
    }
    if let Some(principals) = args.next().and_then(|a| a.parse().ok()) {
        shape.principals = principals;
    }
    if let Some(readers) = args.next().and_then(|a| a.parse().ok()) {
        shape.readers_per_table = readers;
    }
    if let Some(grants) = args.next().and_then(|a| a.parse().ok()) {
        shape.grants = grants;
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    synth::write_jsonl(shape, &mut out)?;
    out.flush()
}
