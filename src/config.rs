//! The validated configuration: the TOML file (`--config`) merged with command-line flags
//! (flags win), checked once so that the rest of the code never sees an invalid value. Every
//! error names the key (and for the file, the line and column) at fault.

pub mod kafka;

use crate::detect::policy::{
    Policies, TablePolicy, TableRule, Thresholds, compile_glob, compile_glob_set, literal_prefix,
};
use crate::detect::{DetectorSettings, PermissionSettings};
use crate::event::{DEFAULT_READ_ACTIONS, ReadActions};
use crate::format::decode::DEFAULT_MAX_LINE_BYTES;
use crate::format::jsonl::{FieldPaths, JsonLinesParser};
use crate::format::{Decoder, Format};
use crate::time::{EpochUnit, Span, Ts};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A configuration problem: exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// Flags that do not go together, or one missing.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Grants(#[from] crate::grants::GrantsError),
    #[error(transparent)]
    Tags(#[from] crate::tags::TagsError),
}

impl From<crate::sink::SinkConfigError> for ConfigError {
    fn from(e: crate::sink::SinkConfigError) -> ConfigError {
        ConfigError::Invalid {
            key: e.key,
            message: e.message,
        }
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// The config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    pub detect: DetectSection,
    pub input: InputSection,
    pub tables: Vec<TableSection>,
    pub classify: Vec<ClassifySection>,
    /// `[tags]`: what the `--tags` files' tags mean.
    pub tags: crate::tags::TagLevels,
    pub sinks: Vec<crate::sink::SinkSection>,
    /// `[check]`: how `exposure check` and the endpoint judge a proposed change.
    pub check: crate::check::CheckPolicy,
}

/// One `[[classify]]` rule: how sensitive the data of the tables its globs match is (in the
/// columns its column globs match, when it has some).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifySection {
    pub tables: Vec<String>,
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    pub level: crate::detect::policy::Sensitivity,
}

/// `[detect]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSection {
    pub learn: Option<Span>,
    pub forget_after: Option<Span>,
    pub span: Option<Span>,
    pub close_after: Option<Span>,
    /// The old name of `close_after`, read until the next release.
    pub quiet: Option<Span>,
    pub min_principals: Option<u32>,
    pub lateness: Option<Span>,
    pub max_ahead: Option<Span>,
    pub read_actions: Option<Vec<String>>,
    pub allow: Vec<String>,
    pub updates: bool,
    /// How long before a window's start a permission change may be and still be its cause.
    pub cause_horizon: Option<Span>,
    /// Grantees (large groups) whose read grants raise a `grant` alert at once, besides
    /// everyone (`PUBLIC`, `allUsers`, `allAuthenticatedUsers`, `*`).
    pub broad_grantees: Vec<String>,
}

/// `[input]`
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InputSection {
    pub format: Option<Format>,
    pub max_line_bytes: Option<usize>,
    /// How requests nobody signed are named: `per-address` (`anonymous@ADDRESS`) or `shared`.
    pub anonymous: crate::event::Anonymous,
    /// The shipper's wrapping around records (`auto`: recognised).
    pub envelope: crate::format::envelope::EnvelopeChoice,
    /// The top-level field that holds each record (Fluent Bit's, Vector's, Docker's `log`).
    pub record_field: Option<String>,
    pub ts_unit: EpochUnit,
    pub fields: FieldPaths,
    pub cloudtrail: crate::format::cloudtrail::Options,
    pub pgaudit: crate::format::pgaudit::Options,
    pub snowflake: crate::format::snowflake::Options,
    pub databricks: crate::format::databricks::Options,
    pub gcs_usage: crate::format::gcs_usage::UsageOptions,
    /// `[input.kafka]`: read Kafka topics instead of files (`watch`).
    pub kafka: Option<kafka::KafkaSection>,
}

/// One `[[tables]]` rule.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableSection {
    #[serde(rename = "match")]
    pub pattern: String,
    pub ignore: bool,
    pub learn: Option<Span>,
    pub forget_after: Option<Span>,
    pub span: Option<Span>,
    pub close_after: Option<Span>,
    /// The old name of `close_after`, read until the next release.
    pub quiet: Option<Span>,
    pub min_principals: Option<u32>,
    pub allow: Vec<String>,
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let bytes = crate::state::read_regular(path, MAX_CONFIG_BYTES).map_err(read)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            read(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
            ))
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: parse_error_message(&text, &e),
        })
    }
}

/// The largest configuration file read: far above any real one, and a bound on what a
/// reload (SIGHUP) reads when the path names something else by mistake.
pub const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A line of the file as an error may show it: a table header, or a key with its value
/// hidden (`key = …`); `None` for any other line. A path pointing at a secret by mistake
/// must not print it.
fn shown_line(line: &str) -> Option<(String, usize)> {
    let trimmed = line.trim();
    let indent = line.len() - line.trim_start().len();
    let is_key = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.\"' ".contains(c))
    };
    if trimmed.starts_with('[')
        && trimmed.ends_with(']')
        && is_key(trimmed.trim_matches(['[', ']']))
    {
        return Some((line.trim_end().to_string(), trimmed.len()));
    }
    let (key, _) = line.split_once('=')?;
    let key = key.trim();
    is_key(key).then(|| (format!("{}{key} = …", &line[..indent]), key.len()))
}

/// `message` without the text of a string value it quotes (`invalid type: string "…"`): the
/// value may be a secret the path named by mistake.
fn hide_string_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find("string \"") {
        out.push_str(&rest[..at + "string".len()]);
        let after = &rest[at + "string \"".len()..];
        // The closing quote: the last one before ", expected" (values may hold quotes).
        let end = after
            .find("\", expected")
            .or_else(|| after.rfind('"'))
            .map_or(after.len(), |e| e + 1);
        rest = &after[end.min(after.len())..];
    }
    out.push_str(rest);
    out
}

/// The parse error as the user should read it. toml points an unknown key of a `[[sinks]]`
/// entry (an internally tagged enum, which loses positions) at the table header; this points
/// it at the key's own line, as for every other table.
fn parse_error_message(text: &str, error: &toml::de::Error) -> String {
    let message = &hide_string_values(error.message().trim_end());
    let at_key = error.span().and_then(|span| {
        let header = text.get(span.clone())?;
        if !header.starts_with('[') {
            return None;
        }
        let key = message.strip_prefix("unknown field `")?.split('`').next()?;
        // The table's lines: from the header on, through later entries of the same array of
        // tables (toml may point at the first), skipping their sub-tables, up to another table.
        let header = header.lines().next()?.trim();
        let table = header.trim_matches(['[', ']']).trim();
        let start = text[..span.start].matches('\n').count();
        let mut in_table = true;
        for (n, line) in text.lines().enumerate().skip(start + 1) {
            let trimmed = line.trim_start();
            if trimmed.starts_with('[') {
                let name = trimmed.split(']').next()?.trim_matches('[').trim();
                if in_table && name == format!("{table}.{key}") {
                    return Some((n, line));
                }
                in_table = trimmed.starts_with(header);
                if !in_table && !name.starts_with(&format!("{table}.")) {
                    return None;
                }
                continue;
            }
            let name = line.split('=').next()?.trim().trim_matches(['"', '\'']);
            if in_table && name == key && line.contains('=') {
                return Some((n, line));
            }
        }
        None
    });
    let (n, column) = match at_key {
        Some((n, line)) => (n, line.len() - line.trim_start().len()),
        None => {
            let start = error.span().map_or(0, |s| s.start).min(text.len());
            let before = &text[..start];
            let n = before.matches('\n').count();
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            (n, text[line_start..start].chars().count())
        }
    };
    let line = text.lines().nth(n).unwrap_or("");
    let place = format!("TOML parse error at line {}, column {}", n + 1, column + 1);
    let Some((shown, key_len)) = shown_line(line) else {
        return format!("{place}\n{message}");
    };
    let indent = line.len() - line.trim_start().len();
    // The caret under the key, or under the hidden value when the error is there.
    let (caret_at, carets) = if column < indent + key_len {
        (indent, key_len.max(1))
    } else {
        (shown.chars().count() - 1, 1)
    };
    let gutter = " ".repeat((n + 1).to_string().len());
    format!(
        "{place}\n{gutter} |\n{} | {shown}\n{gutter} | {}{}\n{message}",
        n + 1,
        " ".repeat(caret_at),
        "^".repeat(carets),
    )
}

/// Detector settings given on the command line; each overrides the file's `[detect]`.
#[derive(Debug, Default, Clone)]
pub struct DetectOverrides {
    pub learn: Option<Span>,
    pub forget_after: Option<Span>,
    pub span: Option<Span>,
    pub close_after: Option<Span>,
    pub min_principals: Option<u32>,
    pub lateness: Option<Span>,
    pub allow: Vec<String>,
    pub updates: bool,
    /// `replay --from`: windows over before it are not reported.
    pub report_from: Option<Ts>,
    /// `--table`: only these tables (globs) are watched.
    pub only_tables: Vec<String>,
    /// `--grants`: grant snapshots that seed the permission ledger, and `--grants-at`, when
    /// they were taken (default: before the logs begin).
    pub grants: Vec<String>,
    pub grants_at: Option<Ts>,
    /// `--tags`: vendor sensitivity tag exports, rated by `[tags]`.
    pub tags: Vec<String>,
}

/// How to read input.
#[derive(Debug, Clone)]
pub struct InputSettings {
    pub format: Format,
    pub max_line_bytes: usize,
    pub jsonl: JsonLinesParser,
    /// The field mapping (JSON paths; Parquet column names).
    pub fields: FieldPaths,
    /// How integer epoch times are read.
    pub ts_unit: EpochUnit,
    /// Settings of the vendor formats.
    pub vendor: crate::format::vendor::VendorOptions,
}

/// Everything validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub detector: DetectorSettings,
    pub input: InputSettings,
    /// `[[sinks]]`, validated (secrets are read when the sinks are built).
    pub sinks: Vec<crate::sink::SinkSection>,
    /// `[input.kafka]`, validated.
    pub kafka: Option<kafka::KafkaSettings>,
    /// `[check]`.
    pub check: crate::check::CheckPolicy,
}

impl Config {
    /// Merges `file` (if any) with command-line `flags` and validates the result.
    pub fn build(
        file: ConfigFile,
        flags: &DetectOverrides,
        format: Option<Format>,
    ) -> Result<Config, ConfigError> {
        let d = &file.detect;
        let base = Thresholds::default();
        let defaults = Thresholds {
            learn: flags.learn.or(d.learn).unwrap_or(base.learn),
            forget_after: flags
                .forget_after
                .or(d.forget_after)
                .unwrap_or(base.forget_after),
            span: flags.span.or(d.span).unwrap_or(base.span),
            quiet: flags
                .close_after
                .or(renamed("detect", d.close_after, d.quiet)?)
                .unwrap_or(base.quiet),
            min_principals: flags
                .min_principals
                .or(d.min_principals)
                .unwrap_or(base.min_principals),
        };
        check_thresholds("detect", &defaults)?;
        let lateness = flags
            .lateness
            .or(d.lateness)
            .unwrap_or(DetectorSettings::default().lateness);
        let mut allow_patterns = d.allow.clone();
        allow_patterns.extend(flags.allow.iter().cloned());
        let allow = compile_glob_set(&allow_patterns)
            .map_err(|e| invalid("detect.allow", e.to_string()))?;

        let mut rules = Vec::with_capacity(file.tables.len());
        for (i, table) in file.tables.iter().enumerate() {
            let key = |k: &str| format!("tables[{i}].{k}");
            if table.pattern.is_empty() {
                return Err(invalid(key("match"), "is required (a glob on table names)"));
            }
            let matcher = compile_glob(&table.pattern)
                .map_err(|e| invalid(key("match"), e.to_string()))?
                .compile_matcher();
            let thresholds = Thresholds {
                learn: table.learn.unwrap_or(defaults.learn),
                forget_after: table.forget_after.unwrap_or(defaults.forget_after),
                span: table.span.unwrap_or(defaults.span),
                quiet: renamed(&format!("tables[{i}]"), table.close_after, table.quiet)?
                    .unwrap_or(defaults.quiet),
                min_principals: table.min_principals.unwrap_or(defaults.min_principals),
            };
            check_thresholds(&format!("tables[{i}]"), &thresholds)?;
            let mut patterns = allow_patterns.clone();
            patterns.extend(table.allow.iter().cloned());
            let allow =
                compile_glob_set(&patterns).map_err(|e| invalid(key("allow"), e.to_string()))?;
            rules.push(TableRule {
                matcher,
                policy: Arc::new(TablePolicy {
                    rule: Some(table.pattern.clone()),
                    ignore: table.ignore,
                    thresholds,
                    allow,
                    approved: Vec::new(),
                }),
            });
        }

        let read_actions = match &d.read_actions {
            Some(actions) if actions.is_empty() => {
                return Err(invalid(
                    "detect.read_actions",
                    "must name at least one action",
                ));
            }
            Some(actions) => actions.clone(),
            None => DEFAULT_READ_ACTIONS.iter().map(|a| a.to_string()).collect(),
        };

        let max_line_bytes = file.input.max_line_bytes.unwrap_or(DEFAULT_MAX_LINE_BYTES);
        if !(64..=(256 << 20)).contains(&max_line_bytes) {
            return Err(invalid(
                "input.max_line_bytes",
                "must be between 64 and 268435456",
            ));
        }
        let jsonl = JsonLinesParser::new(&file.input.fields, file.input.ts_unit)
            .map_err(|e| invalid("input.fields", e))?;
        let only = if flags.only_tables.is_empty() {
            None
        } else {
            Some(
                compile_glob_set(&flags.only_tables)
                    .map_err(|e| invalid("--table", e.to_string()))?,
            )
        };

        let input_format = format
            .or(file.input.kafka.as_ref().and_then(|k| k.format))
            .or(file.input.format)
            .unwrap_or_default();
        unused_field_mapping(input_format, &file.input.fields)?;
        Ok(Config {
            detector: DetectorSettings {
                policies: Policies {
                    default: Arc::new(TablePolicy {
                        rule: None,
                        ignore: false,
                        thresholds: defaults,
                        allow,
                        approved: Vec::new(),
                    }),
                    rules,
                    only,
                    only_prefixes: flags
                        .only_tables
                        .iter()
                        .map(|p| literal_prefix(p).to_string())
                        .collect(),
                    approvals: Vec::new(),
                    classify: {
                        let mut rules = classify_rules(&file.classify)?;
                        for path in &flags.tags {
                            rules.extend(crate::tags::read(path, &file.tags)?);
                        }
                        rules
                    },
                },
                read_actions: ReadActions::new(read_actions),
                lateness,
                max_ahead: d.max_ahead.unwrap_or(DetectorSettings::default().max_ahead),
                emit_updates: flags.updates || d.updates,
                report_from: flags.report_from,
                permissions: PermissionSettings {
                    cause_horizon: d
                        .cause_horizon
                        .unwrap_or(crate::detect::permission::DEFAULT_CAUSE_HORIZON),
                    broad_grantees: d.broad_grantees.clone(),
                    seed: seed(flags)?.into(),
                },
                shard: None,
                record_baselines: false,
                record_grant_states: false,
            },
            input: InputSettings {
                format: input_format,
                max_line_bytes,
                jsonl,
                fields: file.input.fields.clone(),
                ts_unit: file.input.ts_unit,
                vendor: {
                    let i = &file.input;
                    if let Some(zone) = &i.pgaudit.log_timezone {
                        crate::time::zone::LocalZone::named(zone)
                            .map_err(|e| invalid("input.pgaudit.log_timezone", e))?;
                    }
                    crate::format::pgaudit::Parser::new(&i.pgaudit)
                        .map_err(|e| invalid("input.pgaudit.log_line_prefix", e))?;
                    crate::format::vendor::VendorOptions {
                        cloudtrail: crate::format::cloudtrail::Options {
                            anonymous: i.anonymous,
                            ..i.cloudtrail.clone()
                        },
                        pgaudit: i.pgaudit.clone(),
                        snowflake: i.snowflake.clone(),
                        databricks: i.databricks.clone(),
                        gcs_usage: i.gcs_usage.clone(),
                        envelope: i.envelope,
                        record_field: match &i.record_field {
                            Some(field) if field.is_empty() || field.contains('.') => {
                                return Err(invalid(
                                    "input.record_field",
                                    "must name one top-level field (as `log`)",
                                ));
                            }
                            field => field.clone(),
                        },
                    }
                },
            },
            sinks: {
                crate::sink::validate(&file.sinks)?;
                file.sinks.clone()
            },
            kafka: match &file.input.kafka {
                Some(section) => Some(
                    kafka::KafkaSettings::from_section(section, lateness)
                        .map_err(|(key, message)| invalid(format!("input.kafka.{key}"), message))?,
                ),
                None => None,
            },
            check: {
                let check = &file.check;
                if check.max_request_bytes == 0 || check.max_concurrent == 0 {
                    return Err(invalid(
                        "check",
                        "max_request_bytes and max_concurrent must be at least 1",
                    ));
                }
                check.clone()
            },
        })
    }

    /// What `exposure check` judges by: the table policies (sensitivity), who counts as
    /// everyone, the `[check]` policy.
    pub fn check_rules(&self) -> crate::check::Rules<'_> {
        crate::check::Rules {
            policies: &self.detector.policies,
            permissions: &self.detector.permissions,
            check: &self.check,
        }
    }

    /// How long a line of an input may be (the configured cap, raised for CloudTrail
    /// documents).
    pub fn line_cap(&self) -> crate::format::decode::LineCap {
        crate::format::decode::LineCap::new(self.input.format, self.input.max_line_bytes)
    }

    /// A decoder for one input stream: the format, field mapping, vendor settings, read
    /// actions and line cap configured here.
    pub fn decoder(&self) -> Decoder {
        self.decoder_of(self.input.format)
    }

    /// The decoder of `input` read as lines: a Parquet file read among line inputs (its rows
    /// as JSON objects, [`crate::source::rows`]) is canonical, whatever format the lines are.
    pub fn decoder_for(&self, input: &crate::source::Input) -> Decoder {
        match input {
            crate::source::Input::Parquet(_) => self.decoder_of(crate::format::Format::Jsonl),
            _ => self.decoder(),
        }
    }

    fn decoder_of(&self, format: crate::format::Format) -> Decoder {
        let input = &self.input;
        Decoder::new(
            format,
            &input.jsonl,
            &input.vendor,
            &self.detector.read_actions,
            input.max_line_bytes,
        )
        .expect("the vendor settings were checked when the configuration was built")
    }

    /// The same configuration reading a state dir's evidence (`--keep-reads`): canonical JSON
    /// lines with the default field names, times in epoch microseconds, no envelope.
    pub fn reading_evidence(&self) -> Config {
        let mut config = self.clone();
        let input = &mut config.input;
        input.format = crate::format::Format::Jsonl;
        input.fields = FieldPaths::default();
        input.ts_unit = crate::time::EpochUnit::Us;
        input.jsonl = JsonLinesParser::new(&input.fields, input.ts_unit)
            .expect("the default field paths are valid");
        input.vendor.envelope = Default::default();
        input.vendor.record_field = None;
        config
    }

    /// Loads `path` (if given) and builds the configuration.
    pub fn load(
        path: Option<&Path>,
        flags: &DetectOverrides,
        format: Option<Format>,
    ) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Config::build(file, flags, format)
    }
}

/// The `[[classify]]` rules, their globs compiled (a bad one named by its key).
fn classify_rules(
    sections: &[ClassifySection],
) -> Result<Vec<crate::detect::policy::ClassifyRule>, ConfigError> {
    sections
        .iter()
        .enumerate()
        .map(|(i, section)| {
            if section.tables.is_empty() {
                return Err(invalid(
                    format!("classify[{i}].tables"),
                    "name at least one glob",
                ));
            }
            let tables = compile_glob_set(&section.tables)
                .map_err(|e| invalid(format!("classify[{i}].tables"), e.to_string()))?;
            let columns = match &section.columns {
                None => None,
                Some(globs) if globs.is_empty() => {
                    return Err(invalid(
                        format!("classify[{i}].columns"),
                        "name at least one glob, or leave the key out (the whole table)",
                    ));
                }
                Some(globs) => Some(
                    crate::detect::policy::compile_column_globs(globs)
                        .map_err(|e| invalid(format!("classify[{i}].columns"), e))?,
                ),
            };
            Ok(crate::detect::policy::ClassifyRule {
                tables,
                columns,
                level: section.level,
            })
        })
        .collect()
}

/// The permission changes of the `--grants` snapshots, taken at `--grants-at` (default: the
/// Unix epoch, before any log: standing since before the logs begin).
fn seed(flags: &DetectOverrides) -> Result<Vec<crate::event::PermissionChange>, ConfigError> {
    let taken = flags.grants_at.unwrap_or(0);
    let mut seed = Vec::new();
    for spec in &flags.grants {
        seed.extend(crate::grants::read(spec, taken)?);
    }
    Ok(seed)
}

/// `[input.fields]` maps the fields of canonical JSON lines and Parquet columns: a vendor
/// format reads its own fields, so a mapping given with one would be silently ignored; it is
/// refused, naming the key.
fn unused_field_mapping(
    format: Format,
    fields: &crate::format::jsonl::FieldPaths,
) -> Result<(), ConfigError> {
    if !format.is_vendor() {
        return Ok(());
    }
    let default = crate::format::jsonl::FieldPaths::default();
    let mapped = [
        ("ts", &fields.ts, &default.ts),
        ("principal", &fields.principal, &default.principal),
        ("table", &fields.table, &default.table),
        ("action", &fields.action, &default.action),
        ("rows", &fields.rows, &default.rows),
        ("bytes", &fields.bytes, &default.bytes),
        ("grantee", &fields.grantee, &default.grantee),
        ("privilege", &fields.privilege, &default.privilege),
        ("statement", &fields.statement, &default.statement),
        ("columns", &fields.columns, &default.columns),
    ];
    match mapped.iter().find(|(_, set, default)| set != default) {
        Some((key, _, _)) => Err(invalid(
            format!("input.fields.{key}"),
            format!(
                "maps canonical JSON lines and Parquet columns; format {} reads its own fields \
                 (a shipper's `@timestamp` is read with [input] envelope = \"logstash\", or \
                 recognised)",
                format.name()
            ),
        )),
        None => Ok(()),
    }
}

/// `close_after`, or its old name `quiet` (with a notice on stderr); both is an error.
fn renamed(
    section: &str,
    close_after: Option<Span>,
    quiet: Option<Span>,
) -> Result<Option<Span>, ConfigError> {
    match (close_after, quiet) {
        (Some(_), Some(_)) => Err(invalid(
            format!("{section}.quiet"),
            "is the old name of close_after: give only close_after",
        )),
        (None, Some(quiet)) => {
            crate::report::say!(
                "exposure: {section}.quiet is now {section}.close_after (the old name is read \
                 until the next release)"
            );
            Ok(Some(quiet))
        }
        (close_after, None) => Ok(close_after),
    }
}

fn check_thresholds(section: &str, t: &Thresholds) -> Result<(), ConfigError> {
    if t.min_principals == 0 {
        return Err(invalid(
            format!("{section}.min_principals"),
            "must be at least 1",
        ));
    }
    for (name, value) in [
        ("span", t.span),
        ("close_after", t.quiet),
        ("forget_after", t.forget_after),
    ] {
        if value.micros() <= 0 {
            return Err(invalid(
                format!("{section}.{name}"),
                "must be longer than 0",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::policy::Sensitivity;

    fn build(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "test.toml".into(),
            message: e.to_string(),
        })?;
        Config::build(file, &DetectOverrides::default(), None)
    }

    #[test]
    fn a_column_rule_weighs_reads_of_its_columns_and_its_whole_table() {
        let config = build(
            r#"
            [[classify]]
            tables = ["hr.*"]
            level = "internal"

            [[classify]]
            tables = ["hr.people"]
            columns = ["ssn", "*_email"]
            level = "restricted"
            "#,
        )
        .unwrap();
        let policies = &config.detector.policies;
        let read = |table: &str, columns: &[&str]| {
            policies.sensitivity_of_read(table, columns.iter().copied())
        };
        // A grant or a window on the table lays every column open.
        assert_eq!(
            policies.sensitivity("hr.people"),
            Some(Sensitivity::Restricted)
        );
        assert_eq!(read("hr.people", &[]), Some(Sensitivity::Restricted));
        // A read names its columns: only those count, matched in any case.
        assert_eq!(
            read("hr.people", &["name", "dept"]),
            Some(Sensitivity::Internal)
        );
        assert_eq!(
            read("hr.people", &["NAME", "SSN"]),
            Some(Sensitivity::Restricted)
        );
        assert_eq!(
            read("hr.people", &["Work_Email"]),
            Some(Sensitivity::Restricted)
        );
        assert_eq!(read("hr.salaries", &["ssn"]), Some(Sensitivity::Internal));
        assert_eq!(read("fin.ledger", &["ssn"]), None);

        let empty =
            build("[[classify]]\ntables = [\"hr.*\"]\ncolumns = []\nlevel = \"restricted\"\n");
        assert!(
            empty
                .unwrap_err()
                .to_string()
                .contains("classify[0].columns"),
            "the key is named"
        );
    }

    #[test]
    fn a_full_file_builds() {
        let config = build(
            r#"
            [detect]
            learn = "3d"
            min_principals = 4
            lateness = "1m"
            allow = ["svc-*"]
            read_actions = ["SELECT", "COPY"]
            [input]
            max_line_bytes = 4096
            ts_unit = "ms"
            [input.fields]
            principal = "user.name"
            [[tables]]
            match = "hr.*"
            min_principals = 8
            allow = ["payroll@*"]
            [[tables]]
            match = "tmp.*"
            ignore = true
            "#,
        )
        .unwrap();
        let p = &config.detector.policies;
        assert_eq!(p.default.thresholds.learn, Span::from_secs(3 * 86_400));
        assert_eq!(p.default.thresholds.min_principals, 4);
        assert_eq!(p.resolve("hr.pay").thresholds.min_principals, 8);
        assert_eq!(
            p.resolve("hr.pay").thresholds.learn,
            Span::from_secs(3 * 86_400)
        );
        assert!(p.resolve("hr.pay").is_allowed("payroll@x"));
        assert!(p.resolve("hr.pay").is_allowed("svc-x"));
        assert!(!p.default.is_allowed("payroll@x"));
        assert!(p.resolve("tmp.x").ignore);
        assert_eq!(config.detector.lateness, Span::from_secs(60));
        assert_eq!(config.input.max_line_bytes, 4096);
    }

    #[test]
    fn flags_override_the_file() {
        let file: ConfigFile =
            toml::from_str("[detect]\nmin_principals = 4\nquiet = \"10m\"").unwrap();
        let flags = DetectOverrides {
            min_principals: Some(9),
            ..Default::default()
        };
        let config = Config::build(file, &flags, None).unwrap();
        let t = config.detector.policies.default.thresholds;
        assert_eq!((t.min_principals, t.quiet), (9, Span::from_secs(600)));
    }

    #[test]
    fn bad_keys_and_values_name_the_key() {
        for (text, needle) in [
            ("[detect]\nmin_princpals = 3", "min_princpals"),
            ("[detect]\nspan = \"soon\"", "bad duration"),
            ("[detect]\nmin_principals = 0", "detect.min_principals"),
            ("[detect]\nclose_after = \"0\"", "detect.close_after"),
            ("[detect]\nread_actions = []", "detect.read_actions"),
            ("[[tables]]\nmin_principals = 2", "tables[0].match"),
            ("[[tables]]\nmatch = \"a[\"", "tables[0].match"),
            (
                "[[tables]]\nmatch = \"a\"\nmin_principals = 0",
                "tables[0].min_principals",
            ),
            ("[input]\nmax_line_bytes = 1", "input.max_line_bytes"),
            (
                "[input.fields]\nprincipal = \"a\"\ntable = \"a.b\"",
                "input.fields",
            ),
            ("[input]\nformat = \"xml\"", "format"),
            (
                "[input.pgaudit]\nlog_timezone = \"Mars/Olympus\"",
                "input.pgaudit.log_timezone",
            ),
            ("[surprise]\n", "surprise"),
        ] {
            let err = build(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?} -> {err}");
        }
    }

    #[test]
    fn a_config_path_naming_a_device_fifo_or_huge_file_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let error = ConfigFile::load(Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let fifo = dir.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        // Would block forever if it were opened for a plain read.
        let error = ConfigFile::load(&fifo).unwrap_err().to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let link = dir.path().join("link.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(ConfigFile::load(&link).is_err());
        let big = dir.path().join("big.toml");
        std::fs::write(&big, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let error = ConfigFile::load(&big).unwrap_err().to_string();
        assert!(error.contains("larger than 4 MiB"), "{error}");
    }

    #[test]
    fn a_parse_error_never_shows_a_value_or_a_line_that_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "hunter2-very-secret-token\n").unwrap();
        let error = ConfigFile::load(&secret).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
        assert!(error.contains("line 1, column"), "{error}");
        let keyed = dir.path().join("keyed.toml");
        std::fs::write(&keyed, "[detect]\nmin_principals = \"s3cr3t-value\"\n").unwrap();
        let error = ConfigFile::load(&keyed).unwrap_err().to_string();
        assert!(error.contains("2 | min_principals = …"), "{error}");
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(
            error.contains("invalid type: string, expected u32"),
            "{error}"
        );
        assert!(error.contains("line 2"), "{error}");
    }
}
