//! `exposure` finds exposure windows in data-access logs: periods in which principals who do not
//! normally read a sensitive table start reading it. The library holds the whole tool; the binary
//! in `main.rs` only parses flags and calls [`cli::run`].
//!
//! Layers, each using only those below it (CONTRIBUTING.md has a line per module):
//!
//! 1. [`time`], [`intern`], [`event`], [`watermark`], [`text`]: domain types — event time,
//!    interned names, the one [`event::AccessEvent`] shape and what counts as a read, event
//!    time over many input streams, free text shown safely.
//! 2. [`detect`]: the pure detection core (no I/O, no clock); [`format`](mod@format): pure decoding, raw lines
//!    to events through the one pipeline, [`format::Decoder`]. Neither uses the other.
//! 3. [`source`]: where bytes come from (files, gzip, stdin, followed files, Parquet); [`sink`]:
//!    where alerts go (the [`sink::Sink`] trait, Alertmanager, PagerDuty, webhooks, files);
//!    [`state`]: the state directory's layout, lock and atomic writes; [`output`]: the files
//!    and folders commands write results to; [`report`]: stderr;
//!    [`ocsf`]: alerts as OCSF Detection Findings; [`approvals`]: the analysts' audit log of
//!    baseline changes in a state dir.
//! 4. [`config`]: what the user wrote, validated once, handed down as specs and decoders.
//! 5. [`replay`], [`archive`], [`live`], [`kafka`]: each command's wiring of sources, decoders,
//!    the detector and sinks (`kafka`: `watch` over Kafka, built on `live`'s service);
//!    [`incident`]: `exposure report` (the forensic report of each window); [`explain`]:
//!    `exposure explain` and `baseline show` (what the detector knew).
//! 6. [`cli`]: flags to commands.

pub mod approvals;
pub mod archive;
pub mod cli;
pub mod config;
pub mod detect;
pub mod event;
pub mod explain;
pub mod format;
pub mod incident;
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
pub mod text;
pub mod time;
pub mod watermark;
