//! The shapes every log format decodes into: [`AccessEvent`] — who (`principal`) did what
//! (`action`) to which `table`, when (`ts`) — with [`ReadActions`], which decides whether an
//! event is a read; and [`PermissionChange`] — who (`actor`) granted or revoked which
//! `privilege` on which `object` to which `grantee`, when. Access-event strings borrow from the
//! input where they can (no allocation per canonical line); permission changes are rare and
//! own theirs.

use crate::intern::same_bytes;
use crate::time::Ts;
use std::borrow::Cow;

/// One data-access event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent<'a> {
    pub ts: Ts,
    pub principal: Cow<'a, str>,
    pub table: Cow<'a, str>,
    /// The action as logged (`SELECT`, `GetObject`, ...); `None` when the log has none.
    pub action: Option<Cow<'a, str>>,
    /// The format's own verdict, for formats that decide what a read is themselves (the vendor
    /// logs): `Some(true)` a read, `Some(false)` another access. `None`: decided from `action`
    /// by [`ReadActions`].
    pub is_read: Option<bool>,
    /// Extras some logs carry; `None` when absent or not a count.
    pub rows: Option<i64>,
    pub bytes: Option<i64>,
    /// The columns the read touched, where the log names them (Snowflake ACCESS_HISTORY's
    /// `columns`, BigQuery's `tableDataRead.fields`, a canonical `columns` array), in the
    /// log's order; empty when it does not. Detection never looks at them: `exposure impact`
    /// reports them, because "was user data read" is a question about columns.
    pub columns: Vec<Cow<'a, str>>,
}

impl<'a> AccessEvent<'a> {
    /// An event whose action is classified by [`ReadActions`].
    pub fn new(ts: Ts, principal: &'a str, table: &'a str, action: Option<&'a str>) -> Self {
        AccessEvent {
            ts,
            principal: Cow::Borrowed(principal),
            table: Cow::Borrowed(table),
            action: action.map(Cow::Borrowed),
            is_read: None,
            rows: None,
            bytes: None,
            columns: Vec::new(),
        }
    }

    /// An event of a vendor log, which says itself whether it is a read.
    pub fn classified(
        ts: Ts,
        principal: String,
        table: String,
        read: bool,
    ) -> AccessEvent<'static> {
        AccessEvent {
            ts,
            principal: Cow::Owned(principal),
            table: Cow::Owned(table),
            action: None,
            is_read: Some(read),
            rows: None,
            bytes: None,
            columns: Vec::new(),
        }
    }

    /// Whether the event is a read: the format's verdict, else the action's.
    #[inline]
    pub fn is_read_by(&self, read_actions: &mut ReadActions) -> bool {
        match self.is_read {
            Some(read) => read,
            None => read_actions.is_read(self.action.as_deref()),
        }
    }

    /// The action to store in an archive: as logged, or `read`/`write` for a format's verdict
    /// (so that replaying the archive classifies it the same way with the default actions).
    pub fn archived_action(&self) -> Option<&str> {
        match self.is_read {
            Some(true) => Some("read"),
            Some(false) => Some("write"),
            None => self.action.as_deref(),
        }
    }
}

/// The principal of a request nobody signed (an anonymous read of a public bucket): alone, one
/// principal for every such request ([`Anonymous::Shared`]); as `anonymous@ADDRESS`, one per
/// source address ([`Anonymous::PerAddress`]). A reserved name: whatever the format, a principal
/// so named is anonymous to the detector ([`is_anonymous`]).
pub const ANONYMOUS: &str = "anonymous";

/// How anonymous requests are named (`[input] anonymous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Anonymous {
    /// `anonymous@203.0.113.7`: each source address is a principal of its own, so a window
    /// says how many places read the data.
    #[default]
    PerAddress,
    /// `anonymous`: one principal for every anonymous request.
    Shared,
}

impl Anonymous {
    /// The principal of an anonymous request from `address` (`None`, empty or `-`: unknown).
    pub fn principal(self, address: Option<&str>) -> String {
        match (self, address.filter(|a| !a.is_empty() && *a != "-")) {
            (Anonymous::PerAddress, Some(address)) => format!("{ANONYMOUS}@{address}"),
            _ => ANONYMOUS.to_string(),
        }
    }
}

/// Whether `principal` names an anonymous request (see [`ANONYMOUS`]).
#[inline]
pub fn is_anonymous(principal: &str) -> bool {
    match principal.strip_prefix(ANONYMOUS) {
        Some(rest) => rest.is_empty() || rest.starts_with('@'),
        None => false,
    }
}

/// Whether a permission change widens access (`GRANT`) or narrows it (`REVOKE`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeAction {
    /// Narrowing first: at one instant, a revoke is taken before a grant (the grant stands).
    Revoke,
    Grant,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Grant => "GRANT",
            ChangeAction::Revoke => "REVOKE",
        }
    }

    /// `GRANT`/`REVOKE` in any case.
    pub fn parse(text: &str) -> Option<ChangeAction> {
        if text.eq_ignore_ascii_case("grant") {
            Some(ChangeAction::Grant)
        } else if text.eq_ignore_ascii_case("revoke") {
            Some(ChangeAction::Revoke)
        } else {
            None
        }
    }
}

/// The privilege of a role-membership change: `GRANT analysts TO bob` is a change of
/// privilege `MEMBER` on object `analysts` to grantee `bob`.
pub const MEMBER: &str = "MEMBER";

/// The object of a permission change that contains every table: a grant not tied to one (an
/// IAM policy attached to a role lets it read every bucket).
pub const EVERY_TABLE: &str = "*";

/// One permission change as a log recorded it: `actor` granted (or revoked) `privilege` on
/// `object` — a table, or a container of tables (schema, dataset, bucket, catalog) — to
/// `grantee` (a user, a role or group, or everyone: `PUBLIC`, `allUsers`, `*`). Ordered by
/// time, then by its fields, so that changes of one instant are always taken in one order.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct PermissionChange {
    pub ts: Ts,
    pub action: ChangeAction,
    pub object: String,
    pub grantee: String,
    pub privilege: String,
    pub actor: String,
    /// The statement or request as logged, where the log has one.
    pub statement: Option<String>,
}

impl PermissionChange {
    /// Whether this change is about role membership rather than a privilege on data.
    pub fn is_membership(&self) -> bool {
        self.privilege == MEMBER
    }
}

/// Privileges that let a grantee read the data (compared case-insensitively): SQL (`SELECT`,
/// `ALL`), S3 (`s3:GetObject`, `s3:*`, ACL `READ`/`FULL_CONTROL`), BigQuery and GCP roles that
/// read table data, Unity Catalog (`ALL_PRIVILEGES`), Snowflake (`OWNERSHIP`).
pub const READ_PRIVILEGES: &[&str] = &[
    "SELECT",
    "ALL",
    "ALL PRIVILEGES",
    "ALL_PRIVILEGES",
    "READ",
    "OWNERSHIP",
    "FULL_CONTROL",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:Get*",
    "s3:*",
    "*",
    "roles/bigquery.dataViewer",
    "roles/bigquery.dataEditor",
    "roles/bigquery.dataOwner",
    "roles/bigquery.admin",
    "roles/viewer",
    "roles/editor",
    "roles/owner",
    "roles/storage.objectViewer",
    "roles/storage.objectUser",
    "roles/storage.objectAdmin",
    "roles/storage.admin",
    "roles/storage.legacyObjectReader",
    "roles/storage.legacyObjectOwner",
];

/// Whether `privilege` lets its grantee read.
pub fn grants_read(privilege: &str) -> bool {
    READ_PRIVILEGES
        .iter()
        .any(|p| p.eq_ignore_ascii_case(privilege))
}

/// The default actions that count as reads (compared case-insensitively).
pub const DEFAULT_READ_ACTIONS: &[&str] = &[
    "select",
    "read",
    "get",
    "getobject",
    "query",
    "scan",
    "export",
    "copy",
    "tabledataread",
];

/// Decides whether an event's action is a read. An absent action is a read.
#[derive(Debug, Clone)]
pub struct ReadActions {
    lowercase: Vec<Box<str>>,
    /// Verdicts by exact spelling, most recent hit first in line: logs use a handful of
    /// actions, so a short scan beats hashing.
    known: Vec<(Box<str>, bool)>,
    last_hit: usize,
}

/// Spellings remembered; past this, new spellings are folded on every lookup.
const MAX_KNOWN_ACTIONS: usize = 256;

impl Default for ReadActions {
    fn default() -> Self {
        ReadActions::new(DEFAULT_READ_ACTIONS.iter().map(|a| a.to_string()))
    }
}

impl ReadActions {
    pub fn new(actions: impl IntoIterator<Item = String>) -> ReadActions {
        ReadActions {
            lowercase: actions
                .into_iter()
                .map(|a| a.to_lowercase().into_boxed_str())
                .collect(),
            known: Vec::new(),
            last_hit: 0,
        }
    }

    /// Whether `action` (as logged) is a read.
    #[inline]
    pub fn is_read(&mut self, action: Option<&str>) -> bool {
        let Some(action) = action else { return true };
        if let Some((spelling, verdict)) = self.known.get(self.last_hit)
            && same_bytes(spelling.as_bytes(), action.as_bytes())
        {
            return *verdict;
        }
        if let Some(i) = self
            .known
            .iter()
            .position(|(s, _)| same_bytes(s.as_bytes(), action.as_bytes()))
        {
            self.last_hit = i;
            return self.known[i].1;
        }
        let folded = action.to_lowercase();
        let verdict = self.lowercase.iter().any(|a| **a == *folded);
        if self.known.len() < MAX_KNOWN_ACTIONS {
            self.known.push((action.into(), verdict));
            self.last_hit = self.known.len() - 1;
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_reads_case_insensitively_and_absent_is_a_read() {
        let mut reads = ReadActions::default();
        assert!(reads.is_read(Some("SELECT")));
        assert!(reads.is_read(Some("GetObject")));
        assert!(reads.is_read(Some("tableDataRead")));
        assert!(reads.is_read(None));
        assert!(!reads.is_read(Some("INSERT")));
        assert!(!reads.is_read(Some("PutObject")));
        assert!(!reads.is_read(Some("")));
    }

    #[test]
    fn anonymous_requests_are_named_per_address_or_shared_and_recognised() {
        assert_eq!(
            Anonymous::PerAddress.principal(Some("203.0.113.7")),
            "anonymous@203.0.113.7"
        );
        assert_eq!(Anonymous::PerAddress.principal(Some("-")), "anonymous");
        assert_eq!(Anonymous::PerAddress.principal(None), "anonymous");
        assert_eq!(
            Anonymous::Shared.principal(Some("203.0.113.7")),
            "anonymous"
        );
        assert!(is_anonymous("anonymous") && is_anonymous("anonymous@2001:db8::1"));
        assert!(!is_anonymous("anonymous-reporting") && !is_anonymous("Anonymous"));
        assert!(!is_anonymous("arn:aws:iam::1:user/anonymous"));
    }
}
