//! The Hugging Face reference fixtures in tests/fixtures (copied from ../shared/fixtures).

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::Value;

pub const FAMILIES: [&str; 6] = [
    "t5-tiny",
    "flan-t5-tiny",
    "bart-tiny",
    "marian-tiny",
    "mbart-tiny",
    "m2m100-tiny",
];

/// Every hub fixture, in tests/fixtures/hub (copied from ../shared/fixtures-hub).
pub const HUB: [&str; 11] = [
    "bart-legacy",
    "byt5",
    "m2m100-spm",
    "mbart50",
    "mt5-bin",
    "nllb",
    "opus-mt-multi",
    "opus-mt-spm",
    "pegasus",
    "t5-spm",
    "t5gemma",
];

/// The fixture name of hub fixture `name`.
pub fn hub(name: &str) -> String {
    format!("hub/{name}")
}

pub fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn expected_json(name: &str) -> Value {
    let text = std::fs::read_to_string(dir(name).join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Tensors of expected.safetensors as (values, shape).
pub fn expected_tensors(name: &str) -> HashMap<String, (Vec<f32>, Vec<usize>)> {
    let bytes = std::fs::read(dir(name).join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), safetensors::Dtype::F32);
            (
                name,
                (
                    bytemuck::pod_collect_to_vec(view.data()),
                    view.shape().to_vec(),
                ),
            )
        })
        .collect()
}

pub fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u32)
        .collect()
}

pub fn cases(expected: &Value) -> &Vec<Value> {
    expected["cases"].as_array().unwrap()
}
