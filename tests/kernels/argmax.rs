//! `argmax`: the first maximum per row, with and without a shortlist vocabulary.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::gpu::Tensor;
use seq2seq_gpu::ops::{self, Epilogue, Fusion};

#[test]
fn argmax_picks_the_first_maximum() {
    let gpu = gpu();
    let mut rng = rng(9);
    for cols in AWKWARD_SIZES.iter().copied().chain([32128]) {
        let rows = 3;
        let mut x = random_vec(&mut rng, rows * cols, 1.0);
        // Row 1 has a tie between a later and an earlier position: the earlier must win.
        if cols >= 3 {
            x[cols + cols - 1] = 5.0;
            x[cols + 1] = 5.0;
        }
        let xt = upload(&gpu, &x, &[rows, cols]);
        let ids = Tensor::upload_u32(&gpu, "ids", &[0; 3], &[rows]).unwrap();
        run(&gpu, |rec| ops::argmax(rec, &xt, &ids, None));
        assert_eq!(
            read_u32(&gpu, &ids),
            cpu::argmax(&x, cols),
            "argmax cols={cols}"
        );
        // A shortlist: column c stands for token id 7c + 2.
        let vocabulary: Vec<u32> = (0..cols as u32).map(|c| 7 * c + 2).collect();
        let vt = Tensor::upload_u32(&gpu, "vocabulary", &vocabulary, &[cols]).unwrap();
        run(&gpu, |rec| ops::argmax(rec, &xt, &ids, Some(&vt)));
        let mapped: Vec<u32> = cpu::argmax(&x, cols)
            .iter()
            .map(|&c| vocabulary[c as usize])
            .collect();
        assert_eq!(read_u32(&gpu, &ids), mapped, "mapped argmax cols={cols}");
    }
}

/// The first maximum among numbers, 0 when a row has none (as the kernels take it).
fn first_maximum(row: &[f32]) -> u32 {
    let mut best: Option<usize> = None;
    for (i, &v) in row.iter().enumerate() {
        if !v.is_nan() && best.is_none_or(|b| v > row[b]) {
            best = Some(i);
        }
    }
    best.unwrap_or(0) as u32
}

/// The output layer's fused first stage (each workgroup's best of its columns) and the
/// second stage over those partials pick the first maximum of the logits the layer would
/// write (scaled by alpha, NaN never winning), ties within and across workgroups included,
/// with and without a shortlist vocabulary.
#[test]
fn argmax_folded_into_the_output_layer_picks_the_first_maximum() {
    let gpu = gpu();
    let mut rng = rng(10);
    let k = 8;
    for rows in [1, 3, 8] {
        for n in [1, 3, 17, 65, 129, 4099] {
            let mut logits = random_vec(&mut rng, rows * n, 1.0);
            // NaN columns come from the bias (a NaN weight would reach every row): the first
            // workgroup's 4 columns and column 6, or every column of a narrow layer.
            let mut bias = vec![0.0; n];
            match n >= 8 {
                true => [0, 1, 2, 3, 6].iter().for_each(|&c| bias[c] = f32::NAN),
                false => bias.fill(f32::NAN),
            }
            if n >= 12 {
                // Row 0: a tie inside one workgroup's columns and one across workgroups.
                for c in [n - 1, 9, 5, 4] {
                    logits[c] = 9.0;
                }
                // Row 1: below zero everywhere, so that the all-NaN workgroup's partial (no
                // column) must not count as a value.
                if rows >= 3 {
                    for v in &mut logits[n..2 * n] {
                        *v = -5.0 - v.abs();
                    }
                }
                // The last row: the maximum where a column is NaN, then a finite one.
                logits[(rows - 1) * n + 6] = 20.0;
                logits[(rows - 1) * n + 10] = 8.0;
            }
            // x's rows are unit vectors: output [r, c] = w[c, r] exactly.
            let mut x = vec![0.0; rows * k];
            for r in 0..rows {
                x[r * k + r] = 1.0;
            }
            let mut w = vec![0.0; n * k];
            for r in 0..rows {
                for c in 0..n {
                    w[c * k + r] = logits[r * n + c];
                }
            }
            let (xt, wt) = (upload(&gpu, &x, &[rows, k]), upload(&gpu, &w, &[n, k]));
            let out = zeros(&gpu, &[rows, n]);
            let partials = zeros(&gpu, &ops::argmax_partials_shape(rows, n));
            let ids = Tensor::upload_u32(&gpu, "ids", &vec![77; rows], &[rows]).unwrap();
            let vocabulary: Vec<u32> = (0..n as u32).map(|c| 7 * c + 2).collect();
            let vt = Tensor::upload_u32(&gpu, "vocabulary", &vocabulary, &[n]).unwrap();
            let epilogue = Epilogue {
                alpha: 0.5,
                ..Epilogue::default()
            };
            let fusion = Fusion {
                argmax: Some(&partials),
                ..Fusion::default()
            };
            let with_bias: Vec<f32> = (logits.iter().enumerate())
                .map(|(i, v)| v + bias[i % n])
                .collect();
            let expected: Vec<u32> = with_bias.chunks(n).map(first_maximum).collect();
            let bt = upload(&gpu, &bias, &[n]);
            for mapped in [None, Some(&vt)] {
                run(&gpu, |rec| {
                    let (x, out) = (xt.matrix(), out.matrix());
                    ops::linear_fused(rec, x, &wt, Some(&bt), out, epilogue, fusion)?;
                    ops::argmax_partials(rec, &partials, &ids, mapped)
                });
                let want: Vec<u32> = match mapped {
                    None => expected.clone(),
                    Some(_) => expected.iter().map(|&c| vocabulary[c as usize]).collect(),
                };
                let what = format!(
                    "{rows} rows of {n} columns, vocabulary {}",
                    mapped.is_some()
                );
                assert_eq!(read_u32(&gpu, &ids), want, "{what}");
            }
            // The logits themselves are not written.
            assert!(read(&gpu, &out).iter().all(|&v| v == 0.0), "{rows}x{n}");
        }
    }
}

/// Partials of the wrong shape, or a vocabulary of another width, are refused.
#[test]
fn argmax_partials_refuse_mismatched_shapes() {
    let gpu = gpu();
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    let ids = Tensor::upload_u32(&gpu, "ids", &[0; 2], &[2]).unwrap();
    let flat = zeros(&gpu, &[2, 10]);
    assert!(ops::argmax_partials(&mut rec, &flat, &ids, None).is_err());
    let partials = zeros(&gpu, &[2, 5, 2]);
    assert!(ops::argmax_partials(&mut rec, &partials, &ids, None).is_ok());
    let three = Tensor::upload_u32(&gpu, "ids", &[0; 3], &[3]).unwrap();
    assert!(ops::argmax_partials(&mut rec, &partials, &three, None).is_err());
    let vocabulary = Tensor::upload_u32(&gpu, "vocabulary", &[0; 21], &[21]).unwrap();
    assert!(ops::argmax_partials(&mut rec, &partials, &ids, Some(&vocabulary)).is_err());
    let (x, w) = (zeros(&gpu, &[2, 8]), zeros(&gpu, &[18, 8]));
    let fusion = Fusion {
        argmax: Some(&partials),
        ..Fusion::default()
    };
    let out = zeros(&gpu, &[2, 18]);
    let record = |rec: &mut _, fusion| {
        ops::linear_fused(
            rec,
            x.matrix(),
            &w,
            None,
            out.matrix(),
            Epilogue::default(),
            fusion,
        )
    };
    assert!(record(&mut rec, fusion).is_ok());
    let short = zeros(&gpu, &[2, 4, 2]);
    let fusion = Fusion {
        argmax: Some(&short),
        ..Fusion::default()
    };
    assert!(record(&mut rec, fusion).is_err());
}
