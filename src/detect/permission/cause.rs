//! Root cause: for an exposure window, the widening change that most plausibly opened it and
//! the narrowing change that reverted it (docs/detection.md, "Root cause"), ranked from the
//! ledger of standing grants ([`super::PermissionLedger`]). Every answer depends only on the
//! changes with times up to the bound it is given, never on the order they arrived in.

use super::{PermissionLedger, PermissionSettings, containers, names, standing};
use crate::event::{ChangeAction, PermissionChange};
use crate::time::{Span, Ts};
use std::cmp::Reverse;

/// How far the changes an answer may use reach: the alert's time included or not. An alert
/// made at an instant whose reads are final knows every change up to that instant; a close
/// due at the watermark does not yet know the changes of that very instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KnownUntil {
    Including(Ts),
    Before(Ts),
}

impl KnownUntil {
    fn knows(self, ts: Ts) -> bool {
        match self {
            KnownUntil::Including(until) => ts <= until,
            KnownUntil::Before(until) => ts < until,
        }
    }
}

/// The window a cause is looked for.
#[derive(Debug, Clone, Copy)]
pub struct WindowFacts<'a> {
    pub table: &'a str,
    pub start: Ts,
    pub end: Ts,
    /// The window's principals, by name.
    pub principals: &'a [&'a str],
}

/// The root cause of a window: the widening change that opened it, and the narrowing change
/// that reverted it when the logs showed one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub grant: PermissionChange,
    pub revert: Option<PermissionChange>,
}

impl PermissionLedger {
    /// The root cause of `window` (docs/detection.md, "Root cause"): among the read grants on
    /// its table or a container of it that stood at `window.start`, were made at most
    /// `horizon` before it, and whose grantee covers at least one of its principals as far as
    /// the logs tell, the one covering the most principals; then the latest; then the most
    /// specific object; then by object, grantee, privilege and actor name. With the first
    /// revoke of that grant the logs show up to `known`.
    pub fn cause(
        &self,
        window: &WindowFacts<'_>,
        horizon: Span,
        settings: &PermissionSettings,
        known: KnownUntil,
    ) -> Option<Cause> {
        let earliest = window.start.saturating_sub(horizon.micros());
        let best = self
            .covering_grants(window, settings, window.start)
            .into_iter()
            .filter(|c| c.grant.ts >= earliest)
            .max_by(|a, b| {
                rank(a.covered, a.depth, a.grant).cmp(&rank(b.covered, b.depth, b.grant))
            })?;
        Some(Cause {
            grant: best.grant.clone(),
            revert: self.end_of_exposure(window, settings, &best.history, best.grant, known),
        })
    }

    /// The grants on `window`'s table or a container of it that stand at `at` and cover at
    /// least one of its principals, each with the history of its pair.
    fn covering_grants<'a>(
        &'a self,
        window: &WindowFacts<'_>,
        settings: &PermissionSettings,
        at: Ts,
    ) -> Vec<Covering<'a>> {
        let mut out = Vec::new();
        for (depth, object) in containers(window.table).enumerate() {
            let Some(pairs) = self.by_object.get(object) else {
                continue;
            };
            for (grantee, changes) in pairs {
                let history = self.history(object, grantee, Some(changes));
                let Some(grant) = standing(history.iter().copied().take_while(|c| c.ts <= at))
                else {
                    continue;
                };
                let covered = self.covered(grantee, window, settings);
                if covered > 0 {
                    out.push(Covering {
                        depth,
                        covered,
                        grant,
                        history,
                    });
                }
            }
        }
        out
    }

    /// The revoke that ended the exposure `grant` began: its own revoke, unless another grant
    /// covering the window's principals on the table or a container of it still stood then
    /// (the table stayed readable to them), in which case the revoke of that one, and so on.
    /// `None` while some such grant stands, as far as `known` tells.
    fn end_of_exposure(
        &self,
        window: &WindowFacts<'_>,
        settings: &PermissionSettings,
        history: &[&PermissionChange],
        grant: &PermissionChange,
        known: KnownUntil,
    ) -> Option<PermissionChange> {
        let mut revert = revert_of(history, grant, known)?;
        // Each step moves to a later revoke: at most as many steps as there are revokes.
        loop {
            // Of the grants still standing, the one that stood the longest decides (`None`:
            // one stands still).
            let mut still: Option<Option<&PermissionChange>> = None;
            for other in self.covering_grants(window, settings, revert.ts) {
                let ends = revert_of(&other.history, other.grant, known);
                still = match (still, ends) {
                    (Some(None), _) | (_, None) => Some(None),
                    (Some(Some(a)), Some(b)) => Some(Some(if b.ts > a.ts { b } else { a })),
                    (None, Some(b)) => Some(Some(b)),
                };
            }
            match still {
                None => return Some(revert.clone()),
                Some(None) => return None,
                Some(Some(later)) if later.ts > revert.ts => revert = later,
                Some(Some(_)) => return Some(revert.clone()),
            }
        }
    }

    /// How many of the window's principals `grantee` covers: all of them for everyone (or a
    /// configured large group), else those that are the grantee or, as of the window's end, a
    /// member of it (through nested roles too).
    fn covered(
        &self,
        grantee: &str,
        window: &WindowFacts<'_>,
        settings: &PermissionSettings,
    ) -> usize {
        if settings.is_broad(grantee) {
            return window.principals.len();
        }
        window
            .principals
            .iter()
            .filter(|p| names(grantee, p) || self.is_member(grantee, p, window.end))
            .count()
    }
}

/// A grant standing at some time that covers some of a window's principals.
struct Covering<'a> {
    /// How many containers out from the table its object is (0: the table).
    depth: usize,
    covered: usize,
    grant: &'a PermissionChange,
    /// Every change deciding its pair, in order.
    history: Vec<&'a PermissionChange>,
}

/// Why one candidate cause beats another, compared field by field: more principals covered,
/// then later, then a more specific object (fewer containers out), then names (the smaller
/// wins a tie).
type CauseRank<'a> = (
    usize,
    Ts,
    Reverse<usize>,
    Reverse<(&'a str, &'a str, &'a str, &'a str)>,
);

fn rank<'a>(covered: usize, depth: usize, grant: &'a PermissionChange) -> CauseRank<'a> {
    (
        covered,
        grant.ts,
        Reverse(depth),
        Reverse((
            &grant.object,
            &grant.grantee,
            &grant.privilege,
            &grant.actor,
        )),
    )
}

/// The first revoke after `grant` among `changes`, known by `known`.
fn revert_of<'a>(
    history: &[&'a PermissionChange],
    grant: &PermissionChange,
    known: KnownUntil,
) -> Option<&'a PermissionChange> {
    history
        .iter()
        .copied()
        .skip_while(|c| *c <= grant)
        .take_while(|c| known.knows(c.ts))
        .find(|c| c.action == ChangeAction::Revoke)
}
