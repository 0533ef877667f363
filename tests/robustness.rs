//! Bad input to every loader: each broken case fails with a typed error naming the file and
//! the problem, and random or mutated bytes never make a parser panic. (fuzz/ holds the
//! cargo-fuzz targets of the same parsers, for longer runs than a test suite allows.)

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use pollster::block_on;
use seq2seq_gpu::GenerationOptions;
use seq2seq_gpu::formats::config_json::spec_from_config_json;
use seq2seq_gpu::formats::layout::TokenizerFiles;
use seq2seq_gpu::formats::layout::shard_names;
use seq2seq_gpu::formats::marian::bergamot::bergamot_manifest;
use seq2seq_gpu::formats::marian::bin::MarianBin;
use seq2seq_gpu::formats::marian::shortlist::Shortlist;
use seq2seq_gpu::formats::marian::yaml::spec_from_marian_yaml;
use seq2seq_gpu::formats::{Checkpoint, CheckpointFormat, MemorySource, TensorSource};
use seq2seq_gpu::tokenizer::Tokenizer;

/// xorshift64*: a fixed, dependency-free stream of pseudo-random numbers.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A copy of `input` with a few bytes overwritten, inserted or cut.
    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..1 + self.below(4) {
            let at = self.below(out.len() + 1);
            match self.below(4) {
                0 if at < out.len() => out[at] = self.next() as u8,
                1 => out.insert(at, self.next() as u8),
                2 => out.truncate(at),
                _ if at < out.len() => out[at] ^= 1 << self.below(8),
                _ => out.push(self.next() as u8),
            }
        }
        out
    }

    fn random(&mut self, max_len: usize) -> Vec<u8> {
        (0..self.below(max_len))
            .map(|_| self.next() as u8)
            .collect()
    }
}

/// Feeds `rounds` mutations of `valid` and random buffers to `parse`; a panic fails the
/// test with the round that caused it.
fn never_panics(what: &str, valid: &[u8], rounds: usize, parse: impl Fn(Vec<u8>)) {
    let mut rng = Bytes(0x9e37_79b9_7f4a_7c15 ^ what.len() as u64);
    for round in 0..rounds {
        let input = if round % 5 == 4 {
            rng.random(valid.len().min(4096) + 1)
        } else {
            rng.mutate(valid)
        };
        if catch_unwind(AssertUnwindSafe(|| parse(input))).is_err() {
            panic!("{what}: round {round} panicked");
        }
    }
}

fn safetensors_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

/// A safetensors checkpoint of one file held in memory.
fn safetensors(files: Vec<(String, Vec<u8>)>) -> seq2seq_gpu::Result<Checkpoint<MemorySource>> {
    Checkpoint::from_files(CheckpointFormat::Safetensors, files)
}

fn checkpoint_error(bytes: Vec<u8>) -> String {
    match safetensors(vec![("model.safetensors".into(), bytes)]) {
        Ok(_) => panic!("accepted a broken model.safetensors"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_safetensors_fail_naming_the_file_and_problem() {
    let data = [0u8; 24];
    let good = r#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    assert!(
        safetensors(vec![(
            "model.safetensors".into(),
            safetensors_file(good, &data)
        )])
        .is_ok()
    );
    let mut beyond = safetensors_file(good, &data);
    beyond[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("header length beyond the file", beyond),
        ("file shorter than its header length", vec![1, 0, 0]),
        (
            "malformed JSON",
            safetensors_file(r#"{"a":{"dtype":"F32""#, &data),
        ),
        (
            "offsets out of range",
            safetensors_file(
                r#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,48]}}"#,
                &data,
            ),
        ),
        (
            "overlapping tensors",
            safetensors_file(
                r#"{"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}}"#,
                &data,
            ),
        ),
        (
            "shape that does not match the bytes",
            safetensors_file(
                r#"{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,24]}}"#,
                &data,
            ),
        ),
        (
            "dtype that does not match the bytes",
            safetensors_file(
                r#"{"a":{"dtype":"F64","shape":[2,3],"data_offsets":[0,24]}}"#,
                &data,
            ),
        ),
    ];
    for (what, bytes) in cases {
        let message = checkpoint_error(bytes);
        assert!(
            message.starts_with("model.safetensors: "),
            "{what}: {message}"
        );
    }
    // A dtype the engine cannot convert is refused when the tensor is read, naming both.
    let ints = r#"{"a":{"dtype":"I32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let ckpt = safetensors(vec![(
        "model.safetensors".into(),
        safetensors_file(ints, &data),
    )])
    .unwrap();
    let message = block_on(ckpt.tensor_shaped("a", &[2, 3]))
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("model.safetensors") && message.contains("I32"),
        "{message}"
    );
}

#[test]
fn every_parser_survives_random_and_mutated_bytes() {
    let fixture =
        |name: &str, file: &str| std::fs::read(common::fixture::dir(name).join(file)).unwrap();
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/enpt");
    let read_model = |file: &str| std::fs::read(models.join(file)).unwrap();

    never_panics(
        "model.safetensors",
        &fixture("t5-tiny", "model.safetensors"),
        300,
        |bytes| {
            if let Ok(ckpt) = safetensors(vec![("model.safetensors".into(), bytes)])
                && let Ok(shape) = ckpt.shape("shared.weight")
            {
                let _ = block_on(ckpt.tensor_shaped("shared.weight", &shape));
            }
        },
    );
    let hub = |name: &str, file: &str| {
        std::fs::read(common::fixture::dir("hub").join(name).join(file)).unwrap()
    };
    never_panics(
        "pytorch_model.bin",
        &hub("mt5-bin", "pytorch_model.bin"),
        300,
        |bytes| {
            let shards = vec![("pytorch_model.bin".into(), bytes)];
            if let Ok(ckpt) = Checkpoint::from_files(CheckpointFormat::Pytorch, shards)
                && let Ok(shape) = ckpt.shape("shared.weight")
            {
                let _ = block_on(ckpt.tensor_shaped("shared.weight", &shape));
            }
        },
    );
    // Tokenizer files: each mutated in a folder whose other files are intact, then used.
    let tokenizer_of = |name: &str, model_type: &str, replaced: &str, bytes: Vec<u8>| {
        let dir = common::fixture::dir("hub").join(name);
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                !p.extension()
                    .is_some_and(|e| e == "bin" || e == "safetensors")
            })
            .map(|p| {
                (
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                )
            })
            .filter(|(n, _)| n != replaced)
            .collect();
        files.push((replaced.to_string(), bytes));
        if let Ok(tokenizer) = Tokenizer::from_files(&TokenizerFiles::new(files), Some(model_type))
            && let Ok(ids) = tokenizer.encode("A sentence, with punctuation: 1 2 3.")
        {
            let _ = tokenizer.decode(&ids);
        }
    };
    for (name, model_type, file, rounds) in [
        ("t5-spm", "t5", "spiece.model", 100),
        ("m2m100-spm", "m2m_100", "sentencepiece.bpe.model", 60),
        ("opus-mt-spm", "marian", "vocab.json", 100),
        ("bart-legacy", "bart", "merges.txt", 100),
        ("mbart50", "mbart", "tokenizer_config.json", 100),
        ("byt5", "t5", "tokenizer_config.json", 100),
    ] {
        never_panics(file, &hub(name, file), rounds, |bytes| {
            tokenizer_of(name, model_type, file, bytes)
        });
    }
    // A tokenizer_config.json with added tokens and their flags (from added_tokens.json's
    // bart-legacy variant).
    let variants: serde_json::Value = serde_json::from_slice(
        &std::fs::read(common::fixture::dir("hub").join("added_tokens.json")).unwrap(),
    )
    .unwrap();
    let with_added = variants
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["fixture"] == "bart-legacy")
        .unwrap();
    let config = serde_json::to_vec(&with_added["tokenizer_config"]).unwrap();
    never_panics("tokenizer_config.json", &config, 100, |bytes| {
        tokenizer_of("bart-legacy", "bart", "tokenizer_config.json", bytes)
    });
    for name in ["t5-tiny", "bart-tiny", "marian-tiny"] {
        never_panics("config.json", &fixture(name, "config.json"), 300, |bytes| {
            let _ = spec_from_config_json(&String::from_utf8_lossy(&bytes));
        });
    }
    never_panics(
        "generation_config.json",
        &fixture("t5-tiny", "generation_config.json"),
        300,
        |bytes| {
            let _ = GenerationOptions::from_generation_config(&String::from_utf8_lossy(&bytes));
        },
    );
    let index = r#"{"metadata": {"total_size": 96}, "weight_map": {"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00002-of-00002.safetensors"}}"#;
    assert_eq!(
        shard_names("model.safetensors.index.json", index)
            .unwrap()
            .len(),
        2
    );
    never_panics(
        "model.safetensors.index.json",
        index.as_bytes(),
        300,
        |bytes| {
            let _ = shard_names(
                "model.safetensors.index.json",
                &String::from_utf8_lossy(&bytes),
            );
        },
    );
    never_panics(
        "tokenizer.json",
        &fixture("t5-tiny", "tokenizer.json"),
        40,
        |bytes| {
            if let Ok(tokenizer) = Tokenizer::from_bytes(&bytes) {
                let _ = tokenizer.encode("A sentence to encode.");
            }
        },
    );
    // The model's YAML and the bergamot config, as text.
    let bin = MarianBin::parse("model.bin", read_model("model.enpt.intgemm.alphas.bin")).unwrap();
    never_panics("model YAML", bin.yaml().as_bytes(), 300, |bytes| {
        let _ = spec_from_marian_yaml(&String::from_utf8_lossy(&bytes), "model.bin", 32000);
    });
    never_panics(
        "bergamot config",
        &read_model("config.intgemm8bitalpha.yml"),
        300,
        |bytes| {
            let _ = bergamot_manifest("config.yml", &String::from_utf8_lossy(&bytes));
        },
    );
    // Headers and tables of the binary formats (their unit tests mutate small synthetic
    // files; here the real files' first bytes, where every length and offset lives).
    let head = read_model("model.enpt.intgemm.alphas.bin")[..16384].to_vec();
    never_panics("model .bin", &head, 300, |bytes| {
        let _ = MarianBin::parse("model.bin", bytes);
    });
    let lex = read_model("lex.50.50.enpt.s2t.bin");
    never_panics("shortlist", &lex[..4096], 300, |bytes| {
        if let Ok(shortlist) = Shortlist::parse("lex.bin", &bytes) {
            let _ = shortlist.vocabulary(&[5, 7, 0], 32000);
        }
    });
}

#[test]
fn bad_marian_models_fail_naming_the_file_and_problem() {
    let models = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/enpt");
    let bin = MarianBin::parse(
        "model.enpt.bin",
        std::fs::read(models.join("model.enpt.intgemm.alphas.bin")).unwrap(),
    )
    .unwrap();
    let yaml = bin.yaml().to_string();
    let cases = [
        (yaml.replace("dec-cell: ssru", "dec-cell: lstm"), "dec-cell"),
        (
            yaml.replace("transformer-heads: 8", "transformer-heads: 7"),
            "transformer-heads",
        ),
        (yaml.replace("enc-depth: 6", "enc-depth: 0"), "enc-depth"),
        (yaml.replace("enc-depth: 6\n", ""), "enc-depth"),
        (yaml.replace("type: transformer", "type: amun"), "type"),
        (
            yaml.replace("tied-embeddings-all: true", "tied-embeddings-all: false"),
            "tied-embeddings-all",
        ),
        (
            yaml.replace(
                "transformer-ffn-activation: relu",
                "transformer-ffn-activation: tanh",
            ),
            "transformer-ffn-activation",
        ),
        ("{ not yaml".to_string(), "YAML"),
    ];
    for (text, needle) in cases {
        let message = spec_from_marian_yaml(&text, "model.enpt.bin", 32000)
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("model.enpt.bin: ") && message.contains(needle),
            "{needle}: {message}"
        );
    }
    let message = spec_from_marian_yaml(&yaml, "model.enpt.bin", 31999)
        .unwrap_err()
        .to_string();
    assert!(message.contains("dim-vocabs"), "{message}");
}

fn t5_on(gpu: std::sync::Arc<seq2seq_gpu::gpu::Gpu>) -> seq2seq_gpu::Result<seq2seq_gpu::Engine> {
    common::load_on(gpu, &common::fixture::dir("t5-tiny"), None)
}

fn gpu_with(options: seq2seq_gpu::gpu::GpuOptions) -> std::sync::Arc<seq2seq_gpu::gpu::Gpu> {
    pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(options)).unwrap()
}

/// A limit too small for the engine's own fixed buffers is refused before any is made (what
/// a small device does to a model is in tests/small_device.rs).
#[test]
fn a_limit_below_the_engines_own_buffers_is_refused() {
    let tiny = seq2seq_gpu::gpu::GpuOptions {
        max_buffer_bytes: Some(16),
        ..Default::default()
    };
    let message = match pollster::block_on(seq2seq_gpu::gpu::Gpu::with_options(tiny)) {
        Ok(_) => panic!("a device with 16-byte buffers was made"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains("below the smallest one usable, 4096"),
        "{message}"
    );
}

/// Engines can be dropped and made again on fresh devices; a destroyed device makes the next
/// generation fail with a message, promptly, instead of hanging.
#[test]
fn engines_are_recreated_and_a_lost_device_is_an_error() {
    let options = seq2seq_gpu::GenerationOptions {
        max_new_tokens: Some(4),
        ..Default::default()
    };
    let mut first = None;
    for _ in 0..3 {
        let engine = t5_on(gpu_with(Default::default())).unwrap();
        let out =
            pollster::block_on(engine.generate("Grant of Copyright License.", &options, |_| {}))
                .unwrap();
        assert_eq!(*first.get_or_insert(out[0].ids.clone()), out[0].ids);
    }
    let engine = t5_on(gpu_with(Default::default())).unwrap();
    engine.gpu().destroy();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result =
            pollster::block_on(engine.generate("Grant of Copyright License.", &options, |_| {}));
        let _ = sender.send(result.map(|_| ()).map_err(|e| e.to_string()));
    });
    let outcome = receiver
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("generation on a destroyed device hung");
    let message = outcome.expect_err("generation on a destroyed device succeeded");
    assert!(message.contains("lost"), "{message}");
}
