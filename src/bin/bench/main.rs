//! The project's benchmark: models of real shapes with deterministic random weights (no
//! download), greedy decoding at batch 1 and 8, per-token time as the sequence grows, and
//! f32 matmul throughput. `--quick` uses small shapes for CI machines; `--json` adds one
//! JSON line with every figure; `--run-ahead N` runs N greedy steps per readback instead of
//! the engine's choice for the adapter; `--translation` times the bundled translation
//! models instead; `--dispatches` only records each model's decode step, fused and not, and
//! counts its dispatches; `--attention` times the decode attention kernel's variants
//! (`attention`); `--decoding` compares greedy, sampling and beam-4 through the engine
//! (`decoding`); `--document` translates the bundled models' reference sentences as one
//! document at several batch sizes against one at a time (`document`); `--write-model` and `--load-model` measure streamed loading of
//! real-shape files (`synthetic`).

mod attention;
mod decoding;
mod dispatches;
mod document;
mod synthetic;
mod translation;

use std::sync::Arc;
use std::time::Instant;

use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::generate::run_ahead_steps;
use seq2seq_gpu::gpu::{Gpu, GpuOptions, Plan, Recorder, Tensor};
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{Choice, DecoderShape, Model, WeightFormat};
use seq2seq_gpu::ops::{self, Epilogue, MatmulForm};
use seq2seq_gpu::{Error, Result};
use serde_json::{Value, json};

struct Shape {
    name: &'static str,
    config: Value,
}

fn shapes(quick: bool) -> Vec<Shape> {
    let t5 = |name, d: usize, ff: usize, heads: usize, layers: usize, proj: &str| Shape {
        name,
        config: json!({
            "model_type": "t5", "d_model": d, "d_ff": ff, "d_kv": d / heads, "num_heads": heads,
            "num_layers": layers, "num_decoder_layers": layers, "vocab_size": if quick { 4096 } else { 32128 },
            "feed_forward_proj": proj, "tie_word_embeddings": proj == "relu", "decoder_start_token_id": 0,
            "eos_token_id": 1, "pad_token_id": 0,
        }),
    };
    let bart = |name, d: usize, ff: usize, heads: usize, layers: usize| Shape {
        name,
        config: json!({
            "model_type": "bart", "d_model": d, "encoder_ffn_dim": ff, "decoder_ffn_dim": ff,
            "encoder_attention_heads": heads, "decoder_attention_heads": heads, "encoder_layers": layers,
            "decoder_layers": layers, "vocab_size": if quick { 4096 } else { 50265 },
            "max_position_embeddings": 1024, "activation_function": "gelu", "decoder_start_token_id": 2,
            "eos_token_id": 2, "pad_token_id": 1,
        }),
    };
    // T5Gemma's layer kinds (rotary, grouped-query, sliding, soft caps, sandwich norms) at
    // t5-small's size, not a published checkpoint's (Gemma's 256000-word vocabulary alone
    // would take 1 GB per embedding in f32); `layers` alternate sliding and full attention.
    let t5gemma = |name, d: usize, heads: usize, layers: &[&str], window: usize| {
        let stack = json!({
            "hidden_size": d, "intermediate_size": 4 * d, "num_attention_heads": heads,
            "num_key_value_heads": heads / 2, "head_dim": d / heads, "num_hidden_layers": layers.len(),
            "layer_types": layers, "sliding_window": window, "query_pre_attn_scalar": d / heads,
            "attn_logit_softcapping": 50.0, "final_logit_softcapping": 30.0,
            "vocab_size": if quick { 4096 } else { 32128 }, "cross_attention_hidden_size": d,
        });
        Shape {
            name,
            config: json!({
                "model_type": "t5gemma", "encoder": stack, "decoder": stack, "eos_token_id": [1],
                "pad_token_id": 0, "decoder_start_token_id": 2,
            }),
        }
    };
    let (sliding, full) = ("sliding_attention", "full_attention");
    if quick {
        vec![
            t5("t5-small (quick)", 128, 512, 4, 2, "relu"),
            t5("flan-t5-base (quick)", 192, 512, 4, 2, "gated-gelu"),
            bart("bart-base (quick)", 192, 768, 4, 2),
            t5gemma("t5gemma (quick)", 128, 4, &[sliding, full], 32),
            // Every layer sliding: per-token time stays flat once positions pass the window.
            t5gemma("t5gemma (quick, sliding)", 128, 4, &[sliding, sliding], 32),
        ]
    } else {
        vec![
            t5("t5-small", 512, 2048, 8, 6, "relu"),
            t5("flan-t5-base", 768, 2048, 12, 12, "gated-gelu"),
            bart("bart-base", 768, 3072, 12, 6),
            t5gemma(
                "t5gemma-small",
                512,
                8,
                &[sliding, full, sliding, full, sliding, full],
                128,
            ),
        ]
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Waits until the GPU has finished everything submitted so far.
fn sync(gpu: &Gpu, tensor: &Tensor) -> Result<()> {
    pollster::block_on(gpu.read::<f32>(&tensor.buffer, 1)).map(|_| ())
}

struct Run {
    encoder_ms: f64,
    ms_per_token: f64,
    /// Milliseconds of each decode step, by position (a batch of steps run ahead shares its
    /// time equally).
    step_ms: Vec<f64>,
    dispatches_per_step: usize,
    /// CPU milliseconds per token spent recording and submitting, and waiting for the ids.
    record_ms_per_token: f64,
    wait_ms_per_token: f64,
    run_ahead_steps: usize,
    submits_per_token: f64,
    readbacks_per_token: f64,
}

fn generate(
    gpu: &Arc<Gpu>,
    model: &Model,
    batch: usize,
    input_len: usize,
    new_tokens: usize,
) -> Result<Run> {
    let vocab = model.spec.vocab_size as u32;
    let inputs: Vec<Vec<u32>> = (0..batch)
        .map(|b| {
            (0..input_len)
                .map(|i| ((i * 7919 + b * 104729) as u32 % (vocab - 3)) + 3)
                .collect()
        })
        .collect();
    let started = Instant::now();
    let encoded = model.encode_batch(gpu, &inputs)?;
    sync(gpu, &encoded.hidden)?;
    let encoder_ms = started.elapsed().as_secs_f64() * 1e3;
    let shape = DecoderShape {
        sequences: batch,
        beams: 1,
        tokens: 1,
        capacity: new_tokens,
    };
    let decoder = model.decoder(gpu, &encoded, shape, Choice::Argmax)?;
    decoder.set_ids(&vec![model.spec.decoder_start_token_id; batch])?;
    // Greedy decoding as the engine runs it: steps run ahead, one readback per batch of them.
    let ahead = run_ahead_steps(gpu, model);
    let mut step_ms = Vec::with_capacity(new_tokens);
    let traffic = gpu.traffic();
    let (mut record, mut wait) = (0.0, 0.0);
    let decode_started = Instant::now();
    for pos in (0..new_tokens).step_by(ahead) {
        let count = ahead.min(new_tokens - pos);
        let started = Instant::now();
        decoder.submit_steps(pos, count)?;
        let submitted = Instant::now();
        pollster::block_on(decoder.read_steps(count))?;
        record += (submitted - started).as_secs_f64();
        wait += submitted.elapsed().as_secs_f64();
        let ms = started.elapsed().as_secs_f64() * 1e3 / count as f64;
        step_ms.extend(std::iter::repeat_n(ms, count));
    }
    let total_ms = decode_started.elapsed().as_secs_f64() * 1e3;
    let after = gpu.traffic();
    let per_token = |n: u64| n as f64 / new_tokens as f64;
    Ok(Run {
        encoder_ms,
        ms_per_token: total_ms / new_tokens as f64,
        step_ms,
        dispatches_per_step: decoder.dispatches_per_step(),
        record_ms_per_token: record * 1e3 / new_tokens as f64,
        wait_ms_per_token: wait * 1e3 / new_tokens as f64,
        run_ahead_steps: ahead,
        submits_per_token: per_token(after.submits - traffic.submits),
        readbacks_per_token: per_token(after.readbacks - traffic.readbacks),
    })
}

/// GFLOP/s of one [m, k] · [n, k]ᵀ matmul with the given kernel, median of several timed
/// batches of submissions.
fn matmul_gflops(
    gpu: &Arc<Gpu>,
    form: MatmulForm,
    format: WeightFormat,
    [m, n, k]: [usize; 3],
) -> Result<f64> {
    let values =
        |len: usize| -> Vec<f32> { (0..len).map(|i| ((i % 17) as f32 - 8.0) * 0.01).collect() };
    let a = Tensor::upload_f32(gpu, "a", &values(m * k), &[m, k])?;
    let w = match format {
        WeightFormat::F32 => Tensor::upload_f32(gpu, "w", &values(n * k), &[n, k])?,
        WeightFormat::F16 => Tensor::upload_f16(gpu, "w", &values(n * k), &[n, k])?,
        WeightFormat::Int8 => {
            let q: Vec<i8> = (0..n * k).map(|i| (i % 17) as i8 - 8).collect();
            Tensor::upload_int8(gpu, "w", &q, &vec![0.01; n], &[n, k])?
        }
    };
    let out = Tensor::upload_f32(gpu, "out", &vec![0.0; m * n], &[m, n])?;
    let mut rec = Recorder::new(gpu);
    ops::linear_with(
        &mut rec,
        Some(form),
        a.matrix(),
        &w,
        None,
        out.matrix(),
        Epilogue::default(),
    )?;
    let plan = rec.finish()?;
    plan_gflops(gpu, &plan, &out, 2.0 * (m * n * k) as f64)
}

/// GFLOP/s of a recorded plan doing `flops` that writes `out`: median of several timed
/// batches of submissions, after one untimed.
fn plan_gflops(gpu: &Gpu, plan: &Plan, out: &Tensor, flops: f64) -> Result<f64> {
    plan.submit(gpu);
    sync(gpu, out)?;
    // Enough work per batch that submission overhead does not dominate.
    let repeats = (2e9 / flops).clamp(1.0, 200.0) as usize;
    let mut rates = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        for _ in 0..repeats {
            plan.submit(gpu);
        }
        sync(gpu, out)?;
        rates.push(flops * repeats as f64 / started.elapsed().as_secs_f64() / 1e9);
    }
    Ok(median(rates))
}

/// Each matmul kernel against the simple baseline in one run: square products (the
/// encoder's and prefill's shape) and one-row products (batch-1 decode).
fn kernel_comparison(
    gpu: &Arc<Gpu>,
    quick: bool,
) -> Result<(serde_json::Map<String, Value>, Vec<Value>)> {
    let sizes: &[usize] = if quick {
        &[256, 512]
    } else {
        &[1024, 2048, 4096]
    };
    let mut best = serde_json::Map::new();
    let mut rows = Vec::new();
    let mut compare = |forms: &[MatmulForm],
                       format: WeightFormat,
                       shape: [usize; 3]|
     -> Result<f64> {
        let simple = matmul_gflops(gpu, MatmulForm::Simple, format, shape)?;
        let mut fastest: f64 = 0.0;
        let mut line = format!(
            "{:?} {:<10} simple {simple:>8.1}",
            format,
            format!("{}x{}x{}", shape[0], shape[1], shape[2])
        );
        for &form in forms {
            let rate = matmul_gflops(gpu, form, format, shape)?;
            fastest = fastest.max(rate);
            line.push_str(&format!(", {form:?} {rate:.1} ({:.2}x)", rate / simple));
            rows.push(json!({ "m": shape[0], "n": shape[1], "k": shape[2], "weights": format!("{format:?}"),
                "form": format!("{form:?}"), "gflops": rate, "simple_gflops": simple, "ratio_to_simple": rate / simple }));
        }
        println!("{line}");
        Ok(fastest)
    };
    println!("matmul GFLOP/s (ratio to the simple kernel, same run):");
    for &n in sizes {
        let rate = compare(
            &[MatmulForm::Tiled, MatmulForm::TiledVec4],
            WeightFormat::F32,
            [n, n, n],
        )?;
        best.insert(n.to_string(), json!(rate));
    }
    let width = *sizes.last().unwrap_or(&512);
    for format in [WeightFormat::F32, WeightFormat::F16, WeightFormat::Int8] {
        compare(
            &[
                MatmulForm::Skinny,
                MatmulForm::SkinnyVec4,
                MatmulForm::SkinnyNarrow,
                MatmulForm::SkinnyNarrowVec4,
            ],
            format,
            [1, width, width],
        )?;
    }
    Ok((best, rows))
}

fn run(quick: bool, as_json: bool, run_ahead_steps: Option<usize>) -> Result<()> {
    let options = GpuOptions {
        run_ahead_steps,
        ..GpuOptions::default()
    };
    let gpu = pollster::block_on(Gpu::with_options(options))?;
    let adapter = gpu.adapter_description();
    let (input_len, new_tokens, long) = if quick { (16, 16, 512) } else { (64, 128, 512) };
    println!(
        "adapter: {adapter}; f16 weights read {}",
        if gpu.native_f16() {
            "as WGSL f16"
        } else {
            "unpacked from u32"
        }
    );
    println!(
        "{:<22} {:>7} {:>5} {:>11} {:>12} {:>11}",
        "model", "weights", "batch", "tokens/s", "ms/token", "encoder ms"
    );
    let mut models = Vec::new();
    for shape in shapes(quick) {
        let spec = spec_from_config_json(&shape.config.to_string())?;
        let mut runs = Vec::new();
        for (format, label) in [(WeightFormat::F32, "f32"), (WeightFormat::F16, "f16")] {
            let weights = RandomWeights::new(&spec, 7);
            let model = pollster::block_on(Model::load(&gpu, spec.clone(), &weights, format))?;
            for batch in [1, 8] {
                // A first run compiles pipelines and fills the buffer pool.
                generate(&gpu, &model, batch, input_len, 4)?;
                let r = generate(&gpu, &model, batch, input_len, new_tokens)?;
                let tokens_per_s = batch as f64 * 1e3 / r.ms_per_token;
                println!(
                    "{:<22} {:>7} {:>5} {:>11.1} {:>12.3} {:>11.2}  {} dispatches/step, {:.3} submits and {:.3} readbacks/token, CPU ms/token {:.3} recording, {:.3} waiting",
                    shape.name,
                    label,
                    batch,
                    tokens_per_s,
                    r.ms_per_token,
                    r.encoder_ms,
                    r.dispatches_per_step,
                    r.submits_per_token,
                    r.readbacks_per_token,
                    r.record_ms_per_token,
                    r.wait_ms_per_token
                );
                runs.push(json!({
                    "weights": label, "batch": batch, "tokens_per_s": tokens_per_s,
                    "ms_per_token": r.ms_per_token, "encoder_ms": r.encoder_ms,
                    "median_step_ms": median(r.step_ms), "dispatches_per_step": r.dispatches_per_step,
                    "run_ahead_steps": r.run_ahead_steps, "submits_per_token": r.submits_per_token, "readbacks_per_token": r.readbacks_per_token,
                    "record_ms_per_token": r.record_ms_per_token, "wait_ms_per_token": r.wait_ms_per_token,
                }));
            }
        }
        // Per-token time as the sequence grows: median step time in windows of positions.
        let weights = RandomWeights::new(&spec, 7);
        let model =
            pollster::block_on(Model::load(&gpu, spec.clone(), &weights, WeightFormat::F32))?;
        let r = generate(&gpu, &model, 1, input_len, long)?;
        let window = long / 8;
        let by_position: Vec<Value> = r
            .step_ms
            .chunks(window)
            .enumerate()
            .map(|(i, c)| json!({ "from": i * window + 1, "to": (i + 1) * window, "median_ms": median(c.to_vec()) }))
            .collect();
        let line: Vec<String> = by_position
            .iter()
            .map(|w| {
                format!(
                    "{}-{}: {:.2}",
                    w["from"],
                    w["to"],
                    w["median_ms"].as_f64().unwrap_or(0.0)
                )
            })
            .collect();
        println!(
            "{:<22} per-token ms by position (f32, batch 1): {}",
            "",
            line.join(", ")
        );
        // What a GPU records: this adapter may not fuse (CPU adapters do not).
        let (fused, fused_kernels) = dispatches::fused_count(&spec)?;
        println!(
            "{:<22} {fused} dispatches/step as a GPU records it (fused kernels): {fused_kernels}",
            ""
        );
        models.push(
            json!({ "model": shape.name, "runs": runs, "per_position": by_position,
            "tokens_per_s": runs[0]["tokens_per_s"], "ms_per_token": runs[0]["ms_per_token"],
            "encoder_ms": runs[0]["encoder_ms"], "dispatches_per_step": runs[0]["dispatches_per_step"],
            "fused_dispatches_per_step": fused, "readbacks_per_token": runs[0]["readbacks_per_token"] }),
        );
    }
    let (matmul, kernels) = kernel_comparison(&gpu, quick)?;
    if as_json {
        println!(
            "{}",
            json!({ "adapter": adapter, "quick": quick, "input_tokens": input_len, "new_tokens": new_tokens,
                "native_f16": gpu.native_f16(), "models": models, "matmul_gflops": matmul,
                "matmul_kernels": kernels })
        );
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    // SAFETY: the first thing main does, before any thread exists.
    unsafe { seq2seq_gpu::platform::quiet_headless_vulkan() };
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(mode @ ("--write-model" | "--load-model")) = args.first().map(String::as_str) {
        return match synthetic::run(mode, &args[1..]) {
            Ok(line) => {
                println!("{line}");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut flags = Vec::new();
    let mut run_ahead = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--run-ahead" => run_ahead = Some(rest.next().and_then(|n| n.parse::<usize>().ok())),
            flag => flags.push(flag),
        }
    }
    let unknown: Vec<&&str> = flags
        .iter()
        .filter(|a| {
            ![
                "--quick",
                "--json",
                "--translation",
                "--dispatches",
                "--attention",
                "--decoding",
                "--document",
            ]
            .contains(a)
        })
        .collect();
    let as_json = args.iter().any(|a| a == "--json");
    let result = if let Some(bad) = unknown.first() {
        Err(Error::InvalidArgument(format!(
            "unknown option {bad} (use --quick, --json, --translation, --dispatches, --attention, --decoding, --document, --run-ahead N)"
        )))
    } else if run_ahead == Some(None) {
        Err(Error::InvalidArgument(
            "--run-ahead takes a number of steps".into(),
        ))
    } else if args.iter().any(|a| a == "--dispatches") {
        dispatches::run(args.iter().any(|a| a == "--quick")).map(|lines| {
            if as_json {
                println!("{}", Value::Array(lines));
            }
        })
    } else if args.iter().any(|a| a == "--decoding") {
        decoding::run(args.iter().any(|a| a == "--quick")).map(|lines| {
            if as_json {
                println!("{}", Value::Array(lines));
            }
        })
    } else if args.iter().any(|a| a == "--attention") {
        attention::run(args.iter().any(|a| a == "--quick")).map(|lines| {
            if as_json {
                println!("{}", Value::Array(lines));
            }
        })
    } else if args.iter().any(|a| a == "--document") {
        document::run(args.iter().any(|a| a == "--quick")).map(|lines| {
            if as_json {
                println!("{}", Value::Array(lines));
            }
        })
    } else if args.iter().any(|a| a == "--translation") {
        translation::run().map(|lines| {
            if as_json {
                println!("{}", Value::Array(lines));
            }
        })
    } else {
        run(
            args.iter().any(|a| a == "--quick"),
            as_json,
            run_ahead.flatten(),
        )
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
