//! `norm`: layer norm and RMS norm against the reference, out of place and in place.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{upload, zeros};
use seq2seq_gpu::ops::{self, NormKind};

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
        let (xt, wt, bt) = (
            upload(&gpu, &x, &[rows, cols]),
            upload(&gpu, &w, &[cols]),
            upload(&gpu, &b, &[cols]),
        );
        let y = zeros(&gpu, &[rows, cols]);
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::LayerNorm, &xt, &y, &wt, Some(&bt), 1e-5)
        });
        assert_close(
            &read(&gpu, &y),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("layer norm {cols}"),
        );
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::RmsNorm, &xt, &y, &wt, None, 1e-6)
        });
        assert_close(
            &read(&gpu, &y),
            &cpu::rms_norm(&x, &w, 1e-6),
            1e-5,
            &format!("rms norm {cols}"),
        );
        // In place, as post-norm models use it.
        run(&gpu, |rec| {
            ops::norm(rec, NormKind::LayerNorm, &xt, &xt, &wt, Some(&bt), 1e-5)
        });
        assert_close(
            &read(&gpu, &xt),
            &cpu::layer_norm(&x, &w, &b, 1e-5),
            1e-4,
            &format!("in-place {cols}"),
        );
    }
}
