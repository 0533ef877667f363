//! Long use: hundreds of generations of every kind in one process leave the buffer pool and
//! the device's buffers exactly where they were after warm-up, and a generation dropped
//! halfway gives back everything it held.

mod common;

use seq2seq_gpu::{Engine, GenerationOptions};

const ROUNDS: usize = 500;

fn options(json: serde_json::Value) -> GenerationOptions {
    GenerationOptions::from_json(json.as_object().unwrap(), "test").unwrap()
}

/// (pool bytes, live buffers, their bytes)
fn footprint(engine: &Engine) -> (u64, isize, isize) {
    let (buffers, bytes) = engine.gpu().live_buffers();
    (engine.gpu().pool_bytes(), buffers, bytes)
}

#[test]
fn memory_stays_flat_over_hundreds_of_generations() {
    let engine = common::load(&common::fixture::dir("t5-tiny"));
    let prompts = [
        "Grant of Copyright License.",
        "This License applies to any program or other work.",
    ];
    let variants = [
        options(serde_json::json!({ "max_new_tokens": 6 })),
        options(
            serde_json::json!({ "max_new_tokens": 6, "num_beams": 3, "num_return_sequences": 2 }),
        ),
        options(
            serde_json::json!({ "max_new_tokens": 6, "do_sample": true, "seed": 7, "top_k": 5 }),
        ),
        options(
            serde_json::json!({ "max_new_tokens": 6, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2 }),
        ),
    ];
    let generate = |round: usize| {
        let options = &variants[round % variants.len()];
        if round % 7 == 3 {
            pollster::block_on(engine.generate_batch(&prompts, options)).unwrap();
        } else {
            let prompt = prompts[round % prompts.len()];
            pollster::block_on(engine.generate(prompt, options, |_| {})).unwrap();
        }
    };
    // Warm-up: every kind of generation on every prompt, so the pool holds every size.
    for round in 0..28 {
        generate(round);
    }
    let settled = footprint(&engine);
    assert!(settled.1 > 0, "wgpu's counters are off: {settled:?}");
    for round in 0..ROUNDS {
        generate(round);
        if round % 100 == 99 {
            assert_eq!(
                footprint(&engine),
                settled,
                "after {} generations",
                round + 1
            );
        }
    }

    // A generation dropped after two pieces releases its decoder, encoder and staging.
    let mut generation = engine.start(prompts[1], &variants[0]).unwrap();
    for _ in 0..2 {
        pollster::block_on(generation.next_piece());
    }
    drop(generation);
    assert_eq!(footprint(&engine), settled, "after a cancelled generation");
}
