//! Logits processors and sampling warpers, as transformers builds them: a list made once per
//! generation from its settings, holding only the processors those settings switch on, in
//! transformers' order and with its arithmetic (f32, -inf for banned tokens), so that outputs
//! match `generate()` exactly. Each processor edits one row of scores given that row's
//! decoder sequence (decoder start token first).

use super::config::GenerationConfig;

/// One edit of a row's scores.
trait Processor {
    fn process(&self, ids: &[u32], scores: &mut [f32]);

    /// Whether the GPU makes this edit itself when it chooses tokens: the sample kernel
    /// applies temperature, top-k and top-p. The others read the sequence, or (renormalizing)
    /// change scores that transformers chooses from, where rounding may tie two.
    fn on_gpu(&self) -> bool {
        false
    }
}

/// Tokens already in the sequence: negative scores multiplied, positive divided.
struct RepetitionPenalty(f32);

impl Processor for RepetitionPenalty {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        repetition_penalty(ids, scores, self.0);
    }
}

/// Bans tokens that would repeat an n-gram of this size.
struct NoRepeatNgram(usize);

impl Processor for NoRepeatNgram {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        ban(scores, &no_repeat_ngram(ids, self.0));
    }
}

struct BadWords {
    words: Vec<Vec<u32>>,
    eos: Vec<u32>,
}

impl Processor for BadWords {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        bad_words(ids, scores, &self.words, &self.eos);
    }
}

/// Bans EOS while the sequence has fewer than `length` tokens, counting from token
/// `counted_from` (0: the whole sequence, for min_length; 1: new tokens after the decoder
/// start, for min_new_tokens).
struct MinLength {
    length: usize,
    counted_from: usize,
    eos: Vec<u32>,
}

impl Processor for MinLength {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        if ids.len().saturating_sub(self.counted_from) < self.length {
            ban(scores, &self.eos);
        }
    }
}

/// Forces `tokens` (any one of them) at sequence length `at`.
struct Force {
    at: usize,
    tokens: Vec<u32>,
}

impl Processor for Force {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        if ids.len() == self.at {
            force(scores, &self.tokens);
        }
    }
}

/// Bans `tokens` always, or only at sequence length `at`.
struct Suppress {
    at: Option<usize>,
    tokens: Vec<u32>,
}

impl Processor for Suppress {
    fn process(&self, ids: &[u32], scores: &mut [f32]) {
        if self.at.is_none_or(|at| ids.len() == at) {
            ban(scores, &self.tokens);
        }
    }
}

struct Temperature(f32);

impl Processor for Temperature {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        for s in scores.iter_mut() {
            *s /= self.0;
        }
    }

    fn on_gpu(&self) -> bool {
        true
    }
}

struct TopK(usize);

impl Processor for TopK {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        top_k(scores, self.0);
    }

    fn on_gpu(&self) -> bool {
        true
    }
}

struct TopP(f32);

impl Processor for TopP {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        top_p(scores, self.0);
    }

    fn on_gpu(&self) -> bool {
        true
    }
}

/// transformers' `renormalize_logits`: log-softmax again after every other edit.
struct Renormalize;

impl Processor for Renormalize {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        log_softmax(scores);
    }
}

/// The processors and sampling warpers one generation's settings switch on, in the order
/// transformers applies them.
pub struct Processors {
    list: Vec<Box<dyn Processor>>,
}

impl Processors {
    /// Builds the lists in the order transformers applies them.
    pub fn new(c: &GenerationConfig) -> Self {
        let mut processors: Vec<Box<dyn Processor>> = Vec::new();
        if c.repetition_penalty != 1.0 {
            processors.push(Box::new(RepetitionPenalty(c.repetition_penalty)));
        }
        if c.no_repeat_ngram_size > 0 {
            processors.push(Box::new(NoRepeatNgram(c.no_repeat_ngram_size)));
        }
        if !c.bad_words_ids.is_empty() {
            processors.push(Box::new(BadWords {
                words: c.bad_words_ids.clone(),
                eos: c.eos_token_ids.clone(),
            }));
        }
        for (length, counted_from) in [(c.min_length, 0), (c.min_new_tokens, 1)] {
            if length > 0 {
                processors.push(Box::new(MinLength {
                    length,
                    counted_from,
                    eos: c.eos_token_ids.clone(),
                }));
            }
        }
        if let Some(bos) = c.forced_bos_token_id {
            processors.push(Box::new(Force {
                at: 1,
                tokens: vec![bos],
            }));
        }
        if !c.forced_eos_token_id.is_empty() {
            processors.push(Box::new(Force {
                at: c.max_length - 1,
                tokens: c.forced_eos_token_id.clone(),
            }));
        }
        if !c.suppress_tokens.is_empty() {
            processors.push(Box::new(Suppress {
                at: None,
                tokens: c.suppress_tokens.clone(),
            }));
        }
        if !c.begin_suppress_tokens.is_empty() {
            // The begin index is the decoder prompt's length, one more after a forced BOS.
            let at = if c.forced_bos_token_id.is_some() {
                2
            } else {
                1
            };
            processors.push(Box::new(Suppress {
                at: Some(at),
                tokens: c.begin_suppress_tokens.clone(),
            }));
        }
        if c.do_sample {
            if c.temperature != 1.0 {
                processors.push(Box::new(Temperature(c.temperature)));
            }
            if c.top_k != 0 {
                processors.push(Box::new(TopK(c.top_k)));
            }
            if c.top_p < 1.0 {
                processors.push(Box::new(TopP(c.top_p)));
            }
        }
        if c.renormalize_logits {
            processors.push(Box::new(Renormalize));
        }
        Processors { list: processors }
    }

    /// Whether nothing edits the scores.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether the GPU can choose tokens itself (argmax, or the sample kernel): no edit
    /// needs the CPU.
    pub fn all_on_gpu(&self) -> bool {
        self.list.iter().all(|p| p.on_gpu())
    }

    /// Applies the processors, then the sampling warpers (temperature, top-k, top-p), to
    /// `scores` for a row whose decoder sequence is `ids`.
    pub fn apply(&self, ids: &[u32], scores: &mut [f32]) {
        for processor in &self.list {
            processor.process(ids, scores);
        }
    }
}

fn ban(scores: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Every score -inf but `ids`, which become 0.
fn force(scores: &mut [f32], ids: &[u32]) {
    scores.fill(f32::NEG_INFINITY);
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = 0.0;
        }
    }
}

fn repetition_penalty(ids: &[u32], scores: &mut [f32], penalty: f32) {
    let mut seen = ids.to_vec();
    seen.sort_unstable();
    seen.dedup();
    for id in seen {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
        }
    }
}

/// Tokens that would repeat an n-gram already in the sequence.
fn no_repeat_ngram(ids: &[u32], n: usize) -> Vec<u32> {
    let cur_len = ids.len();
    if cur_len < n {
        return Vec::new();
    }
    let prefix = &ids[cur_len + 1 - n..];
    ids.windows(n)
        .filter(|window| &window[..n - 1] == prefix)
        .map(|window| window[n - 1])
        .collect()
}

/// Single-token bad words always; longer ones when the sequence ends with their prefix.
/// transformers drops a bad word that is exactly an EOS token.
fn bad_words(ids: &[u32], scores: &mut [f32], bad_words_ids: &[Vec<u32>], eos: &[u32]) {
    for word in bad_words_ids {
        if word.len() == 1 && eos.contains(&word[0]) {
            continue;
        }
        // transformers skips a longer bad word than the sequence so far.
        if word.len() > 1 && word.len() > ids.len() {
            continue;
        }
        let (prefix, last) = word.split_at(word.len() - 1);
        if ids.ends_with(prefix) {
            ban(scores, last);
        }
    }
}

/// Keeps the scores at least as large as the k-th largest.
fn top_k(scores: &mut [f32], k: usize) {
    let k = k.min(scores.len());
    if k == 0 {
        return;
    }
    let mut sorted: Vec<f32> = scores.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let threshold = sorted[k - 1];
    for s in scores.iter_mut() {
        if *s < threshold {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Keeps the smallest set of highest-probability tokens whose mass exceeds `p` (at least
/// one token): transformers removes, in ascending order, tokens whose cumulative
/// probability is at most 1 - p.
fn top_p(scores: &mut [f32], p: f32) {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let probs = softmax(&order.iter().map(|&i| scores[i]).collect::<Vec<_>>());
    let mut cumulative = 0.0f32;
    let last = order.len().saturating_sub(1);
    for (rank, &i) in order.iter().enumerate() {
        cumulative += probs[rank];
        if cumulative <= 1.0 - p && rank < last {
            scores[i] = f32::NEG_INFINITY;
        }
    }
}

/// Softmax in f32 with an f64 sum, as a probability vector.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; scores.len()];
    }
    let exps: Vec<f64> = scores.iter().map(|&s| ((s - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// log_softmax in f32 (the log-sum-exp accumulated in f64).
pub fn log_softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return;
    }
    let sum: f64 = scores.iter().map(|&s| ((s - max) as f64).exp()).sum();
    let lse = max + sum.ln() as f32;
    for s in scores.iter_mut() {
        *s -= lse;
    }
}

/// The index of the largest score; the first on ties, as torch.argmax.
pub fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::config_json::spec_from_config_json;
    use crate::generate::GenerationOptions;
    use serde_json::json;

    fn config(options: serde_json::Value) -> GenerationConfig {
        let spec = spec_from_config_json(
            r#"{"model_type": "t5", "d_model": 8, "d_kv": 2, "num_heads": 4, "d_ff": 16,
                "num_layers": 1, "vocab_size": 32, "eos_token_id": 1}"#,
        )
        .unwrap();
        let options = GenerationOptions::from_json(options.as_object().unwrap(), "test").unwrap();
        GenerationConfig::resolve(&spec, &[&options]).unwrap()
    }

    #[test]
    fn each_option_switches_on_a_processor_and_the_defaults_none() {
        assert!(Processors::new(&config(json!({}))).is_empty());
        // Greedy decoding ignores the sampling settings.
        let unused = json!({ "temperature": 0.5, "top_k": 5, "top_p": 0.5 });
        assert!(Processors::new(&config(unused)).is_empty());
        for option in [
            json!({ "repetition_penalty": 1.2 }),
            json!({ "no_repeat_ngram_size": 2 }),
            json!({ "bad_words_ids": [[3]] }),
            json!({ "min_length": 2 }),
            json!({ "min_new_tokens": 1 }),
            json!({ "forced_bos_token_id": 3 }),
            json!({ "forced_eos_token_id": 1 }),
            json!({ "suppress_tokens": [4] }),
            json!({ "begin_suppress_tokens": [4] }),
            json!({ "renormalize_logits": true }),
            json!({ "do_sample": true }),
        ] {
            let processors = Processors::new(&config(option.clone()));
            assert!(!processors.is_empty(), "{option}");
            // Only the sampling warpers leave the choice to the GPU.
            let warps = option.get("do_sample").is_some();
            assert_eq!(processors.all_on_gpu(), warps, "{option}");
        }
        let warpers = json!({ "do_sample": true, "temperature": 0.5, "top_k": 5, "top_p": 0.5 });
        assert!(Processors::new(&config(warpers)).all_on_gpu());
    }

    /// Which of `ids`' scores the processors leave finite.
    fn allowed(processors: &Processors, ids: &[u32]) -> Vec<u32> {
        let mut scores = vec![0.0f32; 8];
        processors.apply(ids, &mut scores);
        (0..8).filter(|&t| scores[t as usize].is_finite()).collect()
    }

    #[test]
    fn lengths_count_as_transformers_counts_them() {
        // min_length counts the decoder start; min_new_tokens counts after it.
        let min_length = Processors::new(&config(json!({ "min_length": 2 })));
        assert!(!allowed(&min_length, &[0]).contains(&1));
        assert!(allowed(&min_length, &[0, 5]).contains(&1));
        let min_new = Processors::new(&config(json!({ "min_new_tokens": 2 })));
        assert!(!allowed(&min_new, &[0, 5]).contains(&1));
        assert!(allowed(&min_new, &[0, 5, 6]).contains(&1));
        // After a forced BOS, begin_suppress_tokens applies one step later.
        let begin = Processors::new(&config(
            json!({ "forced_bos_token_id": 3, "begin_suppress_tokens": [4] }),
        ));
        assert_eq!(allowed(&begin, &[0]), vec![3]);
        assert!(!allowed(&begin, &[0, 3]).contains(&4));
        assert!(allowed(&begin, &[0, 3, 5]).contains(&4));
        let forced_eos = Processors::new(&config(
            json!({ "forced_eos_token_id": [1, 2], "max_new_tokens": 3 }),
        ));
        assert_eq!(allowed(&forced_eos, &[0, 5, 6]), vec![1, 2]);
        assert_eq!(allowed(&forced_eos, &[0, 5]).len(), 8);
    }

    #[test]
    fn no_repeat_ngram_bans_completions_of_seen_ngrams() {
        // 2-grams seen: (5,6), (6,5); the sequence ends with 5 -> 6 is banned.
        assert_eq!(no_repeat_ngram(&[5, 6, 5], 2), vec![6]);
        assert!(no_repeat_ngram(&[5], 2).is_empty());
        // 3-grams: (1,2,3), (2,3,1), (3,1,2); ends with (1,2) -> 3.
        assert_eq!(no_repeat_ngram(&[1, 2, 3, 1, 2], 3), vec![3]);
    }

    #[test]
    fn top_p_keeps_the_smallest_set_above_the_mass() {
        let mut scores = vec![(0.5f32).ln(), (0.3f32).ln(), (0.15f32).ln(), (0.05f32).ln()];
        top_p(&mut scores, 0.7);
        assert!(scores[0].is_finite() && scores[1].is_finite());
        assert!(scores[2] == f32::NEG_INFINITY && scores[3] == f32::NEG_INFINITY);
        let mut one = vec![0.0f32, -100.0];
        top_p(&mut one, 0.01);
        assert!(one[0].is_finite(), "at least one token is kept");
    }

    #[test]
    fn bad_words_match_prefixes() {
        let mut scores = vec![0.0f32; 10];
        bad_words(
            &[1, 4, 5],
            &mut scores,
            &[vec![5, 7], vec![4, 8], vec![3], vec![2]],
            &[2],
        );
        assert_eq!(scores[7], f32::NEG_INFINITY, "sequence ends with 5");
        assert_eq!(scores[8], 0.0, "sequence does not end with 4");
        assert_eq!(scores[3], f32::NEG_INFINITY);
        assert_eq!(scores[2], 0.0, "an EOS bad word is ignored");
    }
}
