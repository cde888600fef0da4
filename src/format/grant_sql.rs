//! SQL `GRANT` and `REVOKE` statements read into permission changes, for the logs that record
//! permission changes as statement text (pgaudit's `ROLE` class, Snowflake's query history,
//! Databricks SQL): PostgreSQL's grammar with Snowflake's and Unity Catalog's variants
//! (`TO ROLE r`, `GRANT ROLE r TO USER u`, `ON FUTURE TABLES IN SCHEMA s`). Also splits a query
//! string of several statements, for logs that record the whole string on each statement's line.
//!
//! Only what decides who may read which table is kept: privileges on tables, views and
//! schemas (as containers of tables), and role memberships. Anything else (a sequence, a
//! function, a statement this grammar does not know) is `None`: not a change of read access.

use crate::event::{ChangeAction, MEMBER, PermissionChange};
use crate::time::Ts;

/// One statement, as the log recorded it, and where it was made.
#[derive(Debug, Clone, Copy)]
pub struct GrantContext<'a> {
    pub ts: Ts,
    /// Who ran it.
    pub actor: &'a str,
    /// The schema unqualified names resolve to (`public` for PostgreSQL's default
    /// `search_path`); `None` keeps them as written.
    pub default_schema: Option<&'a str>,
    /// Put before every object name (the database, when table names carry it).
    pub object_prefix: Option<&'a str>,
    /// How unquoted identifiers are folded: to lower case (PostgreSQL), to upper case
    /// (Snowflake), or kept.
    pub fold: Fold,
}

/// How a system folds unquoted identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Lower,
    Upper,
    Keep,
}

/// A token of SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word or an identifier: its text (quoted identifiers unquoted, `quoted` set).
    Word {
        text: String,
        quoted: bool,
    },
    Comma,
    Dot,
    Open,
    Close,
    Semicolon,
    /// Anything else (a string literal, an operator).
    Other,
}

impl Token {
    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self, Token::Word { text, quoted: false } if text.eq_ignore_ascii_case(keyword))
    }
}

/// The tokens of `sql`, each with the byte where it starts; comments and white space skipped.
fn tokens(sql: &str) -> Vec<(usize, Token)> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        match b {
            b if b.is_ascii_whitespace() => i += 1,
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(bytes.len());
            }
            b'"' | b'`' => {
                let quote = b;
                let mut text = Vec::new();
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == quote {
                        if bytes.get(i + 1) == Some(&quote) {
                            text.push(quote);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    text.push(bytes[i]);
                    i += 1;
                }
                let text = String::from_utf8_lossy(&text).into_owned();
                out.push((start, Token::Word { text, quoted: true }));
            }
            b'\'' => {
                i += 1;
                while i < bytes.len() {
                    if bytes[i] == b'\'' {
                        if bytes.get(i + 1) == Some(&b'\'') {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                out.push((start, Token::Other));
            }
            b'$' => {
                // A dollar-quoted string: `$tag$ … $tag$`.
                let tag_end = bytes[i + 1..]
                    .iter()
                    .position(|c| *c == b'$')
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(end)
                        if bytes[i + 1..end]
                            .iter()
                            .all(|c| c.is_ascii_alphanumeric() || *c == b'_') =>
                    {
                        let tag = &sql[i..=end];
                        i = match sql[end + 1..].find(tag) {
                            Some(at) => end + 1 + at + tag.len(),
                            None => bytes.len(),
                        };
                    }
                    _ => i += 1,
                }
                out.push((start, Token::Other));
            }
            b',' | b'.' | b'(' | b')' | b';' => {
                i += 1;
                let token = match b {
                    b',' => Token::Comma,
                    b'.' => Token::Dot,
                    b'(' => Token::Open,
                    b')' => Token::Close,
                    _ => Token::Semicolon,
                };
                out.push((start, token));
            }
            b if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 => {
                // `@` and `-` inside a word too: a grantee written unquoted as its e-mail
                // (`new.hire@corp.example`, `svc-etl`) is read as one name, as meant.
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric()
                        || matches!(bytes[i], b'_' | b'$' | b'@')
                        || (bytes[i] == b'-'
                            && bytes.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric()))
                        || bytes[i] >= 0x80)
                {
                    i += 1;
                }
                let text = sql[start..i].to_string();
                out.push((
                    start,
                    Token::Word {
                        text,
                        quoted: false,
                    },
                ));
            }
            _ => {
                i += 1;
                out.push((start, Token::Other));
            }
        }
    }
    out
}

/// The statements of a query string, without their `;`, trimmed, empty ones left out.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (at, token) in tokens(sql) {
        if token == Token::Semicolon {
            out.push(sql[start..at].trim());
            start = at + 1;
        }
    }
    out.push(sql[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// Whether statement `sql` starts with the command `command` (`GRANT`, `CREATE ROLE`, ...),
/// comments and case aside.
pub fn starts_with_command(sql: &str, command: &str) -> bool {
    let words: Vec<Token> = tokens(sql).into_iter().map(|(_, t)| t).take(4).collect();
    let wanted: Vec<&str> = command.split_whitespace().collect();
    !wanted.is_empty()
        && wanted.len() <= words.len()
        && wanted.iter().zip(&words).all(|(w, t)| t.is_keyword(w))
}

/// The permission changes of one `GRANT` or `REVOKE` statement; `None` when it is not one
/// that changes read access to tables (or role membership) as far as this grammar tells.
/// A grant on the future tables of a schema (Snowflake's `ON FUTURE TABLES IN SCHEMA s`) is a
/// grant on the schema; `ALTER DEFAULT PRIVILEGES` is `None` here: it changes no table that
/// exists (see [`parse_statement`]).
pub fn parse_grant(sql: &str, context: &GrantContext<'_>) -> Option<Vec<PermissionChange>> {
    parse_statement(sql, context)
        .filter(|parsed| !parsed.default_privileges)
        .map(|parsed| parsed.changes)
}

/// The statement that undoes `sql` (a `GRANT` or `REVOKE`, perhaps after `ALTER DEFAULT
/// PRIVILEGES …`): its first `GRANT` made `REVOKE` and the `TO` after it `FROM` (or the
/// reverse), options after the grantees (`WITH GRANT OPTION`, `CASCADE`) left out. `None`
/// when it is not one.
pub fn undo_statement(sql: &str) -> Option<String> {
    let sql = sql.trim().trim_end_matches(';').trim_end();
    let tokens = tokens(sql);
    let verb = tokens
        .iter()
        .position(|(_, t)| t.is_keyword("GRANT") || t.is_keyword("REVOKE"))?;
    let granting = tokens[verb].1.is_keyword("GRANT");
    let (to, from) = if granting {
        ("TO", "FROM")
    } else {
        ("FROM", "TO")
    };
    let target = verb + tokens[verb..].iter().position(|(_, t)| t.is_keyword(to))?;
    let end = tokens[target..]
        .iter()
        .position(|(_, t)| {
            ["WITH", "GRANTED", "CASCADE", "RESTRICT", "COPY"]
                .iter()
                .any(|k| t.is_keyword(k))
        })
        .map(|at| tokens[target + at].0)
        .unwrap_or(sql.len());
    let (verb_at, target_at) = (tokens[verb].0, tokens[target].0);
    let mut out = String::with_capacity(sql.len() + 2);
    out.push_str(&sql[..verb_at]);
    out.push_str(if granting { "REVOKE" } else { "GRANT" });
    out.push_str(&sql[verb_at + if granting { 5 } else { 6 }..target_at]);
    out.push_str(from);
    out.push_str(sql[target_at + to.len()..end].trim_end());
    Some(out)
}

/// One statement read: its changes, and what they reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedGrant {
    pub changes: Vec<PermissionChange>,
    /// The objects are containers whose *future* tables the changes reach (`ON FUTURE TABLES
    /// IN SCHEMA s`, `ALTER DEFAULT PRIVILEGES`), not the tables in them now.
    pub future_only: bool,
    /// An `ALTER DEFAULT PRIVILEGES` statement (its object: the schemas of `IN SCHEMA`, or
    /// `*`, every schema, without one).
    pub default_privileges: bool,
}

/// [`parse_grant`], saying also whether the statement reaches future tables only, and
/// reading `ALTER DEFAULT PRIVILEGES [FOR ROLE r] [IN SCHEMA s, …] GRANT|REVOKE … ON TABLES
/// TO|FROM …` (PostgreSQL): what `exposure check` asks of a proposed statement.
pub fn parse_statement(sql: &str, context: &GrantContext<'_>) -> Option<ParsedGrant> {
    let tokens: Vec<Token> = tokens(sql).into_iter().map(|(_, t)| t).collect();
    let mut at = Cursor {
        tokens: &tokens,
        i: 0,
    };
    if at.keywords(&["ALTER", "DEFAULT", "PRIVILEGES"]) {
        return default_privileges(sql, &tokens, at.i, context);
    }
    let future_only = tokens.windows(2).any(|w| {
        w[0].is_keyword("FUTURE") && (w[1].is_keyword("TABLES") || w[1].is_keyword("VIEWS"))
    });
    grant_or_revoke(sql, &tokens, context).map(|changes| ParsedGrant {
        changes,
        future_only,
        default_privileges: false,
    })
}

/// `ALTER DEFAULT PRIVILEGES …` from the token after `PRIVILEGES` (see [`parse_statement`]):
/// the grant or revoke that follows, on the schemas named (`*`: every schema).
fn default_privileges(
    sql: &str,
    tokens: &[Token],
    from: usize,
    context: &GrantContext<'_>,
) -> Option<ParsedGrant> {
    let mut at = Cursor { tokens, i: from };
    if at.keywords(&["FOR", "ROLE"]) || at.keywords(&["FOR", "USER"]) {
        loop {
            at.name(context)?;
            if !at.comma() {
                break;
            }
        }
    }
    let mut schemas = Vec::new();
    if at.keywords(&["IN", "SCHEMA"]) {
        loop {
            let name = at.name(context)?.join(".");
            schemas.push(match context.object_prefix {
                Some(prefix) => format!("{prefix}.{name}"),
                None => name,
            });
            if !at.comma() {
                break;
            }
        }
    }
    if schemas.is_empty() {
        schemas.push("*".to_string());
    }
    // The rest is a GRANT or REVOKE on TABLES: read as one on the first schema, then put on
    // each.
    let rest = &tokens[at.i..];
    let on = rest.iter().position(|t| t.is_keyword("ON"))?;
    if !rest.get(on + 1)?.is_keyword("TABLES") {
        return None;
    }
    let mut rewritten: Vec<Token> = rest[..=on].to_vec();
    rewritten.push(Token::Word {
        text: "SCHEMA".into(),
        quoted: false,
    });
    rewritten.push(Token::Word {
        text: "schema".into(),
        quoted: true,
    });
    rewritten.extend_from_slice(&rest[on + 2..]);
    let plain = GrantContext {
        object_prefix: None,
        ..*context
    };
    let template = grant_or_revoke(sql, &rewritten, &plain)?;
    let changes = schemas
        .iter()
        .flat_map(|schema| {
            template.iter().map(|c| PermissionChange {
                object: schema.clone(),
                ..c.clone()
            })
        })
        .collect();
    Some(ParsedGrant {
        changes,
        future_only: true,
        default_privileges: true,
    })
}

/// A `GRANT` or `REVOKE` statement's changes, from its tokens.
fn grant_or_revoke(
    sql: &str,
    tokens: &[Token],
    context: &GrantContext<'_>,
) -> Option<Vec<PermissionChange>> {
    let mut at = Cursor { tokens, i: 0 };
    let action = if at.keyword("GRANT") {
        ChangeAction::Grant
    } else if at.keyword("REVOKE") {
        ChangeAction::Revoke
    } else {
        return None;
    };
    if action == ChangeAction::Revoke
        && (at.keywords(&["GRANT", "OPTION", "FOR"]) || at.keywords(&["ADMIN", "OPTION", "FOR"]))
    {
        // Taking away the right to grant leaves the access itself.
        return Some(Vec::new());
    }
    let on = tokens.iter().position(|t| t.is_keyword("ON"));
    let to_word = if action == ChangeAction::Grant {
        "TO"
    } else {
        "FROM"
    };
    let statement = Some(sql.trim().to_string());
    let change = |object: String, grantee: String, privilege: String| PermissionChange {
        ts: context.ts,
        action,
        object,
        grantee,
        privilege,
        actor: context.actor.to_string(),
        statement: statement.clone(),
    };
    let Some(on) = on else {
        // `GRANT role [, …] TO member [, …]`: role membership (Snowflake: `GRANT ROLE r TO
        // USER u`).
        at.keyword("ROLE");
        let roles = at.names_until(to_word, context)?;
        if !at.keyword(to_word) {
            return None;
        }
        let members = at.grantees(context)?;
        return Some(
            roles
                .iter()
                .flat_map(|role| {
                    members
                        .iter()
                        .map(|m| change(role.clone(), m.clone(), MEMBER.to_string()))
                })
                .collect(),
        );
    };
    // Privileges: up to ON, at the top level (column lists in parentheses left out).
    let privileges = privileges(&tokens[at.i..on])?;
    at.i = on + 1;
    let (mut objects, every_table) = at.objects(context)?;
    if !at.keyword(to_word) {
        return None;
    }
    if every_table && action == ChangeAction::Revoke {
        // `REVOKE … ON ALL TABLES IN SCHEMA s` takes the privilege off every table of `s`, those
        // granted one by one too: recorded on `s.*` as well (see the ledger's history).
        let contents: Vec<String> = objects.iter().map(|o| format!("{o}.*")).collect();
        objects.extend(contents);
    }
    let grantees = at.grantees(context)?;
    let privilege = match privileges.iter().find(|p| is_read_privilege(p)) {
        Some(read) => read.clone(),
        None => privileges.join(", "),
    };
    Some(
        objects
            .iter()
            .flat_map(|object| {
                grantees
                    .iter()
                    .map(|g| change(object.clone(), g.clone(), privilege.clone()))
            })
            .collect(),
    )
}

/// Whether a privilege as written lets one read.
fn is_read_privilege(privilege: &str) -> bool {
    crate::event::grants_read(privilege)
}

/// The privileges of a `GRANT … ON`: words joined (`ALL PRIVILEGES`), commas between,
/// parenthesised column lists left out. `None` when there are none.
fn privileges(tokens: &[Token]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut depth = 0usize;
    for token in tokens {
        match token {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            Token::Comma => {
                if !current.is_empty() {
                    out.push(current.join(" ").to_ascii_uppercase());
                    current.clear();
                }
            }
            Token::Word { text, .. } => current.push(text.clone()),
            _ => return None,
        }
    }
    if !current.is_empty() {
        out.push(current.join(" ").to_ascii_uppercase());
    }
    // `ALL PRIVILEGES` is `ALL`.
    for p in &mut out {
        if p == "ALL PRIVILEGES" {
            *p = "ALL".into();
        }
    }
    (!out.is_empty()).then_some(out)
}

struct Cursor<'t> {
    tokens: &'t [Token],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.i)
    }

    fn keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek().is_some_and(|t| t.is_keyword(keyword));
        if found {
            self.i += 1;
        }
        found
    }

    /// Whether the next token is the kind of object `keyword` (`TABLE t`, `WAREHOUSE w`):
    /// the keyword followed by a name, not the first part of a name (`warehouse.users.pii`,
    /// `table` alone).
    fn is_kind(&self, keyword: &str) -> bool {
        self.peek().is_some_and(|t| t.is_keyword(keyword))
            && matches!(self.tokens.get(self.i + 1), Some(Token::Word { .. }))
    }

    /// Steps over the kind of object `keyword` (see [`Cursor::is_kind`]), if it is next.
    fn kind(&mut self, keyword: &str) -> bool {
        let found = self.is_kind(keyword);
        if found {
            self.i += 1;
        }
        found
    }

    /// Steps over a comma, if one is next.
    fn comma(&mut self) -> bool {
        let found = self.peek() == Some(&Token::Comma);
        if found {
            self.i += 1;
        }
        found
    }

    fn keywords(&mut self, keywords: &[&str]) -> bool {
        let found = keywords
            .iter()
            .enumerate()
            .all(|(k, w)| self.tokens.get(self.i + k).is_some_and(|t| t.is_keyword(w)));
        if found {
            self.i += keywords.len();
        }
        found
    }

    /// One name: words joined by dots (`db.schema.table`), each folded as the context says.
    fn name(&mut self, context: &GrantContext<'_>) -> Option<Vec<String>> {
        let mut parts = Vec::new();
        loop {
            match self.peek()? {
                Token::Word { text, quoted } => {
                    parts.push(match (quoted, context.fold) {
                        (true, _) | (false, Fold::Keep) => text.clone(),
                        (false, Fold::Lower) => text.to_lowercase(),
                        (false, Fold::Upper) => text.to_uppercase(),
                    });
                    self.i += 1;
                }
                _ => return None,
            }
            if self.peek() == Some(&Token::Dot) {
                self.i += 1;
            } else {
                return Some(parts);
            }
        }
    }

    /// Names separated by commas, up to the keyword `until`.
    fn names_until(&mut self, until: &str, context: &GrantContext<'_>) -> Option<Vec<String>> {
        let mut out = Vec::new();
        loop {
            out.push(self.name(context)?.join("."));
            if self.peek() == Some(&Token::Comma) {
                self.i += 1;
                continue;
            }
            return self.peek()?.is_keyword(until).then_some(out);
        }
    }

    /// The objects after `ON`: tables (`TABLE t`, `VIEW v`, `t`), every table of schemas
    /// (`ALL TABLES IN SCHEMA s`, `FUTURE TABLES IN SCHEMA s`), or a schema, catalog or
    /// database as a container. `None` for other kinds of object.
    fn objects(&mut self, context: &GrantContext<'_>) -> Option<(Vec<String>, bool)> {
        let every_table = self.keywords(&["ALL", "TABLES", "IN", "SCHEMA"])
            || self.keywords(&["ALL", "VIEWS", "IN", "SCHEMA"])
            || self.keywords(&["ALL", "TABLES", "IN", "DATABASE"]);
        let container = if every_table
            || self.keywords(&["FUTURE", "TABLES", "IN", "SCHEMA"])
            || self.keywords(&["FUTURE", "VIEWS", "IN", "SCHEMA"])
            || self.keywords(&["FUTURE", "TABLES", "IN", "DATABASE"])
            || self.kind("SCHEMA")
            || self.kind("CATALOG")
            || self.kind("DATABASE")
        {
            Some(true)
        } else if self.kind("TABLE")
            || self.kind("VIEW")
            || self.keywords(&["MATERIALIZED", "VIEW"])
            || self.keywords(&["FOREIGN", "TABLE"])
        {
            Some(false)
        } else if [
            "SEQUENCE",
            "FUNCTION",
            "PROCEDURE",
            "ROUTINE",
            "LANGUAGE",
            "DOMAIN",
            "TYPE",
            "TABLESPACE",
            "SERVER",
            "WAREHOUSE",
            "INTEGRATION",
            "LARGE",
            "FOREIGN",
            "ALL",
            "FUTURE",
            "PARAMETER",
            "ACCOUNT",
            "SHARE",
            "STAGE",
            "VOLUME",
            "FILE",
            "MODEL",
        ]
        .iter()
        .any(|k| self.is_kind(k))
        {
            None
        } else {
            Some(false)
        }?;
        let mut out = Vec::new();
        loop {
            let mut parts = self.name(context)?;
            if !container
                && parts.len() == 1
                && let Some(schema) = context.default_schema
            {
                parts.insert(0, schema.to_string());
            }
            let name = parts.join(".");
            out.push(match context.object_prefix {
                Some(prefix) => format!("{prefix}.{name}"),
                None => name,
            });
            if self.peek() == Some(&Token::Comma) {
                self.i += 1;
                continue;
            }
            return Some((out, every_table));
        }
    }

    /// The grantees after `TO`/`FROM`: `PUBLIC`, names, `ROLE r`, `USER u`, `GROUP g`,
    /// `CURRENT_USER` (the actor); up to the end or an option (`WITH …`, `GRANTED BY`,
    /// `CASCADE`).
    fn grantees(&mut self, context: &GrantContext<'_>) -> Option<Vec<String>> {
        let mut out = Vec::new();
        loop {
            for kind in ["ROLE", "USER", "GROUP", "DATABASE", "APPLICATION"] {
                if self
                    .tokens
                    .get(self.i + 1)
                    .is_some_and(|t| matches!(t, Token::Word { .. }))
                {
                    self.keyword(kind);
                }
            }
            let name = match self.peek()? {
                t if t.is_keyword("PUBLIC") => {
                    self.i += 1;
                    "PUBLIC".to_string()
                }
                t if t.is_keyword("CURRENT_USER")
                    || t.is_keyword("SESSION_USER")
                    || t.is_keyword("CURRENT_ROLE") =>
                {
                    self.i += 1;
                    context.actor.to_string()
                }
                _ => self.name(context)?.join("."),
            };
            out.push(name);
            if self.peek() == Some(&Token::Comma) {
                self.i += 1;
                continue;
            }
            return Some(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> GrantContext<'static> {
        GrantContext {
            ts: 7,
            actor: "dba",
            default_schema: Some("public"),
            object_prefix: None,
            fold: Fold::Lower,
        }
    }

    /// "ACTION privilege object grantee" per change.
    fn changes(sql: &str) -> Option<Vec<String>> {
        let changes = parse_grant(sql, &postgres())?;
        Some(
            changes
                .iter()
                .map(|c| {
                    format!(
                        "{} {} {} {}",
                        c.action.as_str(),
                        c.privilege,
                        c.object,
                        c.grantee
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn postgres_grants_and_revokes() {
        assert_eq!(
            changes("GRANT SELECT ON hr.salaries TO PUBLIC").unwrap(),
            ["GRANT SELECT hr.salaries PUBLIC"]
        );
        assert_eq!(
            changes("grant select, insert on table HR.Salaries, \"Odd Name\" to Alice, \"Bob\"")
                .unwrap(),
            [
                "GRANT SELECT hr.salaries alice",
                "GRANT SELECT hr.salaries Bob",
                "GRANT SELECT public.Odd Name alice",
                "GRANT SELECT public.Odd Name Bob",
            ]
        );
        assert_eq!(
            changes(
                "GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA hr TO analysts WITH GRANT OPTION"
            )
            .unwrap(),
            ["GRANT ALL hr analysts"]
        );
        assert_eq!(
            changes("REVOKE SELECT ON hr.salaries FROM PUBLIC CASCADE").unwrap(),
            ["REVOKE SELECT hr.salaries PUBLIC"]
        );
        // Every table of the schema, those granted one by one too.
        assert_eq!(
            changes("REVOKE SELECT ON ALL TABLES IN SCHEMA hr FROM PUBLIC").unwrap(),
            ["REVOKE SELECT hr PUBLIC", "REVOKE SELECT hr.* PUBLIC"]
        );
        assert_eq!(
            changes("GRANT SELECT (name, team) ON orders TO GROUP support").unwrap(),
            ["GRANT SELECT public.orders support"]
        );
        assert_eq!(
            changes("GRANT INSERT ON hr.salaries TO bob").unwrap(),
            ["GRANT INSERT hr.salaries bob"]
        );
        assert_eq!(
            changes("GRANT SELECT ON hr.salaries TO CURRENT_USER").unwrap(),
            ["GRANT SELECT hr.salaries dba"]
        );
        assert_eq!(
            changes("REVOKE GRANT OPTION FOR SELECT ON t FROM bob").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn role_membership() {
        assert_eq!(
            changes("GRANT hr_readers, auditors TO alice, bob WITH ADMIN OPTION").unwrap(),
            [
                "GRANT MEMBER hr_readers alice",
                "GRANT MEMBER hr_readers bob",
                "GRANT MEMBER auditors alice",
                "GRANT MEMBER auditors bob",
            ]
        );
        assert_eq!(
            changes("REVOKE hr_readers FROM alice").unwrap(),
            ["REVOKE MEMBER hr_readers alice"]
        );
        // Snowflake.
        let snowflake = GrantContext {
            fold: Fold::Upper,
            default_schema: Some("PROD.HR"),
            ..postgres()
        };
        let c = parse_grant("GRANT ROLE ANALYST TO USER JDOE", &snowflake).unwrap();
        assert_eq!(
            (
                c[0].object.as_str(),
                c[0].grantee.as_str(),
                c[0].privilege.as_str()
            ),
            ("ANALYST", "JDOE", MEMBER)
        );
        let c = parse_grant(
            "grant select on future tables in schema PROD.HR to role ANALYST",
            &snowflake,
        )
        .unwrap();
        assert_eq!(
            (c[0].object.as_str(), c[0].grantee.as_str()),
            ("PROD.HR", "ANALYST")
        );
    }

    #[test]
    fn a_name_that_starts_like_a_kind_of_object_is_a_name() {
        assert_eq!(
            changes("GRANT SELECT ON warehouse.users.pii TO new.hire@corp.example").unwrap(),
            ["GRANT SELECT warehouse.users.pii new.hire@corp.example"]
        );
        assert_eq!(
            changes("GRANT SELECT ON TABLE schema.t, sequence TO svc-etl").unwrap(),
            [
                "GRANT SELECT schema.t svc-etl",
                "GRANT SELECT public.sequence svc-etl"
            ]
        );
        assert_eq!(changes("GRANT USAGE ON WAREHOUSE wh TO analyst"), None);
    }

    #[test]
    fn what_is_not_about_reading_tables_is_none() {
        for sql in [
            "GRANT USAGE ON SEQUENCE s TO bob",
            "GRANT EXECUTE ON FUNCTION f(int) TO bob",
            "GRANT SELECT ON hr.t",
            "CREATE ROLE alice LOGIN",
            "SELECT 1",
            "GRANT",
        ] {
            assert_eq!(changes(sql), None, "{sql}");
        }
    }

    #[test]
    fn query_strings_split_into_statements() {
        assert_eq!(
            split_statements(
                "CREATE ROLE alice LOGIN; GRANT SELECT ON hr.salaries TO alice;\n-- done; really\nSELECT ';' , $$a;b$$;"
            ),
            [
                "CREATE ROLE alice LOGIN",
                "GRANT SELECT ON hr.salaries TO alice",
                "-- done; really\nSELECT ';' , $$a;b$$"
            ]
        );
        assert!(starts_with_command(
            "/* why */ grant select on t to x",
            "GRANT"
        ));
        assert!(starts_with_command("create  role x", "CREATE ROLE"));
        assert!(!starts_with_command("create table x", "CREATE ROLE"));
    }
}
