//! Typed reads of JSON config files (config.json, generation_config.json) whose errors name
//! the file and the field.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Typed access to the fields of a JSON config file, with errors that name file and field.
pub struct ConfigJson<'a> {
    pub map: &'a Map<String, Value>,
    pub file: &'static str,
}

impl ConfigJson<'_> {
    pub fn error(&self, message: String) -> Error {
        Error::format(self.file, message)
    }

    pub fn usize(&self, key: &str) -> Result<usize> {
        match self.map.get(key) {
            Some(v) => v.as_u64().map(|n| n as usize).ok_or_else(|| {
                self.error(format!(
                    "\"{key}\" must be a non-negative integer, found {v}"
                ))
            }),
            None => Err(self.error(format!("missing field \"{key}\""))),
        }
    }

    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        if self.is_set(key) {
            self.usize(key)
        } else {
            Ok(default)
        }
    }

    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|n| n as f32)
                .ok_or_else(|| self.error(format!("\"{key}\" must be a number, found {v}"))),
        }
    }

    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.error(format!("\"{key}\" must be true or false, found {v}"))),
        }
    }

    pub fn str_or<'v>(&'v self, key: &str, default: &'v str) -> Result<&'v str> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(default),
            Some(v) => v
                .as_str()
                .ok_or_else(|| self.error(format!("\"{key}\" must be a string, found {v}"))),
        }
    }

    pub fn is_set(&self, key: &str) -> bool {
        !matches!(self.map.get(key), None | Some(Value::Null))
    }

    /// `eos_token_id` may be one id or a list.
    pub fn token_ids(&self, key: &str) -> Result<Vec<u32>> {
        match self.map.get(key) {
            Some(Value::Null) | None => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| self.token_id(key, v)).collect(),
            Some(v) => Ok(vec![self.token_id(key, v)?]),
        }
    }

    fn token_id(&self, key: &str, v: &Value) -> Result<u32> {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| self.error(format!("\"{key}\" must hold token ids, found {v}")))
    }
}
