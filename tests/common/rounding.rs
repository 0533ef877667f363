//! Checks for models whose weights were rounded to half precision: logits near the f32
//! reference, and greedy ids equal wherever the reference's top-2 margin rules out a swap.

use super::fixture;
use seq2seq_gpu::{Engine, GenerationOptions};

/// Spacing of f16 and bf16 values near 1 (11 and 8 significant bits).
pub const F16_EPSILON: f32 = 1.0 / 2048.0;
pub const BF16_EPSILON: f32 = 1.0 / 256.0;
/// The step of per-row int8 quantisation relative to the row's largest magnitude.
pub const INT8_EPSILON: f32 = 1.0 / 127.0;

/// Greedy ids for `input_ids`, at most 48 new tokens (the fixtures' setting).
pub fn greedy(engine: &Engine, input_ids: &[u32]) -> Vec<u32> {
    let options = GenerationOptions {
        max_new_tokens: Some(48),
        ..Default::default()
    };
    let generation = engine.start_from_ids(input_ids, &options).unwrap();
    pollster::block_on(generation.run(|_| {}))
        .unwrap()
        .remove(0)
        .ids
}

/// Teacher-forced logits within `tolerance` (relative to the largest) of the fixture's, and
/// greedy ids equal to the fixture's at every step whose reference top-2 margin exceeds
/// twice the logit error at that step, since no smaller perturbation can swap the top two.
pub fn assert_close_to_reference(engine: &Engine, name: &str, tolerance: f32, variant: &str) {
    let gpu = engine.gpu();
    let model = engine.model();
    let vocab = model.spec.vocab_size;
    let expected = fixture::expected_json(name);
    let references = fixture::expected_tensors(name);
    let mut checked_steps = 0;
    for (i, case) in fixture::cases(&expected).iter().enumerate() {
        let encoded = model
            .encode(gpu, &fixture::ids(&case["input_ids"]))
            .unwrap();
        let dec_ids = fixture::ids(&case["decoder_input_ids"]);
        let logits = super::teacher_forced_logits(model, gpu, &encoded, &dec_ids);
        let reference = &references[&format!("case{i}.logits")].0;
        let err = super::relative_error(&logits, reference);
        assert!(
            err <= tolerance,
            "{name} {variant} case {i}: logits off by {err:e} (allowed {tolerance:e})"
        );

        let greedy_ids = fixture::ids(&case["greedy_ids"]);
        let generated = greedy(engine, &fixture::ids(&case["input_ids"]));
        for (step, (ours, theirs)) in logits
            .chunks(vocab)
            .zip(reference.chunks(vocab))
            .enumerate()
        {
            let deviation = ours
                .iter()
                .zip(theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let mut sorted = theirs.to_vec();
            sorted.sort_by(|a, b| b.total_cmp(a));
            if sorted[0] - sorted[1] <= 2.0 * deviation {
                break; // from here on a different token is allowed
            }
            checked_steps += 1;
            assert_eq!(
                generated.get(step + 1),
                greedy_ids.get(step + 1),
                "{name} {variant} case {i} step {step}"
            );
        }
    }
    assert!(
        checked_steps > 0,
        "{name} {variant}: no step had a safe margin"
    );
}
