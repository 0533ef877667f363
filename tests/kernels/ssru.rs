//! `ssru`: the recurrent state carried across tokens in a step and across steps.

use crate::common::reference as cpu;
use crate::common::*;
use crate::upload;
use seq2seq_gpu::ops;

/// Several tokens in one step from a fresh state (stale values in the state buffer must not
/// leak in at position 0), then one more token at a later position continuing the state.
#[test]
fn ssru_carries_state_across_tokens_and_steps() {
    let gpu = gpu();
    let mut rng = rng(6);
    let (sequences, dim, first) = (3, 37, 4);
    let stale = random_vec(&mut rng, sequences * dim, 5.0);
    let state = upload(&gpu, &stale, &[sequences, dim]);
    let mut expected_state = vec![vec![0.0f32; dim]; sequences];
    for (tokens, pos) in [(first, 0), (1, first as u32)] {
        let gates = random_vec(&mut rng, sequences * tokens * 2 * dim, 3.0);
        let x = random_vec(&mut rng, sequences * tokens * dim, 1.0);
        let (gt, hidden) = (
            upload(&gpu, &gates, &[sequences * tokens, 2 * dim]),
            upload(&gpu, &x, &[sequences * tokens, dim]),
        );
        run_at_step(&gpu, pos, |rec| {
            ops::ssru(rec, &gt, &state, &hidden, tokens)
        });
        let expected: Vec<f32> = (0..sequences)
            .flat_map(|s| {
                cpu::ssru(
                    &gates[s * tokens * 2 * dim..][..tokens * 2 * dim],
                    &x[s * tokens * dim..][..tokens * dim],
                    &mut expected_state[s],
                    tokens,
                )
            })
            .collect();
        assert_close(
            &read(&gpu, &hidden),
            &expected,
            1e-6,
            &format!("ssru {tokens} tokens at {pos}"),
        );
        assert_close(
            &read(&gpu, &state),
            &expected_state.concat(),
            1e-6,
            "ssru state",
        );
    }
}
