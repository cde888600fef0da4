//! What the detector is told: thresholds, per-table overrides chosen by glob (first match wins),
//! allowed principals, and which actions count as reads. Built and validated by `config`; the
//! detector only reads it.

use crate::time::{Span, Ts};
use globset::{Glob, GlobBuilder, GlobMatcher, GlobSet, GlobSetBuilder};
use std::sync::Arc;

/// The numbers that shape detection on one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// How long after its first read a table only learns its baseline.
    pub learn: Span,
    /// How long a principal stays normal for a table after its last normal read.
    pub forget_after: Span,
    /// How long a novel principal stays pending, and the span within which `min_principals`
    /// first novel reads open a window.
    pub span: Span,
    /// How long without a novel read closes an open window.
    pub quiet: Span,
    /// How many distinct pending principals within `span` open a window.
    pub min_principals: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            learn: Span::from_secs(7 * 86_400),
            forget_after: Span::from_secs(30 * 86_400),
            span: Span::from_secs(3_600),
            quiet: Span::from_secs(1_800),
            min_principals: 3,
        }
    }
}

/// The resolved policy of one table.
#[derive(Debug, Clone)]
pub struct TablePolicy {
    /// The `match` pattern of the `[[tables]]` rule that chose this policy, if any.
    pub rule: Option<String>,
    /// An ignored table keeps no state and never alerts.
    pub ignore: bool,
    pub thresholds: Thresholds,
    /// Principals that are always normal on this table.
    pub allow: GlobSet,
    /// Analysts' approvals of principals on this table (`exposure baseline allow`).
    pub approved: Vec<Arc<Approval>>,
}

impl TablePolicy {
    pub fn is_allowed(&self, principal: &str) -> bool {
        !self.allow.is_empty() && self.allow.is_match(principal)
    }

    /// The approval that makes `principal`'s read at `ts` normal, if any.
    pub fn approval(&self, principal: &str, ts: Ts) -> Option<&Approval> {
        self.approved
            .iter()
            .find(|a| a.until.is_none_or(|until| ts < until) && a.principal.is_match(principal))
            .map(Arc::as_ref)
    }
}

/// An analyst's approval: principals matching `principal` are normal on the tables matching
/// `table` for reads before `until` (always, without it). An approved read is normal but does
/// not enter the baseline: once the approval expires (or is withdrawn), the principal is judged
/// as if it had never been approved.
#[derive(Debug, Clone)]
pub struct Approval {
    pub table_pattern: String,
    pub principal_pattern: String,
    pub table: GlobMatcher,
    pub principal: GlobMatcher,
    pub until: Option<Ts>,
    /// Who approved it and why, as the audit log says.
    pub by: String,
    pub reason: String,
}

/// One `[[tables]]` rule: a glob on the table name and the policy it selects.
#[derive(Debug, Clone)]
pub struct TableRule {
    pub matcher: GlobMatcher,
    pub policy: Arc<TablePolicy>,
}

/// How sensitive a table's data is (`[[classify]]`), least first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Sensitivity {
    Public,
    Internal,
    Confidential,
    Restricted,
}

impl Sensitivity {
    /// As configured and serialized: `public`, `internal`, `confidential`, `restricted`.
    pub fn name(self) -> &'static str {
        match self {
            Sensitivity::Public => "public",
            Sensitivity::Internal => "internal",
            Sensitivity::Confidential => "confidential",
            Sensitivity::Restricted => "restricted",
        }
    }
}

/// One `[[classify]]` rule: the tables its globs match hold data of `level` — in the columns
/// `columns` matches (case-insensitively), when it has column globs.
#[derive(Debug, Clone)]
pub struct ClassifyRule {
    pub tables: GlobSet,
    pub columns: Option<GlobSet>,
    pub level: Sensitivity,
}

/// All table policies: the rules in order, then the default.
#[derive(Debug, Clone)]
pub struct Policies {
    pub default: Arc<TablePolicy>,
    pub rules: Vec<TableRule>,
    /// `--table`: when set, tables that match none of these are ignored.
    pub only: Option<GlobSet>,
    /// The literal prefixes of the `--table` globs, for pruning by statistics.
    pub only_prefixes: Vec<String>,
    /// Analysts' approvals, in the order they were made.
    pub approvals: Vec<Arc<Approval>>,
    /// `[[classify]]` rules.
    pub classify: Vec<ClassifyRule>,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            default: Arc::new(TablePolicy {
                rule: None,
                ignore: false,
                thresholds: Thresholds::default(),
                allow: GlobSet::empty(),
                approved: Vec::new(),
            }),
            rules: Vec::new(),
            only: None,
            only_prefixes: Vec::new(),
            approvals: Vec::new(),
            classify: Vec::new(),
        }
    }
}

impl Policies {
    /// The sensitivity of `table`: the highest level of the `[[classify]]` rules that match it
    /// (`None`: unclassified).
    pub fn sensitivity(&self, table: &str) -> Option<Sensitivity> {
        self.classify
            .iter()
            .filter(|rule| rule.tables.is_match(table))
            .map(|rule| rule.level)
            .max()
    }

    /// The sensitivity of a read of `columns` of `table` (none named: the table's, as
    /// [`Policies::sensitivity`]): the highest level of the rules that match the table and
    /// either have no column globs or match a column read. A read of a table's harmless
    /// columns is not a read of its restricted ones.
    pub fn sensitivity_of_read<'c>(
        &self,
        table: &str,
        columns: impl Iterator<Item = &'c str> + Clone,
    ) -> Option<Sensitivity> {
        if columns.clone().next().is_none() {
            return self.sensitivity(table);
        }
        self.classify
            .iter()
            .filter(|rule| rule.tables.is_match(table))
            .filter(|rule| match &rule.columns {
                None => true,
                Some(globs) => columns.clone().any(|c| globs.is_match(c)),
            })
            .map(|rule| rule.level)
            .max()
    }

    /// The policy for `table`: the first rule whose pattern matches, else the default.
    pub fn resolve(&self, table: &str) -> Arc<TablePolicy> {
        if self.only.as_ref().is_some_and(|only| !only.is_match(table)) {
            return Arc::new(TablePolicy {
                rule: Some("--table".into()),
                ignore: true,
                thresholds: self.default.thresholds,
                allow: GlobSet::empty(),
                approved: Vec::new(),
            });
        }
        let policy = self
            .rules
            .iter()
            .find(|rule| rule.matcher.is_match(table))
            .map(|rule| Arc::clone(&rule.policy))
            .unwrap_or_else(|| Arc::clone(&self.default));
        let approved: Vec<Arc<Approval>> = self
            .approvals
            .iter()
            .filter(|a| a.table.is_match(table))
            .cloned()
            .collect();
        if approved.is_empty() {
            return policy;
        }
        let mut policy = (*policy).clone();
        policy.approved = approved;
        Arc::new(policy)
    }
}

/// The part of a glob before its first special character: every match starts with it.
pub fn literal_prefix(pattern: &str) -> &str {
    let end = pattern
        .find(['*', '?', '[', '{', '\\'])
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Compiles a name pattern: `*` and `?` match any characters, dots and slashes included.
pub fn compile_glob(pattern: &str) -> Result<Glob, globset::Error> {
    GlobBuilder::new(pattern).literal_separator(false).build()
}

/// Column globs, matched case-insensitively (Snowflake stores `SSN`, BigQuery `ssn`).
pub fn compile_column_globs(globs: &[String]) -> Result<globset::GlobSet, String> {
    let mut set = globset::GlobSetBuilder::new();
    for glob in globs {
        let glob = globset::GlobBuilder::new(glob)
            .case_insensitive(true)
            .build()
            .map_err(|e| e.to_string())?;
        set.add(glob);
    }
    set.build().map_err(|e| e.to_string())
}

/// Compiles a list of name patterns into one set.
pub fn compile_glob_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(compile_glob(pattern)?);
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_prefixes() {
        assert_eq!(literal_prefix("warehouse.hr.*"), "warehouse.hr.");
        assert_eq!(literal_prefix("*.pii"), "");
        assert_eq!(literal_prefix("exact"), "exact");
        assert_eq!(literal_prefix("a?c"), "a");
    }

    #[test]
    fn only_ignores_the_other_tables() {
        let policies = Policies {
            only: Some(compile_glob_set(&["hr.*".into()]).unwrap()),
            ..Policies::default()
        };
        assert!(!policies.resolve("hr.pay").ignore);
        assert!(policies.resolve("sales.orders").ignore);
    }

    #[test]
    fn first_matching_rule_wins() {
        let hr = Arc::new(TablePolicy {
            rule: Some("warehouse.hr.*".into()),
            ignore: false,
            thresholds: Thresholds {
                min_principals: 5,
                ..Thresholds::default()
            },
            allow: compile_glob_set(&["svc-payroll@*".into()]).unwrap(),
            approved: Vec::new(),
        });
        let scratch = Arc::new(TablePolicy {
            rule: Some("*.scratch.*".into()),
            ignore: true,
            thresholds: Thresholds::default(),
            allow: GlobSet::empty(),
            approved: Vec::new(),
        });
        let policies = Policies {
            rules: vec![
                TableRule {
                    matcher: compile_glob("warehouse.hr.*").unwrap().compile_matcher(),
                    policy: hr,
                },
                TableRule {
                    matcher: compile_glob("*.scratch.*").unwrap().compile_matcher(),
                    policy: scratch,
                },
            ],
            ..Policies::default()
        };
        assert_eq!(
            policies
                .resolve("warehouse.hr.salaries")
                .thresholds
                .min_principals,
            5
        );
        assert!(
            policies
                .resolve("warehouse.hr.salaries")
                .is_allowed("svc-payroll@corp")
        );
        assert!(!policies.resolve("warehouse.hr.salaries").ignore);
        assert!(policies.resolve("warehouse.scratch.tmp").ignore);
        assert_eq!(policies.resolve("sales.orders").rule, None);
    }
}
