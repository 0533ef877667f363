//! Long use: hundreds of generations of every kind in one process, and hundreds of inputs
//! through `generate_many`, leave the buffer pool and the device's buffers exactly where
//! they were after warm-up, and a generation dropped halfway gives back everything it held.
//! wgpu's buffer counters are global, so the tests here take turns.

mod common;

use std::sync::Mutex;

use seq2seq_gpu::{Batching, Engine, GenerationOptions, ManyOptions};

/// Held by each test: the counters see every device of the process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

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
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
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

/// 500 inputs in batches of 8: each result arrives once; a second pass, and a pass dropped
/// after a few results (which stay valid), leave the pool and the device's buffers where
/// the first pass left them.
#[test]
fn five_hundred_inputs_and_a_cancelled_run_leave_memory_flat() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let engine = common::load(&common::fixture::dir("t5-tiny"));
    let long = "This License applies to any program or other work. ".repeat(40);
    let base = [
        "Grant of Copyright License.",
        "",
        &long,
        "You may convey verbatim copies of the Program's source code as you receive it.",
        "Yes.",
        "   ",
    ];
    let inputs: Vec<String> = (0..500).map(|i| base[i % base.len()].to_string()).collect();
    let options = options(serde_json::json!({ "max_new_tokens": 3, "truncation": true }));
    let many = ManyOptions {
        batch_size: Some(8),
        split_sentences: false,
        batching: Batching::Auto,
        cache_blocks: None,
    };
    let first = common::generate_many(&engine, &inputs, &options, &many);
    let settled = footprint(&engine);
    assert!(settled.1 > 0, "wgpu's counters are off: {settled:?}");

    let mut cancelled = engine
        .generate_many(inputs.clone(), &options, &many)
        .unwrap();
    let mut kept = Vec::new();
    while kept.len() < 5 {
        let finished = pollster::block_on(cancelled.next()).unwrap().unwrap();
        kept.push((finished.index, finished.results.unwrap()));
    }
    drop(cancelled);
    for (index, results) in &kept {
        assert_eq!(results, &first[*index], "input {index}");
    }
    assert_eq!(footprint(&engine), settled, "after a cancelled run");

    let second = common::generate_many(&engine, &inputs, &options, &many);
    assert_eq!(second, first);
    assert_eq!(footprint(&engine), settled, "after 500 more inputs");
}
