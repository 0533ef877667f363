//! Many inputs in one call (`Engine::generate_many`): every output is what its input gives
//! alone, on every family, with beams, with a shortlist, split into sentences, with inputs
//! of very different lengths, blank lines and more inputs than rows; results arrive once
//! each, tagged with their index. (tests/soak.rs: hundreds of inputs and a run dropped
//! midway leave memory flat.)

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use seq2seq_gpu::{Batching, Engine, Generated, GenerationOptions, ManyOptions};
use serde_json::{Value, json};

fn options(value: Value) -> GenerationOptions {
    GenerationOptions::from_json(value.as_object().unwrap(), "test").unwrap()
}

fn alone(engine: &Engine, text: &str, options: &GenerationOptions) -> Vec<Generated> {
    pollster::block_on(engine.generate(text, options, |_| {})).unwrap()
}

/// The fixture's texts, from a few words to a paragraph, with blank lines among them and a
/// very long input (cut to what the model places), in an order that is not by length.
fn texts(dir: &std::path::Path) -> Vec<String> {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let cases = expected["cases"].as_array().unwrap();
    let mut texts: Vec<String> = cases
        .iter()
        .map(|c| c["text"].as_str().unwrap().to_string())
        .collect();
    let long = texts.join(" ").repeat(4);
    texts.insert(2, String::new());
    texts.insert(4, long);
    texts.push("   ".into());
    texts.push("Yes.".into());
    texts
}

fn assert_each_as_alone(
    engine: &Engine,
    inputs: &[String],
    options: &GenerationOptions,
    many: &ManyOptions,
    what: &str,
) {
    let results = common::generate_many(engine, inputs, options, many);
    for (text, got) in inputs.iter().zip(&results) {
        if text.trim().is_empty() {
            assert_eq!(got.len(), 1, "{what}: blank input");
            assert_eq!((got[0].ids.len(), got[0].text.as_str()), (0, ""), "{what}");
            continue;
        }
        assert_eq!(got, &alone(engine, text, options), "{what}: {text:?}");
    }
}

/// Greedy and beam search, in batches of 3 (fewer rows than inputs), on every family.
#[test]
fn every_family_generates_each_input_as_it_does_alone() {
    let mut dirs: Vec<PathBuf> = common::fixture::FAMILIES
        .iter()
        .map(|f| common::fixture::dir(f))
        .collect();
    dirs.push(common::fixture::dir(&common::fixture::hub("t5gemma")));
    for dir in dirs {
        let engine = common::load(&dir);
        let inputs = texts(&dir);
        let many = ManyOptions {
            batch_size: Some(3),
            split_sentences: false,
            batching: Batching::Auto,
            cache_blocks: None,
        };
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let greedy = options(json!({ "max_new_tokens": 10, "truncation": true }));
        assert_each_as_alone(&engine, &inputs, &greedy, &many, &format!("{name} greedy"));
        let static_batches = ManyOptions {
            batching: Batching::Static,
            cache_blocks: None,
            ..many.clone()
        };
        let what = format!("{name} greedy, static batches");
        assert_each_as_alone(&engine, &inputs, &greedy, &static_batches, &what);
        let beams = options(json!({
            "max_new_tokens": 6, "truncation": true, "num_beams": 3, "num_return_sequences": 2
        }));
        assert_each_as_alone(&engine, &inputs, &beams, &many, &format!("{name} beams"));
    }
}

/// The kernels a GPU records (fused matmuls, the key/value append in the QKV projection)
/// batch continuously as exactly: rows at different positions, rows ending and others
/// taking their place.
#[test]
fn continuous_batching_on_the_fused_kernels_generates_each_input_as_alone() {
    for name in ["t5-tiny", "bart-tiny", "marian-tiny"] {
        let dir = common::fixture::dir(name);
        let engine = common::load_on(common::fused_gpu(), &dir, None).unwrap();
        let many = ManyOptions {
            batch_size: Some(2),
            split_sentences: false,
            batching: Batching::Auto,
            cache_blocks: None,
        };
        let greedy = options(json!({ "max_new_tokens": 10, "truncation": true }));
        assert_each_as_alone(&engine, &texts(&dir), &greedy, &many, name);
    }
}

/// Continuous batching spends no step on rows whose input has ended: over inputs whose
/// outputs differ in length, it runs fewer steps than static batches (whose rows wait for
/// their batch's longest) and no fewer than the tokens need.
#[test]
fn continuous_batching_runs_fewer_steps_than_static_batches() {
    let dir = common::fixture::dir("bart-tiny");
    let engine = common::load(&dir);
    let inputs = texts(&dir);
    let greedy = options(json!({ "max_new_tokens": 12, "truncation": true }));
    let steps = |batching: Batching| {
        let many = ManyOptions {
            batch_size: Some(3),
            split_sentences: false,
            batching,
            cache_blocks: None,
        };
        let mut generation = engine
            .generate_many(inputs.clone(), &greedy, &many)
            .unwrap();
        let mut tokens = 0;
        while let Some(finished) = pollster::block_on(generation.next()) {
            let results = finished.unwrap().results.unwrap();
            tokens += results[0].ids.len().saturating_sub(1);
        }
        (generation.decode_steps(), tokens)
    };
    let (continuous, tokens) = steps(Batching::Auto);
    let (batched, same_tokens) = steps(Batching::Static);
    assert_eq!(tokens, same_tokens);
    assert!(
        continuous < batched,
        "continuous {continuous} steps, static {batched}"
    );
    assert!(
        continuous * 3 >= tokens,
        "{continuous} steps of 3 rows for {tokens} tokens"
    );
}

/// An input longer than the rows were made for does not wait behind the shorter ones that
/// keep coming: the rows take nothing new until they can be rebuilt for it.
#[test]
fn a_long_input_among_short_ones_is_not_left_to_the_end() {
    let dir = common::fixture::dir("t5-tiny");
    let engine = common::load(&dir);
    let long = "This License applies to any program or other work. ".repeat(6);
    // The rows are made for the first 8 inputs read (4 B ahead); the long one comes later.
    let mut inputs: Vec<String> = vec!["Yes.".into(); 10];
    inputs.push(long);
    let short = "Grant of Copyright License.".to_string();
    inputs.extend(std::iter::repeat_n(short, 30));
    let greedy = options(json!({ "max_new_tokens": 3 }));
    let many = ManyOptions {
        batch_size: Some(2),
        split_sentences: false,
        batching: Batching::Continuous,
        cache_blocks: None,
    };
    let mut generation = engine
        .generate_many(inputs.clone(), &greedy, &many)
        .unwrap();
    let mut order = Vec::new();
    while let Some(finished) = pollster::block_on(generation.next()) {
        order.push(finished.unwrap().index);
    }
    let at = order.iter().position(|&i| i == 10).unwrap();
    assert!(at < 20, "the long input came out {at}th: {order:?}");
}

/// A pool too small for every row at once: rows that find it empty are preempted (their
/// blocks go to older rows) and decoded again later, and every output is still what the
/// input gives alone.
#[test]
fn a_small_cache_pool_preempts_rows_and_each_input_still_generates_as_alone() {
    for name in ["t5-tiny", "bart-tiny"] {
        let dir = common::fixture::dir(name);
        let engine = common::load(&dir);
        let inputs = texts(&dir);
        // 40 positions are 3 blocks of 16: 3 blocks hold one row at its longest.
        let greedy = options(json!({ "max_new_tokens": 40, "truncation": true }));
        let many = ManyOptions {
            batch_size: Some(4),
            split_sentences: false,
            batching: Batching::Auto,
            cache_blocks: Some(3),
        };
        let mut generation = engine
            .generate_many(inputs.clone(), &greedy, &many)
            .unwrap();
        let mut results = BTreeMap::new();
        while let Some(finished) = pollster::block_on(generation.next()) {
            let finished = finished.unwrap();
            results.insert(finished.index, finished.results.unwrap());
        }
        assert!(generation.preempted() > 0, "{name}: no row was preempted");
        for (i, text) in inputs.iter().enumerate() {
            if !text.trim().is_empty() {
                assert_eq!(
                    results[&i],
                    alone(&engine, text, &greedy),
                    "{name}: {text:?}"
                );
            }
        }
    }
}

/// A continuous decoder's self-attention caches are its pool of blocks, whatever its rows
/// and their capacity; a static decoder's are rows x capacity.
#[test]
fn the_cache_pool_bounds_the_memory_of_continuous_batching() {
    let gpu = common::gpu();
    let engine = common::load(&common::fixture::dir("t5-tiny"));
    let model = engine.model();
    let stack = &model.spec.decoder;
    let block_bytes = 16 * 2 * stack.kv_dim() * 4;
    for (rows, capacity, blocks) in [(8, 512, 4), (64, 512, 4), (8, 64, 20)] {
        let slots = model.encoder_slots(&gpu, rows, 16).unwrap();
        let decoder = model
            .continuous_decoder(&gpu, &slots, capacity, blocks)
            .unwrap();
        // Block 0 is the idle rows'.
        let expected = stack.layers * (blocks + 1) * block_bytes;
        assert_eq!(decoder.cache_bytes(), expected, "{rows} rows of {capacity}");
    }
    let encoded = model.encode_batch(&gpu, &vec![vec![1, 2, 1]; 8]).unwrap();
    let shape = seq2seq_gpu::model::DecoderShape {
        sequences: 8,
        beams: 1,
        tokens: 1,
        capacity: 512,
    };
    let fixed = model
        .decoder(&gpu, &encoded, shape, seq2seq_gpu::model::Choice::Argmax)
        .unwrap();
    assert_eq!(
        fixed.cache_bytes(),
        stack.layers * 8 * 512 * 2 * stack.kv_dim() * 4
    );
}

/// Rows are rebuilt for inputs longer than they were made for, on buffers the pool has
/// recycled (a static batch's -inf masks among them): every sentence still translates as
/// the reference engine translates it alone.
#[test]
fn rows_rebuilt_for_longer_inputs_on_recycled_buffers_translate_as_alone() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let engine = common::load(&root.join("models/enpt"));
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/bergamot/reference.json")).unwrap(),
    )
    .unwrap();
    let mut cases: Vec<(String, String)> = (reference["enpt"].as_array().unwrap().iter())
        .map(|c| {
            (
                c["src"].as_str().unwrap().into(),
                c["out"].as_str().unwrap().into(),
            )
        })
        .collect();
    cases.sort_by_key(|(src, _)| engine.tokenizer().encode(src).unwrap().len());
    // Short sentences first (the rows are made for them), the longest last.
    let chosen: Vec<&(String, String)> =
        cases[..6].iter().chain(&cases[cases.len() - 3..]).collect();
    let sources: Vec<String> = chosen.iter().map(|(src, _)| src.clone()).collect();
    let texts: Vec<&str> = sources.iter().map(String::as_str).collect();
    pollster::block_on(engine.generate_batch(&texts, &GenerationOptions::default())).unwrap();
    let many = ManyOptions {
        batch_size: Some(1),
        split_sentences: false,
        batching: Batching::Continuous,
        cache_blocks: None,
    };
    let results = common::generate_many(&engine, &sources, &GenerationOptions::default(), &many);
    for ((src, out), got) in chosen.iter().zip(&results) {
        assert_eq!(&got[0].text, out, "{src}");
    }
}

/// The bundled Firefox model over its reference sentences as one document, in continuous
/// and in static batches: each sentence translates as the reference engine translates it
/// alone (each row chooses among its own sentence's shortlist, not the batch's).
#[test]
fn the_bundled_model_translates_a_document_as_the_reference_engine_does_sentence_by_sentence() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let engine = common::load(&root.join("models/enpt"));
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("tests/fixtures/bergamot/reference.json")).unwrap(),
    )
    .unwrap();
    let cases = reference["enpt"].as_array().unwrap();
    let sources: Vec<String> = cases
        .iter()
        .map(|c| c["src"].as_str().unwrap().to_string())
        .collect();
    // Continuous rows compute every word's logit and mask all but their sentence's
    // shortlist; static batches gather the union of their sentences' shortlists and mask it.
    for (batching, rows) in [(Batching::Continuous, 16), (Batching::Static, 8)] {
        let many = ManyOptions {
            batch_size: Some(rows),
            split_sentences: false,
            batching,
            cache_blocks: None,
        };
        let results =
            common::generate_many(&engine, &sources, &GenerationOptions::default(), &many);
        for (case, got) in cases.iter().zip(&results) {
            let what = format!("{batching:?}: {}", case["src"]);
            assert_eq!(got[0].text, case["out"].as_str().unwrap(), "{what}");
        }
    }
}

/// Paragraphs split into sentences translate sentence by sentence and join back with their
/// spacing and line breaks; a blank paragraph stays blank.
#[test]
fn split_paragraphs_join_the_sentences_translated_alone() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let engine = common::load(&root.join("models/enpt"));
    let paragraphs = [
        "Hello. I would like a cup of coffee, please.",
        "",
        "Mr. Smith arrived late.\nThe meeting was moved to Thursday.  Thank you!",
    ]
    .map(String::from);
    let many = ManyOptions {
        batch_size: Some(2),
        split_sentences: true,
        batching: Batching::Auto,
        cache_blocks: None,
    };
    let options = GenerationOptions::default();
    let results = common::generate_many(&engine, &paragraphs, &options, &many);
    let one = |s: &str| alone(&engine, s, &options)[0].text.clone();
    let expected = [
        format!(
            "{} {}",
            one("Hello."),
            one("I would like a cup of coffee, please.")
        ),
        String::new(),
        format!(
            "{}\n{}  {}",
            one("Mr. Smith arrived late."),
            one("The meeting was moved to Thursday."),
            one("Thank you!")
        ),
    ];
    for (got, want) in results.iter().zip(&expected) {
        assert_eq!(&got[0].text, want);
    }
}

/// A bad input is reported with its index and does not stop the others; options that
/// cannot hold are refused up front.
#[test]
fn a_bad_input_fails_alone_and_bad_options_are_refused() {
    let engine = common::load(&common::fixture::dir("bart-tiny"));
    let inputs = ["Grant of Copyright License.", &"word ".repeat(5000), "Yes."].map(String::from);
    let options = options(json!({ "max_new_tokens": 4 }));
    let mut generation = engine
        .generate_many(inputs.to_vec(), &options, &ManyOptions::default())
        .unwrap();
    let mut outcomes = BTreeMap::new();
    while let Some(finished) = pollster::block_on(generation.next()) {
        let finished = finished.unwrap();
        outcomes.insert(finished.index, finished.results);
    }
    let error = outcomes[&1].as_ref().unwrap_err().to_string();
    assert!(error.contains("truncation"), "{error}");
    for i in [0, 2] {
        assert_eq!(
            outcomes[&i].as_ref().unwrap(),
            &alone(&engine, &inputs[i], &options)
        );
    }
    // An input whose longest output (3 x its 200 tokens) the model cannot place fails as it
    // fails alone; the short ones, batched with it, do not.
    let long = ["Yes.", &"word ".repeat(199), "Grant of Copyright License."].map(String::from);
    let factor = self::options(json!({ "max_length_factor": 3.0, "max_new_tokens": 2000 }));
    let alone_error = pollster::block_on(engine.generate(&long[1], &factor, |_| {}))
        .unwrap_err()
        .to_string();
    let mut generation = engine
        .generate_many(long.to_vec(), &factor, &ManyOptions::default())
        .unwrap();
    let mut outcomes = BTreeMap::new();
    while let Some(finished) = pollster::block_on(generation.next()) {
        let finished = finished.unwrap();
        outcomes.insert(finished.index, finished.results);
    }
    assert_eq!(outcomes[&1].as_ref().unwrap_err().to_string(), alone_error);
    for i in [0, 2] {
        assert_eq!(
            outcomes[&i].as_ref().unwrap(),
            &alone(&engine, &long[i], &factor)
        );
    }
    let zero = ManyOptions {
        batch_size: Some(0),
        split_sentences: false,
        batching: Batching::Auto,
        cache_blocks: None,
    };
    let refused = |o: &GenerationOptions, m: &ManyOptions| {
        engine
            .generate_many(Vec::<String>::new(), o, m)
            .err()
            .unwrap()
            .to_string()
    };
    assert!(refused(&options, &zero).contains("batch_size"));
    let huge_pool = ManyOptions {
        cache_blocks: Some(usize::MAX),
        ..ManyOptions::default()
    };
    assert!(refused(&options, &huge_pool).contains("cache_blocks"));
    let several = ManyOptions {
        batch_size: None,
        split_sentences: true,
        batching: Batching::Auto,
        cache_blocks: None,
    };
    let sequences = self::options(json!({ "num_beams": 2, "num_return_sequences": 2 }));
    assert!(refused(&sequences, &several).contains("num_return_sequences"));
}
