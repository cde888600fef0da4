//! `exposure watch`: live mode.

pub mod checkpoint;
pub mod outbox;
pub mod tail;
