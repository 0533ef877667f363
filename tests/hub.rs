//! Models saved in the layouts real hub repositories use (tests/fixtures/hub: SentencePiece,
//! Marian, byte-level BPE and ByT5 tokenizers, PyTorch checkpoints, names without `model.`,
//! generation defaults in config.json, languages, Pegasus) against what transformers 5.24
//! computed for them: input ids, greedy and default generations (ids and text), and
//! teacher-forced logits.

mod common;

use common::fixture;
use common::*;
use seq2seq_gpu::{Engine, GenerationOptions};
use serde_json::Value;

use fixture::{HUB, hub};

/// A sequence up to and including its first EOS after the start token (transformers pads
/// the rest of a batch).
fn trimmed(ids: &[u32], eos: &[u32]) -> Vec<u32> {
    match ids.iter().skip(1).position(|t| eos.contains(t)) {
        Some(at) => ids[..at + 2].to_vec(),
        None => ids.to_vec(),
    }
}

fn language(case: &Value, key: &str) -> Option<String> {
    case["lang"][key].as_str().map(str::to_string)
}

fn generate(engine: &Engine, text: &str, options: &GenerationOptions) -> (Vec<u32>, String) {
    let out = pollster::block_on(engine.generate(text, options, |_| {})).unwrap();
    (out[0].ids.clone(), out[0].text.clone())
}

#[test]
fn inputs_and_generations_match_transformers() {
    for name in HUB {
        let engine = load(&fixture::dir(&hub(name)));
        let expected = fixture::expected_json(&hub(name));
        let eos = fixture::ids(&expected["eos_token_ids"]);
        for (i, case) in fixture::cases(&expected).iter().enumerate() {
            let text = case["text"].as_str().unwrap();
            let languages = GenerationOptions {
                src_lang: language(case, "src_lang"),
                tgt_lang: language(case, "tgt_lang"),
                ..Default::default()
            };
            let input = engine
                .tokenizer()
                .encode_in(text, languages.src_lang.as_deref())
                .unwrap();
            assert_eq!(
                input,
                fixture::ids(&case["input_ids"]),
                "{name} case {i} input ids"
            );
            let greedy = GenerationOptions {
                max_new_tokens: Some(32),
                num_beams: Some(1),
                do_sample: Some(false),
                ..languages.clone()
            };
            for (mode, options) in [("greedy", &greedy), ("default", &languages)] {
                let (ids, got_text) = generate(&engine, text, options);
                let want = fixture::ids(&case[format!("{mode}_ids")]);
                assert_eq!(
                    trimmed(&ids, &eos),
                    trimmed(&want, &eos),
                    "{name} case {i} {mode} ids"
                );
                assert_eq!(
                    got_text,
                    case[format!("{mode}_text")].as_str().unwrap(),
                    "{name} case {i} {mode} text"
                );
            }
        }
    }
}

#[test]
fn teacher_forced_logits_match_transformers() {
    let gpu = gpu();
    for name in HUB {
        let engine = load(&fixture::dir(&hub(name)));
        let model = engine.model();
        let expected = fixture::expected_json(&hub(name));
        let tensors = fixture::expected_tensors(&hub(name));
        for (i, case) in fixture::cases(&expected).iter().enumerate().take(2) {
            let encoded = model
                .encode(&gpu, &fixture::ids(&case["input_ids"]))
                .unwrap();
            let dec_ids = fixture::ids(&case["decoder_input_ids"]);
            let t = dec_ids.len();
            let logits = teacher_forced_logits(model, &gpu, &encoded, &dec_ids);
            let (want, shape) = &tensors[&format!("case{i}.logits")];
            assert_eq!(shape, &vec![t, model.spec.vocab_size], "{name}");
            assert_close(&logits, want, 1e-4, &format!("{name} case {i} logits"));
        }
    }
}
