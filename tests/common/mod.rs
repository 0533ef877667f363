//! Shared test support: one GPU per test binary, random data, comparisons.
#![allow(dead_code)]

pub mod fixture;
pub mod reference;
pub mod rounding;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use seq2seq_gpu::gpu::{Gpu, Plan, Recorder};
use seq2seq_gpu::model::{DecoderShape, Encoded, Model, WeightFormat};
use seq2seq_gpu::{DirSource, Engine, LoadOptions};

pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| pollster::block_on(Gpu::new()).expect("a wgpu adapter (lavapipe in CI)"))
        .clone()
}

/// A device that records decode steps with the fused matmul whatever the adapter (CPU
/// adapters do not by default), so that lavapipe checks the kernels a GPU runs.
pub fn fused_gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    let options = seq2seq_gpu::gpu::GpuOptions {
        fused_kernels: Some(true),
        ..Default::default()
    };
    GPU.get_or_init(|| pollster::block_on(Gpu::with_options(options)).expect("a wgpu adapter"))
        .clone()
}

/// The model folder at `dir` on `gpu`, with weights as stored or in `weights`.
pub fn load_on(
    gpu: Arc<Gpu>,
    dir: &Path,
    weights: Option<WeightFormat>,
) -> seq2seq_gpu::Result<Engine> {
    let options = LoadOptions {
        weights,
        gpu: Some(gpu),
        ..Default::default()
    };
    pollster::block_on(Engine::load(&DirSource::new(dir)?, &options))
}

/// The model folder at `dir` on the shared test GPU.
pub fn load(dir: &Path) -> Engine {
    load_on(gpu(), dir, None).unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
}

/// Records with `build` and submits it (reads that follow wait for it).
pub fn run(gpu: &Gpu, build: impl FnOnce(&mut Recorder) -> seq2seq_gpu::Result<()>) -> Plan {
    run_at_step(gpu, 0, build)
}

/// Like `run`, with the decode position of the plan set to `pos`.
pub fn run_at_step(
    gpu: &Gpu,
    pos: u32,
    build: impl FnOnce(&mut Recorder) -> seq2seq_gpu::Result<()>,
) -> Plan {
    let mut rec = Recorder::new(gpu);
    build(&mut rec).expect("recording");
    let plan = rec.finish().expect("plan");
    plan.set_step(gpu, pos);
    plan.submit(gpu);
    plan
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn random_vec(rng: &mut StdRng, len: usize, scale: f32) -> Vec<f32> {
    (0..len).map(|_| rng.random_range(-scale..scale)).collect()
}

pub fn read(gpu: &Gpu, t: &seq2seq_gpu::gpu::Tensor) -> Vec<f32> {
    pollster::block_on(t.to_f32(gpu)).expect("readback")
}

pub fn read_u32(gpu: &Gpu, t: &seq2seq_gpu::gpu::Tensor) -> Vec<u32> {
    pollster::block_on(t.to_u32(gpu)).expect("readback")
}

/// Largest |a - b| divided by the largest |b| (the reference), or by 1 if that is smaller.
pub fn relative_error(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len(), "length mismatch");
    let scale = expected.iter().fold(1e-30f32, |m, v| m.max(v.abs()));
    let worst = actual
        .iter()
        .zip(expected)
        .map(|(a, b)| {
            if a.is_nan() || b.is_nan() {
                f32::INFINITY
            } else {
                (a - b).abs()
            }
        })
        .fold(0.0f32, f32::max);
    worst / scale
}

#[track_caller]
pub fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    let err = relative_error(actual, expected);
    assert!(
        err <= tolerance,
        "{what}: relative error {err:e} above {tolerance:e}"
    );
}

/// Sizes that are not multiples of any tile: edges of the 16/64-wide tiles and 256-wide groups.
pub const AWKWARD_SIZES: [usize; 7] = [1, 3, 17, 63, 65, 127, 129];

/// The decoder's logits at every position of `decoder_ids` at once over `encoded` (teacher
/// forcing), as transformers' `model(**inputs, decoder_input_ids=...).logits`.
pub fn teacher_forced_logits(
    model: &Model,
    gpu: &Arc<Gpu>,
    encoded: &Encoded,
    decoder_ids: &[u32],
) -> Vec<f32> {
    let t = decoder_ids.len();
    let decoder = model
        .decoder(
            gpu,
            encoded,
            DecoderShape::single(t, t),
            seq2seq_gpu::model::Choice::Logits,
        )
        .unwrap();
    decoder.set_ids(decoder_ids).unwrap();
    pollster::block_on(decoder.step_logits(0)).unwrap()
}

/// Each input's results by index, checking that every index arrives exactly once.
pub fn generate_many(
    engine: &Engine,
    inputs: &[String],
    options: &seq2seq_gpu::GenerationOptions,
    many: &seq2seq_gpu::ManyOptions,
) -> Vec<Vec<seq2seq_gpu::Generated>> {
    let mut generation = engine
        .generate_many(inputs.to_vec(), options, many)
        .unwrap();
    let mut results = std::collections::BTreeMap::new();
    while let Some(finished) = pollster::block_on(generation.next()) {
        let finished = finished.unwrap();
        let results_of = finished.results.unwrap();
        assert!(
            results.insert(finished.index, results_of).is_none(),
            "input {} delivered twice",
            finished.index
        );
    }
    assert_eq!(
        results.keys().copied().collect::<Vec<_>>(),
        (0..inputs.len()).collect::<Vec<_>>()
    );
    results.into_values().collect()
}
