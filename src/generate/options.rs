//! Generation settings under transformers' names: a model's defaults from
//! `generation_config.json` (falling back to `config.json`, then to transformers' own
//! defaults) and the options a caller overrides, resolved and validated into one config.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::ModelSpec;
use crate::model::config_json::ConfigJson;

/// transformers' `early_stopping`: stop a beam search once `num_beams` hypotheses are done
/// (True), when no better one seems possible (False), or only at `max_length` ("never").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum EarlyStopping {
    True,
    #[default]
    False,
    Never,
}

impl EarlyStopping {
    pub fn parse(text: &str) -> Result<EarlyStopping> {
        match text {
            "true" | "True" => Ok(EarlyStopping::True),
            "false" | "False" => Ok(EarlyStopping::False),
            "never" => Ok(EarlyStopping::Never),
            other => Err(Error::invalid(format!(
                "early_stopping must be true, false or \"never\", not \"{other}\""
            ))),
        }
    }
}

/// Every option; `None` keeps the default. Names and meanings are transformers'.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationOptions {
    pub max_new_tokens: Option<usize>,
    /// Counts the decoder start token, as in transformers.
    pub max_length: Option<usize>,
    /// Marian's `max-length-factor`: at most ceil(factor × input length) new tokens for each
    /// input (within `max_new_tokens` / `max_length`).
    pub max_length_factor: Option<f32>,
    /// Cut an input longer than the model's position limit (keeping its last token) instead
    /// of refusing it, like transformers' `truncation=True`.
    pub truncation: Option<bool>,
    pub min_new_tokens: Option<usize>,
    pub min_length: Option<usize>,
    pub num_beams: Option<usize>,
    pub num_return_sequences: Option<usize>,
    pub length_penalty: Option<f32>,
    pub early_stopping: Option<EarlyStopping>,
    pub repetition_penalty: Option<f32>,
    pub no_repeat_ngram_size: Option<usize>,
    pub bad_words_ids: Option<Vec<Vec<u32>>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<Vec<u32>>,
    pub suppress_tokens: Option<Vec<u32>>,
    pub begin_suppress_tokens: Option<Vec<u32>>,
    pub stop_strings: Option<Vec<String>>,
    pub do_sample: Option<bool>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub seed: Option<u64>,
    pub decoder_start_token_id: Option<u32>,
    pub eos_token_id: Option<Vec<u32>>,
    pub pad_token_id: Option<u32>,
}

/// The keys `from_json` reads: transformers' names for every generation option.
pub const OPTION_KEYS: [&str; 26] = [
    "max_new_tokens",
    "max_length",
    "max_length_factor",
    "truncation",
    "min_new_tokens",
    "min_length",
    "num_beams",
    "num_return_sequences",
    "length_penalty",
    "early_stopping",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "bad_words_ids",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "stop_strings",
    "do_sample",
    "temperature",
    "top_k",
    "top_p",
    "seed",
    "decoder_start_token_id",
    "eos_token_id",
    "pad_token_id",
];

impl GenerationOptions {
    /// Options given in `over` replace these.
    pub fn overridden_by(&self, over: &GenerationOptions) -> GenerationOptions {
        macro_rules! pick {
            ($($field:ident),*) => {
                GenerationOptions { $($field: over.$field.clone().or_else(|| self.$field.clone()),)* }
            };
        }
        pick!(
            max_new_tokens,
            max_length,
            max_length_factor,
            truncation,
            min_new_tokens,
            min_length,
            num_beams,
            num_return_sequences,
            length_penalty,
            early_stopping,
            repetition_penalty,
            no_repeat_ngram_size,
            bad_words_ids,
            forced_bos_token_id,
            forced_eos_token_id,
            suppress_tokens,
            begin_suppress_tokens,
            stop_strings,
            do_sample,
            temperature,
            top_k,
            top_p,
            seed,
            decoder_start_token_id,
            eos_token_id,
            pad_token_id
        )
    }

    /// Options from a JSON object with transformers' snake_case keys (generation_config.json,
    /// or the CLI's and the browser's options after renaming).
    pub fn from_json(map: &Map<String, Value>, file: &'static str) -> Result<GenerationOptions> {
        let cfg = ConfigJson { map, file };
        let opt_usize = |key: &str| -> Result<Option<usize>> {
            if cfg.is_set(key) {
                cfg.usize(key).map(Some)
            } else {
                Ok(None)
            }
        };
        let opt_f32 = |key: &str| -> Result<Option<f32>> {
            if cfg.is_set(key) {
                cfg.f32_or(key, 0.0).map(Some)
            } else {
                Ok(None)
            }
        };
        let opt_id = |key: &str| -> Result<Option<u32>> {
            Ok(cfg
                .token_ids(key)?
                .first()
                .copied()
                .filter(|_| cfg.is_set(key)))
        };
        let opt_ids = |key: &str| -> Result<Option<Vec<u32>>> {
            if cfg.is_set(key) {
                cfg.token_ids(key).map(Some)
            } else {
                Ok(None)
            }
        };
        let early_stopping = match map.get("early_stopping") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(true)) => Some(EarlyStopping::True),
            Some(Value::Bool(false)) => Some(EarlyStopping::False),
            Some(Value::String(s)) => {
                Some(EarlyStopping::parse(s).map_err(|e| cfg.error(e.to_string()))?)
            }
            Some(v) => {
                return Err(cfg.error(format!(
                    "\"early_stopping\" must be true, false or \"never\", found {v}"
                )));
            }
        };
        let bad_words_ids = match map.get("bad_words_ids") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_id_lists(v).ok_or_else(|| {
                cfg.error(format!(
                    "\"bad_words_ids\" must be a list of lists of token ids, found {v}"
                ))
            })?),
        };
        let stop_strings = match map.get("stop_strings") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(vec![s.clone()]),
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| {
                        cfg.error("\"stop_strings\" must be a string or a list of strings".into())
                    })?,
            ),
            Some(v) => {
                return Err(cfg.error(format!(
                    "\"stop_strings\" must be a string or a list of strings, found {v}"
                )));
            }
        };
        let seed = match map.get("seed") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                cfg.error(format!(
                    "\"seed\" must be a non-negative integer, found {v}"
                ))
            })?),
        };
        Ok(GenerationOptions {
            max_new_tokens: opt_usize("max_new_tokens")?,
            max_length: opt_usize("max_length")?,
            max_length_factor: opt_f32("max_length_factor")?,
            truncation: if cfg.is_set("truncation") {
                Some(cfg.bool_or("truncation", false)?)
            } else {
                None
            },
            min_new_tokens: opt_usize("min_new_tokens")?,
            min_length: opt_usize("min_length")?,
            num_beams: opt_usize("num_beams")?,
            num_return_sequences: opt_usize("num_return_sequences")?,
            length_penalty: opt_f32("length_penalty")?,
            early_stopping,
            repetition_penalty: opt_f32("repetition_penalty")?,
            no_repeat_ngram_size: opt_usize("no_repeat_ngram_size")?,
            bad_words_ids,
            forced_bos_token_id: opt_id("forced_bos_token_id")?,
            forced_eos_token_id: opt_ids("forced_eos_token_id")?,
            suppress_tokens: opt_ids("suppress_tokens")?,
            begin_suppress_tokens: opt_ids("begin_suppress_tokens")?,
            stop_strings,
            do_sample: if cfg.is_set("do_sample") {
                Some(cfg.bool_or("do_sample", false)?)
            } else {
                None
            },
            temperature: opt_f32("temperature")?,
            top_k: opt_usize("top_k")?,
            top_p: opt_f32("top_p")?,
            seed,
            decoder_start_token_id: opt_id("decoder_start_token_id")?,
            eos_token_id: opt_ids("eos_token_id")?,
            pad_token_id: opt_id("pad_token_id")?,
        })
    }
}

fn parse_id_lists(v: &Value) -> Option<Vec<Vec<u32>>> {
    v.as_array()?
        .iter()
        .map(|inner| {
            inner
                .as_array()?
                .iter()
                .map(|id| id.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
        })
        .collect()
}

/// Settings resolved for one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct GenerationConfig {
    /// Longest decoder sequence, the start token included.
    pub max_length: usize,
    pub max_length_factor: Option<f32>,
    pub truncation: bool,
    pub min_length: usize,
    pub min_new_tokens: usize,
    pub num_beams: usize,
    pub num_return_sequences: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub repetition_penalty: f32,
    pub no_repeat_ngram_size: usize,
    pub bad_words_ids: Vec<Vec<u32>>,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Vec<u32>,
    pub suppress_tokens: Vec<u32>,
    pub begin_suppress_tokens: Vec<u32>,
    pub stop_strings: Vec<String>,
    pub do_sample: bool,
    pub temperature: f32,
    pub top_k: usize,
    pub top_p: f32,
    pub seed: Option<u64>,
    pub decoder_start_token_id: u32,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: u32,
}

impl GenerationConfig {
    /// The model's defaults: `generation_config.json` over `config.json` over transformers'.
    pub fn model_defaults(generation_config: Option<&str>) -> Result<GenerationOptions> {
        const FILE: &str = "generation_config.json";
        let Some(text) = generation_config else {
            return Ok(GenerationOptions::default());
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => GenerationOptions::from_json(&map, FILE),
            Ok(_) => Err(Error::format(FILE, "expected a JSON object")),
            Err(e) => Err(Error::format(FILE, e)),
        }
    }

    /// Resolves `options` for `spec`, checking every value.
    pub fn resolve(spec: &ModelSpec, options: &GenerationOptions) -> Result<GenerationConfig> {
        let o = options;
        let max_length = match (o.max_new_tokens, o.max_length) {
            (Some(n), _) => n
                .checked_add(1)
                .ok_or_else(|| Error::invalid(format!("max_new_tokens {n} is too large")))?,
            (None, Some(n)) => n,
            (None, None) => 20,
        };
        let config = GenerationConfig {
            max_length: max_length.max(1),
            max_length_factor: o.max_length_factor,
            truncation: o.truncation.unwrap_or(false),
            min_length: o.min_length.unwrap_or(0),
            min_new_tokens: o.min_new_tokens.unwrap_or(0),
            num_beams: o.num_beams.unwrap_or(1),
            num_return_sequences: o.num_return_sequences.unwrap_or(1),
            length_penalty: o.length_penalty.unwrap_or(1.0),
            early_stopping: o.early_stopping.unwrap_or_default(),
            repetition_penalty: o.repetition_penalty.unwrap_or(1.0),
            no_repeat_ngram_size: o.no_repeat_ngram_size.unwrap_or(0),
            bad_words_ids: o.bad_words_ids.clone().unwrap_or_default(),
            forced_bos_token_id: o.forced_bos_token_id,
            forced_eos_token_id: o.forced_eos_token_id.clone().unwrap_or_default(),
            suppress_tokens: o.suppress_tokens.clone().unwrap_or_default(),
            begin_suppress_tokens: o.begin_suppress_tokens.clone().unwrap_or_default(),
            stop_strings: o.stop_strings.clone().unwrap_or_default(),
            do_sample: o.do_sample.unwrap_or(false),
            temperature: o.temperature.unwrap_or(1.0),
            top_k: o.top_k.unwrap_or(50),
            top_p: o.top_p.unwrap_or(1.0),
            seed: o.seed,
            decoder_start_token_id: o
                .decoder_start_token_id
                .unwrap_or(spec.decoder_start_token_id),
            eos_token_ids: o
                .eos_token_id
                .clone()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| spec.eos_token_ids.clone()),
            pad_token_id: o.pad_token_id.unwrap_or(spec.pad_token_id),
        };
        config.validate(spec)?;
        Ok(config)
    }

    fn validate(&self, spec: &ModelSpec) -> Result<()> {
        let vocab = spec.vocab_size as u32;
        let bad = |message: String| Err(Error::invalid(message));
        if let Some(factor) = self.max_length_factor
            && !(factor.is_finite() && factor > 0.0)
        {
            return bad(format!(
                "max_length_factor must be a positive number, not {factor}"
            ));
        }
        // A zero-embedding start sits just past the vocabulary.
        let start_is_zero_row = spec.start_from_zero_embedding
            && self.decoder_start_token_id == spec.decoder_start_token_id;
        // Far beyond any useful search, and it keeps sizes derived from them from overflowing.
        const MAX_SEQUENCES: usize = 4096;
        if self.num_beams == 0 || self.num_beams > MAX_SEQUENCES {
            return bad(format!(
                "num_beams must be between 1 and {MAX_SEQUENCES}, not {}",
                self.num_beams
            ));
        }
        if self.num_return_sequences > MAX_SEQUENCES {
            return bad(format!(
                "num_return_sequences must be at most {MAX_SEQUENCES}, not {}",
                self.num_return_sequences
            ));
        }
        if self.num_return_sequences == 0 {
            return bad("num_return_sequences must be at least 1".into());
        }
        if !self.do_sample && self.num_return_sequences > self.num_beams {
            return bad(format!(
                "num_return_sequences ({}) cannot exceed num_beams ({}) without sampling",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.do_sample && self.num_beams > 1 {
            return bad("sampling with num_beams > 1 (beam sampling) is not supported".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!(
                "temperature must be a positive number, not {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad(format!("top_p must be in (0, 1], not {}", self.top_p));
        }
        if !(self.repetition_penalty.is_finite() && self.repetition_penalty > 0.0) {
            return bad(format!(
                "repetition_penalty must be a positive number, not {}",
                self.repetition_penalty
            ));
        }
        if !self.length_penalty.is_finite() {
            return bad("length_penalty must be a finite number".into());
        }
        if self.bad_words_ids.iter().any(Vec::is_empty) {
            return bad("bad_words_ids must not contain an empty list".into());
        }
        let ids = self
            .bad_words_ids
            .iter()
            .flatten()
            .chain(&self.forced_eos_token_id)
            .chain(&self.suppress_tokens)
            .chain(&self.begin_suppress_tokens)
            .chain(&self.eos_token_ids)
            .chain(self.forced_bos_token_id.iter())
            .chain(Some(&self.decoder_start_token_id).filter(|_| !start_is_zero_row));
        for &id in ids {
            if id >= vocab {
                return bad(format!(
                    "token id {id} is outside the vocabulary of {vocab}"
                ));
            }
        }
        if self.stop_strings.iter().any(String::is_empty) {
            return bad("stop_strings must not contain an empty string".into());
        }
        Ok(())
    }

    pub fn max_new_tokens(&self) -> usize {
        self.max_length - 1
    }

    /// Longest decoder sequence (start included) for an input of `input_len` tokens.
    pub fn max_length_for(&self, input_len: usize) -> usize {
        match self.max_length_factor {
            Some(factor) => {
                let by_input = (factor * input_len as f32).ceil() as usize;
                self.max_length.min(by_input.saturating_add(1)).max(1)
            }
            None => self.max_length,
        }
    }
}
