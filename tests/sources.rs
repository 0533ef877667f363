//! File sources and the folder layout rules over them: a folder and bytes in memory read,
//! list and slice files alike; every layout (one safetensors file, shards, Firefox
//! Translations) is found from any source, missing files are named with where they were
//! looked for, and the description and tokenizer are checked before weights are read.

mod common;

use std::cell::RefCell;
use std::path::PathBuf;

use common::fixture;
use seq2seq_gpu::formats::layout::FolderKind;
use seq2seq_gpu::formats::{FileSource, ModelFolder};
use seq2seq_gpu::{DirSource, Engine, Error, GenerationOptions, LoadOptions, MemorySource};

fn block<T>(future: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(future)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("seq2seq-sources-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// The same checks on any source holding "a" (100 bytes) and "b" (3 bytes).
fn check_source(source: &impl FileSource) {
    let a = bytes(100);
    assert_eq!(
        block(source.list()).unwrap(),
        Some(vec!["a".to_string(), "b".to_string()])
    );
    assert_eq!(block(source.read("a")).unwrap(), Some(a.clone()));
    assert_eq!(block(source.read("missing")).unwrap(), None);
    assert_eq!(block(source.read_range("a", 10, 5)).unwrap(), a[10..15]);
    assert_eq!(block(source.read_range("a", 0, 100)).unwrap(), a);
    assert_eq!(
        block(source.read_range("a", 100, 0)).unwrap(),
        Vec::<u8>::new()
    );
    let past = block(source.read_range("a", 98, 5))
        .unwrap_err()
        .to_string();
    assert!(
        past.starts_with("a: ") && past.contains("past the end of the file (100 bytes)"),
        "{past}"
    );
    let huge = block(source.read_range("a", u64::MAX, 2)).unwrap_err();
    assert!(huge.to_string().contains("past the end"), "{huge}");
    match block(source.read_range("missing", 0, 1)) {
        Err(Error::MissingFile { file, location }) => {
            assert_eq!((file.as_str(), location), ("missing", source.location()));
        }
        other => panic!("a range of a missing file: {other:?}"),
    }
}

#[test]
fn a_folder_and_memory_read_list_and_slice_files_alike() {
    let dir = temp_dir("basic");
    std::fs::write(dir.join("a"), bytes(100)).unwrap();
    std::fs::write(dir.join("b"), b"xyz").unwrap();
    std::fs::create_dir_all(dir.join("subfolder")).unwrap();
    let folder = DirSource::new(&dir).unwrap();
    assert_eq!(folder.location(), dir.display().to_string());
    check_source(&folder);
    let memory = MemorySource::new("memory")
        .with("a", bytes(100))
        .with("b", b"xyz".to_vec());
    check_source(&memory);
    let missing = DirSource::new(dir.join("nope")).err().unwrap().to_string();
    assert!(missing.contains("no such model folder"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A source that records what is asked of it, with or without a listing.
struct Recorded {
    inner: MemorySource,
    lists: bool,
    /// Files read whole, or whose size was asked, in order.
    reads: RefCell<Vec<String>>,
    /// Files read whole.
    whole: RefCell<Vec<String>>,
    /// (file, bytes) of every range read.
    ranges: RefCell<Vec<(String, u64)>>,
}

impl Recorded {
    fn new(inner: MemorySource, lists: bool) -> Self {
        Recorded {
            inner,
            lists,
            reads: RefCell::default(),
            whole: RefCell::default(),
            ranges: RefCell::default(),
        }
    }

    fn reads(&self) -> Vec<String> {
        self.reads.borrow().clone()
    }
}

impl FileSource for Recorded {
    fn location(&self) -> String {
        self.inner.location()
    }

    async fn list(&self) -> seq2seq_gpu::Result<Option<Vec<String>>> {
        if self.lists {
            self.inner.list().await
        } else {
            Ok(None)
        }
    }

    async fn read(&self, name: &str) -> seq2seq_gpu::Result<Option<Vec<u8>>> {
        self.reads.borrow_mut().push(name.to_string());
        self.whole.borrow_mut().push(name.to_string());
        self.inner.read(name).await
    }

    async fn read_range(&self, name: &str, start: u64, len: u64) -> seq2seq_gpu::Result<Vec<u8>> {
        self.ranges.borrow_mut().push((name.to_string(), len));
        self.inner.read_range(name, start, len).await
    }

    /// Asking whether a file is there counts as asking for it.
    async fn size(&self, name: &str) -> seq2seq_gpu::Result<Option<u64>> {
        if !self.reads.borrow().iter().any(|n| n == name) {
            self.reads.borrow_mut().push(name.to_string());
        }
        self.inner.size(name).await
    }
}

/// The files of a fixture folder, in memory.
fn fixture_in_memory(name: &str, files: &[&str]) -> MemorySource {
    files.iter().fold(MemorySource::new(name), |source, file| {
        source.with(*file, std::fs::read(fixture::dir(name).join(file)).unwrap())
    })
}

const T5_FILES: [&str; 4] = [
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "model.safetensors",
];

#[test]
fn hugging_face_folders_are_found_from_any_source() {
    for lists in [true, false] {
        let source = Recorded::new(fixture_in_memory("t5-tiny", &T5_FILES[..3]), lists);
        let folder = block(ModelFolder::open(&source)).unwrap();
        let FolderKind::HuggingFace {
            config,
            generation_config,
        } = &folder.kind
        else {
            panic!("not a Hugging Face folder");
        };
        assert!(config.contains("\"t5\"") && generation_config.is_some());
        assert_eq!(folder.tokenizer.names(), ["tokenizer.json"]);
        // Without model.safetensors, the shards of an index.
        let missing = block(folder.weight_files())
            .map(|(_, shards)| shards)
            .unwrap_err();
        assert!(
            matches!(&missing, Error::MissingFile { file, .. } if file == "model.safetensors or model.safetensors.index.json or pytorch_model.bin or pytorch_model.bin.index.json"),
            "{missing}"
        );
        let expected = if lists {
            // A listing source is never asked for a file it does not hold.
            vec!["config.json", "generation_config.json", "tokenizer.json"]
        } else {
            vec![
                "config.json",
                "generation_config.json",
                "tokenizer_config.json",
                "special_tokens_map.json",
                "added_tokens.json",
                "tokenizer.json",
                "model.safetensors",
                "model.safetensors.index.json",
                "pytorch_model.bin",
                "pytorch_model.bin.index.json",
            ]
        };
        assert_eq!(source.reads(), expected, "listing: {lists}");
    }
    // Without tokenizer.json, the vocabulary files of older repos.
    let spm = fixture_in_memory(
        "hub/t5-spm",
        &[
            "config.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "spiece.model",
        ],
    );
    let folder = block(ModelFolder::open(&spm)).unwrap();
    assert_eq!(
        folder.tokenizer.names(),
        [
            "tokenizer_config.json",
            "special_tokens_map.json",
            "spiece.model"
        ]
    );
    let sharded = MemorySource::new("sharded")
        .with("config.json", b"{}".to_vec())
        .with("tokenizer.json", b"{}".to_vec())
        .with(
            "model.safetensors.index.json",
            br#"{"weight_map": {"b": "two.safetensors", "a": "one.safetensors", "c": "two.safetensors"}}"#.to_vec(),
        )
        .with("one.safetensors", b"1".to_vec())
        .with("two.safetensors", b"22".to_vec());
    let folder = block(ModelFolder::open(&sharded)).unwrap();
    let shards = block(folder.weight_files())
        .map(|(_, shards)| shards)
        .unwrap();
    assert_eq!(shards, ["one.safetensors", "two.safetensors"]);
    let one_shard_missing = MemorySource::new("sharded")
        .with("config.json", b"{}".to_vec())
        .with("tokenizer.json", b"{}".to_vec())
        .with(
            "model.safetensors.index.json",
            br#"{"weight_map": {"a": "one.safetensors", "b": "two.safetensors"}}"#.to_vec(),
        )
        .with("one.safetensors", b"1".to_vec());
    let folder = block(ModelFolder::open(&one_shard_missing)).unwrap();
    let missing = block(folder.weight_files()).unwrap_err();
    assert!(
        matches!(&missing, Error::MissingFile { file, .. } if file == "two.safetensors"),
        "{missing}"
    );
    let unsafe_shard = sharded.with(
        "model.safetensors.index.json",
        br#"{"weight_map": {"a": "../outside.safetensors"}}"#.to_vec(),
    );
    let folder = block(ModelFolder::open(&unsafe_shard)).unwrap();
    let error = block(folder.weight_files())
        .map(|(_, shards)| shards)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("model.safetensors.index.json: ")
            && error.contains("not a plain file name"),
        "{error}"
    );
}

#[test]
fn firefox_translations_folders_are_found_and_missing_files_named() {
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/enpt");
    let read = |file: &str| std::fs::read(models.join(file)).unwrap();
    let config = "config.intgemm8bitalpha.yml";
    let source = MemorySource::new("enpt")
        .with(config, read(config))
        .with("tokenizer.json", read("tokenizer.json"))
        .with(
            "model.enpt.intgemm.alphas.bin",
            read("model.enpt.intgemm.alphas.bin"),
        );
    let folder = block(ModelFolder::open(&source)).unwrap();
    let FolderKind::FirefoxTranslations(manifest) = &folder.kind else {
        panic!("not a Firefox Translations folder");
    };
    assert_eq!(manifest.max_length_factor, Some(2.5));
    let error = block(folder.read_marian(manifest)).unwrap_err().to_string();
    assert_eq!(error, "enpt: no lex.50.50.enpt.s2t.bin");
    let source = source.with("lex.50.50.enpt.s2t.bin", read("lex.50.50.enpt.s2t.bin"));
    let folder = block(ModelFolder::open(&source)).unwrap();
    let FolderKind::FirefoxTranslations(manifest) = &folder.kind else {
        panic!("not a Firefox Translations folder");
    };
    let (model, shortlist) = block(folder.read_marian(manifest)).unwrap();
    assert_eq!(model.0, "model.enpt.intgemm.alphas.bin");
    assert_eq!(shortlist.unwrap().0, "lex.50.50.enpt.s2t.bin");

    let neither = MemorySource::new("an empty folder").with("tokenizer.json", b"{}".to_vec());
    let error = block(ModelFolder::open(&neither))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("an empty folder: neither config.json nor a bergamot config"),
        "{error}"
    );
    let no_tokenizer = fixture_in_memory("t5-tiny", &["config.json"]);
    let error = block(ModelFolder::open(&no_tokenizer))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with(
            "t5-tiny: no tokenizer.json or any other tokenizer file (tokenizer_config.json, "
        ),
        "{error}"
    );
}

#[test]
fn the_description_and_tokenizer_are_checked_before_weights_are_read() {
    let load = |source: &Recorded| {
        let options = LoadOptions {
            weights: None,
            gpu: Some(common::gpu()),
            ..Default::default()
        };
        block(Engine::load(source, &options)).map(|_| ())
    };
    let broken_config = Recorded::new(
        fixture_in_memory("t5-tiny", &T5_FILES).with("config.json", b"{ not json".to_vec()),
        true,
    );
    let error = load(&broken_config).unwrap_err().to_string();
    assert!(error.starts_with("config.json: not valid JSON"), "{error}");
    let broken_tokenizer = Recorded::new(
        fixture_in_memory("t5-tiny", &T5_FILES).with("tokenizer.json", b"{\"model\": 3}".to_vec()),
        true,
    );
    let error = load(&broken_tokenizer).unwrap_err().to_string();
    assert!(
        error.contains("tokenizer.json could not be loaded"),
        "{error}"
    );
    for source in [&broken_config, &broken_tokenizer] {
        assert!(!source.reads().contains(&"model.safetensors".to_string()));
    }
}

/// Bytes in memory load into the same model as the folder they came from.
#[test]
fn an_engine_loads_from_memory_as_from_a_folder() {
    let name = "t5-tiny";
    let options = LoadOptions {
        weights: None,
        gpu: Some(common::gpu()),
        ..Default::default()
    };
    let from_memory = block(Engine::load(&fixture_in_memory(name, &T5_FILES), &options)).unwrap();
    let expected = fixture::expected_json(name);
    let greedy = GenerationOptions {
        max_new_tokens: Some(48),
        num_beams: Some(1),
        ..Default::default()
    };
    for case in fixture::cases(&expected).iter().take(2) {
        let out = block(from_memory.generate(case["text"].as_str().unwrap(), &greedy, |_| {}));
        assert_eq!(out.unwrap()[0].ids, fixture::ids(&case["greedy_ids"]));
    }
}

/// The weights are never read whole: their headers, then each tensor by its byte range, no
/// range larger than the largest tensor (or header, or archive directory). The model still
/// generates what transformers does.
#[test]
fn weights_are_read_tensor_by_tensor() {
    let options = LoadOptions {
        weights: None,
        gpu: Some(common::gpu()),
        ..Default::default()
    };
    let mt5 = [
        "config.json",
        "generation_config.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "spiece.model",
        "pytorch_model.bin",
    ];
    for (name, files, weights) in [
        ("t5-tiny", &T5_FILES[..], "model.safetensors"),
        ("hub/mt5-bin", &mt5[..], "pytorch_model.bin"),
    ] {
        let source = Recorded::new(fixture_in_memory(name, files), true);
        let engine = block(Engine::load(&source, &options)).unwrap();
        let size = std::fs::metadata(fixture::dir(name).join(weights))
            .unwrap()
            .len();
        assert!(
            !source.whole.borrow().iter().any(|n| n == weights),
            "{name}"
        );
        let ranges: Vec<u64> = source
            .ranges
            .borrow()
            .iter()
            .filter(|(file, _)| file == weights)
            .map(|(_, len)| *len)
            .collect();
        let largest = ranges.iter().max().copied().unwrap_or(0);
        assert!(ranges.len() > 10, "{name}: {} ranges", ranges.len());
        let bytes = std::fs::read(fixture::dir(name).join(weights)).unwrap();
        // The largest piece of the file a reader needs at once: a tensor, the safetensors
        // header, or a PyTorch archive's directory (its tail) and entries.
        let largest_piece = if weights == "model.safetensors" {
            let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header: serde_json::Value =
                serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
            let offsets = header.as_object().unwrap().values();
            let tensor = offsets
                .filter_map(|t| t["data_offsets"].as_array())
                .map(|o| o[1].as_u64().unwrap() - o[0].as_u64().unwrap())
                .max()
                .unwrap();
            tensor.max(header_len as u64)
        } else {
            let archive = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
            let entry = (0..archive.len())
                .map(|i| archive.by_index_data(i).unwrap().size())
                .max()
                .unwrap();
            entry.max(22 + 65_535 + 20 + 56)
        };
        assert!(
            largest <= largest_piece && largest < size / 2,
            "{name}: a range of {largest} bytes of {size}"
        );
        let expected = fixture::expected_json(name);
        let case = &fixture::cases(&expected)[0];
        let greedy = GenerationOptions {
            max_new_tokens: Some(32),
            num_beams: Some(1),
            ..Default::default()
        };
        let out = block(engine.generate(case["text"].as_str().unwrap(), &greedy, |_| {})).unwrap();
        assert_eq!(out[0].ids, fixture::ids(&case["greedy_ids"]), "{name}");
    }
}
