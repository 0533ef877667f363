//! Stopping criteria, as transformers' `StoppingCriteriaList`: a sequence (decoder start token
//! first) stops at its length limit, at an end-of-sequence token, or when its text ends with a
//! stop string.

use super::config::GenerationConfig;
use crate::tokenizer::Tokenizer;

enum Criterion {
    /// The longest sequence allowed (each sequence's own limit, given when checking).
    MaxLength,
    EosToken(Vec<u32>),
    StopStrings(Vec<String>),
}

pub struct StoppingCriteria {
    criteria: Vec<Criterion>,
}

impl StoppingCriteria {
    pub fn new(config: &GenerationConfig) -> Self {
        let mut criteria = vec![
            Criterion::MaxLength,
            Criterion::EosToken(config.eos_token_ids.clone()),
        ];
        if !config.stop_strings.is_empty() {
            criteria.push(Criterion::StopStrings(config.stop_strings.clone()));
        }
        StoppingCriteria { criteria }
    }

    /// Whether `sequence`, allowed `max_length` tokens, meets a criterion.
    pub fn stops(&self, tokenizer: &Tokenizer, sequence: &[u32], max_length: usize) -> bool {
        self.criteria.iter().any(|criterion| match criterion {
            Criterion::MaxLength => sequence.len() >= max_length,
            Criterion::EosToken(eos) => {
                sequence.len() > 1 && eos.contains(&sequence[sequence.len() - 1])
            }
            Criterion::StopStrings(strings) => tokenizer
                .decode(&sequence[1..])
                .is_ok_and(|text| strings.iter().any(|s| text.ends_with(s.as_str()))),
        })
    }
}
