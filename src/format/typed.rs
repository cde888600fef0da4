//! What the typed, borrowed fast paths of the JSON vendor formats share (`parse_fast` in
//! `cloudtrail`, `gcp`, `snowflake`, `databricks`): reading a line into a `#[derive(Deserialize)]`
//! struct of borrowed strings, with the same reading of the JSON as the `serde_json::Value` path
//! that stays the authority.
//!
//! One difference has to be closed by hand: serde's derived structs also accept a JSON **array**,
//! its elements taken as the fields in order, where a look-up in a `Value` finds nothing in an
//! array. [`from_object`] and [`object`] read a struct from a JSON object only: anything else is
//! an error, and the fast path gives way.

use serde::de::{Deserialize, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use std::marker::PhantomData;

/// A struct of `text`, the whole line, if it is one JSON object the struct reads; `None`
/// otherwise (then the `Value` path reads it, and words any error). The line must be valid
/// UTF-8 as a whole: serde_json skips the values of keys a struct does not name without checking
/// their UTF-8, where the `Value` path checks every byte.
pub(crate) fn from_object<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Option<T> {
    let text = std::str::from_utf8(line).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(ObjectOnly(&mut de)).ok()?;
    de.end().ok()?;
    Some(value)
}

/// For a field holding a nested struct (`#[serde(default, deserialize_with = "object")]` on an
/// `Option<T>`): absent or `null` is `None`, an object is read into `T`, anything else (an array
/// above all) is an error.
pub(crate) fn object<'de, D, T>(de: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OptionalObject<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for OptionalObject<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Option<T>, D::Error> {
            T::deserialize(ObjectOnly(de)).map(Some)
        }
    }
    de.deserialize_option(OptionalObject(PhantomData))
}

/// For a field holding an array of structs (`#[serde(default, deserialize_with =
/// "array_of_objects")]` on an `Option<Vec<T>>`): absent is `None`, an array of objects is read,
/// anything else — `null` too, which a `Value` look-up tells from absent — is an error.
pub(crate) fn array_of_objects<'de, D, T>(de: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Objects<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Objects<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            objects_in(seq)
        }
    }
    de.deserialize_seq(Objects(PhantomData)).map(Some)
}

/// The elements of a JSON array, each an object read into `T` (anything else is an error).
pub(crate) fn objects_in<'de, A, T>(mut seq: A) -> Result<Vec<T>, A::Error>
where
    A: SeqAccess<'de>,
    T: Deserialize<'de>,
{
    struct Element<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Element<T> {
        type Value = T;
        fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T, D::Error> {
            T::deserialize(ObjectOnly(de))
        }
    }
    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
    while let Some(element) = seq.next_element_seed(Element(PhantomData))? {
        out.push(element);
    }
    Ok(out)
}

/// A deserializer that reads a struct from a map only (serde_json's own also takes a sequence).
/// Meant for derived structs: everything else goes to the inner deserializer's
/// `deserialize_any`.
struct ObjectOnly<D>(D);

impl<'de, D: Deserializer<'de>> Deserializer<'de> for ObjectOnly<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Outer<'a> {
        #[serde(borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(default, deserialize_with = "object")]
        inner: Option<Inner>,
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Inner {
        n: Option<i64>,
    }

    #[test]
    fn structs_are_read_from_objects_only() {
        fn outer(line: &str) -> Option<Outer<'_>> {
            from_object(line.as_bytes())
        }
        assert_eq!(
            outer(r#"{"name":"a","inner":{"n":1},"other":[1]}"#),
            Some(Outer {
                name: Some("a".into()),
                inner: Some(Inner { n: Some(1) })
            })
        );
        assert_eq!(outer(r#"{"name":"a","inner":null}"#).unwrap().inner, None);
        assert_eq!(outer(r#"{"name":"a"}"#).unwrap().inner, None);
        // serde_json's derived structs alone would take these arrays as fields in order.
        assert_eq!(outer(r#"["a",{"n":1}]"#), None);
        assert_eq!(outer(r#"{"name":"a","inner":[1]}"#), None);
        assert_eq!(outer(r#"{"name":"a"} x"#), None);
        assert_eq!(outer(r#"{"name":"a","name":"b"}"#), None);
    }

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct List {
        #[serde(default, deserialize_with = "array_of_objects")]
        items: Option<Vec<Inner>>,
    }

    #[test]
    fn arrays_of_structs_hold_objects_only_and_null_is_not_absent() {
        let list = |line: &str| from_object::<List>(line.as_bytes()).map(|l| l.items);
        assert_eq!(
            list(r#"{"items":[{"n":1},{}]}"#),
            Some(Some(vec![Inner { n: Some(1) }, Inner { n: None }]))
        );
        assert_eq!(list(r#"{}"#), Some(None));
        assert_eq!(list(r#"{"items":null}"#), None);
        assert_eq!(list(r#"{"items":[[1]]}"#), None);
        assert_eq!(list(r#"{"items":{"n":1}}"#), None);
    }
}
