//! `activation`, `gated` and `add`: element-wise kernels, extremes included.

use crate::common::reference as cpu;
use crate::common::*;
use crate::{ACTIVATIONS, upload, zeros};
use seq2seq_gpu::ops::{self, Activation};

#[test]
fn activations_match_reference_including_extremes() {
    let gpu = gpu();
    let mut rng = rng(6);
    let mut x = random_vec(&mut rng, 1000, 8.0);
    x.extend([-100.0, -30.0, -15.5, 0.0, 15.5, 30.0, 100.0]);
    for (act, f) in ACTIVATIONS {
        let xt = upload(&gpu, &x, &[x.len()]);
        let y = zeros(&gpu, &[x.len()]);
        run(&gpu, |rec| ops::activation(rec, &xt, &y, act));
        let got = read(&gpu, &y);
        assert!(
            got.iter().all(|v| v.is_finite()),
            "{act:?} produced a non-finite value"
        );
        let expected: Vec<f32> = x.iter().map(|&v| f(v)).collect();
        assert_close(&got, &expected, 1e-6, &format!("{act:?}"));
    }
}

#[test]
fn gated_feed_forward_product_and_residual_add() {
    let gpu = gpu();
    let mut rng = rng(7);
    for (rows, width) in [(1, 1), (3, 17), (65, 129)] {
        let x = random_vec(&mut rng, rows * 2 * width, 4.0);
        let xt = upload(&gpu, &x, &[rows, 2 * width]);
        let y = zeros(&gpu, &[rows, width]);
        run(&gpu, |rec| ops::gated(rec, &xt, &y, Activation::GeluTanh));
        let expected: Vec<f32> = (0..rows * width)
            .map(|i| {
                let (r, c) = (i / width, i % width);
                cpu::gelu_tanh(x[r * 2 * width + c]) * x[r * 2 * width + width + c]
            })
            .collect();
        assert_close(
            &read(&gpu, &y),
            &expected,
            1e-6,
            &format!("gated {rows}x{width}"),
        );

        let a = random_vec(&mut rng, rows * width, 1.0);
        let b = random_vec(&mut rng, rows * width, 1.0);
        let (at, bt) = (
            upload(&gpu, &a, &[rows, width]),
            upload(&gpu, &b, &[rows, width]),
        );
        run(&gpu, |rec| ops::add(rec, &at, &bt));
        let sum: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
        assert_close(&read(&gpu, &bt), &sum, 0.0, "add");
    }
}
