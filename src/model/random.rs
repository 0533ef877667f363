//! Deterministic random weights for any model description, so the benchmark can build
//! models of real shapes without a download.

use std::ops::Range;

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use super::spec::ModelSpec;
use crate::error::Result;
use crate::formats::TensorSource;

pub struct RandomWeights {
    vocab: usize,
    widths: [usize; 2],
    seed: u64,
}

impl RandomWeights {
    pub fn new(spec: &ModelSpec, seed: u64) -> Self {
        RandomWeights {
            vocab: spec.vocab_size,
            widths: [spec.encoder.width, spec.decoder.width],
            seed,
        }
    }
}

impl TensorSource for RandomWeights {
    fn files(&self) -> String {
        format!("random weights (seed {})", self.seed)
    }

    fn contains(&self, _: &str) -> bool {
        true
    }

    /// Only token embeddings' shapes are ever asked for: the decoder's where the name says
    /// so, else the encoder's (or the shared one).
    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        let width = match name.contains("decoder") {
            true => self.widths[1],
            false => self.widths[0],
        };
        Ok(vec![self.vocab, width])
    }

    /// Uniform values scaled by 1/sqrt(fan-in), so activations keep unit size; norm
    /// weights are 1. Each tensor's values depend only on the seed and its name, and a
    /// block of rows is the same whichever blocks are asked for (the generator seeks to it).
    async fn rows(&self, name: &str, shape: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        let row = shape.iter().skip(1).product::<usize>();
        let len = rows.len() * row;
        if name.contains("norm") && name.ends_with(".weight") {
            return Ok(vec![1.0; len]);
        }
        let name_hash = name.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ name_hash);
        rng.set_word_pos((rows.start * row) as u128);
        let fan_in = *shape.last().unwrap_or(&1) as f32;
        let scale = (3.0 / fan_in).sqrt();
        Ok((0..len)
            .map(|_| ((rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0) * scale)
            .collect())
    }
}
