//! What `tokenizer_config.json` and `special_tokens_map.json` say about a tokenizer: its
//! class, special tokens, extra ids and the options of its family (Pegasus' offset, M2M100's
//! language list, NLLB's legacy placement, default languages).

use serde_json::{Map, Value};
use tokenizers::AddedToken;

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
    added: Vec<DeclaredToken>,
}

/// A token that tokenizer_config.json's `added_tokens_decoder` (or, in older folders,
/// added_tokens.json) adds to the vocabulary, with the id it declares for it.
#[derive(Debug)]
pub struct DeclaredToken {
    pub id: u32,
    pub token: AddedToken,
    /// The file that declares it.
    pub file: &'static str,
}

/// The special tokens transformers names (`eos_token`, ...) and lists.
const NAMED_SPECIALS: [&str; 7] = [
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
];

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
        "t5gemma" => "GemmaTokenizer",
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
        let mut settings = Settings {
            class,
            config,
            special,
            added: Vec::new(),
        };
        settings.added = settings.declared_tokens(files.get("added_tokens.json"))?;
        Ok(settings)
    }

    /// Tokens added to the vocabulary, in id order, as transformers 5 reads them:
    /// `added_tokens_decoder` with each token's flags, else added_tokens.json, whose tokens are
    /// special when the special tokens name them (and then matched on the raw text).
    fn declared_tokens(&self, added_tokens_json: Option<&[u8]>) -> Result<Vec<DeclaredToken>> {
        const CONFIG: &str = "tokenizer_config.json";
        let mut declared = Vec::new();
        if let Some(decoder) = self.config.get("added_tokens_decoder") {
            let decoder = decoder.as_object().ok_or_else(|| {
                Error::format(CONFIG, "\"added_tokens_decoder\" must be an object")
            })?;
            for (id, token) in decoder {
                let bad = |why: &str| {
                    Error::format(CONFIG, format!("added_tokens_decoder[{id:?}]: {why}"))
                };
                let id = id.parse().map_err(|_| bad("the key must be a token id"))?;
                if !token.is_object() {
                    return Err(bad("must be an object with \"content\" and its flags"));
                }
                let content = token_text(token).ok_or_else(|| bad("no \"content\" string"))?;
                let flag = |key: &str, default: bool| match token.get(key) {
                    None | Some(Value::Null) => Ok(default),
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(bad(&format!("\"{key}\" must be true or false"))),
                };
                let special = flag("special", false)?;
                let token = AddedToken::from(content, special)
                    .lstrip(flag("lstrip", false)?)
                    .rstrip(flag("rstrip", false)?)
                    .single_word(flag("single_word", false)?)
                    .normalized(flag("normalized", !special)?);
                declared.push(DeclaredToken {
                    id,
                    token,
                    file: CONFIG,
                });
            }
        } else if let Some(bytes) = added_tokens_json {
            let ids: std::collections::HashMap<String, u32> = serde_json::from_slice(bytes)
                .map_err(|e| {
                    Error::format("added_tokens.json", format!("not a token-to-id map: {e}"))
                })?;
            let specials = self.special_token_texts();
            for (content, id) in ids {
                let special = specials.contains(&content);
                let token = AddedToken::from(content, special).normalized(!special);
                declared.push(DeclaredToken {
                    id,
                    token,
                    file: "added_tokens.json",
                });
            }
        }
        declared.sort_by_key(|d| d.id);
        Ok(declared)
    }

    /// The special tokens transformers 5 counts when it reads added_tokens.json: the named
    /// ones (special_tokens_map.json's over tokenizer_config.json's) and the extra ones
    /// (tokenizer_config.json's `extra_special_tokens`, or its older
    /// `additional_special_tokens`, with special_tokens_map.json's `extra_special_tokens`).
    fn special_token_texts(&self) -> Vec<String> {
        let named = NAMED_SPECIALS
            .iter()
            .filter_map(|key| self.special.get(*key).or_else(|| self.config.get(*key)));
        let list = |map: &Map<String, Value>, key: &str| {
            map.get(key)
                .and_then(Value::as_array)
                .filter(|list| !list.is_empty())
                .cloned()
        };
        let config_extra = list(&self.config, "extra_special_tokens")
            .or_else(|| list(&self.config, "additional_special_tokens"))
            .unwrap_or_default();
        let map_extra = list(&self.special, "extra_special_tokens").unwrap_or_default();
        named
            .cloned()
            .chain(config_extra)
            .chain(map_extra)
            .filter_map(|v| token_text(&v))
            .collect()
    }

    pub fn added_tokens(&self) -> &[DeclaredToken] {
        &self.added
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
