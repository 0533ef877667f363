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

/// The folder's tokenizer files as the layout finds them, less `skip`.
fn files_of(name: &str, skip: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for file in std::fs::read_dir(hub(name)).unwrap() {
        let path = file.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        if TokenizerFiles::candidates().any(|c| c == file) && !skip.contains(&file.as_str()) {
            files.push((file, std::fs::read(&path).unwrap()));
        }
    }
    files
}

/// The tokenizer of `files`, with config.json's model type of fixture `name`.
fn build(name: &str, files: Vec<(String, Vec<u8>)>) -> seq2seq_gpu::Result<Tokenizer> {
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(hub(name).join("config.json")).unwrap())
            .unwrap();
    Tokenizer::from_files(&TokenizerFiles::new(files), config["model_type"].as_str())
}

fn load(name: &str, skip: &[&str]) -> Tokenizer {
    build(name, files_of(name, skip)).unwrap_or_else(|e| panic!("{name}: {e}"))
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

/// `name`'s files with tokenizer_config.json replaced and `extra` files added.
fn with_files(name: &str, config: &Value, extra: &[(&str, Value)]) -> Vec<(String, Vec<u8>)> {
    let mut files = files_of(name, &["tokenizer_config.json"]);
    files.push((
        "tokenizer_config.json".into(),
        config.to_string().into_bytes(),
    ));
    for (file, json) in extra {
        files.push((file.to_string(), json.to_string().into_bytes()));
    }
    files
}

/// Tokens added by tokenizer_config.json's added_tokens_decoder (with their lstrip, rstrip,
/// single-word and normalised flags) or by added_tokens.json are matched and skipped as
/// transformers does (tests/fixtures/hub/added_tokens.json).
#[test]
fn added_tokens_tokenize_as_transformers() {
    let path = common::fixture::dir("hub").join("added_tokens.json");
    let variants: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut wrong = Vec::new();
    for variant in variants.as_array().unwrap() {
        let name = variant["fixture"].as_str().unwrap();
        let extra = match &variant["added_tokens_json"] {
            Value::Null => vec![],
            json => vec![("added_tokens.json", json.clone())],
        };
        let files = with_files(name, &variant["tokenizer_config"], &extra);
        let tokenizer = build(name, files).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            tokenizer.vocab_size(),
            variant["vocab"].as_u64().unwrap() as usize,
            "{name}"
        );
        wrong.extend(compare(name, &tokenizer, variant));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// `name`'s tokenizer_config.json with one special token added at `id`.
fn config_adding(name: &str, content: &str, id: u64) -> Value {
    let mut config: Value = serde_json::from_slice(
        &std::fs::read(hub(name).join("tokenizer_config.json")).unwrap_or(b"{}".to_vec()),
    )
    .unwrap();
    config["added_tokens_decoder"] =
        serde_json::json!({ id.to_string(): { "content": content, "special": true } });
    config
}

fn added_error(name: &str, content: &str, id: u64) -> String {
    let config = config_adding(name, content, id);
    match build(name, with_files(name, &config, &[])) {
        Ok(_) => panic!("{name} took {content:?} at {id}"),
        Err(e) => e.to_string(),
    }
}

/// An added token at another id than the one it gets, or one a class built from vocabulary
/// files cannot add, is refused by name rather than giving ids the model was not trained on.
#[test]
fn added_tokens_that_cannot_be_honoured_are_refused() {
    let e = added_error("t5-spm", "<sep>", 530);
    assert!(
        e.contains("\"<sep>\" at id 530") && e.contains("gives it id 520"),
        "{e}"
    );
    let e = added_error("t5-spm", "</s>", 7);
    assert!(e.contains("gives it id 1"), "{e}");
    let e = added_error("opus-mt-spm", "<sep>", 360);
    assert!(
        e.contains("MarianTokenizer") && e.contains("\"<sep>\" at id 360"),
        "{e}"
    );
    let e = added_error("byt5", "<sep>", 384);
    assert!(e.contains("ByT5Tokenizer"), "{e}");
    for (decoder, why) in [
        (serde_json::json!([]), "must be an object"),
        (
            serde_json::json!({"x": {"content": "a"}}),
            "must be a token id",
        ),
        (serde_json::json!({"5": {"content": 3}}), "no \"content\""),
        (
            serde_json::json!({"5": {"content": "a", "lstrip": "yes"}}),
            "\"lstrip\" must be",
        ),
    ] {
        let config = serde_json::json!({ "added_tokens_decoder": decoder });
        let e = build("t5-spm", with_files("t5-spm", &config, &[]))
            .err()
            .unwrap_or_else(|| panic!("took {decoder}"))
            .to_string();
        assert!(
            e.contains("tokenizer_config.json") && e.contains(why),
            "{e}"
        );
    }
    let e = build(
        "t5-spm",
        with_files(
            "t5-spm",
            &serde_json::json!({}),
            &[("added_tokens.json", serde_json::json!(["a"]))],
        ),
    )
    .err()
    .expect("a list as added_tokens.json")
    .to_string();
    assert!(e.contains("added_tokens.json"), "{e}");
    // Tokens the vocabulary holds at their id are accepted by every class.
    for (name, content, id) in [
        ("opus-mt-spm", "</s>", 0),
        ("byt5", "</s>", 1),
        ("byt5", "a", 100),
    ] {
        let config = config_adding(name, content, id);
        build(name, with_files(name, &config, &[])).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
