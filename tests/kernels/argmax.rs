//! `argmax`: the first maximum per row, with and without a shortlist vocabulary.

use crate::common::reference as cpu;
use crate::common::*;
use crate::upload;
use seq2seq_gpu::gpu::Tensor;
use seq2seq_gpu::ops;

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
