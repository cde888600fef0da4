//! The canonical JSON-lines format: one object per line with a timestamp, a principal, a table and
//! an optional action, found at configurable dotted paths (`userIdentity.arn`). Parsing is one pass
//! of serde_json over the line that keeps only the mapped fields, borrowing their text. A line
//! with a `grantee` is a permission change: `action` `GRANT` or `REVOKE`, the principal its
//! actor, the table its object, with a `privilege` and an optional `statement`.
//!
//! When every field is a top-level key (the canonical shape), a first pass expects each field's
//! type and nothing else; a line it does not take (any error, any unusual value) goes through the
//! general pass, which alone decides what is wrong with it. Both give the same event.

use super::ParseError;
use crate::event::{AccessEvent, ChangeAction, PermissionChange};
use crate::time::{EpochUnit, parse_ts_str, ts_from_epoch_float, ts_from_epoch_int};
use serde::Deserializer as _;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Where each field of an event lives in the JSON object (`[input.fields]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FieldPaths {
    pub ts: String,
    pub principal: String,
    pub table: String,
    pub action: String,
    /// Optional row count of the access (kept by `exposure archive`; never required).
    pub rows: String,
    /// Optional byte count of the access (kept by `exposure archive`; never required).
    pub bytes: String,
    /// Whom a permission change is about; a line that has one is a permission change.
    pub grantee: String,
    /// The privilege a permission change grants or revokes.
    pub privilege: String,
    /// The statement of a permission change, as logged (optional).
    pub statement: String,
    /// Optional array of the column names the read touched (kept by `exposure archive`,
    /// reported by `exposure impact`; never required).
    pub columns: String,
}

impl Default for FieldPaths {
    fn default() -> Self {
        FieldPaths {
            ts: "ts".into(),
            principal: "principal".into(),
            table: "table".into(),
            action: "action".into(),
            rows: "rows".into(),
            bytes: "bytes".into(),
            grantee: "grantee".into(),
            privilege: "privilege".into(),
            statement: "statement".into(),
            columns: "columns".into(),
        }
    }
}

const TS: usize = 0;
const PRINCIPAL: usize = 1;
const TABLE: usize = 2;
const ACTION: usize = 3;
const ROWS: usize = 4;
const BYTES: usize = 5;
const GRANTEE: usize = 6;
const PRIVILEGE: usize = 7;
const STATEMENT: usize = 8;
const COLUMNS: usize = 9;
const SLOTS: usize = 10;

/// What one canonical line holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canonical<'a> {
    Access(AccessEvent<'a>),
    Permission(PermissionChange),
}

impl<'a> Canonical<'a> {
    /// The access event, if the line is one.
    pub fn access(self) -> Option<AccessEvent<'a>> {
        match self {
            Canonical::Access(event) => Some(event),
            Canonical::Permission(_) => None,
        }
    }
}

/// The mapped paths as a tree of object keys, walked once per line.
#[derive(Debug, Clone)]
struct Node {
    children: Vec<(Box<str>, Child)>,
}

#[derive(Debug, Clone)]
enum Child {
    Slot(usize),
    Inner(Node),
}

impl Node {
    #[inline]
    fn child(&self, key: &str) -> Option<&Child> {
        self.children
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, c)| c)
    }

    fn insert(&mut self, path: &[&str], slot: usize) -> Result<(), String> {
        let (head, rest) = path.split_first().expect("paths are not empty");
        let position = self.children.iter().position(|(k, _)| **k == **head);
        match (position, rest.is_empty()) {
            (None, true) => self.children.push(((*head).into(), Child::Slot(slot))),
            (None, false) => {
                let mut node = Node {
                    children: Vec::new(),
                };
                node.insert(rest, slot)?;
                self.children.push(((*head).into(), Child::Inner(node)));
            }
            (Some(i), false) => match &mut self.children[i].1 {
                Child::Inner(node) => node.insert(rest, slot)?,
                Child::Slot(_) => return Err(format!("`{head}` is both a field and an object")),
            },
            (Some(_), true) => return Err(format!("`{head}` is mapped twice")),
        }
        Ok(())
    }
}

/// Parses canonical JSON lines with a given field mapping.
#[derive(Debug, Clone)]
pub struct JsonLinesParser {
    root: Node,
    names: [String; SLOTS],
    epoch_unit: EpochUnit,
    /// Every path is one key: the fast first pass applies.
    flat: bool,
    /// The paths are the canonical names (`ts`, `principal`, ...): the fast pass matches keys
    /// against constants, which compiles to a few integer compares instead of string compares.
    canonical: bool,
}

impl JsonLinesParser {
    /// The path of the timestamp field (`[input.fields] ts`).
    pub fn ts_path(&self) -> &str {
        &self.names[0]
    }

    /// Builds a parser; fails when a path is empty or two paths collide.
    pub fn new(fields: &FieldPaths, epoch_unit: EpochUnit) -> Result<JsonLinesParser, String> {
        let names = [
            fields.ts.clone(),
            fields.principal.clone(),
            fields.table.clone(),
            fields.action.clone(),
            fields.rows.clone(),
            fields.bytes.clone(),
            fields.grantee.clone(),
            fields.privilege.clone(),
            fields.statement.clone(),
            fields.columns.clone(),
        ];
        let mut root = Node {
            children: Vec::new(),
        };
        for (slot, path) in names.iter().enumerate() {
            let parts: Vec<&str> = path.split('.').collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(format!("field path {path:?} has an empty segment"));
            }
            let inserted = root.insert(&parts, slot);
            // The optional extras give way to the four fields that matter.
            if slot < ROWS {
                inserted.map_err(|e| format!("field path {path:?}: {e}"))?;
            }
        }
        let flat = names.iter().all(|name| !name.contains('.'));
        let canonical = *fields == FieldPaths::default();
        Ok(JsonLinesParser {
            root,
            names,
            epoch_unit,
            flat,
            canonical,
        })
    }

    /// Parses one line (without its newline). Blank lines give `Ok(None)`.
    pub fn parse<'a>(&self, line: &'a [u8]) -> Result<Option<Canonical<'a>>, ParseError> {
        let Some(text) = object_text(line)? else {
            return Ok(None);
        };
        if self.canonical
            && let Some(event) = super::canonical::access(text)
        {
            return Ok(Some(Canonical::Access(event)));
        }
        self.parse_serde(text)
    }

    /// [`JsonLinesParser::parse`] without the canonical byte scanner: serde_json alone (its
    /// flat pass, then the general one). The scanner must agree with it on every line; the
    /// differential fuzz target and the property test call both.
    pub fn parse_with_serde<'a>(
        &self,
        line: &'a [u8],
    ) -> Result<Option<Canonical<'a>>, ParseError> {
        match object_text(line)? {
            Some(text) => self.parse_serde(text),
            None => Ok(None),
        }
    }

    fn parse_serde<'a>(&self, text: &'a str) -> Result<Option<Canonical<'a>>, ParseError> {
        if self.flat
            && let Some(event) = self.parse_flat(text)
        {
            return Ok(Some(Canonical::Access(event)));
        }
        let mut slots: [Option<Value<'a>>; SLOTS] = Default::default();
        let mut de = serde_json::Deserializer::from_str(text);
        let walked = de
            .deserialize_map(ObjectVisitor {
                node: &self.root,
                slots: &mut slots,
            })
            .and_then(|()| de.end());
        if let Err(e) = walked {
            return Err(ParseError::Json {
                message: crate::time::clip(&strip_position(&e), 160),
                column: e.column().max(1),
            });
        }
        let [
            ts,
            principal,
            table,
            action,
            rows,
            bytes,
            grantee,
            privilege,
            statement,
            columns,
        ] = slots;
        if let Some(grantee) = grantee.filter(|g| !matches!(g, Value::Null)) {
            return self
                .permission(ts, principal, table, action, grantee, privilege, statement)
                .map(|change| Some(Canonical::Permission(change)));
        }
        Ok(Some(Canonical::Access(AccessEvent {
            ts: self.timestamp(ts)?,
            principal: self.text(PRINCIPAL, principal)?,
            table: self.text(TABLE, table)?,
            action: match action {
                None | Some(Value::Null) => None,
                Some(Value::Str(s)) => Some(s),
                Some(other) => return Err(self.wrong_type(ACTION, "a string", &other)),
            },
            is_read: None,
            rows: rows.and_then(Value::count),
            bytes: bytes.and_then(Value::count),
            columns: columns.map(Value::names).unwrap_or_default(),
        })))
    }

    /// A line with a grantee: a permission change.
    #[allow(clippy::too_many_arguments)]
    fn permission(
        &self,
        ts: Option<Value<'_>>,
        actor: Option<Value<'_>>,
        object: Option<Value<'_>>,
        action: Option<Value<'_>>,
        grantee: Value<'_>,
        privilege: Option<Value<'_>>,
        statement: Option<Value<'_>>,
    ) -> Result<PermissionChange, ParseError> {
        let action = match action {
            Some(Value::Str(a)) => ChangeAction::parse(&a),
            _ => None,
        }
        .ok_or_else(|| ParseError::WrongType {
            field: self.names[ACTION].clone(),
            expected: "`GRANT` or `REVOKE` on a line with a grantee",
            found: "another value".into(),
        })?;
        let statement = match statement {
            None | Some(Value::Null) => None,
            Some(Value::Str(s)) => Some(s.into_owned()),
            Some(other) => return Err(self.wrong_type(STATEMENT, "a string", &other)),
        };
        Ok(PermissionChange {
            ts: self.timestamp(ts)?,
            action,
            object: self.text(TABLE, object)?.into_owned(),
            grantee: self.text(GRANTEE, Some(grantee))?.into_owned(),
            privilege: self.text(PRIVILEGE, privilege)?.into_owned(),
            actor: self.text(PRINCIPAL, actor)?.into_owned(),
            statement,
        })
    }

    /// The fast pass for flat mappings: `None` for any line it does not take as it is.
    fn parse_flat<'a>(&self, text: &'a str) -> Option<AccessEvent<'a>> {
        let mut de = serde_json::Deserializer::from_str(text);
        let fields = de.deserialize_map(FlatVisitor { parser: self }).ok()?;
        de.end().ok()?;
        let ts = match fields.ts? {
            FlatTs::Text(s) => parse_ts_str(&s, self.epoch_unit),
            FlatTs::Int(v) => ts_from_epoch_int(v, self.epoch_unit),
            FlatTs::Float(v) => ts_from_epoch_float(v, self.epoch_unit),
        }
        .ok()?;
        if fields.permission {
            // The general pass reads permission changes.
            return None;
        }
        let present = |s: Option<Cow<'a, str>>| s.filter(|s| !is_blank(s));
        Some(AccessEvent {
            ts,
            principal: present(fields.principal)?,
            table: present(fields.table)?,
            action: fields.action.flatten(),
            is_read: None,
            rows: fields.rows.flatten(),
            bytes: fields.bytes.flatten(),
            columns: fields.columns,
        })
    }

    /// The slot a top-level `key` maps to, if any.
    #[inline]
    fn slot_of(&self, key: &str) -> Option<usize> {
        if self.canonical {
            match key {
                "ts" => Some(TS),
                "principal" => Some(PRINCIPAL),
                "table" => Some(TABLE),
                "action" => Some(ACTION),
                "rows" => Some(ROWS),
                "bytes" => Some(BYTES),
                "grantee" => Some(GRANTEE),
                "privilege" => Some(PRIVILEGE),
                "statement" => Some(STATEMENT),
                "columns" => Some(COLUMNS),
                _ => None,
            }
        } else {
            self.names.iter().position(|name| *name == *key)
        }
    }

    fn timestamp(&self, value: Option<Value<'_>>) -> Result<i64, ParseError> {
        let field = || self.names[TS].clone();
        let parsed = match value {
            None | Some(Value::Null) => return Err(ParseError::MissingField { field: field() }),
            Some(Value::Str(s)) => parse_ts_str(&s, self.epoch_unit),
            Some(Value::I64(v)) => ts_from_epoch_int(v, self.epoch_unit),
            Some(Value::U64(v)) => {
                ts_from_epoch_int(i64::try_from(v).unwrap_or(i64::MAX), self.epoch_unit)
            }
            Some(Value::F64(v)) => ts_from_epoch_float(v, self.epoch_unit),
            Some(other) => {
                return Err(self.wrong_type(TS, "an RFC 3339 string or an epoch number", &other));
            }
        };
        parsed.map_err(|source| ParseError::Timestamp {
            field: field(),
            source,
        })
    }

    fn text<'a>(&self, slot: usize, value: Option<Value<'a>>) -> Result<Cow<'a, str>, ParseError> {
        match value {
            None | Some(Value::Null) => Err(ParseError::MissingField {
                field: self.names[slot].clone(),
            }),
            Some(Value::Str(s)) if is_blank(&s) => Err(ParseError::EmptyField {
                field: self.names[slot].clone(),
            }),
            Some(Value::Str(s)) => Ok(s),
            Some(other) => Err(self.wrong_type(slot, "a string", &other)),
        }
    }

    fn wrong_type(&self, slot: usize, expected: &'static str, found: &Value<'_>) -> ParseError {
        ParseError::WrongType {
            field: self.names[slot].clone(),
            expected,
            found: found.describe(),
        }
    }
}

/// The line as text, if it holds an object (`None` if blank); an error naming the column
/// otherwise.
fn object_text(line: &[u8]) -> Result<Option<&str>, ParseError> {
    let text = super::utf8_text(line)?;
    let start = text.len() - text.trim_ascii_start().len();
    match text.as_bytes().get(start) {
        None => Ok(None),
        Some(b'{') => Ok(Some(text)),
        Some(_) => Err(ParseError::Json {
            message: "expected a JSON object (a line starting with `{`)".into(),
            column: start + 1,
        }),
    }
}

/// Empty or only white space (checked without trimming: the first other character ends it).
#[inline]
pub(super) fn is_blank(s: &str) -> bool {
    // Almost every name starts with a printable ASCII character.
    match s.as_bytes().first() {
        Some(b) if b.is_ascii_graphic() => false,
        _ => s.chars().all(char::is_whitespace),
    }
}

/// The mapped fields of a flat line as the fast pass found them.
#[derive(Default)]
struct FlatFields<'a> {
    ts: Option<FlatTs<'a>>,
    principal: Option<Cow<'a, str>>,
    table: Option<Cow<'a, str>>,
    /// `Some(None)`: present and null.
    action: Option<Option<Cow<'a, str>>>,
    rows: Option<Option<i64>>,
    bytes: Option<Option<i64>>,
    /// Column names (an array of strings, or `null`).
    columns: Vec<Cow<'a, str>>,
    /// A permission-change field was present.
    permission: bool,
}

enum FlatTs<'a> {
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
}

/// Reads one flat object, asking serde_json for each mapped field's expected type: anything
/// else is an error here (and the general pass reports it).
struct FlatVisitor<'p> {
    parser: &'p JsonLinesParser,
}

impl<'de> Visitor<'de> for FlatVisitor<'_> {
    type Value = FlatFields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FlatFields<'de>, A::Error> {
        let mut fields = FlatFields::default();
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match self.parser.slot_of(&key) {
                Some(TS) => fields.ts = Some(map.next_value::<FlatTs<'de>>()?),
                Some(PRINCIPAL) => fields.principal = Some(map.next_value::<Text<'de>>()?.0),
                Some(TABLE) => fields.table = Some(map.next_value::<Text<'de>>()?.0),
                Some(ACTION) => {
                    let action = map.next_value::<Option<Text<'de>>>()?;
                    fields.action = Some(action.map(|a| a.0));
                }
                Some(ROWS) => fields.rows = Some(map.next_value::<Value<'de>>()?.count()),
                Some(BYTES) => fields.bytes = Some(map.next_value::<Value<'de>>()?.count()),
                // Anything but an array of strings or `null` is the general pass's.
                Some(COLUMNS) => {
                    let names = map.next_value::<Option<Vec<Text<'de>>>>()?;
                    fields.columns = names.unwrap_or_default().into_iter().map(|t| t.0).collect();
                }
                Some(_) => {
                    fields.permission = true;
                    map.next_value::<IgnoredAny>()?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

impl<'de> de::Deserialize<'de> for FlatTs<'de> {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct TsVisitor;
        impl<'de> Visitor<'de> for TsVisitor {
            type Value = FlatTs<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<FlatTs<'de>, E> {
                Ok(FlatTs::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<FlatTs<'de>, E> {
                Ok(FlatTs::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FlatTs<'de>, E> {
                Ok(FlatTs::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FlatTs<'de>, E> {
                Ok(FlatTs::Int(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E>(self, v: f64) -> Result<FlatTs<'de>, E> {
                Ok(FlatTs::Float(v))
            }
        }
        de.deserialize_any(TsVisitor)
    }
}

/// serde_json appends " at line 1 column N"; the reporter prints the position itself.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// A mapped field's value, keeping only what the event needs.
#[derive(Debug, Clone, PartialEq)]
enum Value<'a> {
    Str(Cow<'a, str>),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Null,
    Object,
    /// Its string elements (others are not names: dropped).
    Array(Vec<Cow<'a, str>>),
}

impl<'a> Value<'a> {
    /// Column names: an array's strings (anything else names none; extras of the wrong type
    /// are dropped, not errors).
    fn names(self) -> Vec<Cow<'a, str>> {
        match self {
            Value::Array(names) => names,
            _ => Vec::new(),
        }
    }

    /// A non-negative count, if this is one (extras of the wrong type are dropped, not errors).
    fn count(self) -> Option<i64> {
        match self {
            Value::I64(v) if v >= 0 => Some(v),
            Value::U64(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("string {}", crate::time::excerpt(s)),
            Value::I64(v) => format!("number {v}"),
            Value::U64(v) => format!("number {v}"),
            Value::F64(v) => format!("number {v}"),
            Value::Bool(v) => format!("boolean {v}"),
            Value::Null => "null".into(),
            Value::Object => "an object".into(),
            Value::Array(_) => "an array".into(),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Value<'de>, E> {
        Ok(Value::Str(Cow::Owned(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value<'de>, E> {
        Ok(Value::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value<'de>, E> {
        Ok(Value::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value<'de>, E> {
        Ok(Value::F64(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Value::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut names = Vec::new();
        while let Some(element) = seq.next_element::<Value<'de>>()? {
            if let Value::Str(name) = element {
                names.push(name);
            }
        }
        Ok(Value::Array(names))
    }
}

impl<'de> de::Deserialize<'de> for Value<'de> {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(ValueVisitor)
    }
}

/// A string (an object key or a value), borrowed unless it had escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        de.deserialize_str(TextVisitor)
    }
}

/// Walks one object level: captures mapped leaves, descends into mapped objects, skips the rest.
struct ObjectVisitor<'n, 's, 'de> {
    node: &'n Node,
    slots: &'s mut [Option<Value<'de>>; SLOTS],
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            match self.node.child(&key) {
                Some(Child::Slot(slot)) => {
                    self.slots[*slot] = Some(map.next_value::<Value<'de>>()?)
                }
                Some(Child::Inner(node)) => map.next_value_seed(NestedSeed {
                    node,
                    slots: &mut *self.slots,
                })?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A value on a mapped path's way: an object is walked, anything else is skipped (its leaves
/// are then reported missing).
struct NestedSeed<'n, 's, 'de> {
    node: &'n Node,
    slots: &'s mut [Option<Value<'de>>; SLOTS],
}

impl<'de> DeserializeSeed<'de> for NestedSeed<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NestedSeed<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        ObjectVisitor {
            node: self.node,
            slots: self.slots,
        }
        .visit_map(map)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser() -> JsonLinesParser {
        JsonLinesParser::new(&FieldPaths::default(), EpochUnit::Auto).unwrap()
    }

    const T: i64 = 1_773_842_531_512_000;

    /// The fast pass for flat mappings takes only lines it reads exactly as the general pass
    /// does: every line gives the same event or the same error either way.
    #[test]
    fn the_fast_pass_and_the_general_pass_agree_on_every_line() {
        let mut lines: Vec<Vec<u8>> = [
            r#"{"ts":"2026-03-18T14:02:11.512Z","principal":"a","table":"t","action":"SELECT"}"#,
            r#"{"ts":"2026-03-18T16:02:11+02:00","principal":"a","table":"t"}"#,
            r#"{"ts":1773842531512,"principal":"a","table":"t","action":null}"#,
            r#"{"ts":1773842531.512,"principal":"a","table":"t","rows":5,"bytes":-1}"#,
            r#"{"ts":18446744073709551615,"principal":"a","table":"t"}"#,
            r#"{"ts":"1773842531512","principal":"a","table":"t","rows":"5","bytes":{"x":1}}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a\u00e9\n","table":"t\"q","action":"GET"}"#,
            r#"{"t\u0073":"2026-03-18T14:02:11Z","principal":"a","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","principal":"b","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":{"a":1},"principal":"b","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"b","principal":{"a":1},"table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"  ","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"\u2003","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":7,"table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t","action":7}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t","action":["x"]}"#,
            r#"{"ts":null,"principal":"a","table":"t"}"#,
            r#"{"ts":true,"principal":"a","table":"t"}"#,
            r#"{"ts":"yesterday","principal":"a","table":"t"}"#,
            r#"{"ts":"2026-02-30T00:00:00Z","principal":"a","table":"t"}"#,
            r#"{"ts":" 2026-03-18T14:02:11Z ","principal":"a","table":"t"}"#,
            r#"{"principal":"a","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","table":"t"}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t"} x"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t""#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t",}"#,
            r#"{"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t","x":[1,{"y":null}]}"#,
            r#"  {"ts":"2026-03-18T14:02:11Z","principal":"a","table":"t"}  "#,
            r#"[1,2]"#,
            r#"{}"#,
            "",
        ]
        .iter()
        .map(|l| l.as_bytes().to_vec())
        .collect();
        lines.push(
            b"{\"ts\":\"2026-03-18T14:02:11Z\",\"principal\":\"\xff\",\"table\":\"t\"}".to_vec(),
        );
        for file in std::fs::read_dir("tests/data/malformed").unwrap() {
            let text = std::fs::read(file.unwrap().path()).unwrap();
            lines.extend(text.split(|b| *b == b'\n').map(<[u8]>::to_vec));
        }
        let fast = parser();
        assert!(fast.flat);
        let general = JsonLinesParser {
            flat: false,
            ..parser()
        };
        for line in &lines {
            assert_eq!(
                fast.parse(line),
                general.parse(line),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn parses_the_canonical_line_and_ignores_other_fields() {
        let line = br#"{"ts":"2026-03-18T14:02:11.512Z","principal":"alice@corp","table":"hr.salaries","action":"SELECT","rows":12,"extra":{"a":[1,2]}}"#;
        let event = parser().parse(line).unwrap().unwrap().access().unwrap();
        assert_eq!(event.ts, T);
        assert_eq!(event.principal, "alice@corp");
        assert_eq!(event.table, "hr.salaries");
        assert_eq!(event.action.as_deref(), Some("SELECT"));
        assert!(matches!(event.principal, Cow::Borrowed(_)));
    }

    #[test]
    fn timestamps_in_every_accepted_shape() {
        for ts in [
            r#""2026-03-18T16:02:11.512+02:00""#,
            "1773842531512",
            "1773842531.512",
            r#""1773842531512""#,
        ] {
            let line = format!(r#"{{"ts":{ts},"principal":"a","table":"t"}}"#);
            let event = parser()
                .parse(line.as_bytes())
                .unwrap()
                .unwrap()
                .access()
                .unwrap();
            assert_eq!(event.ts, T, "{ts}");
            assert_eq!(event.action, None);
        }
    }

    #[test]
    fn dotted_paths_reach_into_nested_objects() {
        let fields = FieldPaths {
            ts: "eventTime".into(),
            principal: "userIdentity.arn".into(),
            table: "resource.table.name".into(),
            action: "eventName".into(),
            ..FieldPaths::default()
        };
        let parser = JsonLinesParser::new(&fields, EpochUnit::Auto).unwrap();
        let line = br#"{"eventName":"GetObject","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::1:user/bob"},"resource":{"table":{"name":"s3://b/k"}},"eventTime":"2026-03-18T14:02:11.512Z"}"#;
        let event = parser.parse(line).unwrap().unwrap().access().unwrap();
        assert_eq!(event.principal, "arn:aws:iam::1:user/bob");
        assert_eq!(event.table, "s3://b/k");
        let missing =
            br#"{"eventName":"GetObject","userIdentity":"bob","resource":{},"eventTime":1}"#;
        assert_eq!(
            parser.parse(missing).unwrap_err(),
            ParseError::MissingField {
                field: "userIdentity.arn".into()
            }
        );
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let line = br#"{"ts":1773842531512,"principal":"a\u0040corp","table":"s\/t"}"#;
        let event = parser().parse(line).unwrap().unwrap().access().unwrap();
        assert_eq!(event.principal, "a@corp");
        assert_eq!(event.table, "s/t");
    }

    #[test]
    fn every_kind_of_bad_line_is_a_precise_error() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "not_json"),
            (br#"{"ts":1773842531512,"principal":"a""#, "not_json"),
            (br#"[1,2]"#, "not_json"),
            (
                br#"{"ts":1773842531512,"principal":"a","table":"t"} x"#,
                "not_json",
            ),
            (
                b"{\"ts\":1773842531512,\"principal\":\"a\xff\",\"table\":\"t\"}",
                "invalid_utf8",
            ),
            (br#"{"principal":"a","table":"t"}"#, "missing_field"),
            (br#"{"ts":1773842531512,"table":"t"}"#, "missing_field"),
            (
                br#"{"ts":1773842531512,"principal":"a","table":null}"#,
                "missing_field",
            ),
            (
                br#"{"ts":1773842531512,"principal":7,"table":"t"}"#,
                "wrong_type",
            ),
            (br#"{"ts":true,"principal":"a","table":"t"}"#, "wrong_type"),
            (
                br#"{"ts":1773842531512,"principal":"a","table":"t","action":5}"#,
                "wrong_type",
            ),
            (
                br#"{"ts":1773842531512,"principal":"  ","table":"t"}"#,
                "empty_field",
            ),
            (
                br#"{"ts":"last tuesday","principal":"a","table":"t"}"#,
                "bad_timestamp",
            ),
            (
                br#"{"ts":"2026-02-30T00:00:00Z","principal":"a","table":"t"}"#,
                "bad_timestamp",
            ),
        ];
        for (line, kind) in cases {
            let err = parser().parse(line).unwrap_err();
            assert_eq!(
                err.kind(),
                *kind,
                "{} -> {err}",
                String::from_utf8_lossy(line)
            );
        }
        let err = parser()
            .parse(b"{\"ts\":1,\"principal\":\"a\xff\"}")
            .unwrap_err();
        assert_eq!(err.column(), Some(23));
        let err = parser().parse(b"  [1]").unwrap_err();
        assert_eq!(err.column(), Some(3));
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        let err = parser().parse(br#"{"ts":1, principal}"#).unwrap_err();
        assert_eq!(err.column(), Some(10));
        assert_eq!(err.to_string(), "not valid JSON: key must be a string");
    }

    #[test]
    fn rows_and_bytes_are_optional_extras() {
        let line = br#"{"ts":1773842531512,"principal":"a","table":"t","rows":12,"bytes":"many"}"#;
        let event = parser().parse(line).unwrap().unwrap().access().unwrap();
        assert_eq!((event.rows, event.bytes), (Some(12), None));
        let fields = FieldPaths {
            table: "rows".into(),
            ..FieldPaths::default()
        };
        let event = JsonLinesParser::new(&fields, EpochUnit::Auto)
            .unwrap()
            .parse(br#"{"ts":1773842531512,"principal":"a","rows":"t"}"#)
            .unwrap()
            .unwrap()
            .access()
            .unwrap();
        assert_eq!((event.table.as_ref(), event.rows), ("t", None));
    }

    #[test]
    fn a_line_with_a_grantee_is_a_permission_change() {
        let line = br#"{"ts":"2026-03-18T14:02:11.512Z","principal":"dba","table":"hr.salaries","action":"grant","grantee":"PUBLIC","privilege":"SELECT","statement":"GRANT SELECT ON hr.salaries TO PUBLIC"}"#;
        let change = match parser().parse(line).unwrap().unwrap() {
            Canonical::Permission(change) => change,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            change,
            PermissionChange {
                ts: T,
                action: ChangeAction::Grant,
                object: "hr.salaries".into(),
                grantee: "PUBLIC".into(),
                privilege: "SELECT".into(),
                actor: "dba".into(),
                statement: Some("GRANT SELECT ON hr.salaries TO PUBLIC".into()),
            }
        );
        // The fast pass leaves permission changes to the general pass, which says what is wrong.
        let bad = [
            (
                r#"{"ts":1,"principal":"a","table":"t","action":"SELECT","grantee":"b","privilege":"SELECT"}"#,
                "wrong_type",
            ),
            (
                r#"{"ts":1,"principal":"a","table":"t","action":"REVOKE","grantee":"b"}"#,
                "missing_field",
            ),
            (
                r#"{"ts":1,"principal":"a","table":"t","action":"REVOKE","grantee":"","privilege":"SELECT"}"#,
                "empty_field",
            ),
            (
                r#"{"ts":1,"principal":"a","table":"t","action":"REVOKE","grantee":"b","privilege":"SELECT","statement":1}"#,
                "wrong_type",
            ),
        ];
        for (line, kind) in bad {
            assert_eq!(
                parser().parse(line.as_bytes()).unwrap_err().kind(),
                kind,
                "{line}"
            );
        }
        // A null grantee is an access event.
        let line = br#"{"ts":1,"principal":"a","table":"t","action":"SELECT","grantee":null}"#;
        assert!(parser().parse(line).unwrap().unwrap().access().is_some());
    }

    #[test]
    fn blank_lines_are_not_events() {
        assert_eq!(parser().parse(b"").unwrap(), None);
        assert_eq!(parser().parse(b"  \r").unwrap(), None);
    }

    #[test]
    fn colliding_paths_are_rejected() {
        let fields = FieldPaths {
            principal: "user".into(),
            table: "user.table".into(),
            ..FieldPaths::default()
        };
        assert!(JsonLinesParser::new(&fields, EpochUnit::Auto).is_err());
        let fields = FieldPaths {
            principal: "a..b".into(),
            ..FieldPaths::default()
        };
        assert!(JsonLinesParser::new(&fields, EpochUnit::Auto).is_err());
    }
}
