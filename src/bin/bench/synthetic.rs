//! Models of real shapes written as files, to measure streamed loading: `--write-model
//! NAME DIR [--dtype f16|f32]` writes config.json, a word-level tokenizer.json and
//! model.safetensors with deterministic random weights (no download); `--load-model DIR
//! [--max-buffer-bytes N] [--weights f32|f16|int8]` loads a folder as a user would and
//! prints one JSON line: load time, peak host memory (VmHWM), the largest weight buffer
//! and the ids of one greedy generation. Each load is its own process, so that the peak is
//! its own.

use std::cell::RefCell;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

use seq2seq_gpu::formats::TensorSource;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::gpu::{Gpu, GpuOptions};
use seq2seq_gpu::model::random::RandomWeights;
use seq2seq_gpu::model::{Model, WeightFormat};
use seq2seq_gpu::{DirSource, Engine, Error, GenerationOptions, LoadOptions, Result};
use serde_json::{Value, json};

/// The prompt every load generates from: word-level tokens are their ids.
const PROMPT: &str = "t10 t200 t3000 t40000 t123 t7";

fn config(name: &str) -> Result<Value> {
    match name {
        // facebook/nllb-200-distilled-600M's config.json, in the fields the engine reads.
        "nllb-600m" => Ok(json!({
            "model_type": "m2m_100", "d_model": 1024, "encoder_layers": 12, "decoder_layers": 12,
            "encoder_attention_heads": 16, "decoder_attention_heads": 16,
            "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096, "vocab_size": 256206,
            "max_position_embeddings": 1024, "scale_embedding": true, "activation_function": "relu",
            "pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2,
        })),
        // google/mt5-small's config.json.
        "mt5-small" => Ok(json!({
            "model_type": "mt5", "d_model": 512, "d_kv": 64, "d_ff": 1024, "num_heads": 6,
            "num_layers": 8, "num_decoder_layers": 8, "vocab_size": 250112,
            "feed_forward_proj": "gated-gelu", "tie_word_embeddings": false,
            "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
            "pad_token_id": 0, "eos_token_id": 1, "decoder_start_token_id": 0,
        })),
        other => Err(Error::InvalidArgument(format!(
            "unknown model {other} (use nllb-600m or mt5-small)"
        ))),
    }
}

/// Random weights that remember each tensor the loader reads, with its shape, in order.
struct Recording {
    weights: RandomWeights,
    seen: RefCell<Vec<(String, Vec<usize>)>>,
}

impl TensorSource for Recording {
    fn files(&self) -> String {
        self.weights.files()
    }

    fn contains(&self, name: &str) -> bool {
        // Sinusoidal position tables are computed, not stored, as in the published files.
        !name.contains("embed_positions") && self.weights.contains(name)
    }

    fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.weights.shape(name)
    }

    async fn rows(&self, name: &str, shape: &[usize], rows: Range<usize>) -> Result<Vec<f32>> {
        let known = self.seen.borrow().iter().any(|(n, _)| n == name);
        if !known {
            let entry = (name.to_string(), shape.to_vec());
            self.seen.borrow_mut().push(entry);
        }
        self.weights.rows(name, shape, rows).await
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the model folder `dir` for model `name`, its weights stored as `dtype`.
pub fn write(name: &str, dir: &Path, dtype: &str) -> Result<Value> {
    write_model(name, config(name)?, dir, dtype)
}

/// Writes the model folder `dir` for `config` (named `name` in the report), its weights
/// stored as `dtype`.
pub fn write_model(name: &str, config: Value, dir: &Path, dtype: &str) -> Result<Value> {
    let spec = spec_from_config_json(&config.to_string())?;
    let element = match dtype {
        "f32" => 4,
        "f16" => 2,
        other => return Err(Error::InvalidArgument(format!("unknown dtype {other}"))),
    };
    // The loader names every tensor it reads; a device that records them is the one list of
    // names there is.
    let recording = Recording {
        weights: RandomWeights::new(&spec, 11),
        seen: RefCell::default(),
    };
    let gpu = pollster::block_on(Gpu::new())?;
    drop(pollster::block_on(Model::load(
        &gpu,
        spec.clone(),
        &recording,
        WeightFormat::F16,
    ))?);
    drop(gpu);
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let file = |name: &str| dir.join(name);
    std::fs::write(file("config.json"), config.to_string()).map_err(io(dir))?;
    let vocab: serde_json::Map<String, Value> = (0..spec.vocab_size)
        .map(|i| (format!("t{i}"), json!(i)))
        .collect();
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
        "normalizer": null, "pre_tokenizer": { "type": "Whitespace" }, "post_processor": null,
        "decoder": null, "model": { "type": "WordLevel", "vocab": vocab, "unk_token": "t3" },
    });
    std::fs::write(file("tokenizer.json"), tokenizer.to_string()).map_err(io(dir))?;
    let tensors = recording.seen.into_inner();
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in &tensors {
        let bytes = shape.iter().product::<usize>() * element;
        header.insert(
            name.clone(),
            json!({ "dtype": dtype.to_uppercase(), "shape": shape, "data_offsets": [offset, offset + bytes] }),
        );
        offset += bytes;
    }
    let mut header = Value::Object(header).to_string().into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let path = file("model.safetensors");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
    out.write_all(&(header.len() as u64).to_le_bytes())
        .and_then(|_| out.write_all(&header))
        .map_err(io(&path))?;
    for (name, shape) in &tensors {
        let rows = shape.first().copied().unwrap_or(1);
        let row = shape.iter().skip(1).product::<usize>().max(1);
        let block = (1 << 22) / row;
        for start in (0..rows).step_by(block.max(1)) {
            let end = (start + block.max(1)).min(rows);
            let values = pollster::block_on(recording.weights.rows(name, shape, start..end))?;
            let bytes: Vec<u8> = match element {
                4 => bytemuck::cast_slice(&values).to_vec(),
                _ => values
                    .iter()
                    .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                    .collect(),
            };
            out.write_all(&bytes).map_err(io(&path))?;
        }
    }
    out.flush().map_err(io(&path))?;
    Ok(
        json!({ "model": name, "dir": dir, "dtype": dtype, "tensors": tensors.len(), "bytes": offset }),
    )
}

/// The process's peak resident memory so far, in bytes (Linux's VmHWM).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Loads `dir` as a user would and generates once.
pub fn load(
    dir: &Path,
    max_buffer_bytes: Option<u64>,
    weights: Option<WeightFormat>,
) -> Result<Value> {
    let started = Instant::now();
    let options = LoadOptions {
        weights,
        gpu: None,
        gpu_options: GpuOptions {
            max_buffer_bytes,
            ..GpuOptions::default()
        },
    };
    let engine = pollster::block_on(Engine::load(&DirSource::new(dir)?, &options))?;
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let rss_after_load = peak_rss();
    // Random weights favour no token; four are forced so the ids say something.
    let greedy = GenerationOptions {
        max_new_tokens: Some(4),
        min_new_tokens: Some(4),
        num_beams: Some(1),
        ..GenerationOptions::default()
    };
    let started = Instant::now();
    let out = pollster::block_on(engine.generate(PROMPT, &greedy, |_| {}))?;
    Ok(json!({
        "dir": dir, "adapter": engine.gpu().adapter_description(),
        "max_buffer_bytes": max_buffer_bytes, "weights": format!("{weights:?}"),
        "load_ms": load_ms, "peak_rss_after_load": rss_after_load, "peak_rss": peak_rss(),
        "largest_binding": engine.gpu().largest_weight_buffer(),
        "generate_ms": started.elapsed().as_secs_f64() * 1e3, "ids": out[0].ids,
    }))
}

/// `--write-model NAME DIR [--dtype D]` or `--load-model DIR [--max-buffer-bytes N]
/// [--weights W]`, from the command line after the mode.
pub fn run(mode: &str, args: &[String]) -> Result<Value> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let positional: Vec<&String> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !args[i - 1].starts_with("--")))
        .map(|(_, a)| a)
        .collect();
    let missing = || Error::InvalidArgument(format!("{mode}: missing arguments"));
    match mode {
        "--write-model" => {
            let (name, dir) = match positional[..] {
                [name, dir] => (name, PathBuf::from(dir)),
                _ => return Err(missing()),
            };
            write(name, &dir, &flag("--dtype").unwrap_or_else(|| "f32".into()))
        }
        _ => {
            let dir = PathBuf::from(positional.first().ok_or_else(missing)?);
            let limit = match flag("--max-buffer-bytes") {
                Some(n) => Some(n.parse().map_err(|_| missing())?),
                None => None,
            };
            let weights = match flag("--weights") {
                Some(w) => Some(WeightFormat::parse(&w)?),
                None => None,
            };
            load(&dir, limit, weights)
        }
    }
}
