//! Drawing a token from processed scores, as the GPU's sample kernel draws it
//! (shaders/sample.wgsl): Gumbel-max, the finite score plus Gumbel noise that is largest
//! wins, the noise a hash of (seed, row, position, token id). The noise holds no state, so
//! a seed reproduces a run natively and in the browser, and a generation whose logits
//! processors run on the CPU draws what the GPU would draw from the same scores.

/// The hash lowbias32 (Chris Wellons), as `mix` in shaders/sample.wgsl.
fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x7feb_352d);
    h ^= h >> 15;
    h = h.wrapping_mul(0x846c_a68b);
    h ^= h >> 16;
    h
}

/// The noise stream of one row of a batch at one decode position (`pos` tokens cached).
fn row_noise(seed: u64, row: usize, pos: usize) -> u32 {
    mix(mix(mix(mix(seed as u32) ^ (seed >> 32) as u32) ^ row as u32) ^ pos as u32)
}

/// The Gumbel noise the sample kernel adds to `token`'s score in row `row` at `pos`.
pub fn gumbel(seed: u64, row: usize, pos: usize, token: u32) -> f32 {
    let stream = row_noise(seed, row, pos);
    let bits = mix(mix(stream ^ token) ^ stream);
    // 24 bits, centred, so 0 < u < 1.
    let u = ((bits >> 8) as f32 + 0.5) / 16_777_216.0;
    -(-u.ln()).ln()
}

pub struct Sampler {
    seed: u64,
}

impl Sampler {
    pub fn new(seed: u64) -> Self {
        Sampler { seed }
    }

    /// A token drawn with probability softmax(scores) for row `row` of the batch at `pos`:
    /// the lowest index on ties, token 0 when every score is -inf.
    pub fn sample(&self, scores: &[f32], row: usize, pos: usize) -> u32 {
        let mut best = 0;
        let mut best_noisy = f32::NEG_INFINITY;
        for (token, &s) in scores.iter().enumerate() {
            let noisy = s + gumbel(self.seed, row, pos, token as u32);
            if noisy > best_noisy {
                best = token;
                best_noisy = noisy;
            }
        }
        best as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::config::GenerationConfig;
    use crate::generate::processors::{Processors, softmax};

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

    /// One token per position 0..n of row 0.
    fn draw(config: &GenerationConfig, n: usize, seed: u64) -> Vec<u32> {
        let sampler = Sampler::new(seed);
        (0..n)
            .map(|pos| {
                let mut s = scores();
                Processors::new(config).apply(&[0], &mut s);
                sampler.sample(&s, 0, pos)
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
    fn rows_and_positions_draw_apart_and_nothing_possible_draws_token_0() {
        let sampler = Sampler::new(7);
        let s = scores();
        let by_row: Vec<u32> = (0..64).map(|row| sampler.sample(&s, row, 3)).collect();
        let by_pos: Vec<u32> = (0..64).map(|pos| sampler.sample(&s, 3, pos)).collect();
        for drawn in [by_row, by_pos] {
            assert!(drawn.windows(2).any(|w| w[0] != w[1]), "{drawn:?}");
        }
        assert_eq!(sampler.sample(&[f32::NEG_INFINITY; 5], 0, 0), 0);
        // A banned token is never drawn, whatever its noise.
        let banned = [0.0, f32::NEG_INFINITY, 0.0];
        assert!((0..500).all(|pos| sampler.sample(&banned, 0, pos) != 1));
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
