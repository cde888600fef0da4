//! `exposure` finds exposure windows in data-access logs: periods in which principals who do not
//! normally read a sensitive table start reading it. The library holds the whole tool; the binary
//! in `main.rs` only parses flags and calls [`cli::run`].
//!
//! Layers, bottom first (CONTRIBUTING.md has a line per module):
//!
//! 1. [`time`], [`intern`], [`event`], [`watermark`], [`text`], [`output`], [`state`]: domain
//!    types and plain I/O helpers — event time, interned names, the one
//!    [`event::AccessEvent`] shape and what counts as a read, event time over many input
//!    streams, free text shown safely, the files commands write, the state directory's
//!    layout, lock, atomic writes and the one checkpoint envelope.
//! 2. [`detect`]: the pure detection core (no I/O, no clock); [`format`](mod@format): pure
//!    decoding, raw lines to events through the one pipeline, [`format::Decoder`], and
//!    Parquet record batches to detector ids ([`format::columns`]). Neither uses the other.
//!    [`impact`]: what an exposure cost, from reads handed to it (pure, over `detect`'s types);
//!    [`check`]: what a proposed permission change would open, judged against a detector's
//!    state (pure; proposals read by `format`'s parsers of logged changes).
//! 3. [`source`]: where bytes come from (files, gzip, stdin, followed files, Parquet, object
//!    storage), framed into records by the one [`source::frame::Framer`]; [`intake`]: a live
//!    source's time rules (an injected clock, quarantine, each input's watermark, the
//!    wall-clock floor, bad-record accounting); [`ocsf`]: alerts as OCSF Detection Findings;
//!    [`sink`]: where alerts go; [`report`]: stderr; [`approvals`]: the analysts' audit log
//!    of baseline changes in a state dir; [`grants`]: grant snapshots (who *can* read, as the
//!    systems export it) as permission changes; [`tags`]: vendor sensitivity tags as
//!    `[[classify]]` rules.
//! 4. [`config`]: what the user wrote, validated once, handed down as specs and decoders.
//! 5. [`replay`], then [`archive`] and [`live`] (built on replay), [`kafka`] (`watch` over
//!    Kafka, built on `live`'s service), [`incident`] (`exposure report`, built on replay and
//!    live's learning), [`explain`] (`explain` and `baseline show`, built on both).
//! 6. [`cli`]: flags to commands.
//!
//! ## Which module uses which
//!
//! Exactly this, no more and no less: `tests/it/layering.rs` reads this list and fails on a
//! `crate::` path it does not allow, on an entry no code needs, and on a cycle.
//!
//! - `time`, `intern`, `text`, `output`, `state`: none
//! - `event`: `intern`, `time`
//! - `watermark`: `time`
//! - `detect`: `event`, `intern`, `time`
//! - `format`: `event`, `intern`, `time`
//! - `impact`: `detect`, `time`
//! - `check`: `detect`, `event`, `format`, `impact`, `time`
//! - `source`: `format`, `time`
//! - `intake`: `format`, `time`, `watermark`
//! - `ocsf`: `detect`, `time`
//! - `sink`: `detect`, `ocsf`, `state`, `time`
//! - `report`: `format`, `source`, `time`
//! - `grants`: `event`, `format`, `time`
//! - `tags`: `detect`, `format`
//! - `approvals`: `detect`, `state`, `text`, `time`
//! - `config`: `check`, `detect`, `event`, `format`, `grants`, `report`, `sink`, `source`,
//!   `state`, `tags`, `time`
//! - `replay`: `config`, `detect`, `event`, `format`, `intern`, `report`, `source`, `time`,
//!   `watermark`
//! - `archive`: `config`, `event`, `format`, `intern`, `output`, `replay`, `report`, `source`,
//!   `time`
//! - `live`: `approvals`, `check`, `config`, `detect`, `event`, `format`, `intake`, `replay`,
//!   `report`, `sink`, `source`, `state`, `time`
//! - `kafka`: `config`, `detect`, `event`, `format`, `intake`, `live`, `source`, `state`,
//!   `time`, `watermark`
//! - `incident`: `config`, `detect`, `event`, `format`, `impact`, `intern`, `live`, `replay`,
//!   `report`, `source`, `text`, `time`
//! - `explain`: `approvals`, `config`, `detect`, `incident`, `live`, `report`, `source`,
//!   `state`, `text`, `time`
//! - `cli`: `approvals`, `archive`, `check`, `config`, `detect`, `explain`, `format`, `incident`,
//!   `kafka`, `live`, `ocsf`, `output`, `replay`, `report`, `sink`, `source`, `state`, `time`

pub mod approvals;
pub mod archive;
pub mod check;
pub mod cli;
pub mod config;
pub mod detect;
pub mod event;
pub mod explain;
pub mod format;
pub mod grants;
pub mod impact;
pub mod incident;
pub mod intake;
pub mod intern;
pub mod kafka;
pub mod live;
pub mod ocsf;
pub mod output;
pub mod replay;
pub mod report;
pub mod sink;
pub mod source;
pub mod state;
pub mod tags;
pub mod text;
pub mod time;
pub mod watermark;
