//! Tokenisation, greedy generation and streaming against the transformers fixtures.

mod common;

use common::fixture::{self, FAMILIES};
use seq2seq_gpu::{Engine, GenerationOptions};

fn engine(name: &str) -> Engine {
    common::load(&fixture::dir(name))
}

fn max_new_tokens(expected: &serde_json::Value) -> GenerationOptions {
    GenerationOptions {
        max_new_tokens: Some(expected["max_new_tokens"].as_u64().unwrap() as usize),
        ..Default::default()
    }
}

#[test]
fn tokenizer_ids_equal_transformers() {
    for name in FAMILIES {
        let engine = engine(name);
        let expected = fixture::expected_json(name);
        for case in fixture::cases(&expected) {
            let ids = engine
                .tokenizer()
                .encode(case["text"].as_str().unwrap())
                .unwrap();
            assert_eq!(
                ids,
                fixture::ids(&case["input_ids"]),
                "{name}: {}",
                case["text"]
            );
        }
    }
}

#[test]
fn greedy_ids_and_text_equal_transformers_and_the_stream_adds_up() {
    for name in FAMILIES {
        let engine = engine(name);
        let expected = fixture::expected_json(name);
        let options = max_new_tokens(&expected);
        for (i, case) in fixture::cases(&expected).iter().enumerate() {
            let mut pieces = Vec::new();
            let generation = engine
                .start(case["text"].as_str().unwrap(), &options)
                .unwrap();
            let out = pollster::block_on(generation.run(|p| pieces.push(p.to_string()))).unwrap();
            let out = &out[0];
            assert_eq!(
                out.ids,
                fixture::ids(&case["greedy_ids"]),
                "{name} case {i}"
            );
            assert_eq!(
                out.text,
                case["greedy_text"].as_str().unwrap(),
                "{name} case {i} text"
            );
            assert_eq!(
                pieces.concat(),
                out.text,
                "{name} case {i}: stream != final text"
            );
            if out.text.split_whitespace().count() > 3 {
                assert!(
                    pieces.len() > 3,
                    "{name} case {i}: text arrived in {} pieces",
                    pieces.len()
                );
            }
        }
    }
}

/// The fused decode matmul (what GPUs record) gives transformers' greedy ids too.
#[test]
fn fused_kernels_give_transformers_greedy_ids() {
    same_greedy_ids_on(common::fused_gpu());
}

/// So does attention with every query row's keys split across workgroups and merged (what
/// GPUs do with long key ranges), in the encoder, the self-attention and the cross-attention.
#[test]
fn split_attention_gives_transformers_greedy_ids() {
    let options = seq2seq_gpu::gpu::GpuOptions {
        key_splits: Some(3),
        ..Default::default()
    };
    same_greedy_ids_on(pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(options)).unwrap());
}

fn same_greedy_ids_on(gpu: std::sync::Arc<seq2seq_gpu::gpu::Gpu>) {
    for name in FAMILIES {
        let engine = common::load_on(gpu.clone(), &fixture::dir(name), None).unwrap();
        let expected = fixture::expected_json(name);
        let options = max_new_tokens(&expected);
        for (i, case) in fixture::cases(&expected).iter().enumerate() {
            let text = case["text"].as_str().unwrap();
            let out = pollster::block_on(engine.generate(text, &options, |_| {})).unwrap();
            assert_eq!(
                out[0].ids,
                fixture::ids(&case["greedy_ids"]),
                "{name} case {i}"
            );
        }
    }
}

#[test]
fn max_new_tokens_bounds_the_output() {
    let engine = engine("t5-tiny");
    let expected = fixture::expected_json("t5-tiny");
    let case = &fixture::cases(&expected)[2];
    for n in [0, 1, 5] {
        let options = GenerationOptions {
            max_new_tokens: Some(n),
            ..Default::default()
        };
        let out =
            pollster::block_on(engine.generate(case["text"].as_str().unwrap(), &options, |_| {}))
                .unwrap();
        let greedy = fixture::ids(&case["greedy_ids"]);
        assert_eq!(out[0].ids, greedy[..=n], "max_new_tokens {n}");
    }
}

/// An input longer than the model's positions is refused with a message, or, with
/// `truncation`, cut to the limit keeping its final end-of-sentence token; an empty prompt
/// still generates (from the end-of-sentence token alone).
#[test]
fn long_inputs_are_refused_or_truncated_and_empty_prompts_work() {
    let engine = engine("bart-tiny");
    let long = "word ".repeat(400);
    let error = pollster::block_on(engine.generate(&long, &GenerationOptions::default(), |_| {}))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("places at most 256") && error.contains("truncation"),
        "{error}"
    );

    let ids = engine.tokenizer().encode(&long).unwrap();
    let mut cut = ids[..255].to_vec();
    cut.push(*ids.last().unwrap());
    let options = GenerationOptions {
        max_new_tokens: Some(8),
        truncation: Some(true),
        ..Default::default()
    };
    let truncated = pollster::block_on(engine.generate(&long, &options, |_| {})).unwrap();
    let explicit = pollster::block_on(engine.generate_batch_from_ids(&[cut], &options)).unwrap();
    assert_eq!(truncated[0].ids, explicit[0].ids);

    let empty = pollster::block_on(engine.generate("", &options, |_| {})).unwrap();
    assert!(
        empty[0].ids.len() > 1 && empty[0].ids.len() <= 9,
        "{:?}",
        empty[0].ids
    );
}

/// Greedy decoding run ahead on the GPU (as the engine does on GPUs; on CPU adapters it runs
/// one step at a time): one readback and one submission per `steps` tokens, and the steps
/// past the end are dropped, so the ids stay transformers'.
#[test]
fn greedy_decoding_run_ahead_reads_back_once_per_several_tokens() {
    for (steps, name) in [(8, "t5-tiny"), (16, "bart-tiny"), (3, "marian-tiny")] {
        // A device of its own: tests running alongside would add their traffic.
        let options = seq2seq_gpu::gpu::GpuOptions {
            run_ahead_steps: Some(steps),
            ..Default::default()
        };
        let gpu = pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(options)).unwrap();
        let engine = common::load_on(gpu.clone(), &fixture::dir(name), None).unwrap();
        let expected = fixture::expected_json(name);
        let options = max_new_tokens(&expected);
        for (i, case) in fixture::cases(&expected).iter().enumerate() {
            let before = gpu.traffic();
            let text = case["text"].as_str().unwrap();
            let out = pollster::block_on(engine.generate(text, &options, |_| {})).unwrap();
            let after = gpu.traffic();
            assert_eq!(
                out[0].ids,
                fixture::ids(&case["greedy_ids"]),
                "{name} case {i}"
            );
            let tokens = out[0].ids.len() - 1;
            let readbacks = after.readbacks - before.readbacks;
            let submits = after.submits - before.submits;
            assert!(
                readbacks <= tokens.div_ceil(steps) as u64 && submits <= readbacks + 1,
                "{name} case {i}: {tokens} tokens, {readbacks} readbacks, {submits} submissions"
            );
        }
    }
}

#[test]
fn a_run_ahead_outside_1_to_16_steps_is_refused() {
    for steps in [0, 17] {
        let options = seq2seq_gpu::gpu::GpuOptions {
            run_ahead_steps: Some(steps),
            ..Default::default()
        };
        let error = pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(options))
            .err()
            .expect("refused")
            .to_string();
        assert_eq!(
            error,
            format!("invalid argument: run-ahead of {steps} steps (use 1 to 16)")
        );
    }
}

/// Profiling a decode step times each of its dispatches on the GPU, named by kernel, on a
/// device with timestamp queries (lavapipe has them); a device without is refused.
#[test]
fn a_profiled_decode_step_times_every_dispatch() {
    let options = seq2seq_gpu::gpu::GpuOptions {
        timestamps: true,
        ..Default::default()
    };
    let timed = pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(options)).unwrap();
    // What CI runs on, so that the timed path cannot go untested there.
    assert!(
        timed.timestamps() || !timed.adapter_description().contains("llvmpipe"),
        "lavapipe has timestamp-query"
    );
    for gpu in [timed, common::gpu()] {
        let engine = common::load_on(gpu.clone(), &fixture::dir("t5-tiny"), None).unwrap();
        let model = engine.model();
        let encoded = model.encode(&gpu, &[3, 4, 5, 6]).unwrap();
        let shape = seq2seq_gpu::model::DecoderShape::single(1, 8);
        let decoder = model
            .decoder(&gpu, &encoded, shape, seq2seq_gpu::model::Choice::Argmax)
            .unwrap();
        let profiled = pollster::block_on(decoder.profile_step(2));
        if !gpu.timestamps() {
            let message = profiled.expect_err("no timestamps").to_string();
            assert!(message.contains("timestamp-query"), "{message}");
            continue;
        }
        let times = profiled.unwrap();
        assert_eq!(times.len(), decoder.dispatches_per_step());
        for entry in ["attention_main", "argmax_main", "embedding_main"] {
            assert!(
                times.iter().any(|t| t.kernel.entry == entry),
                "{entry} in {times:?}"
            );
        }
        assert!(times.iter().all(|t| t.nanos.is_finite() && t.nanos >= 0.0));
        assert!(times.iter().map(|t| t.nanos).sum::<f64>() > 0.0);
        let past_the_cache = pollster::block_on(decoder.profile_step(8));
        assert!(past_the_cache.is_err());
    }
}
