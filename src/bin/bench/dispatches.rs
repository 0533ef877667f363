//! `--dispatches`: the kernel dispatches of one recorded greedy decode step of each model,
//! with the fused decode matmul and without it, recorded but not run (so a software adapter,
//! which does not fuse by default, can show what a GPU records); then what fusing costs on
//! this adapter: a pre-norm one-row product as a norm dispatch and the matmul `linear`
//! picks, and as one fused dispatch.

use seq2seq_gpu::formats::DirSource;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::{Gpu, GpuOptions, Recorder, Tensor};
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{DecoderShape, Model, WeightFormat};
use seq2seq_gpu::ops::{self, Epilogue, Fusion, InputNorm, NormKind};
use seq2seq_gpu::{Engine, LoadOptions, Result};
use serde_json::{Value, json};

use super::translation::project_file;
use super::{plan_gflops, shapes};

fn options(fused: bool) -> GpuOptions {
    GpuOptions {
        fused_kernels: Some(fused),
        ..GpuOptions::default()
    }
}

fn count(gpu: &std::sync::Arc<Gpu>, model: &Model) -> Result<usize> {
    let encoded = model.encode(gpu, &[3, 4, 5, 6])?;
    let decoder = model.decoder(gpu, &encoded, DecoderShape::single(1, 8), true)?;
    Ok(decoder.dispatches_per_step())
}

/// One JSON object per model: its dispatches per step unfused and fused.
pub fn run(quick: bool) -> Result<Vec<Value>> {
    let mut lines = Vec::new();
    let mut report = |name: &str, counts: [usize; 2]| {
        println!(
            "{name:<22} {:>4} dispatches/step unfused, {:>4} fused",
            counts[0], counts[1]
        );
        lines.push(json!({ "model": name, "unfused": counts[0], "fused": counts[1] }));
    };
    for shape in shapes(quick) {
        let spec = spec_from_config_json(&shape.config.to_string())?;
        let mut counts = [0; 2];
        for (slot, fused) in [false, true].into_iter().enumerate() {
            let gpu = pollster::block_on(Gpu::with_options(options(fused)))?;
            let weights = RandomWeights::new(&spec, 7);
            let model =
                pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32))?;
            counts[slot] = count(&gpu, &model)?;
        }
        report(shape.name, counts);
    }
    for direction in ["enpt", "pten"] {
        let mut counts = [0; 2];
        for (slot, fused) in [false, true].into_iter().enumerate() {
            let source = DirSource::new(project_file(&format!("models/{direction}")))?;
            let load = LoadOptions {
                gpu_options: options(fused),
                ..LoadOptions::default()
            };
            let engine = pollster::block_on(Engine::load(&source, &load))?;
            counts[slot] = count(engine.gpu(), engine.model())?;
        }
        report(&format!("firefox {direction}"), counts);
    }
    lines.push(fusion_cost(quick)?);
    Ok(lines)
}

/// GFLOP/s of RMSNorm then [1, k] x [n, k]^T, separately and fused, in one run.
fn fusion_cost(quick: bool) -> Result<Value> {
    let gpu = pollster::block_on(Gpu::with_options(options(true)))?;
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
        let gamma = Tensor::upload_f32(&gpu, "gamma", &values(k), &[k])?;
        let w = Tensor::upload_f32(&gpu, "w", &values(n * k), &[n, k])?;
        let out = Tensor::upload_f32(&gpu, "out", &vec![0.0; n], &[1, n])?;
        let flops = 2.0 * (n * k) as f64;
        let mut separate = Recorder::new(&gpu);
        ops::norm(
            &mut separate,
            NormKind::RmsNorm,
            &x,
            &normed,
            &gamma,
            None,
            1e-6,
        )?;
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
        let norm = InputNorm {
            kind: NormKind::RmsNorm,
            weight: &gamma,
            bias: None,
            eps: 1e-6,
        };
        let fusion = Fusion {
            norm: Some(norm),
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
