//! Integration tests: the real `exposure` binary, run in temp dirs through [`TestEnv`].

mod baseline;
mod check;
mod cli;
mod config_example;
mod evidence;
mod formats;
mod golden;
mod impact;
mod kafka;
mod layering;
mod malformed;
mod object_store;
mod ocsf;
mod operate;
mod overlap;
mod parallel;
mod parquet;
mod postgres;
mod properties;
mod public;
mod report;
mod root_cause;
mod sample;
mod shard;
mod sinks;
mod torture;
mod util;
mod watch;

pub use util::{Run, TestEnv, repo};
