//! Drawing a token from processed scores with a seeded generator: ChaCha8 from a u64 seed
//! is the same stream on every platform, so a seed reproduces a run natively and in the
//! browser.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::processors::softmax;
use crate::platform::entropy_seed;

pub struct Sampler {
    rng: ChaCha8Rng,
}

impl Sampler {
    pub fn new(seed: Option<u64>) -> Self {
        Sampler {
            rng: ChaCha8Rng::seed_from_u64(seed.unwrap_or_else(entropy_seed)),
        }
    }

    /// A uniform number in [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A token drawn with probability softmax(scores).
    pub fn sample(&mut self, scores: &[f32]) -> u32 {
        let probs = softmax(scores);
        let target = self.uniform() * probs.iter().map(|&p| p as f64).sum::<f64>();
        let mut cumulative = 0.0f64;
        let mut last_possible = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                cumulative += p as f64;
                last_possible = i;
                if cumulative > target {
                    return i as u32;
                }
            }
        }
        last_possible as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::GenerationConfig;
    use crate::generate::processors::Processors;

    fn config(temperature: f32, top_k: usize, top_p: f32) -> GenerationConfig {
        GenerationConfig {
            max_length: 20,
            max_length_factor: None,
            truncation: false,
            min_length: 0,
            min_new_tokens: 0,
            num_beams: 1,
            num_return_sequences: 1,
            length_penalty: 1.0,
            early_stopping: Default::default(),
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
            bad_words_ids: vec![],
            forced_bos_token_id: None,
            forced_eos_token_id: vec![],
            suppress_tokens: vec![],
            begin_suppress_tokens: vec![],
            stop_strings: vec![],
            do_sample: true,
            temperature,
            top_k,
            top_p,
            seed: Some(1),
            decoder_start_token_id: 0,
            eos_token_ids: vec![1],
            pad_token_id: 0,
            renormalize_logits: false,
        }
    }

    /// Scores of a spread-out distribution over 50 tokens, not sorted by id.
    fn scores() -> Vec<f32> {
        (0..50).map(|i| ((i * 37) % 50) as f32 * 0.1).collect()
    }

    fn draw(config: &GenerationConfig, n: usize, seed: u64) -> Vec<u32> {
        let mut sampler = Sampler::new(Some(seed));
        (0..n)
            .map(|_| {
                let mut s = scores();
                Processors::new(config).apply(&[0], &mut s);
                sampler.sample(&s)
            })
            .collect()
    }

    fn ranked() -> Vec<u32> {
        let s = scores();
        let mut ids: Vec<u32> = (0..s.len() as u32).collect();
        ids.sort_by(|a, b| s[*b as usize].total_cmp(&s[*a as usize]));
        ids
    }

    #[test]
    fn the_same_seed_draws_the_same_tokens() {
        let c = config(1.0, 0, 1.0);
        assert_eq!(draw(&c, 200, 42), draw(&c, 200, 42));
        assert_ne!(draw(&c, 200, 42), draw(&c, 200, 43));
    }

    #[test]
    fn top_k_never_leaves_the_k_best() {
        let best: Vec<u32> = ranked()[..5].to_vec();
        let drawn = draw(&config(1.0, 5, 1.0), 5000, 3);
        assert!(drawn.iter().all(|t| best.contains(t)));
        // Every one of the five is drawn: the filter keeps them, it does not collapse to one.
        assert!(best.iter().all(|t| drawn.contains(t)));
    }

    #[test]
    fn top_p_keeps_the_smallest_set_with_the_mass_and_samples_in_proportion() {
        let s = scores();
        let probs = softmax(&s);
        let order = ranked();
        // The smallest prefix of the ranking whose probability exceeds 0.6.
        let mut mass = 0.0;
        let mut kept = Vec::new();
        for &t in &order {
            kept.push(t);
            mass += probs[t as usize];
            if mass > 0.6 {
                break;
            }
        }
        let drawn = draw(&config(1.0, 0, 0.6), 20000, 5);
        assert!(
            drawn.iter().all(|t| kept.contains(t)),
            "a token outside the top-p set"
        );
        // Frequencies follow the renormalised probabilities.
        for &t in &kept {
            let expected = probs[t as usize] / mass;
            let observed = drawn.iter().filter(|&&d| d == t).count() as f32 / drawn.len() as f32;
            assert!(
                (observed - expected).abs() < 0.02,
                "token {t}: {observed} vs {expected}"
            );
        }
    }

    #[test]
    fn temperature_near_zero_is_greedy() {
        let drawn = draw(&config(1e-4, 0, 1.0), 500, 9);
        assert!(drawn.iter().all(|&t| t == ranked()[0]));
    }
}
