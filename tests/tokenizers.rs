//! Every hub-layout fixture's tokenizer against what transformers' AutoTokenizer gives for
//! the same folder (tests/fixtures/hub/tokenizers.json, written by
//! scripts/tokenizer_reference.py): ids of texts chosen to stress whitespace, Unicode
//! normalisation, unknown characters, special tokens in the text and language codes, and the
//! text of those ids and of random ones.

mod common;

use seq2seq_gpu::formats::layout::TokenizerFiles;
use seq2seq_gpu::tokenizer::Tokenizer;
use serde_json::Value;

fn hub(name: &str) -> std::path::PathBuf {
    common::fixture::dir("hub").join(name)
}

/// The folder's tokenizer files as the layout finds them, and config.json's model type.
fn load(name: &str, skip: &[&str]) -> Tokenizer {
    let dir = hub(name);
    let mut files = Vec::new();
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        let wanted = [
            "tokenizer.json",
            "tokenizer_config.json",
            "special_tokens_map.json",
            "spiece.model",
            "sentencepiece.bpe.model",
            "source.spm",
            "target.spm",
            "vocab.json",
            "merges.txt",
        ];
        if wanted.contains(&file.as_str()) && !skip.contains(&file.as_str()) {
            files.push((file, std::fs::read(&path).unwrap()));
        }
    }
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    Tokenizer::from_files(&TokenizerFiles::new(files), config["model_type"].as_str())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn reference() -> Value {
    let path = common::fixture::dir("hub").join("tokenizers.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_u64().unwrap() as u32)
        .collect()
}

/// (encodings wrong, decodings wrong, descriptions of the first few).
fn compare(name: &str, tokenizer: &Tokenizer, reference: &Value) -> Vec<String> {
    let mut wrong = Vec::new();
    for e in reference["encodings"].as_array().unwrap() {
        let text = e["text"].as_str().unwrap();
        let source = e["lang"]["src_lang"].as_str();
        let got = tokenizer.encode_in(text, source).unwrap();
        if got != ids(&e["ids"]) {
            wrong.push(format!(
                "{name} encode {text:?} ({source:?}): want {} got {got:?}",
                e["ids"]
            ));
        }
        let decoded = tokenizer.decode(&got).unwrap();
        if decoded != e["decoded"].as_str().unwrap() {
            wrong.push(format!(
                "{name} decode of {text:?}: want {} got {decoded:?}",
                e["decoded"]
            ));
        }
    }
    for d in reference["decodings"].as_array().unwrap() {
        let got = tokenizer.decode(&ids(&d["ids"])).unwrap();
        if got != d["text"].as_str().unwrap() {
            wrong.push(format!(
                "{name} decode {}: want {} got {got:?}",
                d["ids"], d["text"]
            ));
        }
    }
    wrong
}

#[test]
fn every_fixture_tokenizes_as_transformers() {
    let reference = reference();
    let mut wrong = Vec::new();
    for (name, expected) in reference.as_object().unwrap() {
        let tokenizer = load(name, &[]);
        assert_eq!(
            tokenizer.vocab_size(),
            expected["vocab"].as_u64().unwrap() as usize,
            "{name}"
        );
        wrong.extend(compare(name, &tokenizer, expected));
    }
    assert!(
        wrong.is_empty(),
        "{} differences:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(12)].join("\n")
    );
}

/// NLLB's folder has tokenizer.json and the SentencePiece model it came from: built from the
/// model alone, the tokenizer is the same.
#[test]
fn nllb_from_its_sentencepiece_model_equals_its_tokenizer_json() {
    let reference = reference();
    let tokenizer = load("nllb", &["tokenizer.json"]);
    let wrong = compare("nllb (sentencepiece)", &tokenizer, &reference["nllb"]);
    assert!(
        wrong.is_empty(),
        "{}",
        wrong[..wrong.len().min(12)].join("\n")
    );
}
