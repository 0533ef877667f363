//! Decoding strategies against transformers' generate(): beam search, every logits
//! processor entry of every fixture, and padded batches.

mod common;

use common::fixture::{self, FAMILIES};
use seq2seq_gpu::{Engine, GenerationOptions};
use serde_json::{Map, Value, json};

fn engine(name: &str) -> Engine {
    common::load(&fixture::dir(name))
}

/// The engines of `name` on the adapter's own kernels and on the fused decode kernels GPUs
/// record (beams share encoder rows through the projected cross-attention query; a padded
/// batch masks keys; post-norm families fold their norms with several rows).
fn engines(name: &str) -> [(Engine, &'static str); 2] {
    let fused = common::load_on(common::fused_gpu(), &fixture::dir(name), None).unwrap();
    [
        (engine(name), "adapter's kernels"),
        (fused, "fused kernels"),
    ]
}

fn options(map: &Map<String, Value>) -> GenerationOptions {
    GenerationOptions::from_json(map, "test").unwrap()
}

fn sequences(engine: &Engine, input: &[u32], options: &GenerationOptions) -> Vec<Vec<u32>> {
    let generation = engine.start_from_ids(input, options).unwrap();
    pollster::block_on(generation.run(|_| {}))
        .unwrap()
        .into_iter()
        .map(|g| g.ids)
        .collect()
}

#[test]
fn beam_search_reproduces_beam4_ids() {
    for (name, (engine, kernels)) in FAMILIES.iter().flat_map(|n| engines(n).map(|e| (n, e))) {
        let expected = fixture::expected_json(name);
        let beam = &expected["beam_search"];
        let mut map = beam.as_object().unwrap().clone();
        map.insert("max_new_tokens".into(), expected["max_new_tokens"].clone());
        let options = options(&map);
        for (i, case) in fixture::cases(&expected).iter().enumerate() {
            let got = sequences(&engine, &fixture::ids(&case["input_ids"]), &options);
            assert_eq!(
                got,
                vec![fixture::ids(&case["beam4_ids"])],
                "{name} case {i} ({kernels})"
            );
        }
    }
}

#[test]
fn every_processor_entry_is_reproduced() {
    for name in FAMILIES {
        let engine = engine(name);
        let expected = fixture::expected_json(name);
        let cases = fixture::cases(&expected);
        for entry in expected["processors"].as_array().unwrap() {
            let mut map = entry["options"].as_object().unwrap().clone();
            map.entry("max_new_tokens").or_insert(json!(32));
            let case = &cases[entry["case"].as_u64().unwrap() as usize];
            let got = sequences(&engine, &fixture::ids(&case["input_ids"]), &options(&map));
            let want: Vec<Vec<u32>> = entry["sequences"]
                .as_array()
                .unwrap()
                .iter()
                .map(fixture::ids)
                .collect();
            assert_eq!(
                got, want,
                "{name} case {} {:?}",
                entry["case"], entry["options"]
            );
        }
    }
}

#[test]
fn padded_batches_reproduce_batched_greedy_ids() {
    for (name, (engine, kernels)) in FAMILIES.iter().flat_map(|n| engines(n).map(|e| (n, e))) {
        let expected = fixture::expected_json(name);
        let batch = &expected["batch"];
        // The unpadded inputs: each row up to its attention mask.
        let inputs: Vec<Vec<u32>> = batch["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .zip(batch["attention_mask"].as_array().unwrap())
            .map(|(ids, mask)| {
                let real = mask
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m.as_u64() == Some(1))
                    .count();
                fixture::ids(ids)[..real].to_vec()
            })
            .collect();
        let options = GenerationOptions {
            max_new_tokens: Some(expected["max_new_tokens"].as_u64().unwrap() as usize),
            ..Default::default()
        };
        let got: Vec<Vec<u32>> =
            pollster::block_on(engine.generate_batch_from_ids(&inputs, &options))
                .unwrap()
                .into_iter()
                .map(|g| g.ids)
                .collect();
        let want: Vec<Vec<u32>> = batch["greedy_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(fixture::ids)
            .collect();
        assert_eq!(got, want, "{name} ({kernels})");
    }
}

#[test]
fn sampling_is_reproducible_by_seed_and_near_greedy_at_low_temperature() {
    let name = "bart-tiny";
    let engine = engine(name);
    let expected = fixture::expected_json(name);
    let case = &fixture::cases(&expected)[1];
    let input = fixture::ids(&case["input_ids"]);
    let sample = |seed: u64, temperature: f64| {
        let map = json!({ "do_sample": true, "seed": seed, "temperature": temperature, "max_new_tokens": 48 });
        sequences(&engine, &input, &options(map.as_object().unwrap()))
    };
    assert_eq!(
        sample(11, 1.0),
        sample(11, 1.0),
        "the same seed gives the same ids"
    );
    let seeds: Vec<Vec<Vec<u32>>> = (0..4).map(|s| sample(s, 1.5)).collect();
    assert!(
        seeds.windows(2).any(|w| w[0] != w[1]),
        "different seeds all gave one output"
    );
    assert_eq!(sample(3, 1e-4), vec![fixture::ids(&case["greedy_ids"])]);
}

#[test]
fn sampling_on_the_gpu_draws_what_the_cpu_draws_from_read_back_logits() {
    // An n-gram ban longer than any sequence edits nothing but needs the sequence, so it
    // sends the same generation down the CPU's path: logits read back, the warpers applied
    // by sorting, the same noise.
    for name in FAMILIES {
        let engine = engine(name);
        let expected = fixture::expected_json(name);
        let input = fixture::ids(&fixture::cases(&expected)[0]["input_ids"]);
        let mut map = json!({
            "do_sample": true, "seed": 5, "temperature": 1.4, "top_k": 30, "top_p": 0.95,
            "num_return_sequences": 3, "max_new_tokens": 16
        })
        .as_object()
        .unwrap()
        .clone();
        let on_gpu = sequences(&engine, &input, &options(&map));
        map.insert("no_repeat_ngram_size".into(), json!(1000));
        assert_eq!(on_gpu, sequences(&engine, &input, &options(&map)), "{name}");
        assert!(
            on_gpu.windows(2).any(|w| w[0] != w[1]),
            "{name}: each returned sequence draws its own noise"
        );
    }
}

#[test]
fn beams_scored_on_the_gpu_match_beams_scored_on_the_cpu_in_a_batch() {
    // As for sampling: the no-op n-gram ban sends the same search through read-back logits.
    for name in FAMILIES {
        let engine = engine(name);
        let expected = fixture::expected_json(name);
        let inputs: Vec<Vec<u32>> = fixture::cases(&expected)[..2]
            .iter()
            .map(|case| fixture::ids(&case["input_ids"]))
            .collect();
        let mut map = json!({ "num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 12 })
            .as_object()
            .unwrap()
            .clone();
        let batch = |map: &Map<String, Value>| {
            let out = pollster::block_on(engine.generate_batch_from_ids(&inputs, &options(map)));
            out.unwrap().into_iter().map(|g| g.ids).collect::<Vec<_>>()
        };
        let on_gpu = batch(&map);
        map.insert("no_repeat_ngram_size".into(), json!(1000));
        assert_eq!(on_gpu, batch(&map), "{name}");
    }
}

#[test]
fn invalid_options_are_refused_with_a_message() {
    let engine = engine("t5-tiny");
    for (map, needle) in [
        (json!({ "num_beams": 0 }), "num_beams"),
        (json!({ "top_p": 1.5, "do_sample": true }), "top_p"),
        (
            json!({ "temperature": -0.5, "do_sample": true }),
            "temperature",
        ),
        (
            json!({ "num_return_sequences": 3, "num_beams": 2 }),
            "num_return_sequences",
        ),
        (json!({ "bad_words_ids": [[]] }), "bad_words_ids"),
        (
            json!({ "forced_bos_token_id": 100000 }),
            "outside the vocabulary",
        ),
        (json!({ "early_stopping": "sometimes" }), "early_stopping"),
    ] {
        let parsed = GenerationOptions::from_json(map.as_object().unwrap(), "test");
        let error = parsed
            .and_then(|o| engine.resolve(&o))
            .unwrap_err()
            .to_string();
        assert!(error.contains(needle), "{map}: {error}");
    }
}

#[test]
fn generation_config_gives_defaults_that_options_override() {
    let name = "t5-tiny";
    let src = fixture::dir(name);
    let dir = std::env::temp_dir().join(format!("seq2seq-genconfig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        std::fs::copy(src.join(file), dir.join(file)).unwrap();
    }
    let defaults = json!({ "decoder_start_token_id": 0, "eos_token_id": 1, "num_beams": 4, "early_stopping": true, "max_new_tokens": 48 });
    std::fs::write(dir.join("generation_config.json"), defaults.to_string()).unwrap();
    let engine = common::load(&dir);
    let expected = fixture::expected_json(name);
    for case in fixture::cases(&expected) {
        let input = fixture::ids(&case["input_ids"]);
        let by_default = sequences(&engine, &input, &GenerationOptions::default());
        assert_eq!(
            by_default,
            vec![fixture::ids(&case["beam4_ids"])],
            "generation_config.json's num_beams"
        );
        let greedy = GenerationOptions {
            num_beams: Some(1),
            ..Default::default()
        };
        assert_eq!(
            sequences(&engine, &input, &greedy),
            vec![fixture::ids(&case["greedy_ids"])],
            "an option overrides it"
        );
    }
}

#[test]
fn stop_strings_end_generation_where_the_text_ends_with_one() {
    let name = "t5-tiny";
    let engine = engine(name);
    let expected = fixture::expected_json(name);
    let case = &fixture::cases(&expected)[2];
    let greedy = fixture::ids(&case["greedy_ids"]);
    // The shortest greedy prefix whose text ends with the stop string.
    let text_of = |n: usize| engine.tokenizer().decode(&greedy[..n]).unwrap();
    let stop = text_of(6).split_whitespace().last().unwrap().to_string();
    let end = (2..=greedy.len())
        .find(|&n| text_of(n).ends_with(&stop))
        .unwrap();
    let map = json!({ "stop_strings": [stop.clone()], "max_new_tokens": 48 });
    let got = sequences(
        &engine,
        &fixture::ids(&case["input_ids"]),
        &options(map.as_object().unwrap()),
    );
    assert_eq!(got, vec![greedy[..end].to_vec()], "stop string {stop:?}");
    assert!(
        end < greedy.len(),
        "the stop string must cut the text short"
    );
}
