//! `norm`: layer norm and RMS norm against the reference, out of place and in place.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::ops::{self, Norm, NormKind};

#[test]
fn layer_norm_and_rms_norm_match_reference() {
    let gpu = gpu();
    let mut rng = rng(5);
    for cols in AWKWARD_SIZES.iter().copied().chain([512, 1000]) {
        let rows = 4;
        // An offset mean checks the two-pass variance.
        let x: Vec<f32> = random_vec(&mut rng, rows * cols, 2.0)
            .iter()
            .map(|v| v + 30.0)
            .collect();
        let w = random_vec(&mut rng, cols, 1.5);
        let b = random_vec(&mut rng, cols, 0.5);
        let xt = upload(&gpu, &x, &[rows, cols]);
        let layer_norm = Norm::upload(&gpu, NormKind::LayerNorm, &w, Some(&b), 1e-5).unwrap();
        let rms_norm = Norm::upload(&gpu, NormKind::RmsNorm, &w, None, 1e-6).unwrap();
        let y = zeros(&gpu, &[rows, cols]);
        run(&gpu, |rec| ops::norm(rec, &layer_norm, &xt, &y));
        assert_close(
            &read(&gpu, &y),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("layer norm {cols}"),
        );
        run(&gpu, |rec| ops::norm(rec, &rms_norm, &xt, &y));
        assert_close(
            &read(&gpu, &y),
            &cpu::rms_norm(&x, &w, 1e-6),
            1e-5,
            &format!("rms norm {cols}"),
        );
        // In place, as post-norm models use it.
        run(&gpu, |rec| ops::norm(rec, &layer_norm, &xt, &xt));
        assert_close(
            &read(&gpu, &xt),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("in-place {cols}"),
        );
    }
}

/// A norm's values must fit its kind: LayerNorm has a bias of the weight's length, RMSNorm
/// none; and a norm refuses rows of another width.
#[test]
fn norms_refuse_mismatched_values_and_rows() {
    let gpu = gpu();
    let w = [1.0; 8];
    assert!(Norm::upload(&gpu, NormKind::LayerNorm, &w, None, 1e-5).is_err());
    assert!(Norm::upload(&gpu, NormKind::LayerNorm, &w, Some(&[0.0; 7]), 1e-5).is_err());
    assert!(Norm::upload(&gpu, NormKind::RmsNorm, &w, Some(&[0.0; 8]), 1e-5).is_err());
    assert!(Norm::upload(&gpu, NormKind::RmsNorm, &[], None, 1e-5).is_err());
    let norm = Norm::upload(&gpu, NormKind::RmsNorm, &w, None, 1e-5).unwrap();
    let x = zeros(&gpu, &[2, 12]);
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    assert!(ops::norm(&mut rec, &norm, &x, &x).is_err());
}

/// y += norm(x): a sublayer's output normalised into the residual stream (Gemma).
#[test]
fn norm_add_adds_the_normalised_rows() {
    let gpu = gpu();
    let mut rng = rng(6);
    for cols in [3, 64, 130] {
        let rows = 5;
        let x = random_vec(&mut rng, rows * cols, 3.0);
        let prior = random_vec(&mut rng, rows * cols, 1.0);
        let w = random_vec(&mut rng, cols, 1.5);
        let b = random_vec(&mut rng, cols, 0.5);
        let xt = upload(&gpu, &x, &[rows, cols]);
        for (norm, normed) in [
            (
                Norm::upload(&gpu, NormKind::RmsNorm, &w, None, 1e-6).unwrap(),
                cpu::rms_norm(&x, &w, 1e-6),
            ),
            (
                Norm::upload(&gpu, NormKind::LayerNorm, &w, Some(&b), 1e-5).unwrap(),
                cpu::layer_norm(&x, &w, &b, 1e-5),
            ),
        ] {
            let y = upload(&gpu, &prior, &[rows, cols]);
            run(&gpu, |rec| ops::norm_add(rec, &norm, &xt, &y));
            let expected: Vec<f32> = prior.iter().zip(&normed).map(|(p, n)| p + n).collect();
            assert_close(
                &read(&gpu, &y),
                &expected,
                1e-5,
                &format!("{:?} {cols}", norm.kind),
            );
        }
    }
    let norm = Norm::upload(&gpu, NormKind::RmsNorm, &[1.0; 3], None, 1e-6).unwrap();
    let x = zeros(&gpu, &[2, 3]);
    let mut rec = seq2seq_gpu::gpu::Recorder::new(&gpu);
    assert!(ops::norm_add(&mut rec, &norm, &x, &x).is_err(), "in place");
}
