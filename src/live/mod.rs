//! `exposure watch`: live mode.

pub mod tail;
