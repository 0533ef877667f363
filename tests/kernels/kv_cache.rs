//! `kv_cache::append`: each sequence's new row lands after the step position.

use crate::common::*;
use crate::upload;
use seq2seq_gpu::ops;

#[test]
fn kv_append_writes_each_sequence_after_the_step_position() {
    let gpu = gpu();
    let mut rng = rng(12);
    let (sequences, capacity, width, src_width) = (3, 6, 5, 20);
    let cache_init = random_vec(&mut rng, sequences * capacity * width, 1.0);
    let src = random_vec(&mut rng, sequences * src_width, 1.0);
    let cache = upload(&gpu, &cache_init, &[sequences * capacity, width]);
    let st = upload(&gpu, &src, &[sequences, src_width]);
    run_at_step(&gpu, 4, |rec| {
        ops::kv_cache::append(
            rec,
            st.matrix().columns(7, width),
            &cache,
            1,
            capacity,
            None,
        )
    });
    let mut expected = cache_init.clone();
    for seq in 0..sequences {
        expected[(seq * capacity + 4) * width..][..width]
            .copy_from_slice(&src[seq * src_width + 7..][..width]);
    }
    assert_eq!(read(&gpu, &cache), expected);
}
