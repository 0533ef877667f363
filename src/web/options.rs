//! Generation options from a JS object: transformers' names in camelCase, read by the same
//! parser as generation_config.json and the CLI, so every check and message is shared.

use serde_json::{Map, Value};
use wasm_bindgen::prelude::*;

use crate::generate::GenerationOptions;

/// Keys that are not generation settings but handled by the caller.
const CALLBACK_KEYS: [&str; 2] = ["onToken", "signal"];

pub fn parse(options: &JsValue) -> Result<GenerationOptions, JsError> {
    parse_without(options, &[])
}

/// Like [`parse`], leaving out `other` keys that the caller reads itself.
pub fn parse_without(options: &JsValue, other: &[&str]) -> Result<GenerationOptions, JsError> {
    if options.is_undefined() || options.is_null() {
        return Ok(GenerationOptions::default());
    }
    let text = js_sys::JSON::stringify(options)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| JsError::new("generate options must be a plain object"))?;
    let given: Map<String, Value> = match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => map,
        _ => return Err(JsError::new("generate options must be a plain object")),
    };
    let mut snake = Map::new();
    for (key, value) in given {
        if CALLBACK_KEYS.contains(&key.as_str()) || other.contains(&key.as_str()) {
            continue;
        }
        let Some(name) = GenerationOptions::names()
            .iter()
            .find(|k| GenerationOptions::js_name(k) == key)
        else {
            return Err(JsError::new(&format!("unknown generate option \"{key}\"")));
        };
        snake.insert(name.to_string(), value);
    }
    GenerationOptions::from_json(&snake, "generate options")
        .map_err(|e| JsError::new(&e.to_string()))
}
