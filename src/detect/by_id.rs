//! The detector by ids: the surface of replay's fast paths, apart from the everyday one
//! ([`Detector::observe`], [`Detector::advance`], [`Detector::finish`]). A source that decodes
//! many events with the same names (a Parquet dictionary, a batch of JSON lines) resolves each
//! name to a [`TableId`] or [`PrincipalId`] once and then hands in ids; a source that knows a
//! stretch of its events is complete up to some time (a Parquet row group that no later input
//! overlaps) collects it and applies it as a chunk. Ids belong to one detector: never carry
//! them to another, nor let one decide an order (see [`crate::intern`]).

use super::reorder::BufferedRead;
use super::{Alert, Detector, Observed};
use crate::intern::{PrincipalId, TableId};
use crate::time::Ts;

/// A detector seen through its ids; from [`Detector::by_id`].
pub struct ById<'d>(pub(super) &'d mut Detector);

impl ById<'_> {
    /// The id of table `name` (its policy is resolved on first sight).
    #[inline]
    pub fn table(&mut self, name: &str) -> TableId {
        self.0.table_id(name)
    }

    /// The id of principal `name`.
    #[inline]
    pub fn principal(&mut self, name: &str) -> PrincipalId {
        self.0.principal_names.intern(name)
    }

    /// The ids of many reads' (table, principal) names, appended to `ids` in order: the same as
    /// [`ById::table`] and [`ById::principal`] on each, with the principals' look-ups
    /// overlapping (see [`crate::intern::Interner::intern_many`]).
    pub fn reads<'a>(
        &mut self,
        reads: &[(&'a str, &'a str)],
        ids: &mut Vec<(TableId, PrincipalId)>,
    ) {
        self.0.read_ids(reads, ids)
    }

    /// Whether `action` counts as a read (the detector's read actions).
    #[inline]
    pub fn is_read_action(&mut self, action: Option<&str>) -> bool {
        self.0.settings.read_actions.is_read(action)
    }

    /// [`Detector::observe`] by ids: `read` is `Some((table, principal))` for a read and
    /// `None` for anything else, which only moves event time.
    #[inline]
    pub fn observe(
        &mut self,
        ts: Ts,
        read: Option<(TableId, PrincipalId)>,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        self.0.observe_ids(ts, read, alerts)
    }

    /// See [`Detector::observe_change`].
    pub fn observe_change(
        &mut self,
        change: &crate::event::PermissionChange,
        alerts: &mut Vec<Alert>,
    ) -> Observed {
        self.0.observe_change(change, alerts)
    }

    /// Takes one event of a chunk that no later input overlaps: a read is appended to `chunk`
    /// for [`ById::apply_chunk`] instead of entering the reorder buffer. An event before the
    /// watermark is counted late.
    #[inline]
    pub fn collect_in_order(
        &mut self,
        ts: Ts,
        read: Option<(TableId, PrincipalId)>,
        chunk: &mut Vec<BufferedRead>,
    ) -> Observed {
        self.0.collect_in_order(ts, read, chunk)
    }

    /// Applies a chunk collected by [`ById::collect_in_order`] that is complete up to `until`
    /// (nothing earlier can arrive later), table by table; alerts come out in the order
    /// one-by-one observation gives. Needs an empty reorder buffer (an external watermark).
    pub fn apply_chunk(
        &mut self,
        reads: &[BufferedRead],
        until: Option<Ts>,
        alerts: &mut Vec<Alert>,
    ) {
        self.0.apply_chunk(reads, until, alerts)
    }

    /// Applying reads in chunks ([`Detector::apply_in_chunks`]): applies the reads waiting that
    /// are final (before the watermark) now, however few, as a chunk. For a source that has
    /// just raised the watermark past a batch of reads it knows complete (a Parquet row group
    /// that overlaps the next).
    pub fn apply_final(&mut self, alerts: &mut Vec<Alert>) {
        self.0.flush_deferred(alerts)
    }
}
