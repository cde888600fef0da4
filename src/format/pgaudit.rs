//! PostgreSQL server logs with pgaudit lines, in the stderr layout (any `log_line_prefix`) and
//! as csvlog (PostgreSQL 15's 26 columns). The AUDIT payload is CSV: AUDIT_TYPE, STATEMENT_ID,
//! SUBSTATEMENT_ID, CLASS, COMMAND, OBJECT_TYPE, OBJECT_NAME, STATEMENT, PARAMETER, and as
//! jsonlog (PostgreSQL 15+: `timestamp`, `user`, `dbname`, `message`); `CLASS=READ`
//! is a read of OBJECT_NAME (`schema.table`, as pgaudit logs it; with `prefix_database`,
//! `database.schema.table`). The principal is the session user (`%u`, or csvlog's `user_name`).
//! Other audit classes are non-reads (they move event time); other log lines are not access
//! events.
//!
//! The stderr layout depends on the server's `log_line_prefix`. An AUDIT line (or a `connection
//! authorized` line) that the configured prefix does not match is never taken for "not access":
//! the common prefixes ([`KNOWN_PREFIXES`]) are tried, the one that matches is used from then on
//! and said once; if none does, the line is malformed with a message that shows its start.
//! Without `%u` in the prefix (PostgreSQL's default `%m [%p] `), the user of an AUDIT line is
//! the one its process logged in as (`connection authorized: user=…`, with `log_connections`).

use super::ParseError;
use super::csv::split_csv;
use super::grant_sql;
use super::sql_relations;
use super::vendor::{Item, NotAccess, json::parse_time_text};
use crate::event::AccessEvent;
use crate::time::zone::LocalZone;
use serde::Deserialize;

/// `[input.pgaudit]`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    /// The server's `log_line_prefix` (stderr layout).
    pub log_line_prefix: String,
    /// Tables as `database.schema.table` instead of pgaudit's `schema.table`.
    pub prefix_database: bool,
    /// The server's `log_timezone` (an IANA name: `Europe/Paris`, `CET`): the zone of log
    /// times written without one, and the zone whose abbreviations are read first (`IST` is
    /// +05:30 for a server in `Asia/Kolkata`). Default UTC.
    pub log_timezone: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            log_line_prefix: "%m [%p] %q%u@%d ".to_string(),
            prefix_database: false,
            log_timezone: None,
        }
    }
}

/// `log_line_prefix` values in common use, tried when the configured one does not match an
/// AUDIT line: Debian and Ubuntu's packages, PostgreSQL's default (13+), Amazon RDS and Aurora,
/// the one pgaudit's documentation suggests, pgBadger's recommendations, YugabyteDB's YSQL.
pub const KNOWN_PREFIXES: &[&str] = &[
    "%m [%p] %q%u@%d ",
    "%m [%p] ",
    "%t:%r:%u@%d:[%p]:",
    "%m %u %d [%p]: ",
    "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%m [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
    "%t [%p]: user=%u,db=%d,app=%a,client=%h ",
    "%m [%p %l %c] %q[%C %R %Z %H] [%r %a %u %d] ",
    "%t [%p]: [%l-1] ",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `%X`.
    Field(char),
    /// `%q`: non-session processes stop the prefix here.
    SessionOnly,
}

/// Parses pgaudit records (a stderr message with its continuation lines, or a csvlog row).
#[derive(Debug, Clone)]
pub struct Parser {
    /// The configured `log_line_prefix`, as written and tokenized.
    configured: (String, Vec<Token>),
    /// A known prefix that matched where the configured one did not, used from then on.
    inferred: Option<(String, Vec<Token>)>,
    prefix_database: bool,
    zone: LocalZone,
    /// Process id → (user, database) of each session, from `connection authorized` lines.
    sessions: std::collections::HashMap<String, (String, String)>,
    /// Per session, the `ROLE` statement last read of a query string of several statements.
    role_statements: std::collections::HashMap<String, RoleStatement>,
    /// Whether the first line naming no relation was read (and how its tables are found said).
    said_statement_relations: bool,
}

/// Where in a query string of several statements a session's `ROLE` lines are: pgaudit logs
/// the whole string on each statement's line, so the statement a line is about is found by
/// its command, after the one the previous line of the same string was about.
#[derive(Debug, Clone)]
struct RoleStatement {
    query: String,
    statement_id: String,
    index: usize,
}

/// Sessions whose multi-statement position is remembered, at most.
const MAX_ROLE_SESSIONS: usize = 10_000;

/// What the prefix gave.
#[derive(Debug, Default)]
struct Prefix<'a> {
    time: Option<&'a str>,
    user: Option<&'a str>,
    database: Option<&'a str>,
    pid: Option<&'a str>,
}

/// How a prefix matched a line.
#[derive(Debug, PartialEq, Eq)]
enum Matched {
    Whole,
    /// Up to `%q` only (a line of a process without a session, or another prefix).
    SessionPart,
}

/// Whether a message starts with a server log level (`LOG:`, `ERROR:`, `STATEMENT:`...): the
/// sign that a prefix was matched whole and right.
fn is_severity(message: &str) -> bool {
    const LEVELS: [&str; 15] = [
        "LOG",
        "ERROR",
        "STATEMENT",
        "FATAL",
        "PANIC",
        "WARNING",
        "NOTICE",
        "INFO",
        "DETAIL",
        "HINT",
        "CONTEXT",
        "QUERY",
        "LOCATION",
        "DEBUG",
        "BACKTRACE",
    ];
    let level = message.split(':').next().unwrap_or("");
    let level = level.trim_end_matches(|c: char| c.is_ascii_digit());
    message.len() > level.len() && LEVELS.contains(&level)
}

/// Where the message of a stderr line starts, for the lines whose prefix must be right: an
/// AUDIT line or a `connection authorized` line.
fn significant_message(line: &str) -> Option<usize> {
    [
        "LOG:  AUDIT: ",
        "LOG: AUDIT: ",
        "LOG:  connection authorized: ",
    ]
    .iter()
    .filter_map(|marker| line.find(marker))
    .min()
}

fn tokenize(prefix: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut literal = String::new();
    let mut chars = prefix.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            literal.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("log_line_prefix ends with a lone `%`".into());
        };
        if e == '%' {
            literal.push('%');
            continue;
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        match e {
            'q' => tokens.push(Token::SessionOnly),
            // Every other escape (PostgreSQL's and forks' own, such as YugabyteDB's `%C`) is an
            // opaque field, matched up to what follows it.
            e => tokens.push(Token::Field(e)),
        }
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

/// The length of a `YYYY-MM-DD HH:MM:SS[.fff] ZONE` timestamp at the start of `text`.
fn timestamp_len(text: &str) -> Option<usize> {
    let b = text.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    let shape = digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b' ')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19);
    if !shape {
        return None;
    }
    let mut end = 19;
    if b.get(end) == Some(&b'.') {
        end += 1;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
    }
    // The zone: ` UTC`, ` +02`, ` +05:30`, ` CET`, ` Europe/Paris`...
    if b.get(end) == Some(&b' ') {
        let rest = &b[end + 1..];
        let mut zone = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || b"+-/_".contains(c))
            .count();
        // `+05:30`, not the `:` of a prefix such as `%t:%r:` after a named zone.
        if rest.first().is_some_and(|c| b"+-".contains(c))
            && rest.get(zone) == Some(&b':')
            && rest[zone + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count()
                == 2
        {
            zone += 3;
        }
        if zone > 0 {
            end += 1 + zone;
        }
    }
    Some(end)
}

/// Whether a line looks like a PostgreSQL log line (starts with a timestamp).
pub fn looks_like(line: &[u8]) -> bool {
    std::str::from_utf8(&line[..line.len().min(64)])
        .ok()
        .or_else(|| std::str::from_utf8(&line[..line.len().min(40)]).ok())
        .and_then(timestamp_len)
        .is_some()
}

/// Whether a record is a csvlog row (timestamp then a comma).
fn is_csv(text: &[u8]) -> bool {
    let head = &text[..text.len().min(64)];
    let head = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
    };
    timestamp_len(head).is_some_and(|n| head.as_bytes().get(n) == Some(&b','))
}

/// Whether a record is a PostgreSQL jsonlog object.
pub fn is_jsonlog(text: &[u8]) -> bool {
    let text = text.trim_ascii_start();
    text.starts_with(b"{")
        && memchr::memmem::find(text, b"\"error_severity\"").is_some()
        && memchr::memmem::find(text, b"\"message\"").is_some()
}

fn quotes_balanced(text: &[u8]) -> bool {
    memchr::memchr_iter(b'"', text).count().is_multiple_of(2)
}

impl Parser {
    pub fn new(options: &Options) -> Result<Parser, String> {
        let zone = match &options.log_timezone {
            Some(name) => LocalZone::named(name)?,
            None => LocalZone::UTC,
        };
        Ok(Parser {
            configured: (
                options.log_line_prefix.clone(),
                tokenize(&options.log_line_prefix)?,
            ),
            inferred: None,
            prefix_database: options.prefix_database,
            zone,
            sessions: std::collections::HashMap::new(),
            role_statements: std::collections::HashMap::new(),
            said_statement_relations: false,
        })
    }

    /// Whether `line` continues the record `pending`.
    pub fn continues(&self, pending: &[u8], line: &[u8]) -> bool {
        if is_csv(pending) {
            !quotes_balanced(pending)
        } else {
            line.first() == Some(&b'\t')
        }
    }

    /// The part of a continuation line that belongs to the message.
    pub fn continuation<'a>(&self, line: &'a [u8]) -> &'a [u8] {
        line.strip_prefix(b"\t").unwrap_or(line)
    }

    /// Whether `text` is a whole record as far as its own bytes tell.
    pub fn is_complete(&self, text: &[u8]) -> bool {
        !is_csv(text) || quotes_balanced(text)
    }

    /// Stderr messages may go on in TAB-indented lines; a csvlog row never does once complete,
    /// nor does a jsonlog record.
    pub fn may_continue(&self, text: &[u8]) -> bool {
        !is_csv(text) && !is_jsonlog(text)
    }

    /// Parses one whole record.
    pub fn parse_record(&mut self, text: &[u8]) -> Result<Vec<Item>, ParseError> {
        let text = super::utf8_text(text)?;
        if is_csv(text.as_bytes()) {
            self.parse_csvlog(text)
        } else if text.trim_start().starts_with('{') {
            self.parse_jsonlog(text)
        } else {
            self.parse_stderr(text)
        }
    }

    /// A `jsonlog` record (PostgreSQL 15+, `log_destination = 'jsonlog'`): one JSON object per
    /// line with `timestamp`, `user`, `dbname`, `error_severity` and `message`.
    fn parse_jsonlog(&mut self, text: &str) -> Result<Vec<Item>, ParseError> {
        let record: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ParseError::Json {
                message: crate::time::clip(&e.to_string(), 160),
                column: e.column(),
            })?;
        let field = |name: &str| record.get(name).and_then(serde_json::Value::as_str);
        let Some(payload) = field("message").and_then(|m| m.strip_prefix("AUDIT: ")) else {
            return Ok(vec![Item::NotAccess(NotAccess::LogLine)]);
        };
        let time = field("timestamp").ok_or_else(|| missing("timestamp"))?;
        let user = field("user").ok_or_else(|| missing("user"))?;
        let pid = record.get("pid").map(|p| p.to_string());
        self.audit(
            time,
            user,
            field("dbname").unwrap_or(""),
            pid.as_deref(),
            payload,
        )
    }

    fn parse_csvlog(&mut self, text: &str) -> Result<Vec<Item>, ParseError> {
        let record = split_csv(text, 14).map_err(|message| ParseError::Record {
            message: format!("not a csvlog row: {message}"),
            column: 1,
        })?;
        if record.len() < 14 {
            return Err(ParseError::MissingField {
                field: format!("csvlog column 14 (message); the row has {}", record.len()),
            });
        }
        let message = &record[13];
        let Some(payload) = message.strip_prefix("AUDIT: ") else {
            return Ok(vec![Item::NotAccess(NotAccess::LogLine)]);
        };
        let session = record[3].to_string();
        self.audit(&record[0], &record[1], &record[2], Some(&session), payload)
    }

    fn parse_stderr(&mut self, text: &str) -> Result<Vec<Item>, ParseError> {
        let tokens = &self.inferred.as_ref().unwrap_or(&self.configured).1;
        let mut notice = None;
        let matched = match match_prefix(tokens, text) {
            Some((prefix, rest, Matched::Whole)) => Ok((prefix, rest)),
            // Looked for only when the prefix does not match whole (the usual line does).
            other => Err((other.is_some(), significant_message(text))),
        };
        let (prefix, rest) = match matched {
            Ok(whole) => whole,
            Err((true, None)) => {
                // A process without a session (the checkpointer...): never an audit line.
                return Ok(vec![Item::NotAccess(NotAccess::LogLine)]);
            }
            Err((false, None)) => match self.infer(text) {
                // Any server line tells the prefix (RDS logs may start with a checkpoint).
                Some((prefix, rest, known)) => {
                    notice = Some(self.inferred_notice(known));
                    (prefix, rest)
                }
                None => {
                    return Err(ParseError::Record {
                        message: format!(
                            "the line does not start with log_line_prefix `{}` (set \
                             input.pgaudit.log_line_prefix to the server's: SHOW log_line_prefix)",
                            self.shown_prefix()
                        ),
                        column: 1,
                    });
                }
            },
            Err((_, Some(at))) => match self.infer(text) {
                Some((prefix, rest, known)) => {
                    notice = Some(self.inferred_notice(known));
                    (prefix, rest)
                }
                None => {
                    return Err(ParseError::Record {
                        message: format!(
                            "an audit line whose start \"{}\" matches neither log_line_prefix \
                             `{}` nor a common one: set input.pgaudit.log_line_prefix to the \
                             server's (SHOW log_line_prefix)",
                            crate::time::clip(&text[..at], 120),
                            self.shown_prefix()
                        ),
                        column: 1,
                    });
                }
            },
        };
        let mut items: Vec<Item> = notice.into_iter().collect();
        if let Some(login) = rest.strip_prefix("LOG:  connection authorized: ") {
            self.remember_session(prefix.pid, login);
            items.push(Item::NotAccess(NotAccess::LogLine));
            return Ok(items);
        }
        if rest.starts_with("LOG:  disconnection: ")
            && let Some(pid) = prefix.pid
        {
            self.sessions.remove(pid);
            self.role_statements.remove(pid);
        }
        let Some(payload) = rest
            .strip_prefix("LOG:  AUDIT: ")
            .or_else(|| rest.strip_prefix("LOG: AUDIT: "))
        else {
            items.push(Item::NotAccess(NotAccess::LogLine));
            return Ok(items);
        };
        let time = prefix
            .time
            .ok_or_else(|| missing("%m or %t in log_line_prefix"))?;
        // The login of the process, only when the prefix lacks the user or the database (a
        // copy: the line is read with the parser's state mutable).
        let session = match (prefix.user, prefix.database) {
            (Some(_), Some(_)) => None,
            _ => prefix.pid.and_then(|pid| self.sessions.get(pid)).cloned(),
        };
        let user = match (prefix.user, &session) {
            (Some(user), _) => user,
            (None, Some((user, _))) => user.as_str(),
            (None, None) => {
                return Err(missing(&format!(
                    "user: log_line_prefix `{}` has no %u and no `connection authorized` line of \
                     process {} was read before (turn on log_connections, or add %u to \
                     log_line_prefix, e.g. '%m [%p] %q%u@%d ')",
                    self.shown_prefix(),
                    prefix.pid.unwrap_or("?")
                )));
            }
        };
        let database = prefix
            .database
            .or(session.as_ref().map(|(_, database)| database.as_str()))
            .unwrap_or("");
        items.extend(self.audit(time, user, database, prefix.pid, payload)?);
        Ok(items)
    }

    /// Says that a known prefix is used instead of the configured one.
    fn inferred_notice(&self, known: &str) -> Item {
        Item::Notice(format!(
            "pgaudit: log_line_prefix `{}` does not match this log; its lines match `{known}`, \
             used from here on (set input.pgaudit.log_line_prefix to it)",
            self.configured.0
        ))
    }

    /// The prefix in use, as written.
    fn shown_prefix(&self) -> &str {
        &self.inferred.as_ref().unwrap_or(&self.configured).0
    }

    /// Tries the common prefixes on a line the configured one does not match; the first that
    /// matches it whole is used from then on.
    fn infer<'a>(&mut self, line: &'a str) -> Option<(Prefix<'a>, &'a str, &'static str)> {
        // Tokenized once: an input no known prefix matches tries them on every audit line.
        static KNOWN: std::sync::LazyLock<Vec<(&str, Vec<Token>)>> =
            std::sync::LazyLock::new(|| {
                KNOWN_PREFIXES
                    .iter()
                    .map(|known| (*known, tokenize(known).expect("known prefixes are valid")))
                    .collect()
            });
        for (known, tokens) in KNOWN.iter() {
            if let Some((prefix, rest, Matched::Whole)) = match_prefix(tokens, line)
                && is_severity(rest)
                && prefix.time.is_some()
            {
                self.inferred = Some((known.to_string(), tokens.clone()));
                return Some((prefix, rest, known));
            }
        }
        None
    }

    /// `user=alice database=shop application_name=psql` of the session of process `pid`.
    fn remember_session(&mut self, pid: Option<&str>, login: &str) {
        let Some(pid) = pid else {
            return;
        };
        let field = |name: &str| {
            login
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_string)
        };
        if let Some(user) = field("user=") {
            let database = field("database=").unwrap_or_default();
            self.sessions.insert(pid.to_string(), (user, database));
        }
    }
}

/// Matches a prefix at the start of `line`; returns what it held, the rest, and how far it
/// matched.
fn match_prefix<'a>(tokens: &[Token], line: &'a str) -> Option<(Prefix<'a>, &'a str, Matched)> {
    {
        let mut prefix = Prefix::default();
        let mut pos = 0;
        // Where `%q` was: a line of a non-session process ends its prefix there.
        let mut session_only: Option<(usize, Option<&'a str>)> = None;
        let fail = |session_only: Option<(usize, Option<&'a str>)>| {
            session_only.map(|(at, time)| {
                let prefix = Prefix {
                    time,
                    ..Prefix::default()
                };
                (prefix, &line[at..], Matched::SessionPart)
            })
        };
        let mut tokens = tokens.iter().peekable();
        while let Some(token) = tokens.next() {
            let rest = &line[pos..];
            match token {
                Token::Literal(s) => {
                    if !rest.starts_with(s.as_str()) {
                        return fail(session_only);
                    }
                    pos += s.len();
                }
                Token::SessionOnly => session_only = Some((pos, prefix.time)),
                Token::Field(c) => {
                    let len = match c {
                        'm' | 't' => match timestamp_len(rest) {
                            Some(len) => len,
                            None => return fail(session_only),
                        },
                        'n' => rest
                            .bytes()
                            .take_while(|b| b.is_ascii_digit() || *b == b'.')
                            .count(),
                        _ => match tokens.peek() {
                            Some(Token::Literal(next)) => match rest.find(next.as_str()) {
                                Some(len) => len,
                                None => return fail(session_only),
                            },
                            _ => rest.find(char::is_whitespace).unwrap_or(rest.len()),
                        },
                    };
                    let value = &rest[..len];
                    match c {
                        'm' | 't' | 'n' => prefix.time = Some(value),
                        'u' => prefix.user = Some(value),
                        'd' => prefix.database = Some(value),
                        'p' => prefix.pid = Some(value),
                        _ => {}
                    }
                    pos += len;
                }
            }
        }
        Some((prefix, &line[pos..], Matched::Whole))
    }
}

impl Parser {
    fn audit(
        &mut self,
        time: &str,
        user: &str,
        database: &str,
        session: Option<&str>,
        payload: &str,
    ) -> Result<Vec<Item>, ParseError> {
        let ts = if time.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let secs: f64 = time.parse().map_err(|_| bad_time(time))?;
            crate::time::ts_from_epoch_float(secs, crate::time::EpochUnit::S).map_err(|source| {
                ParseError::Timestamp {
                    field: "log time".into(),
                    source,
                }
            })?
        } else {
            parse_time_text(time, &self.zone).map_err(|source| ParseError::Timestamp {
                field: "log time".into(),
                source,
            })?
        };
        if user.is_empty() {
            return Err(missing("user"));
        }
        // AUDIT_TYPE, STATEMENT_ID, SUBSTATEMENT_ID, CLASS, COMMAND, OBJECT_TYPE, OBJECT_NAME:
        // the statement after them is not needed.
        let fields = split_csv(payload, 7).map_err(|message| ParseError::Record {
            message: format!("AUDIT payload is not CSV: {message}"),
            column: 1,
        })?;
        if fields.len() < 7 {
            return Err(ParseError::MissingField {
                field: format!(
                    "AUDIT payload OBJECT_NAME (7th field; {} fields)",
                    fields.len()
                ),
            });
        }
        let class = &fields[3];
        let context = Context {
            ts,
            user,
            database,
            session,
        };
        if class == "ROLE" {
            return self.role(&context, payload);
        }
        let object = &fields[6];
        if object.is_empty() {
            if matches!(class.as_ref(), "READ" | "WRITE") {
                // pgaudit.log_relation off: the statement says what was read.
                return self.statement_relations(&context, payload);
            }
            // A statement of another class (DDL, FUNCTION, MISC): no table read or written.
            return Ok(vec![Item::NotAccess(NotAccess::NoRelation)]);
        }
        Ok(vec![Item::Event(AccessEvent::classified(
            ts,
            user.to_string(),
            self.table_name(database, object),
            class == "READ",
        ))])
    }

    /// A table as events name it: pgaudit's `schema.table`, with the database before it under
    /// `prefix_database`.
    fn table_name(&self, database: &str, object: &str) -> String {
        if self.prefix_database && !database.is_empty() {
            format!("{database}.{object}")
        } else {
            object.to_string()
        }
    }

    /// A READ or WRITE line that names no relation (`pgaudit.log_relation` off): the tables its
    /// statement reads and writes, found by parsing it ([`sql_relations`]), each an event. A
    /// statement that is not logged or cannot be parsed is unattributable. The first such line
    /// says how the relations were found, once.
    fn statement_relations(
        &mut self,
        context: &Context<'_>,
        payload: &str,
    ) -> Result<Vec<Item>, ParseError> {
        let fields = split_csv(payload, 8).map_err(|message| ParseError::Record {
            message: format!("AUDIT payload is not CSV: {message}"),
            column: 1,
        })?;
        let mut items = Vec::new();
        if !self.said_statement_relations {
            self.said_statement_relations = true;
            items.push(Item::Notice(
                "pgaudit: READ and WRITE lines name no relation (pgaudit.log_relation is off, \
                 its default): the tables are taken from each line's statement, parsed as \
                 PostgreSQL SQL; set pgaudit.log_relation = on for pgaudit to name them itself"
                    .to_string(),
            ));
        }
        let (command, statement) = match fields.as_slice() {
            [_, id, _, _, command, _, _, statement] if statement != "<not logged>" => {
                let statement = self.statement_of(context.session, id, command, statement.as_ref());
                (command.to_string(), statement)
            }
            _ => {
                items.push(Item::Skipped(ParseError::Unattributable {
                    message: "a pgaudit line with no relation and no statement logged \
                              (set pgaudit.log_relation = on, or log the statement)"
                        .to_string(),
                }));
                return Ok(items);
            }
        };
        let relations = match sql_relations::relations(&statement, Some(&command)) {
            Ok(relations) => relations,
            Err(error) => {
                items.push(Item::Skipped(ParseError::Unattributable {
                    message: format!(
                        "a pgaudit line with no relation whose statement cannot be parsed as \
                         PostgreSQL SQL ({error}); set pgaudit.log_relation = on for pgaudit \
                         to name its tables"
                    ),
                }));
                return Ok(items);
            }
        };
        let event = |table: &String, read: bool| {
            Item::Event(AccessEvent::classified(
                context.ts,
                context.user.to_string(),
                self.table_name(context.database, table),
                read,
            ))
        };
        let before = items.len();
        items.extend(relations.read.iter().map(|table| event(table, true)));
        items.extend(relations.written.iter().map(|table| event(table, false)));
        if items.len() == before {
            // `SELECT now()`: a statement that reads no table.
            items.push(Item::NotAccess(NotAccess::NoRelation));
        }
        Ok(items)
    }
}

/// Where an audit record was made.
struct Context<'a> {
    ts: crate::time::Ts,
    user: &'a str,
    database: &'a str,
    session: Option<&'a str>,
}

impl Parser {
    /// A `ROLE` record: a `GRANT` or `REVOKE` becomes permission changes, read from the
    /// statement (pgaudit leaves the object name empty); other role commands change no access.
    fn role(&mut self, context: &Context<'_>, payload: &str) -> Result<Vec<Item>, ParseError> {
        let fields = split_csv(payload, 8).map_err(|message| ParseError::Record {
            message: format!("AUDIT payload is not CSV: {message}"),
            column: 1,
        })?;
        if fields.len() < 8 {
            return Err(ParseError::MissingField {
                field: format!(
                    "AUDIT payload STATEMENT (8th field; {} fields)",
                    fields.len()
                ),
            });
        }
        let (statement_id, command, query) = (&fields[1], &fields[4], &fields[7]);
        // PostgreSQL tags a membership `GRANT role TO member` as `GRANT ROLE` (its statement
        // begins `GRANT` all the same).
        let command = command.strip_suffix(" ROLE").unwrap_or(command);
        let statement = self.statement_of(context.session, statement_id, command, query);
        if !(command == "GRANT" || command == "REVOKE") {
            return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
        }
        let database = self.prefix_database && !context.database.is_empty();
        let grant = grant_sql::GrantContext {
            ts: context.ts,
            actor: context.user,
            default_schema: Some("public"),
            object_prefix: database.then_some(context.database),
            fold: grant_sql::Fold::Lower,
        };
        let Some(changes) = grant_sql::parse_grant(&statement, &grant) else {
            return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
        };
        if changes.is_empty() {
            return Ok(vec![Item::NotAccess(NotAccess::OtherPermission)]);
        }
        Ok(changes.into_iter().map(Item::Permission).collect())
    }

    /// The statement of `query` a `ROLE` line of command `command` is about: the whole query
    /// when it is one statement; else the next statement of that command after the one the
    /// session's previous line of the same query was about (the same one for the same
    /// statement id).
    fn statement_of(
        &mut self,
        session: Option<&str>,
        statement_id: &str,
        command: &str,
        query: &str,
    ) -> String {
        let statements = grant_sql::split_statements(query);
        if statements.len() <= 1 {
            return query.to_string();
        }
        let key = session.unwrap_or("").to_string();
        let previous = self.role_statements.get(&key).filter(|p| p.query == query);
        let index = match previous {
            Some(p) if p.statement_id == statement_id => p.index,
            _ => {
                let from = previous.map_or(0, |p| p.index + 1);
                let matches = |i: &usize| grant_sql::starts_with_command(statements[*i], command);
                (from..statements.len())
                    .find(matches)
                    .or_else(|| (0..statements.len()).find(matches))
                    .unwrap_or(from.min(statements.len() - 1))
            }
        };
        if self.role_statements.len() >= MAX_ROLE_SESSIONS
            && !self.role_statements.contains_key(&key)
        {
            self.role_statements.clear();
        }
        self.role_statements.insert(
            key,
            RoleStatement {
                query: query.to_string(),
                statement_id: statement_id.to_string(),
                index,
            },
        );
        statements[index].to_string()
    }
}

fn missing(field: &str) -> ParseError {
    ParseError::MissingField {
        field: field.to_string(),
    }
}

fn bad_time(text: &str) -> ParseError {
    ParseError::Timestamp {
        field: "log time".into(),
        source: crate::time::TsError::Unparsable(crate::time::excerpt(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Format;
    use crate::format::vendor::{RecordReader, VendorOptions};

    fn events(lines: &[&str]) -> Vec<(u64, Result<Vec<Item>, ParseError>)> {
        read_with(Options::default(), lines)
    }

    fn read(ts: &str, principal: &str, table: &str) -> Item {
        Item::Event(AccessEvent::classified(
            parse_time_text(ts, &LocalZone::UTC).unwrap(),
            principal.to_string(),
            table.to_string(),
            true,
        ))
    }

    #[test]
    fn stderr_lines_with_multi_line_statements() {
        let got = events(&[
            "2026-11-26 22:04:42.297 UTC [11179] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"SELECT a,",
            "\tb FROM orders\",<not logged>",
            "2026-11-26 22:04:43.001 UTC [11180] bob@shop LOG:  connection authorized: user=bob",
            "2026-11-26 22:04:44.5 UTC [11181] carol@shop LOG:  AUDIT: SESSION,2,1,WRITE,INSERT,TABLE,public.orders,INSERT ...,<not logged>",
            "2026-11-26 22:04:45.000 UTC [11182] dave@shop LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.pay,select 1,<not logged>",
        ]);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
        assert_eq!(
            got[0].1,
            Ok(vec![read(
                "2026-11-26 22:04:42.297 UTC",
                "alice",
                "public.orders"
            )])
        );
        assert_eq!(got[1].1, Ok(vec![Item::NotAccess(NotAccess::LogLine)]));
        assert!(
            matches!(&got[2].1, Ok(items) if matches!(&items[0], Item::Event(e) if e.is_read == Some(false)))
        );
        assert_eq!(
            got[3].1,
            Ok(vec![read("2026-11-26 22:04:45 UTC", "dave", "public.pay")])
        );
    }

    /// "ACTION privilege object grantee by actor" of each change of each record.
    fn permission_changes(lines: &[&str]) -> Vec<String> {
        events(lines)
            .into_iter()
            .flat_map(|(_, result)| result.unwrap())
            .map(|item| match item {
                Item::Permission(c) => format!(
                    "{} {} {} {} by {}",
                    c.action.as_str(),
                    c.privilege,
                    c.object,
                    c.grantee,
                    c.actor
                ),
                Item::NotAccess(why) => why.name().to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn role_lines_are_permission_changes_read_from_their_statement() {
        let got = permission_changes(&[
            "2026-11-26 22:04:42.297 UTC [11179] dba@shop LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,TABLE,,GRANT SELECT ON hr.salaries TO PUBLIC,<not logged>",
            "2026-11-26 22:04:42.300 UTC [11179] dba@shop LOG:  AUDIT: SESSION,2,1,ROLE,GRANT,,,\"GRANT SELECT",
            "\tON ALL TABLES IN SCHEMA hr TO analysts\",<not logged>",
            "2026-11-26 22:04:43.000 UTC [11179] dba@shop LOG:  AUDIT: SESSION,3,1,ROLE,REVOKE,TABLE,,REVOKE SELECT ON hr.salaries FROM PUBLIC,<not logged>",
            "2026-11-26 22:04:44.000 UTC [11179] dba@shop LOG:  AUDIT: SESSION,4,1,ROLE,ALTER ROLE,,,ALTER ROLE bob PASSWORD <REDACTED>,<not logged>",
            "2026-11-26 22:04:45.000 UTC [11179] dba@shop LOG:  AUDIT: SESSION,5,1,ROLE,GRANT,,,GRANT analysts TO bob,<not logged>",
            // As PostgreSQL 15 tags memberships, one of two statements of one query.
            "2026-11-26 22:04:46.000 UTC [11180] dba@shop LOG:  AUDIT: SESSION,1,1,ROLE,GRANT,TABLE,,\"GRANT SELECT ON hr.pay TO support; GRANT support TO eve, fay\",<not logged>",
            "2026-11-26 22:04:46.000 UTC [11180] dba@shop LOG:  AUDIT: SESSION,2,1,ROLE,GRANT ROLE,,,\"GRANT SELECT ON hr.pay TO support; GRANT support TO eve, fay\",<not logged>",
            "2026-11-26 22:04:47.000 UTC [11180] dba@shop LOG:  AUDIT: SESSION,3,1,ROLE,REVOKE ROLE,,,REVOKE support FROM fay,<not logged>",
        ]);
        assert_eq!(
            got,
            [
                "GRANT SELECT hr.salaries PUBLIC by dba",
                "GRANT SELECT hr analysts by dba",
                "REVOKE SELECT hr.salaries PUBLIC by dba",
                "other permission changes",
                "GRANT MEMBER analysts bob by dba",
                "GRANT SELECT hr.pay support by dba",
                "GRANT MEMBER support eve by dba",
                "GRANT MEMBER support fay by dba",
                "REVOKE MEMBER support fay by dba",
            ]
        );
    }

    #[test]
    fn each_role_line_of_a_query_string_is_about_its_own_statement() {
        // pgaudit logs the whole string on each statement's line.
        let query = "\"CREATE ROLE alice LOGIN; GRANT SELECT ON hr.salaries TO alice; GRANT hr_readers TO alice; GRANT SELECT ON hr.pay TO alice;\"";
        let line = |id: u32, command: &str| {
            format!(
                "2026-11-26 22:04:42.297 UTC [7] dba@shop LOG:  AUDIT: SESSION,{id},1,ROLE,{command},,,{query},<not logged>"
            )
        };
        let lines = [
            line(11, "CREATE ROLE"),
            line(12, "GRANT"),
            line(13, "GRANT"),
            line(14, "GRANT"),
            // The same string again, in another session.
            line(3, "GRANT").replace("[7]", "[8]"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            permission_changes(&lines),
            [
                "other permission changes",
                "GRANT SELECT hr.salaries alice by dba",
                "GRANT MEMBER hr_readers alice by dba",
                "GRANT SELECT hr.pay alice by dba",
                "GRANT SELECT hr.salaries alice by dba",
            ]
        );
    }

    #[test]
    fn a_statement_of_many_lines_is_one_record_whatever_its_kind() {
        // A four-line SELECT (its third and fourth lines were taken for new records), then a
        // multi-line statement that is no audit record, then the next record.
        let got = events(&[
            "2026-11-26 22:04:42.297 UTC [11179] alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"SELECT a,",
            "\t       b,",
            "\t       c",
            "\tFROM orders\",<not logged>",
            "2026-11-26 22:04:43.000 UTC [11179] alice@shop LOG:  statement: CREATE TABLE t (",
            "\t  x int",
            "\t)",
            "2026-11-26 22:04:45.000 UTC [11182] dave@shop LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.pay,select 1,<not logged>",
        ]);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 5, 8], "{got:?}");
        assert_eq!(
            got[0].1,
            Ok(vec![read(
                "2026-11-26 22:04:42.297 UTC",
                "alice",
                "public.orders"
            )])
        );
        assert_eq!(got[1].1, Ok(vec![Item::NotAccess(NotAccess::LogLine)]));
        assert_eq!(
            got[2].1,
            Ok(vec![read("2026-11-26 22:04:45 UTC", "dave", "public.pay")])
        );
    }

    #[test]
    fn csvlog_rows_with_quoted_newlines() {
        let got = events(&[
            "2026-11-26 22:04:42.297 UTC,\"alice\",\"shop\",11179,\"[local]\",6746a1,1,\"SELECT\",2026-11-26 22:04:40 UTC,3/7,0,LOG,00000,\"AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,\"\"SELECT a,",
            "b FROM orders\"\",<not logged>\",,,,,,,,,\"psql\",\"client backend\",,0",
            "2026-11-26 22:04:43.000 UTC,\"bob\",\"shop\",11180,\"[local]\",6746a2,1,\"idle\",2026-11-26 22:04:40 UTC,3/8,0,LOG,00000,\"disconnection\",,,,,,,,,\"psql\",\"client backend\",,0",
        ]);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (
                1,
                Ok(vec![read(
                    "2026-11-26 22:04:42.297 UTC",
                    "alice",
                    "public.orders"
                )])
            )
        );
        assert_eq!(got[1], (3, Ok(vec![Item::NotAccess(NotAccess::LogLine)])));
    }

    #[test]
    fn splits_csv_with_quotes_commas_and_newlines() {
        let got = split_csv("a,\"b,\"\"c\"\"\nd\",,e", 10).unwrap();
        assert_eq!(got, ["a", "b,\"c\"\nd", "", "e"]);
        assert_eq!(split_csv("a,b,c", 2).unwrap(), ["a", "b"]);
        assert!(split_csv("\"open", 3).is_err());
        assert!(split_csv("\"x\"y", 3).is_err());
    }

    #[test]
    fn lines_of_non_session_processes_end_their_prefix_at_q() {
        let got = events(&[
            "2026-11-26 22:04:40.000 UTC [11000] LOG:  database system is ready to accept connections",
        ]);
        assert_eq!(got, [(1, Ok(vec![Item::NotAccess(NotAccess::LogLine)]))]);
    }

    #[test]
    fn custom_prefixes_and_database_prefix() {
        let options = VendorOptions {
            pgaudit: Options {
                log_line_prefix: "%t:%r:%u@%d:[%p]:".into(),
                prefix_database: true,
                log_timezone: None,
            },
            ..VendorOptions::default()
        };
        let mut reader = RecordReader::new(Format::Pgaudit, &options).unwrap();
        let mut out = Vec::new();
        reader.line(
            7,
            b"2026-11-26 22:04:42 UTC:10.0.0.1(5432):eve@hr:[42]:LOG:  AUDIT: OBJECT,1,1,READ,SELECT,TABLE,public.salaries,select *,<none>",
            &mut out,
        );
        reader.flush(&mut out);
        assert_eq!(
            out,
            [(
                7,
                Ok(vec![read(
                    "2026-11-26 22:04:42 UTC",
                    "eve",
                    "hr.public.salaries"
                )])
            )]
        );
        let mut out = Vec::new();
        reader.line(8, b"not a postgres line", &mut out);
        reader.flush(&mut out);
        assert!(
            out[0]
                .1
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("log_line_prefix")
        );
        assert!(
            Parser::new(&Options {
                log_line_prefix: "%m %".into(),
                ..Options::default()
            })
            .is_err(),
            "a lone % is an error; unknown escapes are opaque fields"
        );
        assert!(
            Parser::new(&Options {
                log_line_prefix: "%m [%p] %Z ".into(),
                ..Options::default()
            })
            .is_ok()
        );
    }

    /// The event times of `lines` read with the stderr layout of `prefix` on a server whose
    /// `log_timezone` is `zone`.
    fn times(prefix: &str, zone: Option<&str>, lines: &[&str]) -> Vec<Result<String, String>> {
        let out = read_with(
            Options {
                log_line_prefix: prefix.into(),
                log_timezone: zone.map(str::to_string),
                ..Options::default()
            },
            lines,
        );
        out.into_iter()
            .map(|(_, result)| match result {
                Ok(items) => match &items[0] {
                    Item::Event(e) => Ok(crate::time::format_ts(e.ts)),
                    other => Err(format!("not an event: {other:?}")),
                },
                Err(e) => Err(e.to_string()),
            })
            .collect()
    }

    #[test]
    fn log_times_in_a_named_zone_are_read_with_the_iana_database() {
        let audit = "alice@shop LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select 1,<not logged>";
        let stderr = |time: &str| format!("{time} [11179] {audit}");
        // log_timezone = 'Europe/Paris': CET in winter, CEST in summer; abbreviations alone
        // suffice.
        let got = times(
            "%m [%p] %q%u@%d ",
            None,
            &[
                &stderr("2026-01-10 15:02:11.512 CET"),
                &stderr("2026-07-10 15:02:11.512 CEST"),
                &stderr("2026-07-10 18:32:11.512 +05:30"),
            ],
        );
        assert_eq!(
            got,
            [
                Ok("2026-01-10T14:02:11.512Z".into()),
                Ok("2026-07-10T13:02:11.512Z".into()),
                Ok("2026-07-10T13:02:11.512Z".into())
            ]
        );
        // IST is India, Ireland or Israel: the server's zone says which.
        let ist = [stderr("2026-07-10 18:32:11.512 IST")];
        let ist: Vec<&str> = ist.iter().map(String::as_str).collect();
        let unknown = times("%m [%p] %q%u@%d ", None, &ist);
        assert!(
            unknown[0].as_ref().unwrap_err().contains("log_timezone"),
            "{unknown:?}"
        );
        assert_eq!(
            times("%m [%p] %q%u@%d ", Some("Asia/Kolkata"), &ist),
            [Ok("2026-07-10T13:02:11.512Z".to_string())]
        );
        // A prefix of RDS's shape after a named zone, and a time written without a zone.
        let rds =
            format!("2026-07-10 15:02:11 CEST:10.0.0.1(5432):{audit}").replace(" LOG", ":[42]:LOG");
        assert_eq!(
            times("%t:%r:%u@%d:[%p]:", None, &[&rds]),
            [Ok("2026-07-10T13:02:11.000Z".to_string())]
        );
        assert_eq!(
            times(
                "%m|%u@%d ",
                Some("Europe/Paris"),
                &[&format!("2026-07-10 15:02:11|{audit}")]
            ),
            [Ok("2026-07-10T13:02:11.000Z".to_string())]
        );
    }

    fn events_with(prefix: &str, lines: &[&str]) -> Vec<(u64, Result<Vec<Item>, ParseError>)> {
        read_with(
            Options {
                log_line_prefix: prefix.into(),
                ..Options::default()
            },
            lines,
        )
    }

    /// What `lines` give, read with `options`.
    fn read_with(options: Options, lines: &[&str]) -> Vec<(u64, Result<Vec<Item>, ParseError>)> {
        let options = VendorOptions {
            pgaudit: options,
            ..VendorOptions::default()
        };
        let mut reader = RecordReader::new(Format::Pgaudit, &options).unwrap();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            reader.line(i as u64 + 1, line.as_bytes(), &mut out);
        }
        reader.flush(&mut out);
        out
    }

    fn notice_of(items: &[Item]) -> Option<&str> {
        items.iter().find_map(|i| match i {
            Item::Notice(text) => Some(text.as_str()),
            _ => None,
        })
    }

    #[test]
    fn lines_naming_no_relation_take_the_tables_of_their_statement() {
        // pgaudit.log_relation off (its default): one line per statement, object fields empty.
        let at = "2026-11-26 22:04:42.297 UTC [11179] alice@shop LOG:  AUDIT: SESSION,";
        let got = events(&[
            &format!("{at}1,1,READ,SELECT,,,SELECT count(*) FROM hr.salaries,<not logged>"),
            &format!(
                "{at}2,1,READ,SELECT,,,\"SELECT p.name FROM hr.people p JOIN Orders o ON o.id = p.id\",<not logged>"
            ),
            &format!(
                "{at}3,1,WRITE,INSERT,,,INSERT INTO archive.pay SELECT * FROM hr.pay,<not logged>"
            ),
            &format!("{at}4,1,READ,SELECT,,,SELECT now(),<not logged>"),
            &format!("{at}5,1,READ,SELECT,,,<not logged>,<not logged>"),
            &format!("{at}6,1,READ,SELECT,,,SELEKT * FROM hr.salaries,<not logged>"),
            &format!("{at}7,1,DDL,CREATE TABLE,,,CREATE TABLE x (y int),<not logged>"),
        ]);
        let ts = "2026-11-26 22:04:42.297 UTC";
        let write = |table: &str| {
            Item::Event(AccessEvent::classified(
                parse_time_text(ts, &LocalZone::UTC).unwrap(),
                "alice".to_string(),
                table.to_string(),
                false,
            ))
        };
        let Ok(first) = &got[0].1 else {
            panic!("{got:?}")
        };
        let notice = notice_of(first).expect("how the tables are found is said");
        assert!(notice.contains("pgaudit.log_relation"), "{notice}");
        assert_eq!(first[1..], [read(ts, "alice", "hr.salaries")]);
        assert_eq!(
            got[1].1,
            Ok(vec![
                read(ts, "alice", "hr.people"),
                read(ts, "alice", "public.orders")
            ])
        );
        assert_eq!(
            got[2].1,
            Ok(vec![read(ts, "alice", "hr.pay"), write("archive.pay")])
        );
        assert_eq!(got[3].1, Ok(vec![Item::NotAccess(NotAccess::NoRelation)]));
        // Said once; a statement not logged or not SQL is unattributable, naming the setting.
        for (i, why) in [(4, "no statement logged"), (5, "cannot be parsed")] {
            let Ok(items) = &got[i].1 else {
                panic!("{got:?}")
            };
            let [Item::Skipped(error)] = items.as_slice() else {
                panic!("{items:?}")
            };
            assert_eq!(error.kind(), crate::format::UNATTRIBUTABLE);
            let message = error.to_string();
            assert!(message.contains(why) && message.contains("pgaudit.log_relation = on"));
        }
        assert_eq!(got[6].1, Ok(vec![Item::NotAccess(NotAccess::NoRelation)]));
    }

    #[test]
    fn rds_prefix_is_recognised_from_any_line_kind_not_only_audit_lines() {
        // An RDS log that starts with a checkpoint and a connection: no line is malformed.
        let got = events(&[
            "2026-03-18 10:00:00 UTC::@:[367]:LOG:  checkpoint starting: time",
            "2026-03-18 10:00:01 UTC:10.0.1.15(52314):[unknown]@[unknown]:[9012]:LOG:  connection received: host=10.0.1.15 port=52314",
            "2026-03-18 10:00:02 UTC:10.0.1.15(52314):alice@shop:[9012]:LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select * from orders,<not logged>",
            "2026-03-18 10:00:03 UTC:10.0.1.15(52314):alice@shop:[9012]:ERROR:  relation \"nope\" does not exist at character 15",
            "2026-03-18 10:00:03 UTC:10.0.1.15(52314):alice@shop:[9012]:STATEMENT:  select * from nope",
        ]);
        let Ok(first) = &got[0].1 else {
            panic!("{got:?}")
        };
        let notice = notice_of(first).expect("the inferred prefix is said");
        assert!(notice.contains("`%t:%r:%u@%d:[%p]:`"), "{notice}");
        let log_line = Item::NotAccess(NotAccess::LogLine);
        assert!(first.contains(&log_line), "{first:?}");
        assert_eq!(got[1].1, Ok(vec![log_line.clone()]));
        assert_eq!(
            got[2].1,
            Ok(vec![read(
                "2026-03-18 10:00:02 UTC",
                "alice",
                "public.orders"
            )])
        );
        assert_eq!(got[3].1, Ok(vec![log_line.clone()]));
        assert_eq!(got[4].1, Ok(vec![log_line]));
        // A line no known prefix matches is still malformed, naming the prefix to set.
        let got = events(&["garbage that is no server line"]);
        let error = got[0].1.as_ref().unwrap_err().to_string();
        assert!(error.contains("log_line_prefix"), "{error}");
    }

    #[test]
    fn the_default_prefix_without_user_takes_it_from_the_login_of_the_process() {
        // PostgreSQL's own default prefix `%m [%p] ` with log_connections = on; the configured
        // prefix (Debian's) does not match: the known one that does is used, and said.
        let got = events(&[
            "2026-11-26 22:04:40.100 UTC [4242] LOG:  connection received: host=[local]",
            "2026-11-26 22:04:40.101 UTC [4242] LOG:  connection authorized: user=alice database=shop application_name=psql",
            "2026-11-26 22:04:41.000 UTC [4242] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select * from orders,<not logged>",
            "2026-11-26 22:04:41.500 UTC [4243] LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select * from orders,<not logged>",
            "2026-11-26 22:04:42.000 UTC [4242] LOG:  disconnection: session time: 0:00:01.900 user=alice database=shop host=[local]",
        ]);
        let Ok(items) = &got[1].1 else {
            panic!("{got:?}")
        };
        let notice = notice_of(items).expect("the inferred prefix is said");
        assert!(notice.contains("`%m [%p] `"), "{notice}");
        assert_eq!(
            got[2].1,
            Ok(vec![read(
                "2026-11-26 22:04:41 UTC",
                "alice",
                "public.orders"
            )])
        );
        // A process whose login was not seen: the message says what to turn on.
        let error = got[3].1.as_ref().unwrap_err().to_string();
        assert!(
            error.contains("no %u") && error.contains("log_connections") && error.contains("4243"),
            "{error}"
        );
        assert_eq!(got[4].1, Ok(vec![Item::NotAccess(NotAccess::LogLine)]));
    }

    #[test]
    fn an_audit_line_the_prefix_does_not_match_is_never_not_access() {
        // YugabyteDB's recommended prefix (yugabytedb.tips, "Change the Format of Audit Log
        // Entries for YSQL"), with its own escapes %C %R %Z %H: configured, it is read...
        let yugabyte = "%m [%p %l %c] %q[%C %R %Z %H] [%r %a %u %d] ";
        let line = "2023-04-07 12:55:34.123 UTC [3416 5 643010a6.d58] [aws us-east-1 us-east-1a yb-node-1] [10.0.0.7(41130) ysqlsh alice yugabyte] LOG:  AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.employees,select * from employees;,<not logged>";
        assert_eq!(
            events_with(yugabyte, &[line])[0].1,
            Ok(vec![read(
                "2023-04-07 12:55:34.123 UTC",
                "alice",
                "public.employees"
            )])
        );
        // ... and not configured (Debian's default instead), it is recognised and said.
        let got = events(&[line]);
        let Ok(items) = &got[0].1 else {
            panic!("{got:?}")
        };
        assert!(notice_of(items).unwrap().contains(yugabyte));
        assert!(items.contains(&read(
            "2023-04-07 12:55:34.123 UTC",
            "alice",
            "public.employees"
        )));
        // A prefix nobody uses: an error that shows the line's start, never "not access".
        let odd = "2026-11-26 22:04:41 UTC <<pid 7>> {alice} LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.t,select 1,<none>";
        let error = events(&[odd])[0].1.as_ref().unwrap_err().to_string();
        assert!(
            error.contains("<<pid 7>> {alice}") && error.contains("log_line_prefix"),
            "{error}"
        );
    }

    #[test]
    fn the_prefixes_pgaudit_and_pgbadger_document_are_recognised() {
        for (prefix, line) in [
            // pgaudit's README: "A typical log line prefix might be '%m %u %d [%p]: '".
            (
                "%m %u %d [%p]: ",
                "2026-11-26 22:04:41.000 UTC alice shop [4242]: LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select 1,<none>",
            ),
            // pgBadger's documented prefix for stderr logs.
            (
                "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ",
                "2026-11-26 22:04:41 UTC [4242]: [3-1] user=alice,db=shop,app=psql,client=10.0.0.7 LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.orders,select 1,<none>",
            ),
        ] {
            let got = events(&[line]);
            let Ok(items) = &got[0].1 else {
                panic!("{prefix}: {got:?}")
            };
            assert!(notice_of(items).unwrap().contains(prefix), "{items:?}");
            assert!(
                items.iter().any(|i| matches!(i, Item::Event(e) if e.principal == "alice" && e.table == "public.orders")),
                "{prefix}: {items:?}"
            );
        }
    }
}
