//! A device whose binding limit is far below a model's tensors (64 KiB, simulated with
//! `GpuOptions::max_buffer_bytes`): embeddings, position tables, the LM head and stacked
//! projections are split into row blocks, and every fixture generates exactly what it does
//! on a device without the limit, for every input whose hidden states fit one binding
//! (activations are not split). A limit too small for the work buffers is an error that
//! names the limit and the bytes needed.

mod common;

use std::sync::Arc;

use common::fixture::{self, FAMILIES, HUB, hub};
use seq2seq_gpu::gpu::{Gpu, GpuOptions};
use seq2seq_gpu::model::{ModelSpec, WeightFormat};
use seq2seq_gpu::{Engine, GenerationOptions};
use serde_json::Value;

fn gpu_limited_to(bytes: u64) -> Arc<Gpu> {
    let options = GpuOptions {
        max_buffer_bytes: Some(bytes),
        ..GpuOptions::default()
    };
    pollster::block_on(Gpu::with_options(options)).unwrap()
}

fn ids(engine: &Engine, text: &str, options: &GenerationOptions) -> Vec<Vec<u32>> {
    let out = pollster::block_on(engine.generate(text, options, |_| {}))
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    out.into_iter().map(|g| g.ids).collect()
}

fn language(case: &Value, key: &str) -> Option<String> {
    case["lang"][key].as_str().map(str::to_string)
}

/// Whether the activations of an input of `rows` tokens fit one binding of `limit` bytes:
/// only weights are split into row blocks, not the hidden states (see the last test here).
fn activations_fit(spec: &ModelSpec, rows: usize, limit: usize) -> bool {
    let widths = [
        spec.encoder.width,
        spec.encoder.inner_dim() + 2 * spec.encoder.kv_dim(),
        spec.encoder.ffn_dim * if spec.gated_ffn { 2 } else { 1 },
        2 * spec.decoder.layers * spec.decoder.kv_dim(),
    ];
    // The buffer pool rounds sizes up by at most a quarter.
    widths.iter().all(|w| rows * w * 4 * 5 / 4 <= limit)
}

#[test]
fn every_fixture_generates_the_same_on_a_64_kib_device() {
    let small = gpu_limited_to(64 << 10);
    let names = FAMILIES
        .iter()
        .map(|n| n.to_string())
        .chain(HUB.iter().map(|n| hub(n)));
    for name in names {
        let dir = fixture::dir(&name);
        let unlimited = common::load(&dir);
        let split = common::load_on(small.clone(), &dir, None)
            .unwrap_or_else(|e| panic!("{name} on a 64 KiB device: {e}"));
        let expected = fixture::expected_json(&name);
        let cases: Vec<&Value> = fixture::cases(&expected)
            .iter()
            .filter(|case| {
                activations_fit(
                    &split.model().spec,
                    fixture::ids(&case["input_ids"]).len(),
                    64 << 10,
                )
            })
            .collect();
        assert!(cases.len() >= 2, "{name}: {} cases fit", cases.len());
        for (i, case) in cases.iter().enumerate() {
            let text = case["text"].as_str().unwrap();
            let languages = GenerationOptions {
                src_lang: language(case, "src_lang"),
                tgt_lang: language(case, "tgt_lang"),
                ..Default::default()
            };
            let greedy = GenerationOptions {
                max_new_tokens: Some(24),
                num_beams: Some(1),
                ..languages.clone()
            };
            let beams = GenerationOptions {
                num_beams: Some(3),
                num_return_sequences: Some(2),
                ..greedy.clone()
            };
            let modes = [("greedy", &greedy), ("beams", &beams)];
            // Beams once per fixture: they take a step per beam on a software adapter.
            for (mode, options) in modes.iter().take(if i == 0 { 2 } else { 1 }) {
                assert_eq!(
                    ids(&split, text, options),
                    ids(&unlimited, text, options),
                    "{name} case {i} {mode}"
                );
            }
        }
    }
}

/// Embeddings and tied LM heads kept as f16 or int8 are split as f32 ones are (an int8
/// block keeps its rows' scales): greedy ids equal those of the same format unsplit.
#[test]
fn compact_embeddings_generate_the_same_on_a_16_kib_device() {
    let limit = 16 << 10;
    let small = gpu_limited_to(limit as u64);
    let options = GenerationOptions {
        max_new_tokens: Some(16),
        num_beams: Some(1),
        ..Default::default()
    };
    for name in ["t5-tiny", "bart-tiny"] {
        let dir = fixture::dir(name);
        for format in [WeightFormat::F16, WeightFormat::Int8] {
            let unlimited = common::load_on(common::gpu(), &dir, Some(format)).unwrap();
            let split = common::load_on(small.clone(), &dir, Some(format)).unwrap();
            let embedding = &split.model().weights.encoder_ends.embedding;
            assert!(embedding.parts.len() > 1, "{name} {format:?}: split");
            // Short inputs: their activations fit one 16 KiB binding.
            for text in ["Hello.", "A house."] {
                let rows = split.tokenizer().encode(text).unwrap().len();
                assert!(activations_fit(&split.model().spec, rows, limit), "{text}");
                assert_eq!(
                    ids(&split, text, &options),
                    ids(&unlimited, text, &options),
                    "{name} {format:?} {text:?}"
                );
            }
        }
    }
}

/// The bundled Firefox Translations model (int8 weights, its int8 embedding and tied,
/// shortlisted output layer of 32000 rows in row blocks) translates the same on a 128 KiB
/// device.
#[test]
fn the_bundled_translation_model_translates_the_same_on_a_128_kib_device() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/enpt");
    let unlimited = common::load(&dir);
    let split = common::load_on(gpu_limited_to(128 << 10), &dir, None).unwrap();
    let options = GenerationOptions::default();
    for text in [
        "I would like a cup of coffee, please.",
        "Where is the station?",
    ] {
        assert_eq!(
            ids(&split, text, &options),
            ids(&unlimited, text, &options),
            "{text}"
        );
    }
}

#[test]
fn a_device_too_small_for_the_work_buffers_names_the_limit() {
    let engine = common::load_on(gpu_limited_to(4096), &fixture::dir("t5-tiny"), None).unwrap();
    let options = GenerationOptions {
        max_new_tokens: Some(8),
        ..Default::default()
    };
    let error =
        pollster::block_on(engine.generate("Grant of Copyright License.", &options, |_| {}))
            .unwrap_err()
            .to_string();
    assert!(
        error.starts_with(
            "maxStorageBufferBindingSize of this device is 4096, but a work buffer needs "
        ),
        "{error}"
    );
}
