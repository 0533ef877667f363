//! Checkpoint layouts users meet on the hub, made from the fixtures: half precision,
//! shards, tied weights stored several times or under other names, Marian with stored
//! positions, an untied LM head. Each must generate what the original generates.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::fixture::{self, FAMILIES};
use safetensors::Dtype;
use seq2seq_gpu::Engine;

type Tensors = BTreeMap<String, (Vec<f32>, Vec<usize>)>;

fn fixture_tensors(name: &str) -> Tensors {
    let bytes = std::fs::read(fixture::dir(name).join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(n, v)| {
            (
                n,
                (bytemuck::pod_collect_to_vec(v.data()), v.shape().to_vec()),
            )
        })
        .collect()
}

fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => bytemuck::cast_slice(values).to_vec(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::BF16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn serialize(tensors: &Tensors, dtype: Dtype) -> Vec<u8> {
    let encoded: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(n, (v, s))| (n.clone(), encode(v, dtype), s.clone()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = encoded
        .iter()
        .map(|(n, bytes, shape)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(dtype, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    safetensors::serialize(views, None).unwrap()
}

/// A model folder: the fixture's config (edited), tokenizer and generation config, and
/// `weights` written as given.
fn model_dir(
    name: &str,
    variant: &str,
    edit_config: impl Fn(&mut serde_json::Value),
    weights: &[(&str, Vec<u8>)],
) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "seq2seq-variant-{}-{name}-{variant}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let src = fixture::dir(name);
    for file in ["tokenizer.json", "generation_config.json"] {
        std::fs::copy(src.join(file), dir.join(file)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    edit_config(&mut config);
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    for (file, bytes) in weights {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    dir
}

fn engine(dir: &Path) -> Engine {
    common::load(dir)
}

/// Every case generates the fixture's greedy ids.
fn assert_generates_fixture_ids(name: &str, dir: &Path, what: &str) {
    let engine = engine(dir);
    let expected = fixture::expected_json(name);
    for (i, case) in fixture::cases(&expected).iter().enumerate() {
        let ids = greedy(&engine, &fixture::ids(&case["input_ids"]));
        assert_eq!(
            ids,
            fixture::ids(&case["greedy_ids"]),
            "{name} {what}: case {i}"
        );
    }
}

fn no_edit(_: &mut serde_json::Value) {}

#[test]
fn sharded_checkpoints_load_through_their_index() {
    for name in ["t5-tiny", "bart-tiny"] {
        let tensors = fixture_tensors(name);
        let names: Vec<&String> = tensors.keys().collect();
        let third = names.len().div_ceil(3);
        let mut weight_map = serde_json::Map::new();
        let mut files = Vec::new();
        for (k, chunk) in names.chunks(third).enumerate() {
            let file = format!("model-{:05}-of-00003.safetensors", k + 1);
            let part: Tensors = chunk
                .iter()
                .map(|n| ((*n).clone(), tensors[*n].clone()))
                .collect();
            for n in chunk {
                weight_map.insert((*n).clone(), file.clone().into());
            }
            files.push((file, serialize(&part, Dtype::F32)));
        }
        let index = serde_json::json!({ "metadata": {}, "weight_map": weight_map }).to_string();
        let mut weights: Vec<(&str, Vec<u8>)> =
            files.iter().map(|(f, b)| (f.as_str(), b.clone())).collect();
        weights.push(("model.safetensors.index.json", index.into_bytes()));
        let dir = model_dir(name, "sharded", no_edit, &weights);
        assert_generates_fixture_ids(name, &dir, "sharded");
    }
}

#[test]
fn tied_embeddings_stored_under_other_names_or_several_times() {
    // T5: only encoder.embed_tokens (no "shared"); then every name at once plus lm_head.
    let t5 = fixture_tensors("t5-tiny");
    let shared = t5["shared.weight"].clone();
    let mut renamed = t5.clone();
    renamed.remove("shared.weight");
    renamed.insert("encoder.embed_tokens.weight".into(), shared.clone());
    let mut repeated = t5.clone();
    for n in [
        "encoder.embed_tokens.weight",
        "decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        repeated.insert(n.into(), shared.clone());
    }
    // BART: the hub's usual layout repeats the shared table for both stacks and the head.
    let bart = fixture_tensors("bart-tiny");
    let bart_shared = bart["model.shared.weight"].clone();
    let mut bart_repeated = bart.clone();
    for n in [
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
        "lm_head.weight",
    ] {
        bart_repeated.insert(n.into(), bart_shared.clone());
    }
    for (name, variant, tensors) in [
        ("t5-tiny", "renamed", renamed),
        ("t5-tiny", "repeated", repeated),
        ("bart-tiny", "repeated", bart_repeated),
    ] {
        let dir = model_dir(
            name,
            variant,
            no_edit,
            &[("model.safetensors", serialize(&tensors, Dtype::F32))],
        );
        assert_generates_fixture_ids(name, &dir, variant);
    }
}

#[test]
fn an_untied_lm_head_is_read_from_lm_head_weight() {
    for (name, shared_name) in [
        ("flan-t5-tiny", "shared.weight"),
        ("bart-tiny", "model.shared.weight"),
        ("m2m100-tiny", "model.shared.weight"),
    ] {
        let mut tensors = fixture_tensors(name);
        let shared = tensors[shared_name].clone();
        tensors.insert("lm_head.weight".into(), shared.clone());
        let untie = |c: &mut serde_json::Value| c["tie_word_embeddings"] = false.into();
        let dir = model_dir(
            name,
            "untied",
            untie,
            &[("model.safetensors", serialize(&tensors, Dtype::F32))],
        );
        assert_generates_fixture_ids(name, &dir, "untied");

        // The head really is read from lm_head.weight: scrambling it changes the output.
        let (mut values, shape) = shared;
        values.reverse();
        tensors.insert("lm_head.weight".into(), (values, shape));
        let dir = model_dir(
            name,
            "untied-other",
            untie,
            &[("model.safetensors", serialize(&tensors, Dtype::F32))],
        );
        let engine = engine(&dir);
        let expected = fixture::expected_json(name);
        let case = &fixture::cases(&expected)[0];
        assert_ne!(
            greedy(&engine, &fixture::ids(&case["input_ids"])),
            fixture::ids(&case["greedy_ids"])
        );
    }
}

/// MarianSinusoidalPositionalEmbedding, written out independently of the engine's own code.
fn marian_positions(rows: usize, dim: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * dim];
    for pos in 0..rows {
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf(2.0 * (j / 2) as f64 / dim as f64);
            let column = if j % 2 == 0 { j / 2 } else { dim / 2 + j / 2 };
            out[pos * dim + column] = if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32;
        }
    }
    out
}

#[test]
fn marian_with_stored_positions_uses_them() {
    let name = "marian-tiny";
    let tensors = fixture_tensors(name);
    let expected = fixture::expected_json(name);
    let case = &fixture::cases(&expected)[1];
    let shape = vec![256, 64];
    for (variant, table, same) in [
        ("stored-positions", marian_positions(256, 64), true),
        (
            "shifted-positions",
            marian_positions(257, 64)[64..].to_vec(),
            false,
        ),
    ] {
        let mut with_positions = tensors.clone();
        for stack in ["encoder", "decoder"] {
            with_positions.insert(
                format!("model.{stack}.embed_positions.weight"),
                (table.clone(), shape.clone()),
            );
        }
        let dir = model_dir(
            name,
            variant,
            no_edit,
            &[("model.safetensors", serialize(&with_positions, Dtype::F32))],
        );
        if same {
            assert_generates_fixture_ids(name, &dir, variant);
        } else {
            let ids = greedy(&engine(&dir), &fixture::ids(&case["input_ids"]));
            assert_ne!(
                ids,
                fixture::ids(&case["greedy_ids"]),
                "stored positions were ignored"
            );
        }
    }
}

use common::rounding::{BF16_EPSILON, F16_EPSILON, greedy};

/// f16 and bf16 weights are converted to f32 at load, so the logits differ from the f32
/// reference only by the rounding of the weights. Measured on the six fixtures (lavapipe,
/// 2026-11-23), the largest logit error relative to the largest logit was 3.9e-3 for f16
/// (7.96 ε_f16, t5-tiny) and 3.3e-2 for bf16 (8.3 ε_bf16, t5-tiny); the bf16/f16 ratio of
/// the errors is about 8 for every family, the ratio of the two epsilons, as weight
/// rounding predicts. The bound is 16 ε of each format: twice the worst measurement.
/// Greedy ids must equal the reference at every step whose reference top-2 margin exceeds
/// twice the logit error at that step, since no smaller perturbation can swap the top two.
#[test]
fn half_precision_checkpoints_stay_close_to_f32() {
    for (dtype, tolerance) in [
        (Dtype::F16, 16.0 * F16_EPSILON),
        (Dtype::BF16, 16.0 * BF16_EPSILON),
    ] {
        for name in FAMILIES {
            let tensors = fixture_tensors(name);
            let variant = format!("{dtype:?}");
            let dir = model_dir(
                name,
                &variant,
                no_edit,
                &[("model.safetensors", serialize(&tensors, dtype))],
            );
            common::rounding::assert_close_to_reference(&engine(&dir), name, tolerance, &variant);
        }
    }
}
