//! Every generation option under transformers' name, in one struct: a model's defaults from
//! `generation_config.json`, the CLI's flags and the JS API's options are all read into it
//! through its `Deserialize`, so names, checks and messages are shared. The list of names
//! comes from the struct itself ([`GenerationOptions::names`]).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::option_values as values;
pub use super::option_values::EarlyStopping;
use crate::error::{Error, Result};

/// Every option; `None` keeps the default. Names and meanings are transformers'.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GenerationOptions {
    #[serde(deserialize_with = "values::count")]
    pub max_new_tokens: Option<usize>,
    /// Counts the decoder start token, as in transformers.
    #[serde(deserialize_with = "values::count")]
    pub max_length: Option<usize>,
    /// Marian's `max-length-factor`: at most ceil(factor × input length) new tokens for each
    /// input (within `max_new_tokens` / `max_length`).
    #[serde(deserialize_with = "values::number")]
    pub max_length_factor: Option<f32>,
    /// Cut an input longer than the model's position limit (keeping its last token) instead
    /// of refusing it, like transformers' `truncation=True`.
    #[serde(deserialize_with = "values::flag")]
    pub truncation: Option<bool>,
    #[serde(deserialize_with = "values::count")]
    pub min_new_tokens: Option<usize>,
    #[serde(deserialize_with = "values::count")]
    pub min_length: Option<usize>,
    #[serde(deserialize_with = "values::count")]
    pub num_beams: Option<usize>,
    #[serde(deserialize_with = "values::count")]
    pub num_return_sequences: Option<usize>,
    #[serde(deserialize_with = "values::number")]
    pub length_penalty: Option<f32>,
    #[serde(deserialize_with = "values::early_stopping")]
    pub early_stopping: Option<EarlyStopping>,
    #[serde(deserialize_with = "values::number")]
    pub repetition_penalty: Option<f32>,
    #[serde(deserialize_with = "values::count")]
    pub no_repeat_ngram_size: Option<usize>,
    /// Log-softmax the scores again after every processor (beam scores then stay
    /// normalised).
    #[serde(deserialize_with = "values::flag")]
    pub renormalize_logits: Option<bool>,
    #[serde(deserialize_with = "values::id_lists")]
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    #[serde(deserialize_with = "values::first_id")]
    pub forced_bos_token_id: Option<u32>,
    #[serde(deserialize_with = "values::ids")]
    pub forced_eos_token_id: Option<Vec<u32>>,
    #[serde(deserialize_with = "values::ids")]
    pub suppress_tokens: Option<Vec<u32>>,
    #[serde(deserialize_with = "values::ids")]
    pub begin_suppress_tokens: Option<Vec<u32>>,
    #[serde(deserialize_with = "values::strings")]
    pub stop_strings: Option<Vec<String>>,
    #[serde(deserialize_with = "values::flag")]
    pub do_sample: Option<bool>,
    #[serde(deserialize_with = "values::number")]
    pub temperature: Option<f32>,
    #[serde(deserialize_with = "values::count")]
    pub top_k: Option<usize>,
    #[serde(deserialize_with = "values::number")]
    pub top_p: Option<f32>,
    #[serde(deserialize_with = "values::seed")]
    pub seed: Option<u64>,
    #[serde(deserialize_with = "values::first_id")]
    pub decoder_start_token_id: Option<u32>,
    #[serde(deserialize_with = "values::ids")]
    pub eos_token_id: Option<Vec<u32>>,
    #[serde(deserialize_with = "values::first_id")]
    pub pad_token_id: Option<u32>,
    /// The input's language, in the tokenizer's own codes (`en_XX`, `en`, `eng_Latn`) of a
    /// multilingual model: its token goes where the tokenizer puts it.
    #[serde(deserialize_with = "values::text")]
    pub src_lang: Option<String>,
    /// The language to generate, in the same codes: the first generated token is forced to
    /// it (mBART-25 starts the decoder from it).
    #[serde(deserialize_with = "values::text")]
    pub tgt_lang: Option<String>,
}

impl GenerationOptions {
    /// transformers' snake_case name of every option, in declaration order.
    pub fn names() -> &'static [&'static str] {
        values::struct_fields::<GenerationOptions>()
    }

    /// The JS API's name of an option: transformers' name in camelCase (`max_new_tokens`
    /// is `maxNewTokens`).
    pub fn js_name(name: &str) -> String {
        let mut parts = name.split('_');
        let mut out = parts.next().unwrap_or_default().to_string();
        for part in parts {
            let mut chars = part.chars();
            out.extend(chars.next().map(|c| c.to_ascii_uppercase()));
            out.extend(chars);
        }
        out
    }

    /// Options from a JSON object under transformers' names (the CLI's flags, the browser's
    /// options after renaming); `source` names where they came from in messages. An unknown
    /// name is refused.
    pub fn from_json(map: &Map<String, Value>, source: &str) -> Result<GenerationOptions> {
        if let Some(unknown) = map.keys().find(|k| !Self::names().contains(&k.as_str())) {
            return Err(Error::format(
                source,
                format!("unknown generation option \"{unknown}\""),
            ));
        }
        serde_path_to_error::deserialize(Value::Object(map.clone())).map_err(|e| {
            let field = e.path().to_string();
            Error::format(source, format!("\"{field}\" {}", e.into_inner()))
        })
    }

    /// A model's defaults from `generation_config.json`. Its other keys
    /// (`transformers_version`, `bos_token_id`, ...) are not generation options here and are
    /// skipped, unless they would change what is generated (see [`UNSUPPORTED`]).
    pub fn from_generation_config(text: &str) -> Result<GenerationOptions> {
        Self::from_config_file("generation_config.json", text)
    }

    /// A model's defaults from the generation keys of `config.json`, as transformers takes
    /// them when a folder has no `generation_config.json` (old repos keep `num_beams`,
    /// `length_penalty`, `no_repeat_ngram_size`... there).
    pub fn from_model_config(text: &str) -> Result<GenerationOptions> {
        Self::from_config_file("config.json", text)
    }

    fn from_config_file(file: &str, text: &str) -> Result<GenerationOptions> {
        let mut map = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Error::format(file, "expected a JSON object")),
            Err(e) => return Err(Error::format(file, e)),
        };
        for (key, neutral) in UNSUPPORTED {
            if let Some(value) = map.get(*key)
                && !value.is_null()
                && !leaves_generation_as_is(value, neutral)
            {
                return Err(Error::format(
                    file,
                    format!(
                        "\"{key}\" is {value}, a generation setting this engine does not implement"
                    ),
                ));
            }
        }
        map.retain(|key, _| Self::names().contains(&key.as_str()));
        Self::from_json(&map, file)
    }
}

/// Whether `value` equals the `neutral` JSON value (numbers by value: `1` is `1.0`).
fn leaves_generation_as_is(value: &Value, neutral: &str) -> bool {
    let neutral: Value = serde_json::from_str(neutral).unwrap_or(Value::Null);
    match (value.as_f64(), neutral.as_f64()) {
        (Some(a), Some(b)) => a == b,
        _ => *value == neutral,
    }
}

/// transformers' generation settings that change what is generated but are not implemented
/// here, with the value (as JSON) that leaves generation as it is: a model whose defaults set
/// one otherwise is refused rather than run differently.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    ("typical_p", "1.0"),
    ("epsilon_cutoff", "0.0"),
    ("eta_cutoff", "0.0"),
    ("min_p", "0.0"),
    ("top_h", "0.0"),
    ("encoder_repetition_penalty", "1.0"),
    ("encoder_no_repeat_ngram_size", "0"),
    ("exponential_decay_length_penalty", "null"),
    ("sequence_bias", "null"),
    ("guidance_scale", "1.0"),
    ("num_beam_groups", "1"),
    ("diversity_penalty", "0.0"),
    ("penalty_alpha", "0.0"),
    ("constraints", "null"),
    ("force_words_ids", "null"),
    ("dola_layers", "null"),
    ("token_healing", "false"),
    ("watermarking_config", "null"),
];
