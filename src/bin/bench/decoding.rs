//! `--decoding`: greedy, sampling and beam-4 decoding side by side, through the engine as a
//! user calls it, on real-shape models with random weights written as files once (to the
//! system's temporary folder). Greedy and sampling choose on the GPU and run ahead, and beams
//! read back only their best continuations; the same sampling and beams with a processor
//! that needs the sequence (an n-gram ban longer than any sequence, which bans nothing)
//! read the logits back at every step and choose on the CPU, so the figures show what that
//! costs.

use std::time::Instant;

use seq2seq_gpu::{Engine, GenerationOptions, Result};
use serde_json::{Value, json};

use super::{shapes, synthetic};

pub fn run(quick: bool) -> Result<Vec<Value>> {
    let (input_len, new_tokens) = if quick { (16, 16) } else { (64, 128) };
    let sampling = GenerationOptions {
        do_sample: Some(true),
        temperature: Some(0.8),
        top_k: Some(50),
        top_p: Some(0.9),
        seed: Some(1),
        ..GenerationOptions::default()
    };
    let strategies = [
        ("greedy", GenerationOptions::default()),
        ("sampling", sampling.clone()),
        (
            "sampling, logits read back",
            GenerationOptions {
                no_repeat_ngram_size: Some(1_000_000),
                ..sampling
            },
        ),
        (
            "beam-4",
            GenerationOptions {
                num_beams: Some(4),
                ..GenerationOptions::default()
            },
        ),
        (
            "beam-4, logits read back",
            GenerationOptions {
                num_beams: Some(4),
                no_repeat_ngram_size: Some(1_000_000),
                ..GenerationOptions::default()
            },
        ),
    ];
    let mut lines = Vec::new();
    for shape in shapes(quick)
        .into_iter()
        .filter(|s| !s.name.starts_with("flan"))
    {
        let dir = std::env::temp_dir().join(format!(
            "seq2seq-bench-{}",
            shape.name.replace([' ', '(', ')'], "")
        ));
        if !dir.join("model.safetensors").exists() {
            synthetic::write_model(shape.name, shape.config.clone(), &dir, "f32")?;
        }
        let engine = pollster::block_on(Engine::load_dir(&dir))?;
        let vocab = engine.model().spec.vocab_size as u32;
        let input: Vec<u32> = (0..input_len as u32)
            .map(|i| (i * 7919) % (vocab - 3) + 3)
            .collect();
        println!("{} on {}:", shape.name, engine.gpu().adapter_description());
        for (label, options) in &strategies {
            let options = GenerationOptions {
                max_new_tokens: Some(new_tokens),
                ..options.clone()
            };
            let warm = GenerationOptions {
                max_new_tokens: Some(4),
                ..options.clone()
            };
            let inputs = [input.clone()];
            pollster::block_on(engine.generate_batch_from_ids(&inputs, &warm))?;
            let traffic = engine.gpu().traffic();
            let started = Instant::now();
            let out = pollster::block_on(engine.generate_batch_from_ids(&inputs, &options))?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let after = engine.gpu().traffic();
            // Random weights may end a sequence early: rates are per token generated.
            let tokens = out
                .first()
                .map_or(0, |g| g.ids.len().saturating_sub(1))
                .max(1);
            let per_token = |n: u64| n as f64 / tokens as f64;
            println!(
                "  {label:<26} {tokens:>4} tokens {:>9.1} tokens/s {:>9.3} ms/token, {:.3} submits and {:.3} readbacks/token",
                tokens as f64 * 1e3 / ms,
                ms / tokens as f64,
                per_token(after.submits - traffic.submits),
                per_token(after.readbacks - traffic.readbacks)
            );
            lines.push(
                json!({ "model": shape.name, "strategy": label, "tokens": tokens,
                "tokens_per_s": tokens as f64 * 1e3 / ms, "ms_per_token": ms / tokens as f64,
                "submits_per_token": per_token(after.submits - traffic.submits),
                "readbacks_per_token": per_token(after.readbacks - traffic.readbacks) }),
            );
        }
    }
    Ok(lines)
}
