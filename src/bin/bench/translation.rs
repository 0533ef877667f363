//! `--translation`: the bundled Firefox Translations models on the sentences of
//! tests/fixtures/bergamot/sentences.json, one sentence at a time (latency, as a person
//! translating would see it), with agreement against the reference engine's outputs.

use std::path::PathBuf;
use std::time::Instant;

use seq2seq_gpu::{Engine, Error, GenerationOptions, Result};
use serde_json::{Value, json};

pub fn project_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

pub fn read_json(path: &str) -> Result<Value> {
    let file = project_file(path);
    let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
        path: file.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::InvalidArgument(format!("{path}: {e}")))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Translates every sentence of each direction; returns one JSON object per direction.
pub fn run() -> Result<Vec<Value>> {
    let reference = read_json("tests/fixtures/bergamot/reference.json")?;
    let mut results = Vec::new();
    for direction in ["enpt", "pten"] {
        let cases = reference[direction]
            .as_array()
            .ok_or_else(|| Error::InvalidArgument(format!("no {direction} sentences")))?;
        let started = Instant::now();
        let engine = pollster::block_on(Engine::load_dir(project_file(&format!(
            "models/{direction}"
        ))))?;
        let load_ms = started.elapsed().as_secs_f64() * 1e3;
        let options = GenerationOptions::default();
        let translate = |text: &str| -> Result<String> {
            let out = pollster::block_on(engine.generate(text, &options, |_| {}))?;
            Ok(out[0].text.clone())
        };
        // Compiles pipelines and fills the buffer pool.
        translate(cases[0]["src"].as_str().unwrap_or_default())?;
        let (mut times, mut agreed) = (Vec::new(), 0);
        for case in cases {
            let source = case["src"].as_str().unwrap_or_default();
            let started = Instant::now();
            let ours = translate(source)?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
            agreed += usize::from(case["out"].as_str() == Some(ours.as_str()));
        }
        let line = json!({
            "direction": direction, "adapter": engine.gpu().adapter_description(),
            "sentences": cases.len(), "agreement": agreed, "load_ms": load_ms,
            "ms_per_sentence_median": median(times.clone()),
            "ms_total": times.iter().sum::<f64>(),
        });
        println!(
            "{direction}: {agreed}/{} equal to the reference engine; median {:.1} ms per sentence, total {:.0} ms, load {:.0} ms",
            cases.len(),
            line["ms_per_sentence_median"].as_f64().unwrap_or(0.0),
            line["ms_total"].as_f64().unwrap_or(0.0),
            load_ms
        );
        results.push(line);
    }
    Ok(results)
}
