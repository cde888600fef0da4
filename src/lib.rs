//! `exposure` finds exposure windows in data-access logs: periods in which principals who do not
//! normally read a sensitive table start reading it. The library holds the whole tool; the binary
//! in `main.rs` only parses flags and calls [`cli::run`].
//!
//! Layout: [`detect`] is the pure detection core; [`format`] turns log bytes (canonical JSON lines
//! and the vendors' logs) into events; [`source`] reads files and streams; [`config`] validates
//! what the user asked for; [`replay`] wires them together for `exposure replay`, [`archive`]
//! for `exposure archive`, [`live`] for `exposure watch` and `exposure learn` (following files,
//! checkpoints, the outbox); [`sink`] delivers alerts (Alertmanager, PagerDuty, webhooks, files).

pub mod archive;
pub mod cli;
pub mod config;
pub mod detect;
pub mod event;
pub mod format;
pub mod intern;
pub mod live;
pub mod replay;
pub mod report;
pub mod sink;
pub mod source;
pub mod time;
