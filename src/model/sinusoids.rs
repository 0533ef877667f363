//! Sinusoidal position tables, computed with the precision transformers computes them in,
//! so the values match the reference to the last bit or close to it.

use super::spec::Sinusoids;

/// A [rows, dim] table of position encodings.
pub fn table(layout: Sinusoids, rows: usize, dim: usize) -> Vec<f32> {
    match layout {
        Sinusoids::Marian => marian(rows, dim),
        Sinusoids::Fairseq => fairseq(rows, dim),
    }
}

/// MarianSinusoidalPositionalEmbedding: angle(pos, j) = pos / 10000^(2⌊j/2⌋/dim) in f64;
/// columns [0, dim/2) hold sin of the even j, [dim/2, dim) cos of the odd j.
fn marian(rows: usize, dim: usize) -> Vec<f32> {
    let half = dim.div_ceil(2);
    let mut out = vec![0.0f32; rows * dim];
    for pos in 0..rows {
        let row = &mut out[pos * dim..][..dim];
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            if j % 2 == 0 {
                row[j / 2] = angle.sin() as f32;
            } else {
                row[half + j / 2] = angle.cos() as f32;
            }
        }
    }
    out
}

/// M2M100SinusoidalPositionalEmbedding.get_embedding, in torch's f32 steps: frequencies
/// exp(-k · ln(10000)/(half - 1)), angle = pos · freq rounded to f32, then [sin | cos];
/// an odd dimension leaves the last column zero. transformers also zeroes the row of
/// `padding_idx` (1); positions start at the offset 2, so that row is never read.
fn fairseq(rows: usize, dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let step = (10000f64.ln() / (half as f64 - 1.0)) as f32;
    let freqs: Vec<f32> = (0..half).map(|k| (k as f32 * -step).exp()).collect();
    let mut out = vec![0.0f32; rows * dim];
    for pos in 0..rows {
        let row = &mut out[pos * dim..][..dim];
        for (k, freq) in freqs.iter().enumerate() {
            let angle = pos as f32 * freq;
            row[k] = (angle as f64).sin() as f32;
            row[half + k] = (angle as f64).cos() as f32;
        }
    }
    out
}
