//! Vendor sensitivity tags (`--tags FILE`): the classification a warehouse already holds,
//! turned into `[[classify]]` rules through the `[tags]` mapping of the configuration (which
//! tag, or tag value, means which level). Read here:
//!
//! - Snowflake `ACCOUNT_USAGE.TAG_REFERENCES` exported as CSV (`TAG_NAME`, `TAG_VALUE`,
//!   `OBJECT_DATABASE`, `OBJECT_SCHEMA`, `OBJECT_NAME`, `DOMAIN`, `COLUMN_NAME`, … in any
//!   case) or as JSON lines with those keys: a tag on a `TABLE` (or view) rates the table, on a
//!   `COLUMN` that column of its table, on a `SCHEMA` or `DATABASE` every table in it; rows of
//!   deleted objects are left out;
//! - BigQuery table resources (`bq show --format=prettyjson PROJECT:DATASET.TABLE`, one object,
//!   an array of them, or one per line): each field's `policyTags.names` rate that column
//!   (nested fields as `record.field`), the tag named by its resource name.
//!
//! Tables are named as the same system's logs name them (Snowflake `DB.SCHEMA.TABLE`, BigQuery
//! `project.dataset.table`), so a tag and a read meet.

use crate::detect::policy::{ClassifyRule, Sensitivity};
use crate::format::csv::headed;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `[tags]`: tag (`NAME`, or `NAME=VALUE` for one of its values) → the level it means, or
/// `"value"`: the tag's value names the level (`restricted`, …). Tag names and values are
/// matched in any case; a Snowflake tag by its name without database and schema, a BigQuery
/// policy tag by its resource name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct TagLevels(BTreeMap<String, TagLevel>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum TagLevel {
    Level(Sensitivity),
    /// `"value"`.
    FromValue(FromValue),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FromValue {
    Value,
}

impl TagLevels {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The level a tag with `value` means, if the mapping names one.
    pub fn level(&self, name: &str, value: &str) -> Option<Sensitivity> {
        let find = |key: &str| {
            (self.0.iter())
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, l)| *l)
        };
        let exact = (!value.is_empty())
            .then(|| find(&format!("{name}={value}")))
            .flatten();
        match exact.or_else(|| find(name))? {
            TagLevel::Level(level) => Some(level),
            TagLevel::FromValue(_) => sensitivity_named(value),
        }
    }
}

fn sensitivity_named(name: &str) -> Option<Sensitivity> {
    [
        Sensitivity::Public,
        Sensitivity::Internal,
        Sensitivity::Confidential,
        Sensitivity::Restricted,
    ]
    .into_iter()
    .find(|s| s.name().eq_ignore_ascii_case(name.trim()))
}

/// A tag file that cannot be read: which file, which line, what.
#[derive(Debug, thiserror::Error)]
pub enum TagsError {
    #[error("--tags {file}: {error}")]
    Read {
        file: String,
        #[source]
        error: std::io::Error,
    },
    #[error("--tags {file}:{line}: {message}")]
    Invalid {
        file: String,
        line: u64,
        message: String,
    },
}

/// One tag on one thing, as an export gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tagged {
    name: String,
    value: String,
    /// A table (`DB.SCHEMA.TABLE`), or a container's glob (`DB.SCHEMA.*`).
    tables: String,
    column: Option<String>,
}

/// The `[[classify]]` rules the tags of `path` mean under `levels`. Tags the mapping does not
/// name are left out; a file none of whose tags it names is refused (naming the tags), since
/// it would rate nothing.
pub fn read(path: &str, levels: &TagLevels) -> Result<Vec<ClassifyRule>, TagsError> {
    let text = std::fs::read_to_string(path).map_err(|error| TagsError::Read {
        file: path.to_string(),
        error,
    })?;
    let invalid = |line: u64, message: String| TagsError::Invalid {
        file: path.to_string(),
        line,
        message,
    };
    let text = text.trim_start_matches('\u{feff}');
    let tagged = match text.trim_start().chars().next() {
        Some('{' | '[') => json(text).map_err(|(line, m)| invalid(line, m))?,
        Some(_) => csv(text).map_err(|(line, m)| invalid(line, m))?,
        None => return Err(invalid(1, "empty".into())),
    };
    let mut rules = Vec::new();
    let mut unmapped: Vec<&str> = Vec::new();
    for tag in &tagged {
        let Some(level) = levels.level(&tag.name, &tag.value) else {
            if !unmapped.contains(&tag.name.as_str()) {
                unmapped.push(&tag.name);
            }
            continue;
        };
        rules.push(rule(tag, level).map_err(|m| invalid(1, m))?);
    }
    if rules.is_empty() {
        let named = if unmapped.is_empty() {
            "it tags no table or column".to_string()
        } else {
            format!(
                "none of its tags ({}) is given a level in [tags] (docs/configuration.md)",
                unmapped.join(", ")
            )
        };
        return Err(invalid(1, named));
    }
    Ok(rules)
}

fn rule(tag: &Tagged, level: Sensitivity) -> Result<ClassifyRule, String> {
    let tables = crate::detect::policy::compile_glob_set(std::slice::from_ref(&tag.tables))
        .map_err(|e| e.to_string())?;
    let columns = match &tag.column {
        Some(column) => Some(crate::detect::policy::compile_column_globs(&[
            globset::escape(column),
        ])?),
        None => None,
    };
    Ok(ClassifyRule {
        tables,
        columns,
        level,
    })
}

/// Snowflake TAG_REFERENCES as CSV, its header naming the columns.
fn csv(text: &str) -> Result<Vec<Tagged>, (u64, String)> {
    let table = headed(text)?;
    let columns = &table.columns;
    for needed in ["tag_name", "object_name", "domain"] {
        if !columns.iter().any(|c| c == needed) {
            return Err((
                1,
                format!(
                    "no {needed} column: the columns {columns:?} are not Snowflake's \
                     TAG_REFERENCES (docs/inputs.md \"Sensitivity tags\")"
                ),
            ));
        }
    }
    let mut out = Vec::new();
    for &(number, line) in &table.records {
        let fields = table.fields(line).map_err(|e| (number, e))?;
        let field = |name: &str| table.field(&fields, name).to_string();
        out.extend(snowflake_tag(&field).map_err(|m| (number, m))?);
    }
    Ok(out)
}

/// One TAG_REFERENCES row, its fields by lowercase column name: `None` for a row of a deleted
/// object or a domain that holds no table data (a warehouse, a role).
fn snowflake_tag(field: &dyn Fn(&str) -> String) -> Result<Option<Tagged>, String> {
    let deleted = field("object_deleted");
    if !deleted.is_empty() && !deleted.eq_ignore_ascii_case("null") {
        return Ok(None);
    }
    let name = field("tag_name");
    if name.is_empty() {
        return Err("no TAG_NAME".into());
    }
    let (database, schema, object) = (
        field("object_database"),
        field("object_schema"),
        field("object_name"),
    );
    // The table's name as a glob matching it alone; a container's, with every table in it.
    let table = |parts: &[&str]| globset::escape(&parts.join("."));
    let container = |parts: &[&str]| format!("{}.*", table(parts));
    let (tables, column) = match field("domain").to_ascii_uppercase().as_str() {
        "TABLE" | "VIEW" | "MATERIALIZED VIEW" | "EXTERNAL TABLE" | "DYNAMIC TABLE" => {
            (table(&[&database, &schema, &object]), None)
        }
        "COLUMN" => {
            let column = field("column_name");
            if column.is_empty() {
                return Err("a COLUMN tag without a COLUMN_NAME".into());
            }
            (table(&[&database, &schema, &object]), Some(column))
        }
        // A schema's row names it in OBJECT_NAME (OBJECT_SCHEMA empty); a database's too.
        "SCHEMA" => (container(&[&database, &object]), None),
        "DATABASE" => (container(&[&object]), None),
        _ => return Ok(None),
    };
    Ok(Some(Tagged {
        name,
        value: field("tag_value"),
        tables,
        column,
    }))
}

/// JSON: BigQuery table resources (one, an array, or one per line), or Snowflake
/// TAG_REFERENCES rows as JSON lines.
fn json(text: &str) -> Result<Vec<Tagged>, (u64, String)> {
    let documents: Vec<(u64, Value)> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items.into_iter().map(|v| (1, v)).collect(),
        Ok(one) => vec![(1, one)],
        // Not one document: one per line.
        Err(_) => {
            let mut out = Vec::new();
            for (at, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let number = at as u64 + 1;
                let value =
                    serde_json::from_str(line).map_err(|e| (number, format!("not JSON: {e}")))?;
                out.push((number, value));
            }
            out
        }
    };
    let mut out = Vec::new();
    for (line, document) in documents {
        if document.get("tableReference").is_some() {
            bigquery_table(&document, &mut out).map_err(|m| (line, m))?;
        } else if let Some(row) = document.as_object() {
            let field = |name: &str| -> String {
                (row.iter())
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| v.as_str())
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            out.extend(snowflake_tag(&field).map_err(|m| (line, m))?);
        } else {
            return Err((
                line,
                "neither a BigQuery table (`tableReference`) nor a TAG_REFERENCES row".into(),
            ));
        }
    }
    Ok(out)
}

/// The policy tags of a BigQuery table resource's fields.
fn bigquery_table(table: &Value, out: &mut Vec<Tagged>) -> Result<(), String> {
    let reference = &table["tableReference"];
    let part = |key: &str| {
        reference[key]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("tableReference without {key}"))
    };
    let name = format!(
        "{}.{}.{}",
        part("projectId")?,
        part("datasetId")?,
        part("tableId")?
    );
    let fields = table["schema"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    policy_tags(&globset::escape(&name), "", &fields, out);
    Ok(())
}

fn policy_tags(table: &str, prefix: &str, fields: &[Value], out: &mut Vec<Tagged>) {
    for field in fields {
        let Some(name) = field["name"].as_str() else {
            continue;
        };
        let column = format!("{prefix}{name}");
        for tag in (field["policyTags"]["names"]
            .as_array()
            .into_iter()
            .flatten())
        .filter_map(Value::as_str)
        {
            out.push(Tagged {
                name: tag.to_string(),
                value: String::new(),
                tables: table.to_string(),
                column: Some(column.clone()),
            });
        }
        if let Some(nested) = field["fields"].as_array() {
            policy_tags(table, &format!("{column}."), nested, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(toml_text: &str) -> TagLevels {
        toml::from_str(toml_text).unwrap()
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    }

    /// What `rules` rate each (table, columns read) as.
    fn rated(rules: Vec<ClassifyRule>, reads: &[(&str, &[&str])]) -> Vec<Option<Sensitivity>> {
        let policies = crate::detect::policy::Policies {
            classify: rules,
            ..Default::default()
        };
        (reads.iter())
            .map(|(table, columns)| policies.sensitivity_of_read(table, columns.iter().copied()))
            .collect()
    }

    #[test]
    fn snowflake_tag_references_rate_tables_columns_and_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let csv = write(
            &dir,
            "tags.csv",
            "TAG_DATABASE,TAG_SCHEMA,TAG_ID,TAG_NAME,TAG_VALUE,OBJECT_DATABASE,OBJECT_SCHEMA,OBJECT_ID,OBJECT_NAME,OBJECT_DELETED,DOMAIN,COLUMN_ID,COLUMN_NAME,APPLY_METHOD\n\
             SNOWFLAKE,CORE,1,PRIVACY_CATEGORY,IDENTIFIER,PROD,HR,7,PEOPLE,,COLUMN,3,SSN,CLASSIFIED\n\
             SNOWFLAKE,CORE,1,PRIVACY_CATEGORY,QUASI_IDENTIFIER,PROD,HR,7,PEOPLE,,COLUMN,4,ZIP,CLASSIFIED\n\
             GOV,TAGS,2,SENSITIVITY,internal,PROD,,9,HR,,SCHEMA,,,MANUAL\n\
             GOV,TAGS,2,SENSITIVITY,restricted,PROD,FIN,8,\"LEDGER\",2026-01-01 00:00:00.000 +0000,TABLE,,,MANUAL\n\
             GOV,TAGS,3,COST_CENTER,42,PROD,HR,7,PEOPLE,,TABLE,,,MANUAL\n",
        );
        let mapping = levels(
            "\"PRIVACY_CATEGORY=IDENTIFIER\" = \"restricted\"\n\
             \"privacy_category=quasi_identifier\" = \"confidential\"\n\
             \"SENSITIVITY\" = \"value\"\n",
        );
        let rules = read(&csv, &mapping).unwrap();
        assert_eq!(
            rated(
                rules,
                &[
                    ("PROD.HR.PEOPLE", &["NAME", "SSN"]),
                    ("PROD.HR.PEOPLE", &["zip"]),
                    ("PROD.HR.PEOPLE", &["NAME"]),
                    ("PROD.HR.PEOPLE", &[]),
                    ("PROD.HR.OTHER", &[]),
                    ("PROD.FIN.LEDGER", &[]),
                ]
            ),
            [
                Some(Sensitivity::Restricted),
                Some(Sensitivity::Confidential),
                Some(Sensitivity::Internal),
                Some(Sensitivity::Restricted),
                Some(Sensitivity::Internal),
                None, // its object was deleted
            ]
        );
        // The same rows as JSON lines.
        let json = write(
            &dir,
            "tags.jsonl",
            "{\"TAG_NAME\":\"PRIVACY_CATEGORY\",\"TAG_VALUE\":\"IDENTIFIER\",\"OBJECT_DATABASE\":\"PROD\",\"OBJECT_SCHEMA\":\"HR\",\"OBJECT_NAME\":\"PEOPLE\",\"DOMAIN\":\"COLUMN\",\"COLUMN_NAME\":\"SSN\"}\n",
        );
        let rules = read(&json, &mapping).unwrap();
        assert_eq!(
            rated(
                rules,
                &[("PROD.HR.PEOPLE", &["SSN"]), ("PROD.HR.PEOPLE", &["NAME"])]
            ),
            [Some(Sensitivity::Restricted), None]
        );
    }

    #[test]
    fn bigquery_policy_tags_rate_their_columns_nested_ones_too() {
        let dir = tempfile::tempdir().unwrap();
        let pii = "projects/acme/locations/us/taxonomies/11/policyTags/22";
        let table = write(
            &dir,
            "people.json",
            &format!(
                r#"{{"kind":"bigquery#table","tableReference":{{"projectId":"acme","datasetId":"hr","tableId":"people"}},
                "schema":{{"fields":[{{"name":"name","type":"STRING"}},
                {{"name":"ssn","type":"STRING","policyTags":{{"names":["{pii}"]}}}},
                {{"name":"address","type":"RECORD","fields":[{{"name":"zip","type":"STRING","policyTags":{{"names":["{pii}"]}}}}]}}]}}}}"#
            ),
        );
        let rules = read(&table, &levels(&format!("\"{pii}\" = \"restricted\"\n"))).unwrap();
        assert_eq!(
            rated(
                rules,
                &[
                    ("acme.hr.people", &["name", "ssn"]),
                    ("acme.hr.people", &["address.zip"]),
                    ("acme.hr.people", &["name"]),
                ]
            ),
            [
                Some(Sensitivity::Restricted),
                Some(Sensitivity::Restricted),
                None
            ]
        );
    }

    #[test]
    fn what_cannot_be_used_says_which_file_line_and_why() {
        let dir = tempfile::tempdir().unwrap();
        let unmapped = write(
            &dir,
            "t.csv",
            "TAG_NAME,TAG_VALUE,OBJECT_DATABASE,OBJECT_SCHEMA,OBJECT_NAME,DOMAIN,COLUMN_NAME\nPII,yes,A,B,C,TABLE,\n",
        );
        let error = read(&unmapped, &TagLevels::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("t.csv:1") && error.contains("(PII)"),
            "{error}"
        );
        let odd = write(&dir, "o.csv", "GRANTEE,ROLE\nann,r\n");
        let error = read(&odd, &TagLevels::default()).unwrap_err().to_string();
        assert!(error.contains("TAG_REFERENCES"), "{error}");
        let column = write(
            &dir,
            "c.csv",
            "TAG_NAME,TAG_VALUE,OBJECT_DATABASE,OBJECT_SCHEMA,OBJECT_NAME,DOMAIN,COLUMN_NAME\nPII,yes,A,B,C,TABLE,\nPII,yes,A,B,C,COLUMN,\n",
        );
        let error = read(&column, &levels("PII = \"restricted\""))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("c.csv:3") && error.contains("COLUMN_NAME"),
            "{error}"
        );
    }
}
