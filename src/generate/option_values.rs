//! How each kind of option value is read, whatever the source (JSON files, the CLI's flags,
//! JS objects): `null` is "not set", and a wrong value fails with a message that reads after
//! the option's quoted name (`"seed" must be a non-negative integer, found -1`).

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use serde_json::Value;

type Read<T, E> = Result<Option<T>, E>;

/// transformers' `early_stopping`: stop a beam search once `num_beams` hypotheses are done
/// (True), when no better one seems possible (False), or only at `max_length` ("never").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    True,
    #[default]
    False,
    Never,
}

/// The value, unless it is null.
fn value<'de, D: Deserializer<'de>>(d: D) -> Read<Value, D::Error> {
    Ok(Some(Value::deserialize(d)?).filter(|v| !v.is_null()))
}

/// The value read by `read`, or an error saying what it `must` be.
fn checked<'de, D: Deserializer<'de>, T>(
    d: D,
    must: &str,
    read: impl Fn(&Value) -> Option<T>,
) -> Read<T, D::Error> {
    match value(d)? {
        None => Ok(None),
        Some(v) => read(&v)
            .map(Some)
            .ok_or_else(|| de::Error::custom(format!("must be {must}, found {v}"))),
    }
}

pub fn count<'de, D: Deserializer<'de>>(d: D) -> Read<usize, D::Error> {
    checked(d, "a non-negative integer", |v| {
        v.as_u64().and_then(|n| usize::try_from(n).ok())
    })
}

pub fn seed<'de, D: Deserializer<'de>>(d: D) -> Read<u64, D::Error> {
    checked(d, "a non-negative integer", Value::as_u64)
}

pub fn number<'de, D: Deserializer<'de>>(d: D) -> Read<f32, D::Error> {
    checked(d, "a number", |v| v.as_f64().map(|n| n as f32))
}

pub fn flag<'de, D: Deserializer<'de>>(d: D) -> Read<bool, D::Error> {
    checked(d, "true or false", Value::as_bool)
}

fn token_id(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|n| u32::try_from(n).ok())
}

/// One token id or a list of them (transformers accepts both, as for `eos_token_id`).
pub fn ids<'de, D: Deserializer<'de>>(d: D) -> Read<Vec<u32>, D::Error> {
    let Some(v) = value(d)? else {
        return Ok(None);
    };
    let items = match &v {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    items
        .into_iter()
        .map(|item| {
            token_id(item)
                .ok_or_else(|| de::Error::custom(format!("must hold token ids, found {item}")))
        })
        .collect::<Result<Vec<u32>, D::Error>>()
        .map(Some)
}

/// A single id, where a list may be given (its first entry counts); an empty list is unset.
pub fn first_id<'de, D: Deserializer<'de>>(d: D) -> Read<u32, D::Error> {
    Ok(ids(d)?.and_then(|ids| ids.first().copied()))
}

pub fn id_lists<'de, D: Deserializer<'de>>(d: D) -> Read<Vec<Vec<u32>>, D::Error> {
    checked(d, "a list of lists of token ids", |v| {
        v.as_array()?
            .iter()
            .map(|inner| inner.as_array()?.iter().map(token_id).collect())
            .collect()
    })
}

pub fn text<'de, D: Deserializer<'de>>(d: D) -> Read<String, D::Error> {
    checked(d, "a string", |v| v.as_str().map(str::to_string))
}

/// A string or a list of strings.
pub fn strings<'de, D: Deserializer<'de>>(d: D) -> Read<Vec<String>, D::Error> {
    match value(d)? {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(vec![s])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| de::Error::custom("must be a string or a list of strings")),
        Some(v) => Err(de::Error::custom(format!(
            "must be a string or a list of strings, found {v}"
        ))),
    }
}

/// true, false or "never" (also the strings "true"/"True" and "false"/"False", as the CLI
/// passes them).
pub fn early_stopping<'de, D: Deserializer<'de>>(d: D) -> Read<EarlyStopping, D::Error> {
    checked(d, "true, false or \"never\"", |v| match v {
        Value::Bool(true) => Some(EarlyStopping::True),
        Value::Bool(false) => Some(EarlyStopping::False),
        Value::String(s) => match s.as_str() {
            "true" | "True" => Some(EarlyStopping::True),
            "false" | "False" => Some(EarlyStopping::False),
            "never" => Some(EarlyStopping::Never),
            _ => None,
        },
        _ => None,
    })
}

/// The field names a derived `Deserialize` asks for: serde hands them to
/// `deserialize_struct`, which this deserializer records instead of reading anything.
pub fn struct_fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Fields<'f>(&'f mut &'static [&'static str]);

    impl<'de> Deserializer<'de> for Fields<'_> {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("only a struct's field names are read"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            self.deserialize_any(visitor)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes
            byte_buf option unit unit_struct newtype_struct seq tuple tuple_struct map enum
            identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}
