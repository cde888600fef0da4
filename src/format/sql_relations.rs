//! The tables a SQL statement reads and writes, found by a real SQL parser (`sqlparser`'s
//! PostgreSQL dialect): for the pgaudit lines that name no relation (`pgaudit.log_relation`
//! off, pgaudit's default), whose statement text is then the only record of what was read.
//!
//! Every table named in a `FROM`, a `JOIN`, a subquery, a CTE's body, a `COPY ... TO` or the
//! source of an `INSERT ... SELECT` is read; the target of an `INSERT`, `UPDATE`, `DELETE` or
//! `MERGE` is written (and read too when the statement also names it elsewhere). Common table
//! expressions are not tables; neither are set-returning functions (`generate_series(1, 3)`).
//! Names are as PostgreSQL stores them: unquoted identifiers folded to lower case, quoted ones
//! kept; a three-part name loses its database (pgaudit logs `schema.table`); an unqualified
//! name is in `public` (PostgreSQL's default `search_path`), or `pg_catalog` for a `pg_` name.

use sqlparser::ast::{
    CopySource, Ident, ObjectName, Query, Statement, TableFactor, TableObject, Visit, Visitor,
};
use sqlparser::dialect::PostgreSqlDialect;
use std::collections::BTreeSet;
use std::ops::ControlFlow;

/// What one statement (or query string of several) touches, by `schema.table`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Relations {
    pub read: BTreeSet<String>,
    pub written: BTreeSet<String>,
}

/// The relations of `sql`, or why it could not be parsed. `only` keeps the statements of one
/// command (pgaudit's COMMAND field: `SELECT`, `INSERT`...), for a query string of several
/// statements whose every line carries the whole string.
pub fn relations(sql: &str, only: Option<&str>) -> Result<Relations, String> {
    let statements = sqlparser::parser::Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map_err(|e| crate::time::clip(&e.to_string(), 160))?;
    let mut found = Found::default();
    for statement in &statements {
        if let Some(command) = only
            && statements.len() > 1
            && !is_command(statement, command)
        {
            continue;
        }
        found.targets(statement);
        let _ = statement.visit(&mut found);
    }
    let mut relations = Relations::default();
    for (name, seen) in found.named {
        // A CTE's name used as a table is the CTE, not a table.
        if found.ctes.contains(&name) && !name.contains('.') {
            continue;
        }
        let name = qualified(&name);
        let targeted = found.targets.iter().filter(|t| **t == name).count();
        if seen > targeted {
            relations.read.insert(name.clone());
        }
        if targeted > 0 {
            relations.written.insert(name);
        }
    }
    for name in found.inserted {
        relations.written.insert(qualified(&name));
    }
    Ok(relations)
}

/// What the walk over a statement saw.
#[derive(Default)]
struct Found {
    /// Each table named in a table position, with how many times (as written, folded).
    named: std::collections::BTreeMap<String, usize>,
    /// The targets of `UPDATE`, `DELETE`, `MERGE` (also named in a table position).
    targets: Vec<String>,
    /// The targets of `INSERT` (never in a table position).
    inserted: Vec<String>,
    /// The names of common table expressions.
    ctes: BTreeSet<String>,
}

impl Found {
    fn targets(&mut self, statement: &Statement) {
        let mut target = |factor: &TableFactor| {
            if let TableFactor::Table {
                name, args: None, ..
            } = factor
            {
                let name = qualified(&folded(name));
                self.targets.push(name);
            }
        };
        match statement {
            Statement::Insert(insert) => {
                if let TableObject::TableName(name) = &insert.table {
                    self.inserted.push(folded(name));
                }
            }
            Statement::Update(update) => target(&update.table.relation),
            Statement::Delete(delete) => {
                let from = match &delete.from {
                    sqlparser::ast::FromTable::WithFromKeyword(tables)
                    | sqlparser::ast::FromTable::WithoutKeyword(tables) => tables,
                };
                for table in from {
                    target(&table.relation);
                }
            }
            Statement::Merge(merge) => target(&merge.table),
            Statement::Copy {
                source: CopySource::Table { table_name, .. },
                to,
                ..
            } => {
                let name = folded(table_name);
                if *to {
                    *self.named.entry(name).or_default() += 1;
                } else {
                    self.inserted.push(name);
                }
            }
            _ => {}
        }
    }
}

impl Visitor for Found {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            *self.named.entry(folded(name)).or_default() += 1;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(ident(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Whether `statement` is of pgaudit's COMMAND `command`.
fn is_command(statement: &Statement, command: &str) -> bool {
    let kind = match statement {
        Statement::Query(_) => "SELECT",
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge(_) => "MERGE",
        Statement::Copy { .. } => "COPY",
        _ => return false,
    };
    kind.eq_ignore_ascii_case(command)
}

/// An identifier as PostgreSQL stores it.
fn ident(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// A name's parts, folded, joined by `.`.
fn folded(name: &ObjectName) -> String {
    let parts: Vec<String> = (name.0.iter())
        .map(|part| match part.as_ident() {
            Some(i) => ident(i),
            None => part.to_string(),
        })
        .collect();
    parts.join(".")
}

/// `schema.table` from a folded name of one, two or three parts.
fn qualified(name: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.as_slice() {
        [table] if table.starts_with("pg_") => format!("pg_catalog.{table}"),
        [table] => format!("public.{table}"),
        [.., schema, table] => format!("{schema}.{table}"),
        [] => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn reads(sql: &str) -> BTreeSet<String> {
        relations(sql, None).expect(sql).read
    }

    #[test]
    fn selects_read_every_table_they_name_and_nothing_else() {
        assert_eq!(
            reads("SELECT count(*) FROM hr.salaries"),
            set(&["hr.salaries"])
        );
        assert_eq!(reads("select * from Orders o"), set(&["public.orders"]));
        assert_eq!(
            reads(r#"SELECT * FROM "HR"."Salaries" s JOIN shop.db.people p ON p.id = s.id"#),
            set(&["HR.Salaries", "db.people"])
        );
        assert_eq!(
            reads("SELECT * FROM a WHERE id IN (SELECT id FROM b) AND EXISTS (SELECT 1 FROM c)"),
            set(&["public.a", "public.b", "public.c"])
        );
        assert_eq!(
            reads("WITH recent AS (SELECT * FROM hr.salaries WHERE y > $1) SELECT * FROM recent"),
            set(&["hr.salaries"])
        );
        assert_eq!(reads("SELECT * FROM generate_series(1, 3)"), set(&[]));
        assert_eq!(reads("SELECT now()"), set(&[]));
        assert_eq!(
            reads("SELECT relname FROM pg_class"),
            set(&["pg_catalog.pg_class"])
        );
        assert_eq!(reads("COPY hr.salaries TO STDOUT"), set(&["hr.salaries"]));
    }

    #[test]
    fn writes_name_their_target_and_read_their_sources() {
        let r = relations(
            "INSERT INTO archive.salaries SELECT * FROM hr.salaries",
            None,
        )
        .unwrap();
        assert_eq!(r.read, set(&["hr.salaries"]));
        assert_eq!(r.written, set(&["archive.salaries"]));
        let r = relations("UPDATE hr.salaries SET pay = pay * 2", None).unwrap();
        assert_eq!((r.read, r.written), (set(&[]), set(&["hr.salaries"])));
        let r = relations(
            "UPDATE hr.salaries SET pay = 1 WHERE id IN (SELECT id FROM hr.salaries s JOIN hr.people p USING (id))",
            None,
        )
        .unwrap();
        assert_eq!(r.read, set(&["hr.people", "hr.salaries"]));
        assert_eq!(r.written, set(&["hr.salaries"]));
        let r = relations("DELETE FROM t WHERE x IN (SELECT x FROM u)", None).unwrap();
        assert_eq!(
            (r.read, r.written),
            (set(&["public.u"]), set(&["public.t"]))
        );
        let r = relations("COPY hr.salaries FROM STDIN", None).unwrap();
        assert_eq!((r.read, r.written), (set(&[]), set(&["hr.salaries"])));
    }

    #[test]
    fn a_query_string_of_several_statements_gives_those_of_the_command_asked() {
        let sql = "SELECT * FROM a; INSERT INTO b VALUES (1); SELECT * FROM c";
        assert_eq!(
            relations(sql, Some("SELECT")).unwrap().read,
            set(&["public.a", "public.c"])
        );
        let insert = relations(sql, Some("INSERT")).unwrap();
        assert_eq!(
            (insert.read, insert.written),
            (set(&[]), set(&["public.b"]))
        );
    }

    #[test]
    fn text_that_is_not_sql_is_an_error_that_says_where() {
        let error = relations("SELEC * FROM x", None).unwrap_err();
        assert!(error.contains("SELEC"), "{error}");
        assert!(relations("<not logged>", None).is_err());
    }
}
