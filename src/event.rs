//! `AccessEvent`: the one shape every log format parses into — who (`principal`) did what
//! (`action`) to which `table`, when (`ts`). Borrowed from the input buffer: no allocation per event.

use crate::time::Ts;

/// One data-access event, borrowing its strings from the line or batch it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessEvent<'a> {
    pub ts: Ts,
    pub principal: &'a str,
    pub table: &'a str,
    /// The action as logged (`SELECT`, `GetObject`, ...); `None` when the log has none, which
    /// counts as a read.
    pub action: Option<&'a str>,
}
