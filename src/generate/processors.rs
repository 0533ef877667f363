//! Logits processors and sampling warpers, each a small function over one row of scores
//! and that row's decoder sequence, applied in transformers' order with its arithmetic
//! (f32, -inf for banned tokens), so that outputs match `generate()` exactly.

use super::options::GenerationConfig;

/// Everything that edits scores before a token is chosen.
pub struct Processors<'c> {
    config: &'c GenerationConfig,
}

impl<'c> Processors<'c> {
    pub fn new(config: &'c GenerationConfig) -> Self {
        Processors { config }
    }

    /// Whether any processor (besides sampling) is active; without them greedy decoding
    /// can pick tokens on the GPU.
    pub fn any(&self) -> bool {
        let c = self.config;
        c.repetition_penalty != 1.0
            || c.no_repeat_ngram_size > 0
            || !c.bad_words_ids.is_empty()
            || c.min_length > 0
            || c.min_new_tokens > 0
            || c.forced_bos_token_id.is_some()
            || !c.forced_eos_token_id.is_empty()
            || !c.suppress_tokens.is_empty()
            || !c.begin_suppress_tokens.is_empty()
    }

    /// Applies the processors to `scores` for a row whose decoder sequence is `ids`
    /// (decoder start token first), in the order transformers builds them.
    pub fn apply(&self, ids: &[u32], scores: &mut [f32]) {
        let c = self.config;
        let cur_len = ids.len();
        if c.repetition_penalty != 1.0 {
            repetition_penalty(ids, scores, c.repetition_penalty);
        }
        if c.no_repeat_ngram_size > 0 {
            ban(scores, &no_repeat_ngram(ids, c.no_repeat_ngram_size));
        }
        if !c.bad_words_ids.is_empty() {
            bad_words(ids, scores, &c.bad_words_ids, &c.eos_token_ids);
        }
        if cur_len < c.min_length {
            ban(scores, &c.eos_token_ids);
        }
        // transformers counts new tokens after the decoder prompt (the start token).
        if cur_len - 1 < c.min_new_tokens {
            ban(scores, &c.eos_token_ids);
        }
        if let Some(bos) = c.forced_bos_token_id
            && cur_len == 1
        {
            force(scores, &[bos]);
        }
        if !c.forced_eos_token_id.is_empty() && cur_len == c.max_length - 1 {
            force(scores, &c.forced_eos_token_id);
        }
        ban(scores, &c.suppress_tokens);
        // begin_index is the decoder prompt length, or one more after a forced BOS token.
        let begin_index = if c.forced_bos_token_id.is_some() {
            2
        } else {
            1
        };
        if cur_len == begin_index {
            ban(scores, &c.begin_suppress_tokens);
        }
    }

    /// Sampling warpers: temperature, then top-k, then top-p.
    pub fn warp(&self, scores: &mut [f32]) {
        let c = self.config;
        if c.temperature != 1.0 {
            for s in scores.iter_mut() {
                *s /= c.temperature;
            }
        }
        if c.top_k != 0 {
            top_k(scores, c.top_k);
        }
        if c.top_p < 1.0 {
            top_p(scores, c.top_p);
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

/// Tokens already in the sequence: negative scores multiplied, positive divided.
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
