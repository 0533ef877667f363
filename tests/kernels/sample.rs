//! `sample`: the GPU's draw against a CPU reference that applies transformers' top-k and
//! top-p by sorting and draws with the same Gumbel noise; and the draw's frequencies.

use crate::common::*;
use crate::upload;
use seq2seq_gpu::generate::sampling::gumbel;
use seq2seq_gpu::gpu::{Gpu, Tensor};
use seq2seq_gpu::ops::{self, Sampling};

/// transformers' warpers by sorting (top-k keeps scores at least the k-th best; top-p the
/// best tokens until their mass reaches top_p, ties of the last included kept), then the
/// largest kept score plus noise, the lowest column on ties.
fn reference(row: &[f32], tokens: &[u32], s: &Sampling, row_index: usize, pos: usize) -> u32 {
    let y: Vec<f32> = row.iter().map(|v| v / s.temperature).collect();
    let mut descending = y.clone();
    descending.sort_by(|a, b| b.total_cmp(a));
    let mut threshold = f32::NEG_INFINITY;
    if s.top_k > 0 && s.top_k < y.len() {
        threshold = descending[s.top_k - 1];
    }
    if s.top_p < 1.0 {
        let best = descending[0];
        let kept: Vec<f32> = descending.into_iter().filter(|&v| v >= threshold).collect();
        let total: f64 = kept.iter().map(|&v| ((v - best) as f64).exp()).sum();
        let mut mass = 0.0;
        for &v in &kept {
            mass += ((v - best) as f64).exp();
            if mass >= s.top_p as f64 * total {
                threshold = v;
                break;
            }
        }
    }
    let mut chosen = 0;
    let mut best_noisy = f32::NEG_INFINITY;
    for (c, &v) in y.iter().enumerate() {
        if v < threshold {
            continue;
        }
        let noisy = v + gumbel(s.seed, row_index, pos, tokens[c]);
        if noisy > best_noisy {
            chosen = c;
            best_noisy = noisy;
        }
    }
    tokens[chosen]
}

fn draw(gpu: &Gpu, x: &Tensor, vocabulary: Option<&Tensor>, s: &Sampling, pos: u32) -> Vec<u32> {
    let rows = x.shape[0];
    let ids = Tensor::upload_u32(gpu, "ids", &vec![0; rows], &[rows]).unwrap();
    run_at_step(gpu, pos, |rec| ops::sample(rec, x, &ids, vocabulary, s));
    read_u32(gpu, &ids)
}

const SETTINGS: [(f32, usize, f32); 7] = [
    (1.0, 0, 1.0),
    (0.7, 1, 1.0),
    (1.3, 5, 1.0),
    (1.0, 0, 0.9),
    (1.0, 0, 0.3),
    (0.8, 40, 0.6),
    (1.0, 1_000_000, 0.05),
];

#[test]
fn sampling_draws_what_the_sorted_reference_draws() {
    let gpu = gpu();
    let mut rng = rng(21);
    for cols in [1, 7, 100, 301, 4099] {
        let rows = 6;
        // Wide scores, so that the cuts fall between distinct values.
        let mut x = random_vec(&mut rng, rows * cols, 4.0);
        // A banned token, as processors and shortlists leave them.
        x[0] = f32::NEG_INFINITY;
        let xt = upload(&gpu, &x, &[rows, cols]);
        // A shortlist: column c stands for token id 3c + 1, and draws that token's noise.
        let mapped: Vec<u32> = (0..cols as u32).map(|c| 3 * c + 1).collect();
        let vt = Tensor::upload_u32(&gpu, "vocabulary", &mapped, &[cols]).unwrap();
        let identity: Vec<u32> = (0..cols as u32).collect();
        for (i, &(temperature, top_k, top_p)) in SETTINGS.iter().enumerate() {
            let s = Sampling {
                temperature,
                top_k,
                top_p,
                seed: 0x1234_5678_9abc_def0 + i as u64,
            };
            for pos in [0, 5] {
                for (vocabulary, tokens) in [(None, &identity), (Some(&vt), &mapped)] {
                    let expected: Vec<u32> = x
                        .chunks(cols)
                        .enumerate()
                        .map(|(r, row)| reference(row, tokens, &s, r, pos))
                        .collect();
                    assert_eq!(
                        draw(&gpu, &xt, vocabulary, &s, pos as u32),
                        expected,
                        "cols {cols}, {s:?}, pos {pos}, shortlist {}",
                        vocabulary.is_some()
                    );
                }
            }
        }
    }
}

#[test]
fn draws_follow_the_cut_distribution() {
    // One row's scores in many rows, each its own noise: each kept token as often as its
    // renormalised probability says (within 4 standard deviations), no other token ever.
    let gpu = gpu();
    let draws = 4000;
    let scores: Vec<f32> = (0..40).map(|i| ((i * 17) % 40) as f32 * 0.15).collect();
    let xt = upload(&gpu, &scores.repeat(draws), &[draws, 40]);
    let s = Sampling {
        temperature: 0.9,
        top_k: 8,
        top_p: 0.8,
        seed: 99,
    };
    let mut counts = [0usize; 40];
    for token in draw(&gpu, &xt, None, &s, 3) {
        counts[token as usize] += 1;
    }
    let mut order: Vec<usize> = (0..40).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let weights: Vec<f64> = order[..8]
        .iter()
        .map(|&t| ((scores[t] - scores[order[0]]) as f64 / 0.9).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut mass = 0.0;
    let kept = 1 + weights
        .iter()
        .position(|w| {
            mass += w;
            mass >= 0.8 * total
        })
        .unwrap();
    let kept_total: f64 = weights[..kept].iter().sum();
    for (rank, &t) in order.iter().enumerate() {
        let observed = counts[t] as f64 / draws as f64;
        let expected = if rank < kept {
            weights[rank] / kept_total
        } else {
            0.0
        };
        assert!(
            (observed - expected).abs() < 0.03,
            "token {t} (rank {rank}): drawn {observed}, expected {expected}"
        );
    }
}

#[test]
fn bad_settings_are_refused() {
    let gpu = gpu();
    let xt = upload(&gpu, &[0.0; 8], &[2, 4]);
    let ids = Tensor::upload_u32(&gpu, "ids", &[0; 2], &[2]).unwrap();
    let good = Sampling {
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        seed: 0,
    };
    for bad in [
        Sampling {
            temperature: 0.0,
            ..good
        },
        Sampling {
            temperature: f32::NAN,
            ..good
        },
        Sampling { top_p: 0.0, ..good },
        Sampling { top_p: 1.5, ..good },
    ] {
        let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
        let error = ops::sample(&mut rec, &xt, &ids, None, &bad).unwrap_err();
        assert!(error.to_string().contains("sampling"), "{error}");
    }
    let one = Tensor::upload_u32(&gpu, "ids", &[0], &[1]).unwrap();
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    assert!(ops::sample(&mut rec, &xt, &one, None, &good).is_err());
}
