//! Generation settings resolved for one generation: a caller's options over the model's
//! defaults over transformers' own defaults, every value checked against the model.

use super::options::{EarlyStopping, GenerationOptions};
use crate::error::{Error, Result};
use crate::model::ModelSpec;

/// Option layers, searched in order.
struct Layers<'a>(&'a [&'a GenerationOptions]);

impl Layers<'_> {
    /// The option from the first layer that sets it.
    fn get<T: Clone>(&self, option: impl Fn(&GenerationOptions) -> &Option<T>) -> Option<T> {
        self.0.iter().find_map(|layer| option(layer).clone())
    }
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
    pub renormalize_logits: bool,
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
    /// Resolves `layers` of options (the first that sets an option wins: a caller's options,
    /// then the model's defaults) for `spec`, checking every value.
    pub fn resolve(spec: &ModelSpec, layers: &[&GenerationOptions]) -> Result<GenerationConfig> {
        let o = Layers(layers);
        let max_length = match (o.get(|o| &o.max_new_tokens), o.get(|o| &o.max_length)) {
            (Some(n), _) => n
                .checked_add(1)
                .ok_or_else(|| Error::invalid(format!("max_new_tokens {n} is too large")))?,
            (None, Some(n)) => n,
            // transformers 5: 20 new tokens after the decoder's start, within the positions.
            (None, None) => spec.positions.limit().map_or(21, |limit| limit.min(21)),
        };
        let config = GenerationConfig {
            max_length: max_length.max(1),
            max_length_factor: o.get(|o| &o.max_length_factor),
            truncation: o.get(|o| &o.truncation).unwrap_or(false),
            min_length: o.get(|o| &o.min_length).unwrap_or(0),
            min_new_tokens: o.get(|o| &o.min_new_tokens).unwrap_or(0),
            num_beams: o.get(|o| &o.num_beams).unwrap_or(1),
            num_return_sequences: o.get(|o| &o.num_return_sequences).unwrap_or(1),
            length_penalty: o.get(|o| &o.length_penalty).unwrap_or(1.0),
            early_stopping: o.get(|o| &o.early_stopping).unwrap_or_default(),
            repetition_penalty: o.get(|o| &o.repetition_penalty).unwrap_or(1.0),
            no_repeat_ngram_size: o.get(|o| &o.no_repeat_ngram_size).unwrap_or(0),
            renormalize_logits: o.get(|o| &o.renormalize_logits).unwrap_or(false),
            bad_words_ids: o.get(|o| &o.bad_words_ids).unwrap_or_default(),
            forced_bos_token_id: o.get(|o| &o.forced_bos_token_id),
            forced_eos_token_id: o.get(|o| &o.forced_eos_token_id).unwrap_or_default(),
            suppress_tokens: o.get(|o| &o.suppress_tokens).unwrap_or_default(),
            begin_suppress_tokens: o.get(|o| &o.begin_suppress_tokens).unwrap_or_default(),
            stop_strings: o.get(|o| &o.stop_strings).unwrap_or_default(),
            do_sample: o.get(|o| &o.do_sample).unwrap_or(false),
            temperature: o.get(|o| &o.temperature).unwrap_or(1.0),
            top_k: o.get(|o| &o.top_k).unwrap_or(50),
            top_p: o.get(|o| &o.top_p).unwrap_or(1.0),
            seed: o.get(|o| &o.seed),
            decoder_start_token_id: o
                .get(|o| &o.decoder_start_token_id)
                .unwrap_or(spec.decoder_start_token_id),
            eos_token_ids: o
                .get(|o| &o.eos_token_id)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| spec.eos_token_ids.clone()),
            pad_token_id: o.get(|o| &o.pad_token_id).unwrap_or(spec.pad_token_id),
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
