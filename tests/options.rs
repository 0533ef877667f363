//! One list of generation options: the struct's fields are the CLI's flags, the JS API's
//! camelCase options (checked against the TypeScript interface) and the keys read from
//! generation_config.json; every kind of value is read and refused with the same messages
//! whichever the source.

use std::collections::BTreeSet;

use seq2seq_gpu::GenerationOptions;
use seq2seq_gpu::generate::EarlyStopping;
use serde_json::{Value, json};

/// The property names of `interface GenerateOptions` in the JS API's TypeScript types.
fn typescript_options() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web/types.d.ts");
    let text = std::fs::read_to_string(path).unwrap();
    let start = text
        .find("export interface GenerateOptions {")
        .expect("a GenerateOptions interface");
    let body = &text[start..];
    let body = &body[body.find('{').unwrap() + 1..body.find("\n}").unwrap()];
    body.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("/**") && !l.starts_with('*'))
        .filter_map(|l| l.split_once("?:").map(|(name, _)| name.trim().to_string()))
        .collect()
}

#[test]
fn the_typescript_interface_lists_every_option() {
    let names = GenerationOptions::names();
    assert!(names.len() >= 26 && names.contains(&"max_new_tokens"));
    let mut expected: BTreeSet<String> = names
        .iter()
        .map(|n| GenerationOptions::js_name(n))
        .collect();
    assert_eq!(
        GenerationOptions::js_name("no_repeat_ngram_size"),
        "noRepeatNgramSize"
    );
    // The JS API's own keys, handled beside the options.
    expected.extend(["onToken".to_string(), "signal".to_string()]);
    assert_eq!(typescript_options(), expected);
}

#[test]
fn every_option_is_a_cli_flag() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seq2seq-gpu"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for name in GenerationOptions::names() {
        let flag = format!("--{} <VALUE>", name.replace('_', "-"));
        assert!(help.contains(&flag), "{flag} is not in --help");
    }
}

fn parse(value: Value) -> Result<GenerationOptions, String> {
    GenerationOptions::from_json(value.as_object().unwrap(), "source").map_err(|e| e.to_string())
}

#[test]
fn each_kind_of_value_is_read_and_refused_alike() {
    let read = parse(json!({
        "max_new_tokens": 5, "length_penalty": 2, "do_sample": true, "seed": 7,
        "forced_bos_token_id": [3, 4], "eos_token_id": 2, "suppress_tokens": [1, 2],
        "bad_words_ids": [[5], [6, 7]], "stop_strings": ".", "early_stopping": "never",
        "top_k": null,
    }))
    .unwrap();
    let expected = GenerationOptions {
        max_new_tokens: Some(5),
        length_penalty: Some(2.0),
        do_sample: Some(true),
        seed: Some(7),
        forced_bos_token_id: Some(3),
        eos_token_id: Some(vec![2]),
        suppress_tokens: Some(vec![1, 2]),
        bad_words_ids: Some(vec![vec![5], vec![6, 7]]),
        stop_strings: Some(vec![".".into()]),
        early_stopping: Some(EarlyStopping::Never),
        ..Default::default()
    };
    assert_eq!(read, expected);
    for (early_stopping, expected) in [
        (json!(true), EarlyStopping::True),
        (json!("False"), EarlyStopping::False),
    ] {
        let read = parse(json!({ "early_stopping": early_stopping })).unwrap();
        assert_eq!(read.early_stopping, Some(expected));
    }
    for (value, message) in [
        (
            json!({ "max_new_tokens": "many" }),
            "source: \"max_new_tokens\" must be a non-negative integer, found \"many\"",
        ),
        (
            json!({ "num_beams": 2.5 }),
            "source: \"num_beams\" must be a non-negative integer, found 2.5",
        ),
        (
            json!({ "temperature": "hot" }),
            "source: \"temperature\" must be a number, found \"hot\"",
        ),
        (
            json!({ "truncation": "maybe" }),
            "source: \"truncation\" must be true or false, found \"maybe\"",
        ),
        (
            json!({ "seed": -1 }),
            "source: \"seed\" must be a non-negative integer, found -1",
        ),
        (
            json!({ "eos_token_id": [1, "x"] }),
            "source: \"eos_token_id\" must hold token ids, found \"x\"",
        ),
        (
            json!({ "pad_token_id": 5000000000u64 }),
            "source: \"pad_token_id\" must hold token ids, found 5000000000",
        ),
        (
            json!({ "bad_words_ids": [5] }),
            "source: \"bad_words_ids\" must be a list of lists of token ids, found [5]",
        ),
        (
            json!({ "stop_strings": [1] }),
            "source: \"stop_strings\" must be a string or a list of strings",
        ),
        (
            json!({ "stop_strings": 1 }),
            "source: \"stop_strings\" must be a string or a list of strings, found 1",
        ),
        (
            json!({ "early_stopping": "sometimes" }),
            "source: \"early_stopping\" must be true, false or \"never\", found \"sometimes\"",
        ),
        (
            json!({ "beams": 4 }),
            "source: unknown generation option \"beams\"",
        ),
    ] {
        assert_eq!(parse(value.clone()).unwrap_err(), message, "{value}");
    }
}

#[test]
fn generation_config_sets_defaults_and_skips_keys_that_are_not_options() {
    let text = r#"{"_from_model_config": true, "transformers_version": "5.17.0",
        "bos_token_id": 0, "decoder_start_token_id": 0, "num_beams": 4, "max_length": null}"#;
    let defaults = GenerationOptions::from_generation_config(text).unwrap();
    assert_eq!(
        defaults,
        GenerationOptions {
            decoder_start_token_id: Some(0),
            num_beams: Some(4),
            ..Default::default()
        }
    );
    let bad = GenerationOptions::from_generation_config(r#"{"num_beams": -4}"#)
        .unwrap_err()
        .to_string();
    assert_eq!(
        bad,
        "generation_config.json: \"num_beams\" must be a non-negative integer, found -4"
    );
    let not_object = GenerationOptions::from_generation_config("[1]").unwrap_err();
    assert_eq!(
        not_object.to_string(),
        "generation_config.json: expected a JSON object"
    );
}
