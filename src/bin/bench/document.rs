//! `--document`: the bundled Firefox Translations models' reference sentences translated
//! as one document (`Engine::generate_many`) at several batch sizes, batched continuously
//! and in static batches, against one sentence at a time, in the same run: sentences/s, output tokens/s, and agreement with the
//! reference engine (which each sentence alone reaches).

use std::time::Instant;

use seq2seq_gpu::{Batching, Engine, Error, GenerationOptions, ManyOptions, Result};
use serde_json::{Value, json};

use crate::translation::{project_file, read_json};

const BATCHES: [usize; 3] = [1, 8, 32];

struct Run {
    seconds: f64,
    tokens: usize,
    agreed: usize,
}

fn one_at_a_time(engine: &Engine, sources: &[String], expected: &[&str]) -> Result<Run> {
    let started = Instant::now();
    let (mut tokens, mut agreed) = (0, 0);
    for (source, want) in sources.iter().zip(expected) {
        let out =
            pollster::block_on(engine.generate(source, &GenerationOptions::default(), |_| {}))?;
        tokens += out[0].ids.len().saturating_sub(1);
        agreed += usize::from(out[0].text == *want);
    }
    Ok(Run {
        seconds: started.elapsed().as_secs_f64(),
        tokens,
        agreed,
    })
}

fn as_document(
    engine: &Engine,
    sources: &[String],
    expected: &[&str],
    batch: usize,
    batching: Batching,
) -> Result<Run> {
    let started = Instant::now();
    let many = ManyOptions {
        batch_size: Some(batch),
        split_sentences: false,
        batching,
        cache_blocks: None,
    };
    let mut generation =
        engine.generate_many(sources.to_vec(), &GenerationOptions::default(), &many)?;
    let (mut tokens, mut agreed) = (0, 0);
    while let Some(finished) = pollster::block_on(generation.next()) {
        let finished = finished?;
        let results = finished.results?;
        tokens += results[0].ids.len().saturating_sub(1);
        agreed += usize::from(results[0].text == expected[finished.index]);
    }
    Ok(Run {
        seconds: started.elapsed().as_secs_f64(),
        tokens,
        agreed,
    })
}

/// One JSON object per direction and way of running.
pub fn run(quick: bool) -> Result<Vec<Value>> {
    let reference = read_json("tests/fixtures/bergamot/reference.json")?;
    let directions: &[&str] = if quick { &["enpt"] } else { &["enpt", "pten"] };
    let mut lines = Vec::new();
    for &direction in directions {
        let cases = reference[direction]
            .as_array()
            .ok_or_else(|| Error::InvalidArgument(format!("no {direction} sentences")))?;
        let sources: Vec<String> = cases
            .iter()
            .map(|c| c["src"].as_str().unwrap_or_default().to_string())
            .collect();
        let expected: Vec<&str> = cases
            .iter()
            .map(|c| c["out"].as_str().unwrap_or_default())
            .collect();
        let engine = pollster::block_on(Engine::load_dir(project_file(&format!(
            "models/{direction}"
        ))))?;
        // Compiles pipelines and fills the buffer pool for every batch size.
        for &batch in &BATCHES {
            for batching in [Batching::Continuous, Batching::Static] {
                let warm_up = &sources[..(2 * batch).min(sources.len())];
                as_document(&engine, warm_up, &expected, batch, batching)?;
            }
        }
        let mut runs = vec![(
            "one at a time".to_string(),
            one_at_a_time(&engine, &sources, &expected)?,
        )];
        for &batch in &BATCHES {
            for (batching, how) in [
                (Batching::Continuous, "continuous"),
                (Batching::Static, "static"),
            ] {
                let run = as_document(&engine, &sources, &expected, batch, batching)?;
                runs.push((format!("B = {batch}, {how}"), run));
            }
        }
        let baseline = runs[0].1.seconds;
        for (how, run) in runs {
            let line = json!({
                "direction": direction, "adapter": engine.gpu().adapter_description(), "how": how,
                "sentences": sources.len(), "seconds": run.seconds,
                "sentences_per_s": sources.len() as f64 / run.seconds,
                "tokens_per_s": run.tokens as f64 / run.seconds,
                "speedup": baseline / run.seconds, "agreement": run.agreed,
            });
            println!(
                "{direction} {how:>16}: {:6.1} sentences/s {:7.1} tokens/s ({:.2}x one at a time), {}/{} equal to the reference engine",
                sources.len() as f64 / run.seconds,
                run.tokens as f64 / run.seconds,
                baseline / run.seconds,
                run.agreed,
                sources.len()
            );
            lines.push(line);
        }
    }
    Ok(lines)
}
