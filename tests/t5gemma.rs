//! T5Gemma beyond what tests/hub.rs checks against transformers: the fused decode kernels a
//! GPU records, sliding layers' caches bounded by their window, beams and padded batches
//! over those caches, and an encoder of another width than the decoder.

mod common;

use std::sync::Arc;

use common::*;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::Gpu;
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{Choice, DecoderShape, Model, WeightFormat};
use seq2seq_gpu::{Engine, GenerationOptions};

const NAME: &str = "hub/t5gemma";

fn greedy() -> GenerationOptions {
    GenerationOptions {
        max_new_tokens: Some(32),
        num_beams: Some(1),
        do_sample: Some(false),
        ..Default::default()
    }
}

fn ids_of(engine: &Engine, text: &str, options: &GenerationOptions) -> Vec<Vec<u32>> {
    let out = pollster::block_on(engine.generate(text, options, |_| {})).unwrap();
    out.into_iter().map(|g| g.ids).collect()
}

/// One position at a time through the cache: the logits of every step of `decoder_ids`.
fn stepwise_logits(model: &Model, gpu: &Arc<Gpu>, input: &[u32], decoder_ids: &[u32]) -> Vec<f32> {
    let encoded = model.encode(gpu, input).unwrap();
    let shape = DecoderShape::single(1, decoder_ids.len());
    let decoder = model.decoder(gpu, &encoded, shape, Choice::Logits).unwrap();
    let mut logits = Vec::new();
    for (pos, &id) in decoder_ids.iter().enumerate() {
        decoder.set_ids(&[id]).unwrap();
        logits.extend(pollster::block_on(decoder.step_logits(pos)).unwrap());
    }
    logits
}

/// The fused kernels (the QKV projection with its input norm, rotary positions with the
/// cache append, the cross-attention projecting its own queries over grouped heads, the
/// soft-capped head with the greedy argmax's first stage) give transformers' logits step by
/// step and its greedy ids, the cache ring wrapping past the window.
#[test]
fn fused_kernels_reproduce_transformers() {
    let gpu = fused_gpu();
    let engine = load_on(gpu.clone(), &fixture::dir(NAME), None).unwrap();
    let expected = fixture::expected_json(NAME);
    let tensors = fixture::expected_tensors(NAME);
    for (i, case) in fixture::cases(&expected).iter().enumerate() {
        let text = case["text"].as_str().unwrap();
        let want = fixture::ids(&case["greedy_ids"]);
        assert_eq!(
            ids_of(&engine, text, &greedy())[0][..want.len()],
            want,
            "case {i}"
        );
        if i < 2 {
            let input = fixture::ids(&case["input_ids"]);
            let decoder_ids = fixture::ids(&case["decoder_input_ids"]);
            let logits = stepwise_logits(engine.model(), &gpu, &input, &decoder_ids);
            let (reference, _) = &tensors[&format!("case{i}.logits")];
            assert_close(
                &logits,
                reference,
                1e-4,
                &format!("case {i} stepwise logits"),
            );
        }
    }
}

/// A sliding layer's cache is a ring of its window whatever the capacity (one more row per
/// extra token fed at once); a full layer's holds every position.
#[test]
fn sliding_layers_keep_only_their_window() {
    let gpu = gpu();
    let engine = load_on(gpu.clone(), &fixture::dir(NAME), None).unwrap();
    let model = engine.model();
    let window = model
        .spec
        .decoder
        .window(0)
        .expect("the first decoder layer slides");
    assert_eq!(model.spec.decoder.window(1), None);
    let encoded = model.encode(&gpu, &[2, 459, 422, 375]).unwrap();
    for (tokens, capacity) in [(1, 16), (1, 500), (3, 500), (20, 20)] {
        let shape = DecoderShape::single(tokens, capacity);
        let decoder = model
            .decoder(&gpu, &encoded, shape, Choice::Logits)
            .unwrap();
        let ring = capacity.min(window + tokens - 1);
        assert_eq!(
            decoder.cache_rows(),
            [ring, capacity],
            "{tokens} tokens, capacity {capacity}"
        );
    }
}

/// Beams read each other's histories through the row table over ring caches: the beam
/// kernel and the CPU's choice from read-back logits (a no-op n-gram ban takes that path)
/// return the same sequences; and a padded batch generates each input as alone.
#[test]
fn beams_and_padded_batches_over_ring_caches() {
    let engine = load(&fixture::dir(NAME));
    let expected = fixture::expected_json(NAME);
    let cases = fixture::cases(&expected);
    let beams = GenerationOptions {
        num_beams: Some(3),
        num_return_sequences: Some(2),
        max_new_tokens: Some(24),
        ..Default::default()
    };
    let through_logits = GenerationOptions {
        no_repeat_ngram_size: Some(100),
        ..beams.clone()
    };
    for case in cases.iter().take(3) {
        let text = case["text"].as_str().unwrap();
        assert_eq!(
            ids_of(&engine, text, &beams),
            ids_of(&engine, text, &through_logits),
            "{text}"
        );
    }
    let texts: Vec<&str> = cases
        .iter()
        .take(4)
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    let batch = pollster::block_on(engine.generate_batch(&texts, &greedy())).unwrap();
    for (text, generated) in texts.iter().zip(&batch) {
        let alone = &ids_of(&engine, text, &greedy())[0];
        assert_eq!(&generated.ids[..alone.len()], &alone[..], "{text}");
    }
}

/// A T5Gemma config with an encoder narrower than the decoder (the cross-attention's keys
/// and values projected from the encoder's width), on random weights: the decoder fed a
/// whole sequence and the cached decoder fed one position at a time agree, unfused and fused.
#[test]
fn an_encoder_of_another_width_feeds_the_cross_attention() {
    let stack = |width: usize, heads: usize, layers: &[&str]| {
        serde_json::json!({
            "hidden_size": width, "num_attention_heads": heads, "num_key_value_heads": 1,
            "head_dim": 16, "intermediate_size": 96, "num_hidden_layers": layers.len(),
            "layer_types": layers, "sliding_window": 4, "query_pre_attn_scalar": 16,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
            "rms_norm_eps": 1e-6, "hidden_activation": "gelu_pytorch_tanh", "vocab_size": 300,
            "cross_attention_hidden_size": 48,
        })
    };
    let config = serde_json::json!({
        "model_type": "t5gemma", "vocab_size": 300, "eos_token_id": [1], "pad_token_id": 0,
        "decoder_start_token_id": 2,
        "encoder": stack(48, 3, &["sliding_attention", "full_attention"]),
        "decoder": stack(64, 4, &["full_attention", "sliding_attention"]),
    });
    let spec = spec_from_config_json(&config.to_string()).unwrap();
    assert_eq!((spec.encoder.width, spec.decoder.width), (48, 64));
    let input: Vec<u32> = (0..11).map(|i| 3 + i * 7).collect();
    let decoder_ids: Vec<u32> = [2, 9, 17, 5, 40, 41, 42, 43, 7].to_vec();
    for gpu in [gpu(), fused_gpu()] {
        let weights = RandomWeights::new(&spec, 3);
        let model =
            pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32))
                .unwrap();
        let encoded = model.encode(&gpu, &input).unwrap();
        assert_eq!(encoded.hidden.shape, [11, 48]);
        let whole = teacher_forced_logits(&model, &gpu, &encoded, &decoder_ids);
        let stepwise = stepwise_logits(&model, &gpu, &input, &decoder_ids);
        let what = format!("widths 48 and 64 (fused {})", gpu.fused_kernels());
        assert_close(&stepwise, &whole, 1e-4, &what);
    }
}
