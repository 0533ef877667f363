//! `beam_candidates`: each input's best continuations against the CPU's log-softmax, sum
//! and sort, with ties, a shortlist and beams ruled out as transformers starts them.

use crate::common::*;
use crate::upload;
use seq2seq_gpu::generate::processors::log_softmax;
use seq2seq_gpu::gpu::{Gpu, Tensor};
use seq2seq_gpu::ops::{self, BeamScoring};

/// The best `keep` of (log_softmax(row) + score) over an input's beams, by total_cmp with
/// the lower index first on ties, numbered beam * vocab + token.
fn reference(
    logits: &[f32],
    scores: &[f32],
    beams: usize,
    tokens: &[u32],
    vocab: usize,
    keep: usize,
) -> Vec<(f32, usize)> {
    let cols = tokens.len();
    let mut all = Vec::new();
    for (beam, row) in logits.chunks(cols).enumerate().take(beams) {
        let mut row = row.to_vec();
        log_softmax(&mut row);
        for (c, lp) in row.iter().enumerate() {
            all.push((lp + scores[beam], beam * vocab + tokens[c] as usize));
        }
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    all.truncate(keep);
    all
}

struct Case {
    inputs: usize,
    beams: usize,
    cols: usize,
    keep: usize,
    /// Scores rounded to halves: many ties, also at the cut.
    coarse: bool,
}

fn candidates(
    gpu: &Gpu,
    logits: &Tensor,
    scores: &[f32],
    vocabulary: Option<&Tensor>,
    c: &Case,
    vocab: usize,
) -> Vec<(f32, usize)> {
    let scores = upload(gpu, scores, &[scores.len()]);
    let out = Tensor::upload_u32(
        gpu,
        "candidates",
        &vec![0; 2 * c.inputs * c.keep],
        &[c.inputs, c.keep, 2],
    )
    .unwrap();
    let scoring = BeamScoring {
        logits,
        scores: &scores,
        candidates: &out,
        vocabulary,
        beams: c.beams,
        keep: c.keep,
        vocab,
    };
    run(gpu, |rec| ops::beam_candidates(rec, &scoring));
    let words = read_u32(gpu, &out);
    words
        .chunks(2)
        .map(|p| (f32::from_bits(p[0]), p[1] as usize))
        .collect()
}

#[test]
fn beam_candidates_are_the_sorted_best_continuations() {
    let gpu = gpu();
    let mut rng = rng(33);
    let cases = [
        Case {
            inputs: 1,
            beams: 1,
            cols: 5,
            keep: 5,
            coarse: false,
        },
        Case {
            inputs: 2,
            beams: 4,
            cols: 301,
            keep: 8,
            coarse: false,
        },
        Case {
            inputs: 3,
            beams: 3,
            cols: 1000,
            keep: 9,
            coarse: true,
        },
        Case {
            inputs: 1,
            beams: 8,
            cols: 4099,
            keep: 24,
            coarse: false,
        },
        Case {
            inputs: 2,
            beams: 2,
            cols: 40,
            keep: 80,
            coarse: true,
        },
    ];
    for c in &cases {
        let rows = c.inputs * c.beams;
        let mut x = random_vec(&mut rng, rows * c.cols, 3.0);
        if c.coarse {
            x.iter_mut().for_each(|v| *v = (*v * 2.0).round() / 2.0);
        }
        // As transformers starts: only the first beam of each input is open.
        let scores: Vec<f32> = (0..rows)
            .map(|r| {
                if r % c.beams == 0 {
                    -0.25 * r as f32
                } else {
                    -1.0e9
                }
            })
            .collect();
        let xt = upload(&gpu, &x, &[rows, c.cols]);
        // A shortlist: column k stands for token 2k + 3 of a vocabulary of 2 cols + 3.
        let mapped: Vec<u32> = (0..c.cols as u32).map(|k| 2 * k + 3).collect();
        let vt = Tensor::upload_u32(&gpu, "vocabulary", &mapped, &[c.cols]).unwrap();
        let identity: Vec<u32> = (0..c.cols as u32).collect();
        for (vocabulary, tokens, vocab) in [
            (None, &identity, c.cols),
            (Some(&vt), &mapped, 2 * c.cols + 3),
        ] {
            let got = candidates(&gpu, &xt, &scores, vocabulary, c, vocab);
            for i in 0..c.inputs {
                let block = &x[i * c.beams * c.cols..][..c.beams * c.cols];
                let want = reference(
                    block,
                    &scores[i * c.beams..],
                    c.beams,
                    tokens,
                    vocab,
                    c.keep,
                );
                let got = &got[i * c.keep..][..c.keep];
                let label = format!(
                    "{} beams of {} columns, keep {}, input {i}, shortlist {}",
                    c.beams,
                    c.cols,
                    c.keep,
                    vocabulary.is_some()
                );
                let ids = |v: &[(f32, usize)]| v.iter().map(|p| p.1).collect::<Vec<_>>();
                assert_eq!(ids(got), ids(&want), "{label}");
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g.0 - w.0).abs() <= 1e-5 * w.0.abs().max(1.0),
                        "{label}: {} vs {}",
                        g.0,
                        w.0
                    );
                }
            }
        }
    }
}

#[test]
fn bad_beam_scoring_is_refused() {
    let gpu = gpu();
    let logits = upload(&gpu, &[0.0; 24], &[4, 6]);
    let scores = upload(&gpu, &[0.0; 4], &[4]);
    let out = Tensor::upload_u32(&gpu, "candidates", &[0; 16], &[2, 4, 2]).unwrap();
    let good = BeamScoring {
        logits: &logits,
        scores: &scores,
        candidates: &out,
        vocabulary: None,
        beams: 2,
        keep: 4,
        vocab: 6,
    };
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    ops::beam_candidates(&mut rec, &good).unwrap();
    for bad in [
        BeamScoring { beams: 3, ..good },
        BeamScoring { keep: 5, ..good },
        BeamScoring { keep: 0, ..good },
        BeamScoring { vocab: 7, ..good },
        BeamScoring {
            beams: 4,
            keep: 2,
            ..good
        },
    ] {
        let error = ops::beam_candidates(&mut rec, &bad).unwrap_err();
        assert!(error.to_string().contains("beam_candidates"), "{error}");
    }
}
