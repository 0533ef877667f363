//! What `tokenizer_config.json` and `special_tokens_map.json` say about a tokenizer: its
//! class, special tokens, extra ids and the options of its family (Pegasus' offset, M2M100's
//! language list, NLLB's legacy placement, default languages).

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::formats::layout::TokenizerFiles;

#[derive(Debug, Default)]
pub struct Settings {
    /// transformers' tokenizer class without a `Fast` suffix (`T5Tokenizer`), from
    /// tokenizer_config.json or, failing that, from the model type.
    pub class: Option<String>,
    config: Map<String, Value>,
    /// special_tokens_map.json
    special: Map<String, Value>,
}

/// A token given as a string or as an AddedToken object (`{"content": ...}`).
fn token_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

fn json_object(file: &str, bytes: Option<&[u8]>) -> Result<Map<String, Value>> {
    let Some(bytes) = bytes else {
        return Ok(Map::new());
    };
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Error::format(file, "expected a JSON object")),
        Err(e) => Err(Error::format(file, e)),
    }
}

/// The tokenizer class transformers' AutoTokenizer picks for a model type when the folder's
/// tokenizer_config.json names none.
fn class_of_model_type(model_type: &str) -> Option<&'static str> {
    Some(match model_type {
        "t5" | "mt5" => "T5Tokenizer",
        "bart" => "BartTokenizer",
        "mbart" => "MBartTokenizer",
        "marian" => "MarianTokenizer",
        "m2m_100" => "M2M100Tokenizer",
        "pegasus" => "PegasusTokenizer",
        _ => return None,
    })
}

impl Settings {
    pub fn read(files: &TokenizerFiles, model_type: Option<&str>) -> Result<Settings> {
        let config = json_object("tokenizer_config.json", files.get("tokenizer_config.json"))?;
        let special = json_object(
            "special_tokens_map.json",
            files.get("special_tokens_map.json"),
        )?;
        let class = match config.get("tokenizer_class") {
            Some(Value::String(name)) => Some(name.trim_end_matches("Fast").to_string()),
            Some(Value::Null) | None => {
                model_type.and_then(class_of_model_type).map(str::to_string)
            }
            Some(other) => {
                return Err(Error::format(
                    "tokenizer_config.json",
                    format!("\"tokenizer_class\" must be a string, found {other}"),
                ));
            }
        };
        Ok(Settings {
            class,
            config,
            special,
        })
    }

    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// A special token (`eos_token`, `unk_token`, ...), from either file, or `default`.
    pub fn token(&self, key: &str, default: &str) -> String {
        self.config
            .get(key)
            .or_else(|| self.special.get(key))
            .and_then(token_text)
            .unwrap_or_else(|| default.to_string())
    }

    pub fn usize(&self, key: &str, default: usize) -> Result<usize> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    Error::format(
                        "tokenizer_config.json",
                        format!("\"{key}\" must be a non-negative integer, found {v}"),
                    )
                }),
        }
    }

    pub fn bool(&self, key: &str, default: bool) -> bool {
        self.config
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(default)
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.config.get(key).and_then(token_text)
    }
}
