//! `softmax`: numerically stable rows that match the reference and sum to one.

use crate::common::reference as cpu;
use crate::common::*;
use crate::upload;
use seq2seq_gpu::ops;

#[test]
fn softmax_is_stable_and_matches_reference() {
    let gpu = gpu();
    let mut rng = rng(4);
    for cols in AWKWARD_SIZES.iter().copied().chain([1000, 4099]) {
        let rows = 3;
        // Large magnitudes: a naive exp would overflow to inf.
        let x = random_vec(&mut rng, rows * cols, 80.0);
        let t = upload(&gpu, &x, &[rows, cols]);
        run(&gpu, |rec| ops::softmax(rec, &t));
        let got = read(&gpu, &t);
        assert_close(
            &got,
            &cpu::softmax(&x, cols),
            1e-5,
            &format!("softmax cols={cols}"),
        );
        for row in got.chunks(cols) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
        }
    }
}
