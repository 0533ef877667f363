//! `--dispatches`: the kernel dispatches of one recorded greedy decode step of each model,
//! with the fused decode matmul and without it, recorded but not run (so a software adapter,
//! which does not fuse by default, can show what a GPU records); where the adapter has
//! `timestamp-query`, the GPU time of each kernel in the step the adapter records (64 input
//! tokens, at position 64); then what fusing costs on this adapter: a pre-norm one-row
//! product as a norm dispatch and the matmul `linear` picks, and as one fused dispatch.

use std::collections::BTreeMap;

use seq2seq_gpu::formats::DirSource;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::{Gpu, GpuOptions, Recorder, Tensor};
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{Choice, DecoderShape, Model, ModelSpec, WeightFormat};
use seq2seq_gpu::ops::{self, Epilogue, Fusion, Norm, NormKind};
use seq2seq_gpu::{Engine, LoadOptions, Result};
use serde_json::{Value, json};

use super::translation::project_file;
use super::{plan_gflops, shapes};

fn options(fused: Option<bool>) -> GpuOptions {
    GpuOptions {
        fused_kernels: fused,
        timestamps: true,
        ..GpuOptions::default()
    }
}

/// The dispatches of one recorded greedy step of the model `spec` describes (random
/// weights, f32) as a GPU records it, with the fused kernels, whatever this adapter is.
pub fn fused_count(spec: &ModelSpec) -> Result<(usize, String)> {
    let gpu = pollster::block_on(Gpu::with_options(options(Some(true))))?;
    let weights = RandomWeights::new(spec, 7);
    let model = pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32))?;
    count(&gpu, &model)
}

/// The dispatches of one recorded greedy step, and how many of them run each kernel.
fn count(gpu: &std::sync::Arc<Gpu>, model: &Model) -> Result<(usize, String)> {
    let encoded = model.encode(gpu, &[3, 4, 5, 6])?;
    let decoder = model.decoder(gpu, &encoded, DecoderShape::single(1, 8), Choice::Argmax)?;
    let mut by_kernel: BTreeMap<String, usize> = BTreeMap::new();
    for kernel in decoder.step_kernels() {
        *by_kernel.entry(kernel.entry.to_string()).or_default() += 1;
    }
    let kinds: Vec<String> = by_kernel.iter().map(|(k, n)| format!("{k} x{n}")).collect();
    Ok((decoder.dispatches_per_step(), kinds.join(", ")))
}

/// GPU microseconds per kernel of one decode step at position 64 after 64 input tokens,
/// summed over the step's dispatches of that kernel, largest first; None without
/// timestamps.
fn kernel_times(gpu: &std::sync::Arc<Gpu>, model: &Model) -> Result<Option<Value>> {
    if !gpu.timestamps() {
        return Ok(None);
    }
    let input: Vec<u32> = (0..64).map(|i| 3 + i % 50).collect();
    let encoded = model.encode(gpu, &input)?;
    let decoder = model.decoder(gpu, &encoded, DecoderShape::single(1, 128), Choice::Argmax)?;
    // The first replay builds nothing but may warm caches; time the second.
    pollster::block_on(decoder.profile_step(64))?;
    let times = pollster::block_on(decoder.profile_step(64))?;
    let mut by_kernel: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for t in &times {
        let entry = by_kernel
            .entry(format!("{}::{}", t.kernel.module, t.kernel.entry))
            .or_default();
        entry.0 += 1;
        entry.1 += t.nanos / 1e3;
    }
    let total: f64 = by_kernel.values().map(|v| v.1).sum();
    let mut rows: Vec<(String, usize, f64)> = by_kernel
        .into_iter()
        .map(|(k, (n, us))| (k, n, us))
        .collect();
    rows.sort_by(|a, b| b.2.total_cmp(&a.2));
    Ok(Some(
        json!({ "gpu_us_per_step": total, "kernels": rows.iter()
        .map(|(k, n, us)| json!({ "kernel": k, "dispatches": n, "gpu_us": us })).collect::<Vec<_>>() }),
    ))
}

/// One JSON object per model: its dispatches per step unfused and fused.
pub fn run(quick: bool) -> Result<Vec<Value>> {
    let mut lines = Vec::new();
    let mut report = |name: &str, counts: [(usize, String); 2], times: Option<Value>| {
        println!(
            "{name:<22} {:>4} dispatches/step unfused, {:>4} fused: {}",
            counts[0].0, counts[1].0, counts[1].1
        );
        if let Some(Value::Object(times)) = &times {
            let line: Vec<String> = times["kernels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|k| {
                    format!(
                        "{} x{} {:.1}",
                        k["kernel"].as_str().unwrap_or(""),
                        k["dispatches"],
                        k["gpu_us"].as_f64().unwrap_or(0.0)
                    )
                })
                .collect();
            println!(
                "{:<22} GPU us/step {:.1}: {}",
                "",
                times["gpu_us_per_step"].as_f64().unwrap_or(0.0),
                line.join(", ")
            );
        }
        lines.push(
            json!({ "model": name, "unfused": counts[0].0, "fused": counts[1].0,
                "fused_kernels": counts[1].1, "gpu_time": times }),
        );
    };
    for shape in shapes(quick) {
        let spec = spec_from_config_json(&shape.config.to_string())?;
        let unfused = {
            let gpu = pollster::block_on(Gpu::with_options(options(Some(false))))?;
            let weights = RandomWeights::new(&spec, 7);
            let model =
                pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32))?;
            count(&gpu, &model)?
        };
        let counts = [unfused, fused_count(&spec)?];
        let gpu = pollster::block_on(Gpu::with_options(options(None)))?;
        let times = match gpu.timestamps() {
            true => {
                let weights = RandomWeights::new(&spec, 7);
                let model = pollster::block_on(Model::load(
                    &gpu,
                    spec.clone(),
                    &weights,
                    WeightFormat::F32,
                ))?;
                kernel_times(&gpu, &model)?
            }
            false => None,
        };
        report(shape.name, counts, times);
    }
    for direction in ["enpt", "pten"] {
        let mut counts: [(usize, String); 2] = Default::default();
        for (slot, fused) in [false, true].into_iter().enumerate() {
            let source = DirSource::new(project_file(&format!("models/{direction}")))?;
            let load = LoadOptions {
                gpu_options: options(Some(fused)),
                ..LoadOptions::default()
            };
            let engine = pollster::block_on(Engine::load(&source, &load))?;
            counts[slot] = count(engine.gpu(), engine.model())?;
        }
        let source = DirSource::new(project_file(&format!("models/{direction}")))?;
        let load = LoadOptions {
            gpu_options: options(None),
            ..LoadOptions::default()
        };
        let engine = pollster::block_on(Engine::load(&source, &load))?;
        let times = kernel_times(engine.gpu(), engine.model())?;
        report(&format!("firefox {direction}"), counts, times);
    }
    lines.push(fusion_cost(quick)?);
    Ok(lines)
}

/// GFLOP/s of RMSNorm then [1, k] x [n, k]^T, separately and fused, in one run.
fn fusion_cost(quick: bool) -> Result<Value> {
    let gpu = pollster::block_on(Gpu::with_options(options(Some(true))))?;
    let values =
        |len: usize| -> Vec<f32> { (0..len).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect() };
    let shapes: &[[usize; 2]] = if quick {
        &[[384, 128], [4096, 128]]
    } else {
        &[[1536, 512], [2048, 768], [32128, 512]]
    };
    let mut rows = Vec::new();
    println!(
        "one-row product after an RMSNorm, GFLOP/s (same run): norm + the adapter's skinny form, fused"
    );
    for &[n, k] in shapes {
        let x = Tensor::upload_f32(&gpu, "x", &values(k), &[1, k])?;
        let normed = Tensor::upload_f32(&gpu, "normed", &values(k), &[1, k])?;
        let norm = Norm::upload(&gpu, NormKind::RmsNorm, &values(k), None, 1e-6)?;
        let w = Tensor::upload_f32(&gpu, "w", &values(n * k), &[n, k])?;
        let out = Tensor::upload_f32(&gpu, "out", &vec![0.0; n], &[1, n])?;
        let flops = 2.0 * (n * k) as f64;
        let mut separate = Recorder::new(&gpu);
        ops::norm(&mut separate, &norm, &x, &normed)?;
        ops::linear(
            &mut separate,
            normed.matrix(),
            &w,
            None,
            out.matrix(),
            Epilogue::default(),
        )?;
        let separate = plan_gflops(&gpu, &separate.finish()?, &out, flops)?;
        let mut fused = Recorder::new(&gpu);
        let fusion = Fusion {
            norm: Some(&norm),
            ..Fusion::default()
        };
        ops::linear_fused(
            &mut fused,
            x.matrix(),
            &w,
            None,
            out.matrix(),
            Epilogue::default(),
            fusion,
        )?;
        let fused = plan_gflops(&gpu, &fused.finish()?, &out, flops)?;
        println!(
            "  1x{n}x{k}: {separate:.3}, {fused:.3} ({:.2}x)",
            fused / separate
        );
        rows.push(json!({ "n": n, "k": k, "separate_gflops": separate, "fused_gflops": fused, "ratio": fused / separate }));
    }
    Ok(json!({ "adapter": gpu.adapter_description(), "rms_norm_then_matvec": rows }))
}
